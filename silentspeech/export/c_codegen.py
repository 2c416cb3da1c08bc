"""A self-contained C99 package of an int8 network, for GAP9's cluster and the host.

:func:`write_c_package` writes into ``out``::

    net_port.h          portability: GAP9 (fork/join, cluster DMA, L3 reads, SIMD) or host (loop, memcpy)
    net_kernels.[ch]    integer kernels: tiled linear, LayerNorm, attention, mean pool (from c_templates/)
    network.[ch]        generated: sizes, scales, layer tables, buffers and network_run()
    weights.c           generated: the int8 weight blob (L2 build)
    weights.bin         the same blob, for loading into external RAM (-DNET_WEIGHTS_IN_L3)
    host_main.c         host driver: runs network_run on windows read from a file
    Makefile            `make` builds the host driver with gcc -std=c99 -O2 -Wall -Werror

The arithmetic is that of :mod:`silentspeech.export.int_reference`, bit for
bit; :func:`build_host` and :func:`run_host` compile and run the host build
so tests can hold the two together. Tile sizes come from :func:`plan_tiles`,
which fits every kernel's working set into the L1 area (GAP9: 128 kB L1,
about 104 kB usable; by default 96 kB are given to tiles, the rest to the
cores' stacks). The report (:mod:`silentspeech.export.report`) reads the
same plan for its memory table and DMA traffic.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from silentspeech.atomic import atomic_write_bytes, atomic_write_text
from silentspeech.export.int_reference import IntLayerNorm, IntLinear, IntNetwork
from silentspeech.export.quantize import ExportError

TEMPLATES = Path(__file__).with_name("c_templates")
TEMPLATE_FILES = ("net_port.h", "net_kernels.h", "net_kernels.c")
#: Cores of GAP9's cluster that the kernels fork on (NET_CORES in net_port.h).
CORES = 8
#: Default L1 bytes for tiles: GAP9's ~104 kB usable L1 less 8 kB for the cores' stacks.
L1_TILE_BYTES = 96 * 1024
CFLAGS = ("-std=c99", "-O2", "-Wall", "-Werror")


def _align4(n: int) -> int:
    return (n + 3) & ~3


@dataclass
class Tiling:
    """How one kernel of the network is tiled through L1, and what it moves.

    ``tile_rows``/``tile_cols``: rows (tokens) and output features per tile
    (``tile_cols`` 0 where a kernel does not tile columns); ``l1_bytes``:
    its L1 working set; ``weight_bytes``: weights it reads from weight
    memory; ``dma_bytes``: all bytes moved between L2 and L1 (weights
    included); ``macs`` and ``elements`` (non-MAC per-element work) per run.
    """

    name: str
    kind: str
    tile_rows: int
    tile_cols: int
    l1_bytes: int
    weight_bytes: int
    dma_bytes: int
    macs: int
    elements: int


def linear_l1_bytes(tile_rows: int, tile_cols: int, in_features: int, residual: bool, out_bytes: int) -> int:
    """L1 working set of net_linear for a tile (the layout in net_kernels.c)."""
    return (
        _align4(tile_cols * in_features)
        + _align4(tile_rows * in_features)
        + (_align4(tile_rows * tile_cols) if residual else 0)
        + tile_rows * tile_cols * out_bytes
    )


def plan_linear(name: str, layer: IntLinear, rows: int, budget: int) -> Tiling:
    """Largest column tile (ideally all weights at once), then as many rows as fit ``budget``."""
    out_features, in_features = layer.weight.shape
    residual = layer.residual_multiplier is not None
    out_bytes = 4 if layer.multiplier is None else 1
    candidates = [out_features] + [c for c in range(out_features - out_features % 8, 0, -8) if c < out_features]
    for cols in candidates + [4, 2, 1]:
        per_row = in_features + cols * (out_bytes + int(residual))
        tile_rows = max(0, min(rows, (budget - _align4(cols * in_features)) // per_row))
        while tile_rows > 0 and linear_l1_bytes(tile_rows, cols, in_features, residual, out_bytes) > budget:
            tile_rows -= 1  # the word alignment of the sub-buffers
        if tile_rows >= min(rows, CORES) or (cols == 1 and tile_rows > 0):
            break
    else:
        tile_rows = 0
    if tile_rows == 0:
        raise ExportError(f"layer '{name}' ({in_features} inputs) does not fit {budget} bytes of L1 even one row at a time")
    column_tiles = -(-out_features // cols)
    return Tiling(
        name=name,
        kind="linear",
        tile_rows=tile_rows,
        tile_cols=cols,
        l1_bytes=linear_l1_bytes(tile_rows, cols, in_features, residual, out_bytes),
        weight_bytes=layer.weight.size,
        dma_bytes=layer.weight.size
        + column_tiles * rows * in_features
        + (rows * out_features if residual else 0)
        + rows * out_features * out_bytes,
        macs=rows * in_features * out_features,
        elements=rows * out_features,
    )


def plan_layer_norm(name: str, layer: IntLayerNorm, rows: int, budget: int) -> Tiling:
    """As many rows of the LayerNorm as fit ``budget`` (input and output tiles)."""
    width = len(layer.gain)
    tile_rows = min(rows, budget // (2 * width + 4))
    if tile_rows == 0:
        raise ExportError(f"LayerNorm '{name}' of width {width} does not fit {budget} bytes of L1")
    return Tiling(name, "layernorm", tile_rows, 0, _align4(tile_rows * width) + tile_rows * width, 0, 2 * rows * width, 0, rows * width)


def attention_l1_bytes(tokens: int, head_dim: int, tile_rows: int) -> int:
    """L1 working set of net_attention (the layout in net_kernels.c)."""
    scratch = 4 * tokens + _align4(tokens) + 4 * head_dim
    return 2 * _align4(tokens * head_dim) + 2 * _align4(tile_rows * head_dim) + CORES * scratch


def plan_attention(name: str, tokens: int, dim: int, heads: int, budget: int, rotary: bool = False) -> Tiling:
    """Whole K and V of one head in L1, plus as many query rows as fit ``budget``.

    ``elements`` counts the scores (and, with ``rotary``, the turned q and k values).
    """
    head_dim = dim // heads
    tile_rows = min(tokens, 256)
    while tile_rows > 0 and attention_l1_bytes(tokens, head_dim, tile_rows) > budget:
        tile_rows -= 1
    if tile_rows == 0:
        need = attention_l1_bytes(tokens, head_dim, 1)
        raise ExportError(
            f"attention '{name}' over {tokens} tokens needs {need} bytes of L1 for one head's keys and values "
            f"(budget {budget}); use fewer channels or samples per window"
        )
    return Tiling(
        name=name,
        kind="attention",
        tile_rows=tile_rows,
        tile_cols=0,
        l1_bytes=attention_l1_bytes(tokens, head_dim, tile_rows),
        weight_bytes=0,
        dma_bytes=4 * tokens * dim,  # K, V and q in, o out
        macs=2 * heads * tokens * tokens * head_dim,
        elements=heads * tokens * tokens + (2 * tokens * dim if rotary else 0),
    )


def plan_pool(name: str, channels: int, patches: int, width: int, budget: int) -> Tiling:
    """Patch rows of one channel at a time, with int32 sums and the int8 result."""
    tile_rows = min(patches, (budget - 5 * width - 4) // width)
    if tile_rows <= 0:
        raise ExportError(f"mean pool '{name}' of width {width} does not fit {budget} bytes of L1")
    return Tiling(
        name, "pool", tile_rows, 0, _align4(tile_rows * width) + 5 * width, 0,
        channels * patches * width + channels * width, 0, channels * patches * width,
    )  # fmt: skip


def plan_tiles(network: IntNetwork, budget: int = L1_TILE_BYTES) -> list[Tiling]:
    """The tiling of every kernel of ``network`` in execution order, within ``budget`` bytes of L1."""
    n = network.tokens
    plan = [plan_linear("patch_embedding", network.patch, n, budget)]
    for i, block in enumerate(network.blocks):
        name = f"blocks.{i}."
        plan += [
            plan_layer_norm(name + "norm1", block.norm1, n, budget),
            plan_linear(name + "attn.qkv", block.qkv, n, budget),
            plan_attention(name + "attn", n, network.dim, network.heads, budget, block.attention.rotary is not None),
            plan_linear(name + "attn.proj", block.proj, n, budget),
            plan_layer_norm(name + "norm2", block.norm2, n, budget),
            plan_linear(name + "mlp.fc1", block.fc1, n, budget),
            plan_linear(name + "mlp.fc2", block.fc2, n, budget),
        ]
    plan.append(plan_layer_norm("norm", network.norm, n, budget))
    if network.head is not None:
        plan.append(plan_pool("pool", network.channels, network.patches, network.dim, budget))
        plan.append(plan_linear("classifier", network.head, 1, budget))
    return plan


@dataclass
class Buffers:
    """Activation buffers network_run keeps in L2, in bytes: the residual stream ``x``,
    the norm/attention output ``h`` and the wide qkv/MLP buffer."""

    x: int
    h: int
    wide: int

    @property
    def total(self) -> int:
        return self.x + self.h + self.wide


def activation_buffers(network: IntNetwork) -> Buffers:
    """Sizes of network_run's L2 activation buffers for ``network``."""
    n, d = network.tokens, network.dim
    mlp = network.blocks[0].fc1.weight.shape[0] if network.blocks else d
    return Buffers(x=n * d, h=n * d, wide=n * max(3 * d, mlp))


