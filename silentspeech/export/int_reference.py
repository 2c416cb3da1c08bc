"""The integer reference model: the exact int8 arithmetic of an exported TinyMyo.

This module DEFINES the numbers the deployed network computes. The C kernels
(:mod:`silentspeech.export.c_codegen`) must reproduce :func:`run_integer`
bit for bit, and the tests hold them to it. No quantisation library can be
that reference: PyTorch's and ONNX Runtime's int8 operators requantise
through float scales and compute LayerNorm, softmax and GELU in float inside,
so neither gives the integers the kernels compute. Every operation is on integers;
floats appear only where :mod:`silentspeech.export.quantize` derives the
integer parameters, never here.

Conventions (all tensors are per-tensor quantised, zero point 0):

- activations are int8 in [-128, 127], weights int8 in [-127, 127], biases
  int32 at the scale ``input_scale * weight_scale`` of their accumulator;
- accumulation in int32, fixed-point products in int64;
- ``round_shift(x, s) = (x + 2**(s-1)) >> s`` with an arithmetic (flooring)
  shift: rounds halves up;
- requantisation of an accumulator ``acc`` to int8 is
  ``clamp(round_shift(acc * m, s))`` with a 31-bit multiplier ``m`` and shift
  ``s`` standing for the real factor ``m * 2**-s``.

The network, for one window (C channels, T samples, P = T / patch_len
patches per channel, N = C * P channel-major tokens, D = dim)::

    x (C, T) int8 --patch linear--> tokens (N, D)
      --blocks: x += proj(attention(norm1(x))); x += fc2(gelu(fc1(norm2(x))))
      --norm--> (N, D) int8 [--mean over patches--> (C, D) --head--> (K,) int32]

Integer LayerNorm (part of the integer-only recipe in docs/design.md, *GAP9*): with ``S = sum q``, ``d = D q - S``,
``U = (sum d^2) // D + E`` (E stands for eps) the standard deviation in units
of d is ``sqrt(U)``; ``R = isqrt(U << 16)`` and ``inv = 2**47 // R`` make
``n = round_shift(d * inv, 23)`` the normalised value in Q16, and a
per-feature ``round_shift(n * g + b, shift)`` applies gamma and beta and the
output scale.

Integer attention: scores ``z = q . k`` stay int32; the row maximum minus
each score, requantised to an index in [0, 255] of steps of
:data:`EXP_STEP`, looks up ``e = round(255 exp(-index * EXP_STEP))`` (uint8).
The softmax division is deferred to the output: ``o = (sum_j e_j v_j) /
(sum_j e_j)``, applied through a per-row multiplier ``(m << 16) // sum e``.
Dividing after the products keeps the many small probabilities of a long,
flat attention row, which an int8 probability tensor would round to zero.

Rotary positions (``position="rope"``): token n sits at patch time
p = n % P; each head's feature pairs (i, i + hd/2) of q and of k turn by the
angle of (p, i): ``a' = requant(a C - b S)``, ``b' = requant(b C + a S)``
with ``C``, ``S`` the cosine and sine in Q14 (int16) and a per-tensor
multiplier to the rotated tensor's own scale.

GELU is a 256-entry int8 table indexed by the int8 input.

Matrix products are computed in float64 by numpy, which is exact here: every
partial sum is an integer below 2**53.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Width of one step of the attention exponent table, in units of the
#: scaled score q.k / sqrt(head_dim): 255 steps cover exp(-6.375) * 255 < 0.5.
EXP_STEP = 1.0 / 40.0
#: Fraction bits of the normalised LayerNorm value before gamma and beta.
NORM_FRACTION_BITS = 16
#: Bits the LayerNorm variance is shifted by before the integer square root.
NORM_SQRT_BITS = 16
#: Numerator of the LayerNorm reciprocal: inv = 2**NORM_RECIPROCAL_BITS // R.
NORM_RECIPROCAL_BITS = 47
#: Extra fraction bits of the per-row softmax reciprocal.
SOFTMAX_RECIPROCAL_BITS = 16
#: Fraction bits of the rotary cosine and sine tables (int16).
ROTARY_FRACTION_BITS = 14


@dataclass
class IntLinear:
    """``y = x W^T + b`` on int8 ``x`` (rows, in_features), requantised per output feature.

    ``weight`` (out, in) int8 at ``weight_scale``; ``bias`` (out,) int32, or
    (period, out) int32 with row r taking ``bias[r % period]`` (learned
    positions folded in, one row per patch time), at ``input_scale * weight_scale``. ``multiplier`` and ``shift`` (out,)
    requantise the accumulator; with ``residual_multiplier`` set the layer adds
    an int8 residual r on the way:
    ``y = clamp(round_shift(acc * m + r * residual_multiplier, shift))``.
    ``lut`` (256,) int8 maps the requantised output through a table (GELU),
    indexed by ``y + 128``. With ``multiplier`` None the int32 accumulator is
    the output (the classifier's logits).
    """

    weight: np.ndarray
    bias: np.ndarray
    multiplier: np.ndarray | None
    shift: np.ndarray | None
    input_scale: float
    weight_scale: float
    residual_multiplier: int | None = None
    lut: np.ndarray | None = None


@dataclass
class IntLayerNorm:
    """Integer LayerNorm over the last axis (see the module docstring).

    ``gain`` and ``offset`` (D,) int32 are gamma and beta folded with the
    output scale at ``2**-shift``; ``eps_term`` is eps in units of d^2.
    ``gamma``, ``beta`` (float32) and ``eps`` are the float parameters they
    stand for (the fake-quantised and ONNX models use them).
    """

    gain: np.ndarray
    offset: np.ndarray
    shift: int
    eps_term: int
    gamma: np.ndarray
    beta: np.ndarray
    eps: float


@dataclass
class IntRotary:
    """Rotary positions of q and k: ``cos``/``sin`` (P, hd/2) int16 in Q14 and the
    multiplier/shift pairs taking q and k to their rotated scales."""

    cos: np.ndarray
    sin: np.ndarray
    q_multiplier: int
    q_shift: int
    k_multiplier: int
    k_shift: int


@dataclass
class IntAttention:
    """Integer softmax attention over int8 q, k, v of ``heads`` heads.

    ``index_multiplier``/``index_shift``: score steps -> exponent-table steps
    (scores of the rotated q and k where ``rotary`` is set);
    ``exp_table`` (256,) uint8; ``output_multiplier``/``output_shift``: the
    factor v_scale / output_scale that the per-row reciprocal carries.
    """

    heads: int
    index_multiplier: int
    index_shift: int
    exp_table: np.ndarray
    output_multiplier: int
    output_shift: int
    rotary: IntRotary | None = None


@dataclass
class IntBlock:
    """One pre-LayerNorm Transformer block in integers."""

    norm1: IntLayerNorm
    qkv: IntLinear
    attention: IntAttention
    proj: IntLinear
    norm2: IntLayerNorm
    fc1: IntLinear
    fc2: IntLinear


@dataclass
class IntPool:
    """Mean over each channel's patches: ``round_shift(sum * multiplier, shift)``."""

    multiplier: int
    shift: int


@dataclass
class IntNetwork:
    """A quantised TinyMyo encoder (and classification head) for windows of fixed size.

    ``scales`` holds the real value of one int8 step of every activation
    tensor, by name: ``input``, ``embed``, per block ``blocks.{i}.`` +
    ``norm1``, ``q``, ``k``, ``v`` (and ``q_rot``, ``k_rot`` with rotary
    positions), ``attn``, ``resid1``, ``norm2``, ``fc1``, ``gelu``,
    ``resid2``, then ``norm`` and ``pool``. The output is int8
    tokens (N, D) at ``scales["norm"]`` for a bare encoder, or int32 logits
    (K,) at ``head.input_scale * head.weight_scale``.
    """

    channels: int
    samples: int
    patch_len: int
    dim: int
    heads: int
    scales: dict[str, float]
    patch: IntLinear
    blocks: list[IntBlock]
    norm: IntLayerNorm
    pool: IntPool | None = None
    head: IntLinear | None = None
    #: Class names of the head's outputs, when known.
    labels: list[str] = field(default_factory=list)

    @property
    def patches(self) -> int:
        """Patches per channel."""
        return self.samples // self.patch_len

    @property
    def tokens(self) -> int:
        """Tokens per window, N = channels * patches."""
        return self.channels * self.patches

    @property
    def output_scale(self) -> float:
        """Real value of one integer step of the output (logits or tokens)."""
        if self.head is not None:
            return self.head.input_scale * self.head.weight_scale
        return self.scales["norm"]

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Shape of one window's output: (K,) logits or (N, D) tokens."""
        return (self.head.weight.shape[0],) if self.head is not None else (self.tokens, self.dim)


# --- primitives ----------------------------------------------------------------


def round_shift(x: np.ndarray, shift: np.ndarray | int) -> np.ndarray:
    """``(x + 2**(shift-1)) >> shift`` in int64: division by 2**shift rounding halves up (shift >= 1)."""
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    return (x + (np.int64(1) << (shift - 1))) >> shift


def clamp_int8(x: np.ndarray) -> np.ndarray:
    """Saturate to [-128, 127] and cast to int8."""
    return np.clip(x, -128, 127).astype(np.int8)


def requantize(acc: np.ndarray, multiplier: np.ndarray | int, shift: np.ndarray | int) -> np.ndarray:
    """int32 accumulator -> int8: ``clamp(round_shift(acc * multiplier, shift))``."""
    return clamp_int8(round_shift(np.asarray(acc, dtype=np.int64) * np.asarray(multiplier, dtype=np.int64), shift))


def integer_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact integer ``a @ b`` (int64 result) for int8/int32 operands whose sums stay below 2**53."""
    return np.rint(a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)


def isqrt(u: np.ndarray) -> np.ndarray:
    """Floor square root of non-negative int64 values below 2**52, exactly."""
    u = np.asarray(u, dtype=np.int64)
    r = np.floor(np.sqrt(u.astype(np.float64))).astype(np.int64)
    # float sqrt is within one of the truth below 2**52: correct it both ways.
    r = np.where(r * r > u, r - 1, r)
    return np.where((r + 1) * (r + 1) <= u, r + 1, r)


# --- layers ----------------------------------------------------------------------


def linear(layer: IntLinear, x: np.ndarray, residual: np.ndarray | None = None) -> np.ndarray:
    """``layer`` on int8 ``x`` (..., rows, in) -> int8 (..., rows, out), or int32 logits without a multiplier."""
    bias = layer.bias.astype(np.int64)
    if bias.ndim == 2:
        bias = np.tile(bias, (x.shape[-2] // len(bias), 1))
    acc = integer_matmul(x, layer.weight.T) + bias
    if layer.multiplier is None:
        return acc.astype(np.int32)
    scaled = acc * layer.multiplier.astype(np.int64)
    if layer.residual_multiplier is not None:
        if residual is None:
            raise ValueError("a residual layer needs its residual input")
        scaled = scaled + residual.astype(np.int64) * np.int64(layer.residual_multiplier)
    y = clamp_int8(round_shift(scaled, layer.shift))
    if layer.lut is not None:
        y = layer.lut[y.astype(np.int64) + 128]
    return y


def layer_norm(layer: IntLayerNorm, x: np.ndarray) -> np.ndarray:
    """Integer LayerNorm of int8 ``x`` (..., D) over its last axis -> int8 (..., D)."""
    width = x.shape[-1]
    q = x.astype(np.int64)
    d = width * q - q.sum(axis=-1, keepdims=True)
    u = (d * d).sum(axis=-1, keepdims=True) // width + layer.eps_term
    r = isqrt(u << NORM_SQRT_BITS)
    inv = (np.int64(1) << NORM_RECIPROCAL_BITS) // r
    n = round_shift(d * inv, NORM_RECIPROCAL_BITS - NORM_SQRT_BITS // 2 - NORM_FRACTION_BITS)
    return clamp_int8(round_shift(n * layer.gain.astype(np.int64) + layer.offset.astype(np.int64), layer.shift))


def rotate(x: np.ndarray, rotary: IntRotary, multiplier: int, shift: int) -> np.ndarray:
    """Rotary positions on one head of int8 q or k (..., N, hd), token n at patch time n % P."""
    tokens, half = x.shape[-2], x.shape[-1] // 2
    reps = tokens // len(rotary.cos)
    cos, sin = (np.tile(t.astype(np.int64), (reps, 1)) for t in (rotary.cos, rotary.sin))
    a, b = x[..., :half].astype(np.int64), x[..., half:].astype(np.int64)
    return np.concatenate(
        [requantize(a * cos - b * sin, multiplier, shift), requantize(b * cos + a * sin, multiplier, shift)], axis=-1
    )


def attention(layer: IntAttention, qkv: np.ndarray) -> np.ndarray:
    """Integer softmax attention: int8 qkv (..., N, 3D) (q, k, v blocks, heads inside each) -> int8 (..., N, D)."""
    *lead, tokens, width = qkv.shape
    dim = width // 3
    head_dim = dim // layer.heads
    split = qkv.reshape(*lead, tokens, 3, layer.heads, head_dim)
    out = np.empty((*lead, tokens, dim), dtype=np.int8)
    for h in range(layer.heads):
        q, k, v = (split[..., i, h, :] for i in range(3))
        if layer.rotary is not None:
            r = layer.rotary
            q, k = rotate(q, r, r.q_multiplier, r.q_shift), rotate(k, r, r.k_multiplier, r.k_shift)
        scores = integer_matmul(q, np.swapaxes(k, -1, -2))  # (..., N, N)
        delta = scores.max(axis=-1, keepdims=True) - scores
        index = np.minimum(round_shift(delta * np.int64(layer.index_multiplier), layer.index_shift), 255)
        e = layer.exp_table[index].astype(np.int64)
        total = e.sum(axis=-1, keepdims=True)
        acc = integer_matmul(e, v)
        reciprocal = (np.int64(layer.output_multiplier) << SOFTMAX_RECIPROCAL_BITS) // total
        out[..., h * head_dim : (h + 1) * head_dim] = clamp_int8(
            round_shift(acc * reciprocal, layer.output_shift + SOFTMAX_RECIPROCAL_BITS)
        )
    return out


def mean_pool(layer: IntPool, tokens: np.ndarray, channels: int) -> np.ndarray:
    """Mean over each channel's patches: int8 (..., C * P, D) -> int8 (..., C, D)."""
    *lead, n, dim = tokens.shape
    sums = tokens.reshape(*lead, channels, n // channels, dim).astype(np.int64).sum(axis=-2)
    return requantize(sums, layer.multiplier, layer.shift)


def block(layer: IntBlock, x: np.ndarray) -> np.ndarray:
    """One Transformer block on int8 tokens (..., N, D)."""
    attended = attention(layer.attention, linear(layer.qkv, layer_norm(layer.norm1, x)))
    x = linear(layer.proj, attended, residual=x)
    return linear(layer.fc2, linear(layer.fc1, layer_norm(layer.norm2, x)), residual=x)


def run_integer(network: IntNetwork, x: np.ndarray) -> np.ndarray:
    """The exact integer network on int8 EMG ``x`` (C, T) or (B, C, T).

    Returns int32 logits (K,) / (B, K) with a head, else int8 tokens
    (N, D) / (B, N, D); multiply by ``network.output_scale`` for real values.
    """
    x = np.asarray(x)
    if x.dtype != np.int8:
        raise ValueError(f"the integer network takes int8 input (see quantize_input), got {x.dtype}")
    if x.shape[-2:] != (network.channels, network.samples):
        raise ValueError(
            f"the network was exported for windows of ({network.channels} channels, {network.samples} samples), "
            f"got {x.shape}"
        )
    patches = x.reshape(*x.shape[:-2], network.tokens, network.patch_len)
    tokens = linear(network.patch, patches)
    for layer in network.blocks:
        tokens = block(layer, tokens)
    tokens = layer_norm(network.norm, tokens)
    if network.head is None:
        return tokens
    pooled = mean_pool(network.pool, tokens, network.channels)
    return linear(network.head, pooled.reshape(*pooled.shape[:-2], -1))


def quantize_input(network: IntNetwork, x: np.ndarray) -> np.ndarray:
    """Float EMG (..., C, T) -> int8 at ``network.scales["input"]`` (round half to even, saturating)."""
    scaled = np.asarray(x, dtype=np.float32) / np.float32(network.scales["input"])
    return clamp_int8(np.round(scaled))


def dequantize_output(network: IntNetwork, y: np.ndarray) -> np.ndarray:
    """Integer output of :func:`run_integer` -> float32 real values."""
    return (y.astype(np.float64) * network.output_scale).astype(np.float32)
