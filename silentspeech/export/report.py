"""The deployment report of an int8 export: size, memory placement, GAP9 cost, accuracy.

:func:`estimate_cost` turns the tile plan of :mod:`silentspeech.export.c_codegen`
into cycles, latency and energy on GAP9 under stated assumptions
(:class:`GAP9Assumptions`); :func:`compare_accuracy` measures the int8
network against the float model on labelled windows; :func:`markdown_report`
writes it all as markdown beside TinyMyo's published GAP9 figures
(Fasulo et al. 2025, arXiv 2512.15729; docs/design.md, *GAP9*).

The cost model is an estimate, not a measurement: MACs at an assumed
sustained int8 SIMD rate, the per-element work (requantisation, LayerNorm,
softmax, tables) at assumed cycles per element shared by the cores, the
blocking L2<->L1 DMA of this implementation at an assumed bandwidth, and the
weight stream from external RAM where the weights do not fit L2.

The headline MAC rate is calibrated on TinyMyo's published deployment
(Fasulo et al. 2025, arXiv 2512.15729: 1.92 G MAC in 305 M cycles on GAP9,
6.3 MAC/cycle, 0.785 s, 44.91 mJ per 8-channel, 1000-sample window). That
rate is end to end, so it already holds the published kernels' overheads;
adding this model's own overhead terms on top leans pessimistic (about 6 %
above the published cycles for the published configuration). The ideal rate
of the cluster (4-way int8 sdotp on 8 cores at 50 % utilisation, 16
MAC/cycle) is reported beside it as a lower bound, not a prediction. The
published 305 M cycles in 0.785 s imply a 389 MHz clock; the estimate keeps
GAP9's nominal 370 MHz cluster clock, so its latency and energy for the
published configuration come out about 11 % above the published ones.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np

from silentspeech.export.c_codegen import CORES, MemoryPlan, Tiling
from silentspeech.export.int_reference import IntNetwork, quantize_input, run_integer
from silentspeech.export.onnx_qdq import OnnxCheck
from silentspeech.tables import markdown_table


@dataclass(frozen=True)
class GAP9Assumptions:
    """What the cost estimate assumes about GAP9 and these kernels (all stated in the report)."""

    clock_hz: float = 370e6  #: cluster clock
    cores: int = CORES
    #: Sustained int8 MACs per cycle over the 8 cores, calibrated: TinyMyo's published 1.92 G MAC in 305 M cycles.
    macs_per_cycle: float = 1.92e9 / 305e6
    #: The ideal rate (4-way sdotp per core at 50 % utilisation): the lower bound the report gives beside the estimate.
    ideal_macs_per_cycle: float = 16.0
    #: Cycles per element and core: requantisation (multiply, round, shift, clamp, table).
    requant_cycles: float = 5.0
    #: Cycles per element and core of integer LayerNorm (sum, square, normalise, gain).
    layernorm_cycles: float = 12.0
    #: Cycles per attention score and core: max, subtract, index, exponent table, sum.
    softmax_cycles: float = 8.0
    #: Cycles per element and core of the mean pool.
    pool_cycles: float = 1.0
    #: Cluster DMA bytes per cycle between L2 and L1 (blocking in these kernels).
    dma_bytes_per_cycle: float = 8.0
    #: Bytes per second read from external RAM (L3) when the weights live there.
    l3_bytes_per_second: float = 200e6
    #: Cycles of one fork/join of the cluster team.
    fork_cycles: float = 100.0
    #: Average power while the network runs (TinyMyo's measured average on GAP9).
    power_w: float = 57.18e-3


#: TinyMyo on GAP9 as published (8 channels, 1000 samples, 400 tokens, int8).
PUBLISHED_TINYMYO = {"macs": 1.92e9, "cycles": 305e6, "latency_s": 0.785, "energy_mj": 44.91, "power_mw": 57.18}


@dataclass
class CostEstimate:
    """Estimated cycles of one window by cause, and the totals."""

    macs: int
    mac_cycles: float
    elementwise_cycles: float
    dma_cycles: float
    l3_cycles: float
    fork_cycles: float
    clock_hz: float
    power_w: float

    @property
    def cycles(self) -> float:
        return self.mac_cycles + self.elementwise_cycles + self.dma_cycles + self.l3_cycles + self.fork_cycles

    @property
    def latency_s(self) -> float:
        return self.cycles / self.clock_hz

    @property
    def energy_mj(self) -> float:
        return self.latency_s * self.power_w * 1e3


def _tiles_of(tiling: Tiling, rows: int, out_features: int = 0) -> int:
    """Fork/join count of a kernel: one per tile."""
    row_tiles = -(-rows // max(tiling.tile_rows, 1))
    return row_tiles * (-(-out_features // tiling.tile_cols) if tiling.tile_cols else 1)


def estimate_cost(network: IntNetwork, plan: MemoryPlan, assumptions: GAP9Assumptions = GAP9Assumptions()) -> CostEstimate:
    """Cycles, latency and energy of one window on GAP9 for the tiling of ``plan``."""
    a = assumptions
    per_element = {"linear": a.requant_cycles, "layernorm": a.layernorm_cycles, "attention": a.softmax_cycles, "pool": a.pool_cycles}
    macs = sum(t.macs for t in plan.tiles)
    elementwise = sum(t.elements * per_element[t.kind] for t in plan.tiles) / a.cores
    forks = 0
    for t in plan.tiles:
        if t.kind == "linear":
            rows = 1 if t.name == "classifier" else network.tokens
            forks += _tiles_of(t, rows, t.elements // rows)
        elif t.kind == "attention":
            forks += network.heads * _tiles_of(t, network.tokens)
        elif t.kind == "pool":
            forks += network.channels * _tiles_of(t, network.patches)
        else:
            forks += _tiles_of(t, network.tokens)
    weight_bytes = sum(t.weight_bytes for t in plan.tiles)
    l3_seconds = 0.0 if plan.weights_fit_l2 else weight_bytes / a.l3_bytes_per_second
    return CostEstimate(
        macs=macs,
        mac_cycles=macs / a.macs_per_cycle,
        elementwise_cycles=elementwise,
        dma_cycles=sum(t.dma_bytes for t in plan.tiles) / a.dma_bytes_per_cycle,
        l3_cycles=l3_seconds * a.clock_hz,
        fork_cycles=forks * a.fork_cycles,
        clock_hz=a.clock_hz,
        power_w=a.power_w,
    )


# --- accuracy -------------------------------------------------------------------------


@dataclass
class AccuracyComparison:
    """Accuracy of the float model and the int8 network on the same labelled windows."""

    windows: int
    float_accuracy: float
    int8_accuracy: float
    #: Fraction of windows where both predict the same class.
    agreement: float
    #: Largest |float logit - int8 logit| over the windows.
    max_logit_difference: float

    @property
    def drop_points(self) -> float:
        """Float minus int8 accuracy, in percentage points."""
        return 100.0 * (self.float_accuracy - self.int8_accuracy)


def compare_accuracy(
    network: IntNetwork, float_logits: np.ndarray, windows: np.ndarray, labels: np.ndarray
) -> AccuracyComparison:
    """Run the integer network on float ``windows`` (B, C, T) and compare with the float model's logits (B, K)."""
    if network.head is None:
        raise ValueError("accuracy needs a classifier; this network is a bare encoder")
    labels = np.asarray(labels)
    if len(labels) != len(windows) or len(float_logits) != len(windows) or len(windows) == 0:
        raise ValueError(f"need as many labels and float logits as windows, got {len(labels)}, {len(float_logits)}, {len(windows)}")
    int_logits = np.concatenate(
        [run_integer(network, quantize_input(network, windows[i : i + 64])) for i in range(0, len(windows), 64)]
    )
    float_pred, int_pred = float_logits.argmax(axis=1), int_logits.argmax(axis=1)
    return AccuracyComparison(
        windows=len(windows),
        float_accuracy=float((float_pred == labels).mean()),
        int8_accuracy=float((int_pred == labels).mean()),
        agreement=float((float_pred == int_pred).mean()),
        max_logit_difference=float(np.abs(float_logits - int_logits * network.output_scale).max()),
    )