def weight_blob(network: IntNetwork) -> tuple[np.ndarray, dict[int, int]]:
    """All int8 weight matrices back to back, (out, in) row-major, each at a word-aligned offset.

    Returns the blob and the offset of each layer keyed by ``id(layer)``.
    """
    layers = [network.patch] + [l for b in network.blocks for l in (b.qkv, b.proj, b.fc1, b.fc2)]
    if network.head is not None:
        layers.append(network.head)
    offsets, parts, size = {}, [], 0
    for layer in layers:
        offsets[id(layer)] = size
        parts.append(layer.weight.reshape(-1))
        padding = _align4(layer.weight.size) - layer.weight.size
        parts.append(np.zeros(padding, np.int8))
        size += layer.weight.size + padding
    return np.concatenate(parts).astype(np.int8), offsets


# --- emitting C --------------------------------------------------------------------------


def _c_array(ctype: str, name: str, values: np.ndarray, per_line: int = 24) -> str:
    flat = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    lines = [", ".join(flat[i : i + per_line]) for i in range(0, len(flat), per_line)]
    return f"static const {ctype} {name}[{len(flat)}] = {{\n    " + ",\n    ".join(lines) + "\n};\n"


def _initializer(**fields) -> str:
    """A C99 designated initialiser: ``{.name = value, ...}``."""
    return "{" + ", ".join(f".{name} = {value}" for name, value in fields.items()) + "}"


