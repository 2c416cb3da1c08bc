"""Int8 post-training quantisation of a TinyMyo encoder (and gesture head), calibrated on data.

Three steps, each a function:

1. :func:`float_network` reads the torch model into plain float32 arrays
   (:class:`FloatNetwork`), refusing any layer it cannot quantise by name;
2. :func:`calibrate` runs :func:`float_forward` on calibration windows and
   records the range of every activation tensor (named taps);
3. :func:`integer_network` turns weights and ranges into the integer
   parameters of :class:`~silentspeech.export.int_reference.IntNetwork`:
   symmetric per-tensor int8 weights in [-127, 127], int32 biases, per-tensor
   int8 activation scales, fixed-point requantisation multipliers, the GELU
   and exponent tables and the integer LayerNorm constants.

:func:`quantize_model` does all three. :func:`fake_quant_forward` is the
fake-quantised model: the same float graph with quantised weights and every
named activation quantised and dequantised (the graph the ONNX QDQ export
writes); the integer reference differs from it only by integer rounding
inside LayerNorm, softmax and requantisation.

Written here rather than with ``torch.ao.quantization``: that flow has no
integer LayerNorm, softmax or GELU, keeps per-channel and asymmetric schemes
by default, and its integer semantics are not the ones the GAP9 kernels run.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.special
import torch
from torch import nn

from silentspeech.export.int_reference import (
    EXP_STEP,
    NORM_FRACTION_BITS,
    ROTARY_FRACTION_BITS,
    IntAttention,
    IntBlock,
    IntLayerNorm,
    IntLinear,
    IntNetwork,
    IntPool,
    IntRotary,
)
from silentspeech.models.heads import GestureClassifier
from silentspeech.models.tinymyo import MLP, Attention, TinyMyoConfig, TinyMyoEncoder, TransformerBlock, rotary_tables


class ExportError(ValueError):
    """A model the int8 exporter cannot quantise, or export input it cannot use; names the layer or file."""


# --- the float graph -------------------------------------------------------------


@dataclass
class FloatLinear:
    """``y = x W^T + b``: ``weight`` (out, in), ``bias`` (out,), or (period, out) for row r taking ``bias[r % period]``; float32."""

    weight: np.ndarray
    bias: np.ndarray


@dataclass
class FloatLayerNorm:
    """LayerNorm over the last axis: ``weight``, ``bias`` (D,) float32, ``eps``."""

    weight: np.ndarray
    bias: np.ndarray
    eps: float


@dataclass
class FloatBlock:
    """The parameters of one pre-LayerNorm Transformer block."""

    norm1: FloatLayerNorm
    qkv: FloatLinear
    proj: FloatLinear
    norm2: FloatLayerNorm
    fc1: FloatLinear
    fc2: FloatLinear


@dataclass
class FloatNetwork:
    """A TinyMyo encoder (+ gesture head) as float32 arrays, for windows of (channels, samples).

    With learned positions ``patch.bias`` is (P, dim): the patch bias plus
    the position vector of each patch time (channel-major token n is at time
    n % P).
    """

    channels: int
    samples: int
    patch_len: int
    dim: int
    heads: int
    patch: FloatLinear
    blocks: list[FloatBlock]
    norm: FloatLayerNorm
    head: FloatLinear | None = None
    #: Rotary positions: cosines and sines (P, hd / 2) of each patch time's angles.
    rotary: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def tokens(self) -> int:
        return self.channels * (self.samples // self.patch_len)


#: Layers the exporter knows, by name relative to the encoder: exact type required.
_ENCODER_LAYERS: list[tuple[str, type]] = [
    (r"", TinyMyoEncoder),
    (r"patch_embedding", nn.Conv2d),
    (r"blocks", nn.ModuleList),
    (r"blocks\.\d+", TransformerBlock),
    (r"blocks\.\d+\.norm[12]", nn.LayerNorm),
    (r"blocks\.\d+\.attn", Attention),
    (r"blocks\.\d+\.attn\.(qkv|proj)", nn.Linear),
    (r"blocks\.\d+\.attn\.proj_dropout", nn.Dropout),
    (r"blocks\.\d+\.mlp", MLP),
    (r"blocks\.\d+\.mlp\.fc[12]", nn.Linear),
    (r"blocks\.\d+\.mlp\.dropout", nn.Dropout),
    (r"norm", nn.LayerNorm),
]
_CLASSIFIER_LAYERS: list[tuple[str, type]] = [(r"", GestureClassifier), (r"classifier", nn.Linear)] + [
    ("encoder" + (r"\." + pattern if pattern else ""), kind) for pattern, kind in _ENCODER_LAYERS
]


def check_layers(model: nn.Module) -> None:
    """Raise :class:`ExportError` naming the first layer of ``model`` the exporter cannot quantise.

    ``model`` must be a :class:`TinyMyoEncoder` or a :class:`GestureClassifier`
    whose every submodule sits where the exporter expects it, with exactly the
    expected type (a subclass might compute something else).
    """
    known = _ENCODER_LAYERS if isinstance(model, TinyMyoEncoder) else _CLASSIFIER_LAYERS
    # Leaves first, the model's own type last: an unknown layer is the more useful thing to name.
    for name, module in list(model.named_modules())[1:] + [("", model)]:
        expected = next((kind for pattern, kind in known if re.fullmatch(pattern, name)), None)
        where = f"layer '{name}'" if name else "the model"
        if expected is None:
            if next(module.children(), None) is not None:
                continue  # an unknown container: its leaves get named below
            raise ExportError(
                f"cannot quantise {where} ({type(module).__name__}): the int8 exporter supports the TinyMyo "
                "encoder (Linear, LayerNorm, GELU, softmax attention) and the mean-pooled gesture classifier only"
            )
        if type(module) is not expected:
            raise ExportError(
                f"cannot quantise {where}: it is a {type(module).__name__}, the int8 exporter expects "
                f"{expected.__name__} there"
            )


def _linear(layer: nn.Linear) -> FloatLinear:
    bias = layer.bias if layer.bias is not None else torch.zeros(layer.out_features)
    return FloatLinear(_array(layer.weight), _array(bias))


def _layer_norm(layer: nn.LayerNorm, name: str) -> FloatLayerNorm:
    width = layer.normalized_shape[-1]
    if len(layer.normalized_shape) != 1:
        raise ExportError(f"cannot quantise layer '{name}': LayerNorm over {layer.normalized_shape}, expected one axis")
    weight = layer.weight if layer.weight is not None else torch.ones(width)
    bias = layer.bias if layer.bias is not None else torch.zeros(width)
    return FloatLayerNorm(_array(weight), _array(bias), float(layer.eps))


def _array(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).numpy().copy()


def float_network(model: nn.Module, samples: int) -> FloatNetwork:
    """Read a :class:`TinyMyoEncoder` or :class:`GestureClassifier` for windows of ``samples`` samples.

    Raises :class:`ExportError` naming any layer the exporter cannot quantise.
    """
    check_layers(model)
    encoder: TinyMyoEncoder = model if isinstance(model, TinyMyoEncoder) else model.encoder
    config = encoder.config
    conv = encoder.patch_embedding
    if conv.in_channels != 1 or tuple(conv.kernel_size) != (1, config.patch_len) or tuple(conv.stride) != (1, config.patch_len):
        raise ExportError(f"cannot quantise layer 'patch_embedding': {conv} is not a (1, {config.patch_len}) patch projection")
    if samples <= 0 or samples % config.patch_len:
        raise ExportError(f"window of {samples} samples is not a positive multiple of patch_len={config.patch_len}")
    patches = samples // config.patch_len
    weight = _array(conv.weight).reshape(config.dim, config.patch_len)
    bias = _array(conv.bias) if conv.bias is not None else np.zeros(config.dim, np.float32)
    if encoder.position_embedding is not None:
        if patches > config.max_tokens:
            raise ExportError(f"window of {patches} patches exceeds the learned position table (max_tokens={config.max_tokens})")
        bias = bias + _array(encoder.position_embedding)[:patches]  # (P, dim): one row per patch time
    blocks = [
        FloatBlock(
            norm1=_layer_norm(block.norm1, f"blocks.{i}.norm1"),
            qkv=_linear(block.attn.qkv),
            proj=_linear(block.attn.proj),
            norm2=_layer_norm(block.norm2, f"blocks.{i}.norm2"),
            fc1=_linear(block.mlp.fc1),
            fc2=_linear(block.mlp.fc2),
        )
        for i, block in enumerate(encoder.blocks)
    ]
    return FloatNetwork(
        channels=config.channels,
        samples=samples,
        patch_len=config.patch_len,
        dim=config.dim,
        heads=config.heads,
        patch=FloatLinear(weight, bias.astype(np.float32)),
        blocks=blocks,
        norm=_layer_norm(encoder.norm, "norm"),
        head=_linear(model.classifier) if isinstance(model, GestureClassifier) else None,
        rotary=_rotary(config, patches) if config.position == "rope" else None,
    )


def _rotary(config: TinyMyoConfig, patches: int) -> tuple[np.ndarray, np.ndarray]:
    """The encoder's own rotary tables for patch times 0..P-1, first halves (the angles repeat)."""
    head_dim = config.dim // config.heads
    cos, sin = rotary_tables(torch.arange(patches), head_dim)
    return _array(cos[:, : head_dim // 2]), _array(sin[:, : head_dim // 2])


Tap = Callable[[str, np.ndarray], np.ndarray]


def _no_tap(name: str, x: np.ndarray) -> np.ndarray:
    return x


def _layer_norm_forward(layer: FloatLayerNorm, x: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + np.float32(layer.eps)) * layer.weight + layer.bias


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, ``x * Phi(x)``, as ``torch.nn.functional.gelu``."""
    return (0.5 * x * (1.0 + scipy.special.erf(x / np.sqrt(2.0)))).astype(x.dtype)


def _row_bias(layer: FloatLinear, rows: int) -> np.ndarray:
    """The bias of every one of ``rows`` rows: (out,) as is, a (period, out) table repeated."""
    return layer.bias if layer.bias.ndim == 1 else np.tile(layer.bias, (rows // len(layer.bias), 1))


def _rotate(x: np.ndarray, rotary: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Turn feature pairs (i, i + hd/2) of ``x`` (B, heads, N, hd) by each token's patch-time angles."""
    reps = x.shape[-2] // len(rotary[0])
    cos, sin = (np.tile(t, (reps, 1)) for t in rotary)
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    return np.concatenate([a * cos - b * sin, b * cos + a * sin], axis=-1)


def float_forward(network: FloatNetwork, x: np.ndarray, tap: Tap = _no_tap) -> np.ndarray:
    """The float graph on EMG ``x`` (B, C, T): logits (B, K) with a head, else tokens (B, N, D).

    ``tap(name, tensor)`` sees every activation that the integer network
    holds in int8 (names as in :attr:`IntNetwork.scales`) and, inside
    attention, ``blocks.{i}.delta`` (row maximum minus scaled score) and
    ``blocks.{i}.exp`` (its exponential); what it returns flows on. The
    default passes everything through unchanged.
    """
    x = tap("input", np.asarray(x, dtype=np.float32))
    batch = x.shape[0]
    head_dim = network.dim // network.heads
    h = tap("embed", x.reshape(batch, network.tokens, network.patch_len) @ network.patch.weight.T + _row_bias(network.patch, network.tokens))
    for i, block in enumerate(network.blocks):
        name = f"blocks.{i}."
        a = tap(name + "norm1", _layer_norm_forward(block.norm1, h))
        qkv = (a @ block.qkv.weight.T + block.qkv.bias).reshape(batch, network.tokens, 3, network.heads, head_dim)
        q, k, v = (tap(name + part, qkv[:, :, j].transpose(0, 2, 1, 3)) for j, part in enumerate("qkv"))
        if network.rotary is not None:
            q, k = tap(name + "q_rot", _rotate(q, network.rotary)), tap(name + "k_rot", _rotate(k, network.rotary))
        scores = q @ k.transpose(0, 1, 3, 2) / np.float32(math.sqrt(head_dim))
        delta = tap(name + "delta", scores.max(axis=-1, keepdims=True) - scores)
        e = tap(name + "exp", np.exp(-delta))
        attended = (e @ v) / e.sum(axis=-1, keepdims=True)
        attended = tap(name + "attn", attended.transpose(0, 2, 1, 3).reshape(batch, network.tokens, network.dim))
        h = tap(name + "resid1", h + attended @ block.proj.weight.T + block.proj.bias)
        a = tap(name + "norm2", _layer_norm_forward(block.norm2, h))
        f = tap(name + "gelu", gelu(tap(name + "fc1", a @ block.fc1.weight.T + block.fc1.bias)))
        h = tap(name + "resid2", h + f @ block.fc2.weight.T + block.fc2.bias)
    h = tap("norm", _layer_norm_forward(network.norm, h))
    if network.head is None:
        return h
    pooled = tap("pool", h.reshape(batch, network.channels, -1, network.dim).mean(axis=2))
    return pooled.reshape(batch, -1) @ network.head.weight.T + network.head.bias


# --- calibration -------------------------------------------------------------------

#: Activation ranges clip at this percentile of |activation|: a few outliers would otherwise stretch
#: a tensor's scale and leave the bulk of its values few int8 steps (docs/measurements.md,
#: *Activation ranges of the int8 export*).
DEFAULT_PERCENTILE = 99.9

#: Taps whose scales are fixed by the integer attention, not calibrated: (scale, qmin, qmax).
FIXED_TAPS = {"delta": (EXP_STEP, 0, 255), "exp": (1.0 / 255.0, 0, 255)}


def _is_fixed(name: str) -> bool:
    return name.rsplit(".", 1)[-1] in FIXED_TAPS


def check_windows(network: FloatNetwork, windows: np.ndarray) -> np.ndarray:
    """``windows`` as float32 (count, C, T) of the network's size, all finite; :class:`ExportError` otherwise."""
    windows = np.asarray(windows, dtype=np.float32)
    if windows.ndim != 3 or windows.shape[1:] != (network.channels, network.samples) or len(windows) == 0:
        raise ExportError(
            f"calibration windows must be (count, {network.channels} channels, {network.samples} samples), "
            f"got {windows.shape}"
        )
    if not np.isfinite(windows).all():
        raise ExportError("calibration windows contain NaN or infinite values")
    return windows


def calibrate(
    network: FloatNetwork,
    windows: np.ndarray,
    percentile: float = DEFAULT_PERCENTILE,
    batch_size: int = 16,
    progress: bool = False,
) -> dict[str, float]:
    """Activation scales (real value of one int8 step) from float runs on ``windows`` (B, C, T).

    Each scale is the ``percentile`` of the tensor's magnitudes divided by
    127, the percentile taken per batch of ``batch_size`` windows and
    averaged over batches, which clips rare outliers (100: the largest
    magnitude over all windows).
    """
    windows = check_windows(network, windows)
    ranges: dict[str, list[float]] = {}

    def observe(name: str, x: np.ndarray) -> np.ndarray:
        if not _is_fixed(name):
            magnitude = np.abs(x)
            value = float(magnitude.max() if percentile >= 100 else np.percentile(magnitude, percentile))
            ranges.setdefault(name, []).append(value)
        return x

    starts = range(0, len(windows), batch_size)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="calibrating", unit="batch")
    for start in starts:
        float_forward(network, windows[start : start + batch_size], observe)
    reduce = max if percentile >= 100 else (lambda values: float(np.mean(values)))
    # A tensor that is zero on all windows still needs a usable scale.
    return {name: max(reduce(values), 1e-8) / 127.0 for name, values in ranges.items()}


# --- integer parameters ------------------------------------------------------------


def fixed_point(real: float) -> tuple[int, int]:
    """A positive factor as ``(m, s)`` with 2**30 <= m < 2**31 and ``real ~ m * 2**-s`` (1 <= s <= 62)."""
    if real <= 0:
        return 0, 1
    mantissa, exponent = math.frexp(real)
    multiplier, shift = round(mantissa * 2**31), 31 - exponent
    if multiplier == 2**31:
        multiplier, shift = 2**30, shift - 1
    if shift > 62:  # a factor below 2**-32: keep the shift in range and lose low bits of m
        multiplier, shift = multiplier >> (shift - 62), 62
    if shift < 1:
        raise ExportError(f"requantisation factor {real:g} is too large for the int8 fixed-point format")
    return multiplier, shift


def _shared_fixed_point(a: float, b: float) -> tuple[int, int, int]:
    """Two factors on one shift: ``(m_a, m_b, s)`` with ``a ~ m_a 2**-s``, ``b ~ m_b 2**-s``, both below 2**31."""
    _, shift = fixed_point(max(a, b))
    return min(round(a * 2**shift), 2**31 - 1), min(round(b * 2**shift), 2**31 - 1), shift


def _weights(weight: np.ndarray) -> tuple[np.ndarray, float]:
    scale = max(float(np.abs(weight).max()), 1e-12) / 127.0
    return np.clip(np.round(weight / scale), -127, 127).astype(np.int8), scale


def _bias(bias: np.ndarray, scale: float, name: str) -> np.ndarray:
    q = np.round(bias.astype(np.float64) / scale)
    if np.abs(q).max(initial=0) >= 2**31:
        raise ExportError(f"bias of layer '{name}' does not fit int32 at scale {scale:g}")
    return q.astype(np.int32)


def _int_linear(
    layer: FloatLinear,
    input_scale: float,
    output_scales: np.ndarray | None,
    name: str,
    residual_scale: float | None = None,
) -> IntLinear:
    """Quantise ``layer``; ``output_scales`` (out,) per output feature, None for int32 output."""
    weight, weight_scale = _weights(layer.weight)
    accumulator_scale = input_scale * weight_scale
    bias = _bias(layer.bias, accumulator_scale, name)
    if output_scales is None:
        return IntLinear(weight, bias, None, None, input_scale, weight_scale)
    if residual_scale is not None:
        # One output scale: the residual and the product share a shift.
        m, m_residual, shift = _shared_fixed_point(accumulator_scale / output_scales[0], residual_scale / output_scales[0])
        out = len(output_scales)
        return IntLinear(
            weight,
            bias,
            np.full(out, m, np.int32),
            np.full(out, shift, np.int32),
            input_scale,
            weight_scale,
            residual_multiplier=m_residual,
        )
    pairs = [fixed_point(accumulator_scale / s) for s in output_scales]
    return IntLinear(
        weight,
        bias,
        np.array([m for m, _ in pairs], np.int32),
        np.array([s for _, s in pairs], np.int32),
        input_scale,
        weight_scale,
    )


def _int_layer_norm(layer: FloatLayerNorm, input_scale: float, output_scale: float) -> IntLayerNorm:
    """Fold gamma, beta and the output scale into Q-format gains (see :func:`int_reference.layer_norm`)."""
    width = len(layer.weight)
    eps_term = max(1, round(layer.eps * width * width / input_scale**2))
    if width * width * 255**2 + eps_term >= 2**35:
        raise ExportError(f"LayerNorm of width {width} with eps {layer.eps:g} overflows the integer variance")
    gain = layer.weight.astype(np.float64) / output_scale
    offset = layer.bias.astype(np.float64) / output_scale
    # Largest shift that keeps |gain| below 2**15 and |offset| below 2**30.
    extra = 62 - NORM_FRACTION_BITS
    if np.abs(gain).max() > 0:
        extra = min(extra, math.floor(math.log2(2**15 / np.abs(gain).max())))
    if np.abs(offset).max() > 0:
        extra = min(extra, math.floor(math.log2(2**30 / np.abs(offset).max())) - NORM_FRACTION_BITS)
    shift = NORM_FRACTION_BITS + extra
    if shift < 1:
        raise ExportError(f"LayerNorm gain {np.abs(gain).max():g} is too large for the int8 fixed-point format")
    return IntLayerNorm(
        gain=np.round(gain * 2.0**extra).astype(np.int32),
        offset=np.round(offset * 2.0**shift).astype(np.int32),
        shift=shift,
        eps_term=int(eps_term),
        gamma=layer.weight.copy(),
        beta=layer.bias.copy(),
        eps=layer.eps,
    )


def gelu_table(input_scale: float, output_scale: float) -> np.ndarray:
    """int8 GELU table: entry ``i`` is ``round(gelu((i - 128) * input_scale) / output_scale)``."""
    x = (np.arange(256) - 128).astype(np.float32) * np.float32(input_scale)
    return np.clip(np.round(gelu(x) / np.float32(output_scale)), -128, 127).astype(np.int8)


def exp_table() -> np.ndarray:
    """uint8 exponent table: entry ``i`` is ``round(255 exp(-i * EXP_STEP))``."""
    return np.round(255.0 * np.exp(-np.arange(256) * EXP_STEP)).astype(np.uint8)


def _int_rotary(rotary: tuple[np.ndarray, np.ndarray], scales: dict[str, float], block: str) -> IntRotary:
    """Q14 tables and the requantisation of rotated q and k to their calibrated scales."""
    one = 2**ROTARY_FRACTION_BITS
    cos, sin = (np.round(t.astype(np.float64) * one).astype(np.int16) for t in rotary)
    q = fixed_point(scales[block + "q"] / (one * scales[block + "q_rot"]))
    k = fixed_point(scales[block + "k"] / (one * scales[block + "k_rot"]))
    return IntRotary(cos, sin, *q, *k)


def integer_network(network: FloatNetwork, scales: dict[str, float]) -> IntNetwork:
    """Integer parameters of ``network`` at the calibrated activation ``scales``."""
    dim, head_dim = network.dim, network.dim // network.heads

    def uniform(name: str, count: int) -> np.ndarray:
        return np.full(count, scales[name])

    blocks = []
    residual = "embed"
    for i, block in enumerate(network.blocks):
        name = f"blocks.{i}."
        qkv_scales = np.concatenate([uniform(name + part, dim) for part in "qkv"])
        rotary = None
        q_scale, k_scale = scales[name + "q"], scales[name + "k"]
        if network.rotary is not None:
            rotary = _int_rotary(network.rotary, scales, name)
            q_scale, k_scale = scales[name + "q_rot"], scales[name + "k_rot"]
        index_m, index_s = fixed_point(q_scale * k_scale / (math.sqrt(head_dim) * EXP_STEP))
        output_m, output_s = fixed_point(scales[name + "v"] / scales[name + "attn"])
        fc1 = _int_linear(block.fc1, scales[name + "norm2"], uniform(name + "fc1", len(block.fc1.bias)), name + "fc1")
        fc1.lut = gelu_table(scales[name + "fc1"], scales[name + "gelu"])
        blocks.append(
            IntBlock(
                norm1=_int_layer_norm(block.norm1, scales[residual], scales[name + "norm1"]),
                qkv=_int_linear(block.qkv, scales[name + "norm1"], qkv_scales, name + "qkv"),
                attention=IntAttention(network.heads, index_m, index_s, exp_table(), output_m, output_s, rotary),
                proj=_int_linear(
                    block.proj, scales[name + "attn"], uniform(name + "resid1", dim), name + "proj", scales[residual]
                ),
                norm2=_int_layer_norm(block.norm2, scales[name + "resid1"], scales[name + "norm2"]),
                fc1=fc1,
                fc2=_int_linear(
                    block.fc2, scales[name + "gelu"], uniform(name + "resid2", dim), name + "fc2", scales[name + "resid1"]
                ),
            )
        )
        residual = name + "resid2"
    pool = head = None
    if network.head is not None:
        patches = network.samples // network.patch_len
        pool = IntPool(*fixed_point(scales["norm"] / (patches * scales["pool"])))
        head = _int_linear(network.head, scales["pool"], None, "classifier")
    return IntNetwork(
        channels=network.channels,
        samples=network.samples,
        patch_len=network.patch_len,
        dim=dim,
        heads=network.heads,
        scales=dict(scales),
        patch=_int_linear(network.patch, scales["input"], uniform("embed", dim), "patch_embedding"),
        blocks=blocks,
        norm=_int_layer_norm(network.norm, scales[residual], scales["norm"]),
        pool=pool,
        head=head,
    )


# --- the whole flow ---------------------------------------------------------------------


def torch_forward(model: nn.Module, windows: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """``model`` in eval mode on float ``windows`` (B, C, T) on the CPU -> numpy outputs."""
    model = model.eval().to("cpu")
    outputs = []
    with torch.no_grad():
        for start in range(0, len(windows), batch_size):
            outputs.append(model(torch.as_tensor(np.asarray(windows[start : start + batch_size], np.float32))).numpy())
    return np.concatenate(outputs)


def check_float_graph(model: nn.Module, network: FloatNetwork, windows: np.ndarray, tolerance: float = 1e-3) -> float:
    """Max abs difference between ``model`` and :func:`float_forward` on ``windows``; raises beyond ``tolerance``.

    ``tolerance`` is relative to the largest output magnitude. A model whose
    forward computes something other than the layers suggest fails here.
    """
    expected = torch_forward(model, windows)
    got = float_forward(network, windows)
    difference = float(np.abs(expected - got).max())
    if difference > tolerance * max(float(np.abs(expected).max()), 1.0):
        raise ExportError(
            f"the exporter's float graph differs from the model's own forward by {difference:.3g} "
            f"(largest output {float(np.abs(expected).max()):.3g}): the model computes something the exporter does not know"
        )
    return difference


def quantize_model(
    model: nn.Module,
    calibration: np.ndarray | torch.Tensor,
    percentile: float = DEFAULT_PERCENTILE,
    batch_size: int = 16,
    progress: bool = False,
) -> IntNetwork:
    """Int8 post-training quantisation of ``model`` calibrated on EMG windows (B, C, T).

    ``model``: a :class:`TinyMyoEncoder` or a :class:`GestureClassifier`.
    The windows fix the exported input size (C channels, T samples) and
    should look like deployment inputs (same preprocessing and scaling).
    Raises :class:`ExportError` for an unsupported layer (named), bad
    windows, or a forward the float graph does not reproduce.
    """
    windows = calibration.detach().cpu().numpy() if isinstance(calibration, torch.Tensor) else np.asarray(calibration)
    if windows.ndim != 3 or len(windows) == 0:
        raise ExportError(f"calibration windows must be a non-empty (count, channels, samples) array, got {windows.shape}")
    network = float_network(model, windows.shape[2])
    windows = check_windows(network, windows)
    check_float_graph(model, network, windows[: min(len(windows), 4)])
    return integer_network(network, calibrate(network, windows, percentile, batch_size, progress))


# --- the fake-quantised model ----------------------------------------------------------


def _dequantized_linear(layer: IntLinear) -> FloatLinear:
    weight = layer.weight.astype(np.float32) * np.float32(layer.weight_scale)
    bias = layer.bias.astype(np.float64) * (layer.input_scale * layer.weight_scale)
    return FloatLinear(weight, bias.astype(np.float32))


def dequantized_network(network: IntNetwork) -> FloatNetwork:
    """The float graph with the int8 weights and int32 biases of ``network`` dequantised."""

    def norm(layer: IntLayerNorm) -> FloatLayerNorm:
        return FloatLayerNorm(layer.gamma, layer.beta, layer.eps)

    return FloatNetwork(
        channels=network.channels,
        samples=network.samples,
        patch_len=network.patch_len,
        dim=network.dim,
        heads=network.heads,
        patch=_dequantized_linear(network.patch),
        blocks=[
            FloatBlock(
                norm(b.norm1),
                _dequantized_linear(b.qkv),
                _dequantized_linear(b.proj),
                norm(b.norm2),
                _dequantized_linear(b.fc1),
                _dequantized_linear(b.fc2),
            )
            for b in network.blocks
        ],
        norm=norm(network.norm),
        head=_dequantized_linear(network.head) if network.head is not None else None,
        rotary=rotary_tables_of(network),
    )


def rotary_tables_of(network: IntNetwork) -> tuple[np.ndarray, np.ndarray] | None:
    """The deployed Q14 rotary tables of ``network`` as float32 (P, hd / 2) cosines and sines, or None."""
    rotary = network.blocks[0].attention.rotary if network.blocks else None
    if rotary is None:
        return None
    one = np.float32(2**ROTARY_FRACTION_BITS)
    return rotary.cos.astype(np.float32) / one, rotary.sin.astype(np.float32) / one


def quantize_dequantize(x: np.ndarray, scale: float, low: int, high: int) -> np.ndarray:
    """``clip(round(x / scale), low, high) * scale`` in float32, rounding halves to even (as ONNX QuantizeLinear)."""
    scale = np.float32(scale)
    return np.clip(np.round(x / scale), low, high).astype(np.float32) * scale


def fake_quant_forward(network: IntNetwork, x: np.ndarray) -> np.ndarray:
    """The fake-quantised model on float EMG ``x`` (B, C, T): float graph, quantised weights, QDQ activations."""

    def tap(name: str, t: np.ndarray) -> np.ndarray:
        kind = name.rsplit(".", 1)[-1]
        if kind in FIXED_TAPS:
            return quantize_dequantize(t, *FIXED_TAPS[kind])
        return quantize_dequantize(t, network.scales[name], -128, 127)

    return float_forward(dequantized_network(network), x, tap)