# --- the report -------------------------------------------------------------------------


@dataclass
class ExportChecks:
    """Checks of one export, any of which may be missing."""

    onnx: OnnxCheck | None = None
    #: (windows bit-exact, windows run) of the host C build against the integer reference.
    c_bit_exact: tuple[int, int] | None = None
    accuracy: AccuracyComparison | None = None
    #: Why a check did not run (e.g. no C compiler, no labelled test split).
    skipped: list[str] = field(default_factory=list)


def _kb(n: float) -> str:
    return f"{n / 1024:,.1f} kB"


def _mega(n: float) -> str:
    return f"{n / 1e6:,.2f} M"


def parameter_bytes(network: IntNetwork) -> dict[str, int]:
    """Bytes of the deployed parameters by kind: int8 weights, int32 biases, requantisation, norms, tables."""
    linears = [network.patch] + [l for b in network.blocks for l in (b.qkv, b.proj, b.fc1, b.fc2)]
    linears += [network.head] if network.head is not None else []
    norms = [n for b in network.blocks for n in (b.norm1, b.norm2)] + [network.norm]
    return {
        "int8 weights": sum(l.weight.size for l in linears),
        "int32 biases": sum(4 * l.bias.size for l in linears),
        "requantisation (int32 multiplier + shift per output)": sum(5 * len(l.multiplier) for l in linears if l.multiplier is not None),
        "LayerNorm gains and offsets (int32)": sum(8 * len(n.gain) for n in norms),
        "tables (GELU int8, exponent uint8)": 256 * (len(network.blocks) + 1),
    }