class _Emitter:
    """Collects the parameter arrays of network.c and writes the layer initialisers."""

    def __init__(self, offsets: dict[int, int], tiles: dict[str, Tiling]):
        self.arrays: list[str] = []
        self.offsets = offsets
        self.tiles = tiles

    def array(self, ctype: str, name: str, values: np.ndarray) -> str:
        self.arrays.append(_c_array(ctype, name, values))
        return name

    def linear(self, name: str, layer: IntLinear, rows: int) -> str:
        c = name.replace(".", "_")
        out_features, in_features = layer.weight.shape
        tile = self.tiles[name]
        bias = self.array("int32_t", c + "_bias", layer.bias)
        if layer.multiplier is None:
            multiplier = shift = "NULL"
        else:
            multiplier = self.array("int32_t", c + "_multiplier", layer.multiplier)
            shift = self.array("uint8_t", c + "_shift", layer.shift)
        lut = self.array("int8_t", c + "_gelu", layer.lut) if layer.lut is not None else "NULL"
        return _initializer(
            rows=rows, in_features=in_features, out_features=out_features, weight_offset=f"{self.offsets[id(layer)]}u",
            bias=bias, bias_period=len(layer.bias) if layer.bias.ndim == 2 else 0, multiplier=multiplier, shift=shift,
            residual_multiplier=int(layer.residual_multiplier or 0), lut=lut, tile_rows=tile.tile_rows, tile_cols=tile.tile_cols,
        )  # fmt: skip

    def layer_norm(self, name: str, layer: IntLayerNorm, rows: int) -> str:
        c = name.replace(".", "_")
        gain = self.array("int32_t", c + "_gain", layer.gain)
        offset = self.array("int32_t", c + "_offset", layer.offset)
        return _initializer(
            rows=rows, width=len(layer.gain), gain=gain, offset=offset, shift=layer.shift, eps_term=layer.eps_term,
            tile_rows=self.tiles[name].tile_rows,
        )  # fmt: skip


