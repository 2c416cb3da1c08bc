"""The quantised network as a QuantizeLinear/DequantizeLinear (QDQ) ONNX model.

This is the form the vendor's importer (GAP SDK NNTool) reads: int8 weight
initialisers and int32 biases behind DequantizeLinear, and a
QuantizeLinear/DequantizeLinear pair on every activation the integer network
holds in int8, with the calibrated per-tensor scales (zero point 0). The
graph is the fake-quantised model of :func:`quantize.fake_quant_forward`, op
for op: float LayerNorm, GELU (erf form), and the attention of the integer
network (rotary positions with the deployed tables, row maximum minus
score quantised to the exponent table's steps,
exponential quantised to uint8, normalisation after the products).

Built node by node with ``onnx.helper`` rather than ``torch.onnx``: the graph
is the quantised one, which no torch module computes, and opset 17 with
explicit QDQ pairs is what we want the importer to see.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from silentspeech.atomic import atomic_write_bytes
from silentspeech.export.int_reference import EXP_STEP, IntLayerNorm, IntLinear, IntNetwork
from silentspeech.export.quantize import rotary_tables_of

OPSET = 17


class _Graph:
    """Nodes and initialisers of the graph under construction, with fresh names."""

    def __init__(self):
        from onnx import helper

        self.helper = helper
        self.nodes: list = []
        self.initializers: list = []
        self.count = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def constant(self, hint: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attributes) -> str:
        output = self.name(hint or op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, inputs, [output], **attributes))
        return output

    def qdq(self, x: str, scale: float, hint: str, unsigned: bool = False) -> str:
        """QuantizeLinear then DequantizeLinear at ``scale`` (int8, or uint8 when ``unsigned``)."""
        scale_name = self.constant(hint + "_scale", np.float32(scale))
        zero = self.constant(hint + "_zero", np.uint8(0) if unsigned else np.int8(0))
        quantized = self.op("QuantizeLinear", [x, scale_name, zero], hint + "_q")
        return self.op("DequantizeLinear", [quantized, scale_name, zero], hint)

    def dequantized(self, value: np.ndarray, scale: float, hint: str) -> str:
        """An integer initialiser behind DequantizeLinear (int8 weights, int32 biases)."""
        zero = np.int32(0) if value.dtype == np.int32 else np.int8(0)
        return self.op(
            "DequantizeLinear",
            [self.constant(hint, value), self.constant(hint + "_scale", np.float32(scale)), self.constant(hint + "_zero", zero)],
            hint + "_dq",
        )

    def shape(self, *dims: int) -> str:
        return self.constant("shape", np.array(dims, dtype=np.int64))

    def linear(self, x: str, layer: IntLinear, hint: str, rows: int = 1) -> str:
        """``layer`` on ``x`` (..., rows, in); a per-period bias table is repeated over the ``rows``."""
        weight = self.dequantized(np.ascontiguousarray(layer.weight.T), layer.weight_scale, hint + ".weight")
        bias = layer.bias if layer.bias.ndim == 1 else np.tile(layer.bias, (rows // len(layer.bias), 1))
        bias = self.dequantized(bias.astype(np.int32), layer.input_scale * layer.weight_scale, hint + ".bias")
        return self.op("Add", [self.op("MatMul", [x, weight], hint + "_matmul"), bias], hint)

    def rotate(self, x: str, rotary: tuple[np.ndarray, np.ndarray], tokens: int) -> str:
        """Rotary positions on ``x`` (B, heads, N, hd): ``x cos + (-second, first) sin`` with the deployed tables."""
        reps = tokens // len(rotary[0])
        cos, sin = (self.constant(name, np.tile(np.concatenate([t, t], axis=1), (reps, 1))) for name, t in zip(("cos", "sin"), rotary))
        half = self.constant("half_split", np.array([rotary[0].shape[1]] * 2, np.int64))
        first, second = self.name("first"), self.name("second")
        self.nodes.append(self.helper.make_node("Split", [x, half], [first, second], axis=-1))
        turned = self.op("Concat", [self.op("Neg", [second]), first], axis=-1)
        return self.op("Add", [self.op("Mul", [x, cos]), self.op("Mul", [turned, sin])], "rotated")

    def layer_norm(self, x: str, layer: IntLayerNorm, hint: str) -> str:
        gamma = self.constant(hint + ".weight", layer.gamma.astype(np.float32))
        beta = self.constant(hint + ".bias", layer.beta.astype(np.float32))
        return self.op("LayerNormalization", [x, gamma, beta], hint, axis=-1, epsilon=float(layer.eps))


def onnx_model(network: IntNetwork):
    """The QDQ ``onnx.ModelProto`` of ``network``: input ``emg`` (batch, C, T) float32,
    output ``logits`` (batch, K) or ``tokens`` (batch, N, D)."""
    import onnx
    from onnx import TensorProto, helper

    g = _Graph()
    s = network.scales
    rotary = rotary_tables_of(network)
    n, d, heads = network.tokens, network.dim, network.heads
    head_dim = d // heads
    x = g.qdq("emg", s["input"], "input")
    x = g.op("Reshape", [x, g.shape(0, n, network.patch_len)], "patches")
    h = g.qdq(g.linear(x, network.patch, "patch_embedding", rows=n), s["embed"], "embed")
    for i, block in enumerate(network.blocks):
        p = f"blocks.{i}."
        a = g.qdq(g.layer_norm(h, block.norm1, p + "norm1"), s[p + "norm1"], p + "norm1_out")
        qkv = g.op("Reshape", [g.linear(a, block.qkv, p + "attn.qkv"), g.shape(0, n, 3, heads, head_dim)])
        qkv = g.op("Transpose", [qkv], perm=[2, 0, 3, 1, 4])  # (3, B, heads, N, hd)
        q, k, v = (
            g.qdq(g.op("Gather", [qkv, g.constant("index", np.int64(j))], axis=0), s[p + part], p + part)
            for j, part in enumerate("qkv")
        )
        if rotary is not None:
            q, k = (g.qdq(g.rotate(x, rotary, n), s[p + part], p + part) for x, part in ((q, "q_rot"), (k, "k_rot")))
        scores = g.op("MatMul", [q, g.op("Transpose", [k], perm=[0, 1, 3, 2])])
        scores = g.op("Mul", [scores, g.constant("inv_sqrt_hd", np.float32(1.0 / math.sqrt(head_dim)))], p + "scores")
        delta = g.op("Sub", [g.op("ReduceMax", [scores], axes=[-1], keepdims=1), scores])
        delta = g.qdq(delta, EXP_STEP, p + "delta", unsigned=True)
        e = g.qdq(g.op("Exp", [g.op("Neg", [delta])]), 1.0 / 255.0, p + "exp", unsigned=True)
        total = g.op("ReduceSum", [e, g.constant("axes", np.array([-1], np.int64))], keepdims=1)
        attended = g.op("Div", [g.op("MatMul", [e, v]), total])
        attended = g.op("Reshape", [g.op("Transpose", [attended], perm=[0, 2, 1, 3]), g.shape(0, n, d)])
        attended = g.qdq(attended, s[p + "attn"], p + "attn")
        h = g.qdq(g.op("Add", [h, g.linear(attended, block.proj, p + "attn.proj")]), s[p + "resid1"], p + "resid1")
        a = g.qdq(g.layer_norm(h, block.norm2, p + "norm2"), s[p + "norm2"], p + "norm2_out")
        f = g.qdq(g.linear(a, block.fc1, p + "mlp.fc1"), s[p + "fc1"], p + "fc1")
        erf = g.op("Erf", [g.op("Div", [f, g.constant("sqrt2", np.float32(math.sqrt(2.0)))])])
        gelu = g.op("Mul", [g.op("Mul", [f, g.op("Add", [erf, g.constant("one", np.float32(1.0))])]), g.constant("half", np.float32(0.5))])
        f = g.qdq(gelu, s[p + "gelu"], p + "gelu")
        h = g.qdq(g.op("Add", [h, g.linear(f, block.fc2, p + "mlp.fc2")]), s[p + "resid2"], p + "resid2")
    h = g.qdq(g.layer_norm(h, network.norm, "norm"), s["norm"], "norm_out")
    if network.head is None:
        output_name, output_shape = "tokens", ["batch", n, d]
    else:
        pooled = g.op("ReduceMean", [g.op("Reshape", [h, g.shape(0, network.channels, network.patches, d)])], axes=[2], keepdims=0)
        pooled = g.qdq(pooled, s["pool"], "pool")
        h = g.linear(g.op("Reshape", [pooled, g.shape(0, network.channels * d)]), network.head, "classifier")
        output_name, output_shape = "logits", ["batch", network.head.weight.shape[0]]
    g.nodes.append(helper.make_node("Identity", [h], [output_name]))
    graph = helper.make_graph(
        g.nodes,
        "tinymyo_int8_qdq",
        [helper.make_tensor_value_info("emg", TensorProto.FLOAT, ["batch", network.channels, network.samples])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, output_shape)],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="silentspeech")
    model.ir_version = 8  # readable by older runtimes and importers that stop at opset 17
    onnx.checker.check_model(model)
    return model


def write_onnx(network: IntNetwork, path: str | Path) -> Path:
    """Write the QDQ model of ``network`` to ``path`` (atomically)."""
    path = Path(path)
    atomic_write_bytes(path, onnx_model(network).SerializeToString())
    return path


def run_onnx(path: str | Path, windows: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Run a written QDQ model with onnxruntime (CPU, one thread) on float windows (B, C, T).

    Graph optimisations are off, so each QuantizeLinear / DequantizeLinear
    pair runs as written around a float operator: the graph's own
    arithmetic, the one GAP9's int32 accumulators reproduce. Optimised, ORT
    fuses them into its int8 kernels, which on x86 CPUs with AVX2 but no
    VNNI add uint8 x int8 pairs in saturating int16 (ORT's quantisation
    documentation warns of it): on an AMD EPYC VM the output then moved by
    25 to 43 % of its range against the fake-quantised model, where the
    unfused graph stays within rounding.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    windows = np.asarray(windows, dtype=np.float32)
    return np.concatenate(
        [session.run(None, {"emg": windows[i : i + batch_size]})[0] for i in range(0, len(windows), batch_size)]
    )


@dataclass
class OnnxCheck:
    """Max abs differences of the ONNX model's outputs from the float and the fake-quantised models."""

    windows: int
    versus_float: float
    versus_fake_quant: float
    output_magnitude: float  #: largest |output| of the float model, for scale
    #: RMS of (ONNX - float) over RMS of float: the typical error, where the maximum shows the worst.
    relative_rms_versus_float: float


def check_onnx(path: str | Path, windows: np.ndarray, float_outputs: np.ndarray, fake_quant_outputs: np.ndarray) -> OnnxCheck:
    """Run ``path`` on ``windows`` and compare with the float and fake-quantised outputs for the same windows."""
    got = run_onnx(path, windows)
    return OnnxCheck(
        windows=len(windows),
        versus_float=float(np.abs(got - float_outputs).max()),
        versus_fake_quant=float(np.abs(got - fake_quant_outputs).max()),
        output_magnitude=float(np.abs(float_outputs).max()),
        relative_rms_versus_float=float(np.sqrt(np.mean((got - float_outputs) ** 2) / np.mean(float_outputs**2))),
    )