def float_parameters(network: IntNetwork) -> int:
    """Parameter count of the float model (position vectors counted once, not per channel)."""
    linears = [l for b in network.blocks for l in (b.qkv, b.proj, b.fc1, b.fc2)]
    linears += [network.head] if network.head is not None else []
    count = sum(l.weight.size + l.bias.shape[-1] for l in linears)
    count += network.patch.weight.size + network.patch.bias.shape[-1]
    count += 2 * network.dim * (2 * len(network.blocks) + 1)
    return count


def _model_section(network: IntNetwork, cost: CostEstimate, sizes: dict[str, int]) -> list[str]:
    """The ``## Model`` section: shape, size and MACs of the network, and its deployed parameter bytes."""
    n, d = network.tokens, network.dim
    mlp = network.blocks[0].fc1.weight.shape[0] if network.blocks else 0
    output = f"int32 logits, {network.head.weight.shape[0]} classes" if network.head is not None else f"int8 tokens ({n}, {d})"
    model = [
        ["input window", f"{network.channels} channels x {network.samples} samples (int8)"],
        ["tokens", f"{n} ({network.channels} channels x {network.patches} patches of {network.patch_len})"],
        ["encoder", f"dim {d}, depth {len(network.blocks)}, {network.heads} heads, MLP {mlp}"],
        ["output", output],
        ["parameters (float)", f"{float_parameters(network):,}"],
        ["MACs per window", f"{cost.macs:,} ({cost.macs / 1e9:.3f} G)"],
    ]
    parameter_rows = [[kind, f"{value:,}"] for kind, value in sizes.items()]
    parameter_rows.append(["**total**", f"**{sum(sizes.values()):,}**"])
    return [
        "## Model",
        "",
        markdown_table(["", ""], model),
        "",
        "Deployed parameter bytes:",
        "",
        markdown_table(["kind", "bytes"], parameter_rows, align="lr"),
        "",
    ]


def _memory_section(network: IntNetwork, plan: MemoryPlan, total_parameters: int, l1_usable: int) -> list[str]:
    """The ``## Memory placement`` section: where each buffer lives, and the L1 tiles of the first block."""
    n, d = network.tokens, network.dim
    weights_in = "L2 (fits beside the activations)" if plan.weights_fit_l2 else "L3 (too large for L2; streamed to L1 tile by tile, `-DNET_WEIGHTS_IN_L3`)"
    buffers = [
        ["int8 weight blob", f"{plan.weight_bytes:,}", weights_in],
        ["int32 biases, requantisation, norms, tables", f"{total_parameters - plan.weight_bytes:,}", "L2"],
        ["input window", f"{network.channels * network.samples:,}", "L2"],
        [f"residual stream x ({n} x {d})", f"{plan.buffers.x:,}", "L2"],
        [f"norm / attention output h ({n} x {d})", f"{plan.buffers.h:,}", "L2"],
        [f"qkv / MLP hidden ({n} x {plan.buffers.wide // max(n, 1)})", f"{plan.buffers.wide:,}", "L2"],
        ["L1 work area (largest kernel tile set)", f"{plan.l1_bytes:,}", f"L1 ({_kb(plan.l1_bytes)} of {_kb(l1_usable)} usable)"],
    ]
    shown = [t for t in plan.tiles if not t.name.startswith("blocks.") or t.name.startswith("blocks.0.")]
    tiles = [
        [f"{t.name} ({t.kind})", f"{t.tile_rows} x {t.tile_cols}" if t.tile_cols else f"{t.tile_rows} rows", f"{t.l1_bytes:,}", f"{t.dma_bytes:,}"]
        for t in shown
    ]
    return [
        "## Memory placement (GAP9: L1 128 kB, about 104 kB usable; L2 1.5 MB; L3 external RAM)",
        "",
        markdown_table(["buffer", "bytes", "memory"], buffers, align="lrl"),
        "",
        "L1 tiles of the first block (every block tiles the same way):",
        "",
        markdown_table(["kernel", "tile (rows x output features)", "L1 bytes", "L2<->L1 bytes per window"], tiles, align="llrr"),
        "",
    ]