def _network_h(network: IntNetwork, l1_bytes: int, weight_bytes: int, l2_weights: bool) -> str:
    encoder_only = network.head is None
    output_type = "int8_t" if encoder_only else "int32_t"
    labels = f"\n * Classes: {', '.join(network.labels)}." if network.labels else ""
    what = (
        f"int8 tokens ({network.tokens}, {network.dim}), channel-major"
        if encoder_only
        else f"int32 logits of {network.head.weight.shape[0]} classes"
    )
    return f"""/*
 * Generated by `silentspeech export gap9`: an int8 TinyMyo {"encoder" if encoder_only else "gesture classifier"}.
 * Input: one window of {network.channels} channels x {network.samples} samples, int8, channels first.
 * Output: {what}.{labels}
 * Real values: input = NET_INPUT_SCALE * int8, output = NET_OUTPUT_SCALE * integer output.
 */
#ifndef NETWORK_H
#define NETWORK_H

#include <stdint.h>

#define NET_CHANNELS {network.channels}
#define NET_SAMPLES {network.samples}
#define NET_TOKENS {network.tokens}
#define NET_DIM {network.dim}
#define NET_INPUT_SIZE {network.channels * network.samples}
#define NET_OUTPUT_SIZE {int(np.prod(network.output_shape))}
#define NET_INPUT_SCALE {network.scales["input"]!r}f
#define NET_OUTPUT_SCALE {network.output_scale!r}f
/* L1 work area shared by the kernels, and the int8 weight blob. */
#define NET_L1_BYTES {l1_bytes}
#define NET_WEIGHT_BYTES {weight_bytes}
/* Whether the weights fit GAP9's L2 beside the activations (else build with -DNET_WEIGHTS_IN_L3). */
#define NET_WEIGHTS_FIT_L2 {int(l2_weights)}

#if defined(GAP9) && !defined(NET_WEIGHTS_IN_L3) && !NET_WEIGHTS_FIT_L2
#error "the int8 weights do not fit GAP9's L2: build with -DNET_WEIGHTS_IN_L3 and load weights.bin into external RAM"
#endif

typedef {output_type} net_output_t;

/* Run the network on one window; on GAP9 call it from the cluster (master core). */
void network_run(const int8_t *input, net_output_t *output);

#endif /* NETWORK_H */
"""