def _cost_section(cost: CostEstimate, bound: CostEstimate, a: GAP9Assumptions) -> list[str]:
    """The ``## Estimated cost on GAP9`` section: the assumptions, the calibrated estimate and the ideal-rate bound by
    cause, and both beside TinyMyo's published figures."""
    published = PUBLISHED_TINYMYO
    causes = [
        ["MACs", _mega(cost.mac_cycles), _mega(bound.mac_cycles)],
        ["requantisation, LayerNorm, softmax, pooling", _mega(cost.elementwise_cycles), _mega(bound.elementwise_cycles)],
        ["L2<->L1 DMA", _mega(cost.dma_cycles), _mega(bound.dma_cycles)],
        ["weights from L3", _mega(cost.l3_cycles), _mega(bound.l3_cycles)],
        ["fork/join", _mega(cost.fork_cycles), _mega(bound.fork_cycles)],
    ]
    per_window = [
        ["MACs", f"{cost.macs / 1e9:.3f} G", f"{cost.macs / 1e9:.3f} G", f"{published['macs'] / 1e9:.2f} G"],
        ["cycles", _mega(cost.cycles), _mega(bound.cycles), _mega(published["cycles"])],
        ["latency", f"{cost.latency_s * 1e3:,.1f} ms", f"{bound.latency_s * 1e3:,.1f} ms", f"{published['latency_s'] * 1e3:,.0f} ms"],
        ["energy", f"{cost.energy_mj:,.2f} mJ", f"{bound.energy_mj:,.2f} mJ", f"{published['energy_mj']:.2f} mJ"],
        ["average power", f"{a.power_w * 1e3:.2f} mW", f"{a.power_w * 1e3:.2f} mW", f"{published['power_mw']:.2f} mW"],
    ]
    cause_headers = [
        "cycles by cause", f"estimate ({a.macs_per_cycle:.2f} MAC/cycle, calibrated)", f"lower bound ({a.ideal_macs_per_cycle:g} MAC/cycle, ideal)",
    ]
    window_headers = [
        "per window", "this export: estimate (calibrated)", "this export: lower bound (ideal)",
        "TinyMyo published (8 ch, 1000 samples, 400 tokens)",
    ]
    return [
        "## Estimated cost on GAP9",
        "",
        "Assumptions: cluster at {:.0f} MHz, {} cores; int8 SIMD sustained {:.2f} MAC/cycle over the cluster "
        "(calibrated: TinyMyo's published 1.92 G MAC in 305 M cycles; the bound uses the ideal {:g} MAC/cycle, "
        "4-way sdotp per core at 50 % utilisation); per element and core {:g} cycles of requantisation, "
        "{:g} of LayerNorm, {:g} per attention score, {:g} of pooling; blocking cluster DMA at {:g} B/cycle; "
        "{:g} cycles per fork/join; external RAM at {:g} MB/s when the weights sit in L3; "
        "{:.2f} mW average power (TinyMyo's measured average).".format(
            a.clock_hz / 1e6, a.cores, a.macs_per_cycle, a.ideal_macs_per_cycle, a.requant_cycles, a.layernorm_cycles,
            a.softmax_cycles, a.pool_cycles, a.dma_bytes_per_cycle, a.fork_cycles,
            a.l3_bytes_per_second / 1e6, a.power_w * 1e3,
        ),  # fmt: skip
        "",
        f"Estimated on GAP9 (calibrated {a.macs_per_cycle:.2f} MAC/cycle): **{_mega(cost.cycles)} cycles, "
        f"{cost.latency_s * 1e3:,.1f} ms, {cost.energy_mj:,.2f} mJ per window**.",
        "",
        markdown_table(cause_headers, causes, align="lrr"),
        "",
        markdown_table(window_headers, per_window, align="lrrr"),
        "",
    ]


def _checks_section(checks: ExportChecks) -> list[str]:
    """The ``## Checks`` section: int8 accuracy, the ONNX graph and the host C build, and what was not checked."""
    lines = ["## Checks", ""]
    if checks.accuracy is not None:
        acc = checks.accuracy
        lines += [
            f"Accuracy on {acc.windows} test windows: float {100 * acc.float_accuracy:.2f} %, "
            f"int8 {100 * acc.int8_accuracy:.2f} % (drop {acc.drop_points:+.2f} points); "
            f"the two agree on {100 * acc.agreement:.2f} % of windows; largest logit difference {acc.max_logit_difference:.4f}.",
            "",
        ]
    if checks.onnx is not None:
        o = checks.onnx
        lines += [
            f"`model_qdq.onnx` in onnxruntime on {o.windows} windows: max abs difference {o.versus_float:.4g} from the float "
            f"model, {o.versus_fake_quant:.4g} from the fake-quantised model (largest float output {o.output_magnitude:.4g}; "
            f"relative RMS difference from float {o.relative_rms_versus_float:.3g}).",
            "",
        ]
    if checks.c_bit_exact is not None:
        same, total = checks.c_bit_exact
        lines += [f"Host C build (gcc {' '.join(('-std=c99', '-O2', '-Wall', '-Werror'))}): {same} of {total} windows bit-exact with the integer reference.", ""]
    lines += [f"Not checked: {reason}." for reason in checks.skipped]
    return lines


def markdown_report(
    network: IntNetwork,
    plan: MemoryPlan,
    title: str,
    checks: ExportChecks = ExportChecks(),
    assumptions: GAP9Assumptions = GAP9Assumptions(),
    l1_usable: int = 104 * 1024,
) -> str:
    """The markdown report of an export (see the module docstring): model, memory placement, cost estimate, checks."""
    cost = estimate_cost(network, plan, assumptions)
    bound = estimate_cost(network, plan, replace(assumptions, macs_per_cycle=assumptions.ideal_macs_per_cycle))
    sizes = parameter_bytes(network)
    lines = [
        f"# GAP9 int8 export: {title}",
        "",
        *_model_section(network, cost, sizes),
        *_memory_section(network, plan, sum(sizes.values()), l1_usable),
        *_cost_section(cost, bound, assumptions),
        *_checks_section(checks),
    ]
    return "\n".join(lines).rstrip() + "\n"


def summary(network: IntNetwork, plan: MemoryPlan, checks: ExportChecks, assumptions: GAP9Assumptions = GAP9Assumptions()) -> dict:
    """The report's figures as a JSON-ready dict."""
    cost = estimate_cost(network, plan, assumptions)
    bound = estimate_cost(network, plan, replace(assumptions, macs_per_cycle=assumptions.ideal_macs_per_cycle))
    return {
        "channels": network.channels,
        "samples": network.samples,
        "tokens": network.tokens,
        "parameters": float_parameters(network),
        "parameter_bytes": parameter_bytes(network),
        "macs": cost.macs,
        "l1_bytes": plan.l1_bytes,
        "weights_in": "L2" if plan.weights_fit_l2 else "L3",
        "estimate": {"cycles": cost.cycles, "latency_s": cost.latency_s, "energy_mj": cost.energy_mj},
        "ideal_bound": {"cycles": bound.cycles, "latency_s": bound.latency_s, "energy_mj": bound.energy_mj},
        "assumptions": asdict(assumptions),
        "onnx": asdict(checks.onnx) if checks.onnx else None,
        "c_bit_exact": list(checks.c_bit_exact) if checks.c_bit_exact else None,
        "accuracy": asdict(checks.accuracy) if checks.accuracy else None,
        "skipped": checks.skipped,
        "scales": network.scales,
    }