def _block_initializer(emit: _Emitter, index: int, network: IntNetwork, tiles: dict[str, Tiling], exp_table: str | None) -> str:
    """The C initializer of Transformer block ``index`` (a ``block_t``); its parameter arrays go to ``emit``."""
    n = network.tokens
    name = f"blocks.{index}."
    b = network.blocks[index]
    attention = b.attention
    r = attention.rotary
    turn = {}
    if r is not None:
        turn = dict(
            rotary_cos="rotary_cos", rotary_sin="rotary_sin", patches=network.patches, q_multiplier=r.q_multiplier,
            k_multiplier=r.k_multiplier, q_shift=r.q_shift, k_shift=r.k_shift,
        )  # fmt: skip
    attn = _initializer(
        tokens=n, dim=network.dim, heads=attention.heads, index_multiplier=attention.index_multiplier,
        index_shift=attention.index_shift, exp_table=exp_table, output_multiplier=attention.output_multiplier,
        output_shift=attention.output_shift, tile_rows=tiles[name + "attn"].tile_rows, **turn,
    )  # fmt: skip
    fields = [
        emit.layer_norm(name + "norm1", b.norm1, n),
        emit.linear(name + "attn.qkv", b.qkv, n),
        attn,
        emit.linear(name + "attn.proj", b.proj, n),
        emit.layer_norm(name + "norm2", b.norm2, n),
        emit.linear(name + "mlp.fc1", b.fc1, n),
        emit.linear(name + "mlp.fc2", b.fc2, n),
    ]
    names = ("norm1", "qkv", "attention", "proj", "norm2", "fc1", "fc2")
    return "    {\n" + ",\n".join(f"        .{k} = {v}" for k, v in zip(names, fields)) + "\n    }"


def _head_code(emit: _Emitter, network: IntNetwork, tiles: dict[str, Tiling]) -> tuple[str, str]:
    """``(tables, tail)``: the classifier head's C tables (none for a bare encoder) and the end of ``network_run``."""
    if network.head is None:
        return "", "    net_layernorm(&norm, l1, x, output);\n"
    pool = _initializer(
        channels=network.channels, patches=network.patches, width=network.dim, multiplier=network.pool.multiplier,
        shift=network.pool.shift, tile_rows=tiles["pool"].tile_rows,
    )  # fmt: skip
    tables = (
        f"static const net_pool_t pool = {pool};\n"
        f"static const net_linear_t classifier = {emit.linear('classifier', network.head, 1)};\n"
    )
    tail = (
        "    net_layernorm(&norm, l1, x, h);\n"
        "    net_mean_pool(&pool, l1, h, x);\n"
        "    net_linear(&classifier, l1, x, NULL, output);\n"
    )
    return tables, tail


def _block_loop(count: int) -> str:
    """The loop of ``network_run`` over ``count`` Transformer blocks (empty without blocks)."""
    if not count:
        return ""
    return f"""    for (int b = 0; b < {count}; b++) {{
        const block_t *block = &blocks[b];
        net_layernorm(&block->norm1, l1, x, h);
        net_linear(&block->qkv, l1, h, NULL, wide);
        net_attention(&block->attention, l1, wide, h);
        net_linear(&block->proj, l1, h, x, x);
        net_layernorm(&block->norm2, l1, x, h);
        net_linear(&block->fc1, l1, h, NULL, wide);
        net_linear(&block->fc2, l1, wide, x, x);
    }}
"""


def _network_c(network: IntNetwork, tiles: dict[str, Tiling], offsets: dict[int, int], l1_bytes: int) -> str:
    """``network.c``: every parameter array, the layer tables and ``network_run`` (arrays emitted in layer order)."""
    n = network.tokens
    emit = _Emitter(offsets, tiles)
    patch = emit.linear("patch_embedding", network.patch, n)
    exp_table = emit.array("uint8_t", "exp_table", network.blocks[0].attention.exp_table) if network.blocks else None
    rotary = network.blocks[0].attention.rotary if network.blocks else None
    if rotary is not None:  # the tables are the same in every block
        emit.array("int16_t", "rotary_cos", rotary.cos)
        emit.array("int16_t", "rotary_sin", rotary.sin)
    blocks = [_block_initializer(emit, i, network, tiles, exp_table) for i in range(len(network.blocks))]
    norm = emit.layer_norm("norm", network.norm, n)
    buffers = activation_buffers(network)
    head_tables, tail = _head_code(emit, network, tiles)
    block_table = (
        f"static const block_t blocks[{len(blocks)}] = {{\n" + ",\n".join(blocks) + "\n};\n" if blocks else ""
    )
    block_loop = _block_loop(len(blocks))
    return f"""/* Generated by `silentspeech export gap9`: parameters, layer tables and network_run(). */
#include "network.h"
#include "net_kernels.h"

/* One Transformer block: x += proj(attention(qkv(norm1(x)))); x += fc2(gelu(fc1(norm2(x)))). */
typedef struct {{
    net_layernorm_t norm1;
    net_linear_t qkv;
    net_attention_t attention;
    net_linear_t proj;
    net_layernorm_t norm2;
    net_linear_t fc1, fc2;
}} block_t;

{"".join(emit.arrays)}
static const net_linear_t patch_embedding = {patch};
{block_table}static const net_layernorm_t norm = {norm};
{head_tables}
/* L1 work area (word aligned) and the L2 activation buffers: residual stream x,
 * norm/attention output h, and the wide qkv / MLP buffer. */
static NET_L1 int32_t l1_words[{-(-l1_bytes // 4)}];
static NET_L2 int8_t x[{buffers.x}];
static NET_L2 int8_t h[{buffers.h}];
static NET_L2 int8_t wide[{buffers.wide}];

void network_run(const int8_t *input, net_output_t *output)
{{
    int8_t *l1 = (int8_t *)l1_words;
    net_linear(&patch_embedding, l1, input, NULL, x);
{block_loop}{tail}}}
"""


def _weights_c(blob: np.ndarray) -> str:
    body = _c_array("int8_t", "net_weights", blob, per_line=32).replace("static const", "NET_L2 const", 1)
    return (
        "/* Generated by `silentspeech export gap9`: the int8 weight blob (weights.bin holds the same bytes). */\n"
        '#include "net_port.h"\n\n#ifndef NET_WEIGHTS_IN_L3\n' + body + "#endif\n"
    )


_HOST_MAIN = """/* Host driver: network_host INPUT OUTPUT runs network_run on every window of INPUT
 * (NET_INPUT_SIZE int8 each, back to back) and writes NET_OUTPUT_SIZE net_output_t
 * per window to OUTPUT, in native byte order. */
#include <stdio.h>
#include <stdlib.h>

#include "network.h"

int main(int argc, char **argv)
{
    static int8_t window[NET_INPUT_SIZE];
    static net_output_t result[NET_OUTPUT_SIZE];
    size_t count = 0, got;
    if (argc != 3) {
        fprintf(stderr, "usage: %s INPUT.bin OUTPUT.bin\\n", argv[0]);
        return 2;
    }
    FILE *in = fopen(argv[1], "rb");
    FILE *out = fopen(argv[2], "wb");
    if (in == NULL || out == NULL) {
        fprintf(stderr, "%s: cannot open %s\\n", argv[0], in == NULL ? argv[1] : argv[2]);
        return 1;
    }
    while ((got = fread(window, 1, NET_INPUT_SIZE, in)) == NET_INPUT_SIZE) {
        network_run(window, result);
        if (fwrite(result, sizeof(net_output_t), NET_OUTPUT_SIZE, out) != NET_OUTPUT_SIZE) {
            fprintf(stderr, "%s: cannot write %s\\n", argv[0], argv[2]);
            return 1;
        }
        count++;
    }
    fclose(in);
    if (fclose(out) != 0 || got != 0) {
        fprintf(stderr, "%s: %s ends in a partial window (%zu bytes)\\n", argv[0], argv[1], got);
        return 1;
    }
    fprintf(stderr, "%zu windows\\n", count);
    return 0;
}
"""

_MAKEFILE = """# Host build of the exported network (GAP9: add these sources to a PMSIS project and define GAP9).
CC ?= gcc
CFLAGS ?= {cflags}
SOURCES = host_main.c network.c weights.c net_kernels.c

network_host: $(SOURCES) network.h net_kernels.h net_port.h
\t$(CC) $(CFLAGS) -o $@ $(SOURCES)

clean:
\trm -f network_host
"""


#: GAP9's L2 (1.5 MB) less what the runtime, code and parameters are allowed (256 kB).
L2_DATA_BYTES = 1536 * 1024 - 256 * 1024


@dataclass
class MemoryPlan:
    """Where the network's data lives: the kernels' tiling, the L1 area, weights and activation buffers."""

    tiles: list[Tiling]
    l1_bytes: int
    weight_bytes: int
    buffers: Buffers
    #: The weights fit GAP9's L2 beside the activations (else they stay in L3).
    weights_fit_l2: bool


def memory_plan(network: IntNetwork, l1_budget: int = L1_TILE_BYTES) -> MemoryPlan:
    """The tiling and memory placement of ``network`` with ``l1_budget`` bytes of L1 for tiles."""
    tiles = plan_tiles(network, l1_budget)
    weight_bytes = weight_blob(network)[0].size
    buffers = activation_buffers(network)
    return MemoryPlan(tiles, max(t.l1_bytes for t in tiles), weight_bytes, buffers, weight_bytes + buffers.total <= L2_DATA_BYTES)


def write_c_package(network: IntNetwork, out: str | Path, l1_budget: int = L1_TILE_BYTES) -> MemoryPlan:
    """Write the C99 package of ``network`` into the folder ``out`` (created); returns its memory plan."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plan = memory_plan(network, l1_budget)
    blob, offsets = weight_blob(network)
    for name in TEMPLATE_FILES:
        atomic_write_text(out / name, (TEMPLATES / name).read_text())
    atomic_write_text(out / "network.h", _network_h(network, plan.l1_bytes, blob.size, plan.weights_fit_l2))
    atomic_write_text(out / "network.c", _network_c(network, {t.name: t for t in plan.tiles}, offsets, plan.l1_bytes))
    atomic_write_text(out / "weights.c", _weights_c(blob))
    atomic_write_bytes(out / "weights.bin", blob.tobytes())
    atomic_write_text(out / "host_main.c", _HOST_MAIN)
    atomic_write_text(out / "Makefile", _MAKEFILE.format(cflags=" ".join(CFLAGS)))
    return plan


# --- host build and run -------------------------------------------------------------------


def find_compiler() -> str | None:
    """A C compiler on PATH (``$CC`` is not consulted): gcc, then cc, then clang; None if none."""
    return next((found for name in ("gcc", "cc", "clang") if (found := shutil.which(name))), None)


def build_host(package: str | Path, compiler: str | None = None, extra_flags: tuple[str, ...] = ()) -> Path:
    """Compile the host driver of a written package with ``-std=c99 -O2 -Wall -Werror``; returns the executable.

    Raises ``RuntimeError`` with the compiler's messages when the build fails.
    """
    package = Path(package)
    compiler = compiler or find_compiler()
    if compiler is None:
        raise RuntimeError("no C compiler found (gcc, cc or clang) to build the host network")
    exe = package / "network_host"
    sources = [str(package / s) for s in ("host_main.c", "network.c", "weights.c", "net_kernels.c")]
    result = subprocess.run(
        [compiler, *CFLAGS, *extra_flags, "-o", str(exe), *sources], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"{compiler} failed to build {package}:\n{result.stderr}")
    return exe


def run_host(executable: str | Path, network: IntNetwork, inputs: np.ndarray) -> np.ndarray:
    """Run the host build on int8 windows (B, C, T); returns its outputs (B, *network.output_shape)."""
    inputs = np.ascontiguousarray(inputs, dtype=np.int8)
    dtype = np.int8 if network.head is None else np.int32
    with tempfile.TemporaryDirectory() as tmp:
        source, result = Path(tmp) / "input.bin", Path(tmp) / "output.bin"
        source.write_bytes(inputs.tobytes())
        done = subprocess.run([str(executable), str(source), str(result)], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{executable} failed: {done.stderr}")
        return np.fromfile(result, dtype=dtype).reshape(len(inputs), *network.output_shape)
