"""TinyMyo: a small Transformer encoder for surface EMG, and its checkpoint import.

TinyMyo (Fasulo et al. 2025, arXiv 2512.15729, github.com/pulp-bio/BioFoundation;
docs/design.md, *TinyMyo: the encoder*) cuts every EMG channel into
patches of ``patch_len`` samples, embeds each patch with one projection shared
by all channels, and runs pre-LayerNorm Transformer blocks over the
channel-major token sequence (all patches of channel 0, then channel 1, ...)::

    x (B, C, T) -> tokens (B, C * T // patch_len, dim) -> blocks -> LayerNorm

Depth, width, heads, MLP size, patch length and channel count come from
:class:`TinyMyoConfig`, so the 3.56 M-parameter released model (the defaults),
a 113 M teacher (``dim=768, depth=16, heads=12, mlp_dim=3072``) and small
students are configurations of the same code. The speech
model (:mod:`silentspeech.models.speech`) feeds its own frame tokens to
:meth:`TinyMyoEncoder.encode_tokens`.

Position encoding (``TinyMyoConfig.position``):

- ``"none"``: attention sees no position. The released weights were trained
  this way (their rotary code rotates by head index, not token index), so this
  is the faithful mode for them.
- ``"rope"``: rotary encoding of each token's time index (the patch index for
  channel-major tokens, so all channels of one instant share a rotation; the
  frame index in the speech model). Adds no parameters.
- ``"learned"``: a learned vector per time index, added before the blocks.

The blocks are written here rather than taken from a library because the
released checkpoint fixes their parameter names (timm is not a dependency and
``torch.nn.TransformerEncoderLayer`` names and packs its weights differently);
attention itself is ``torch.nn.functional.scaled_dot_product_attention``.

Released checkpoints (safetensors, or a Lightning ``.ckpt`` with a
``state_dict``) name parameters like ``model.blocks.3.attn.qkv.weight``.
:func:`load_tinymyo` reads them through the explicit renaming in
:data:`RELEASED_NAMES`; :func:`save_tinymyo` writes ours back in that layout.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from silentspeech.atomic import atomic_save_safetensors
from silentspeech.torch_files import load_torch_file

log = logging.getLogger(__name__)

POSITION_MODES = ("none", "rope", "learned")
#: Cosine and sine tables of the rotary angles, from :func:`rotary_tables`.
Rotary = tuple[torch.Tensor, torch.Tensor]


@dataclass
class TinyMyoConfig:
    """Hyper-parameters of a TinyMyo encoder (defaults: the released model)."""

    #: EMG channels of the input (fewer channels are zero-padded up to this by the caller).
    channels: int = 16
    #: Samples per patch (one token per channel and patch).
    patch_len: int = 20
    #: Token width.
    dim: int = 192
    #: Number of Transformer blocks.
    depth: int = 8
    #: Attention heads (``dim`` must divide by it).
    heads: int = 3
    #: Hidden width of each block's MLP.
    mlp_dim: int = 768
    #: Dropout on attention weights, attention output and MLP activations.
    dropout: float = 0.1
    #: Stochastic-depth rate: probability of skipping a block's residual branch
    #: for a training sample (the same for every block, as in the release).
    drop_path: float = 0.1
    #: ``"none"``, ``"rope"`` or ``"learned"`` (see the module docstring).
    position: str = "none"
    #: Number of time indices the ``"learned"`` table holds (patches per channel,
    #: or frames in the speech model: 2048 frames = 23.8 s at 86.13 Hz).
    max_tokens: int = 2048


def drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Stochastic depth: zero a residual branch for a random ``rate`` of the samples.

    ``x`` is (batch, ...); kept samples are scaled by ``1 / (1 - rate)`` so the
    expectation is unchanged. Identity in eval mode.
    """
    if not training or rate == 0.0:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1.0 - rate)
    return x * keep / (1.0 - rate)


def check_lengths(lengths: torch.Tensor, batch: int, samples: int, device: torch.device) -> torch.Tensor:
    """``lengths`` (batch,) valid samples per item of a padded batch, on ``device``;
    ``ValueError`` unless each lies in 1..samples (an empty item would attend to nothing)."""
    lengths = torch.as_tensor(lengths, device=device)
    if lengths.shape != (batch,) or int(lengths.min()) < 1 or int(lengths.max()) > samples:
        raise ValueError(f"lengths must hold {batch} sample counts in 1..{samples}, got {lengths.tolist()}")
    return lengths


def rotary_tables(positions: torch.Tensor, head_dim: int, base: float = 10_000.0) -> Rotary:
    """Cosines and sines of the rotary angles for each position.

    ``positions``: (N,) or (B, N) time indices. Returns two tensors of shape
    (..., N, head_dim) whose first and second halves repeat the angles
    ``position * base ** (-2i / head_dim)``, i < head_dim / 2.
    """
    frequencies = base ** (-torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim)
    angles = positions.to(torch.float32)[..., None] * frequencies
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate feature pairs (i, i + head_dim/2) of ``x`` (B, heads, N, head_dim) by the tabled angles."""
    first, second = x.chunk(2, dim=-1)
    # Tables stay float32; match x's dtype so autocast's half-precision q and k stay so.
    return x * cos.to(x.dtype) + torch.cat([-second, first], dim=-1) * sin.to(x.dtype)


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection (q, k, v blocks, heads inside each)."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.proj_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, rotary: Rotary | None = None) -> torch.Tensor:
        """``x`` (B, N, dim); ``attn_mask`` (B, 1, 1, N) bool, True where a key may be attended;
        ``rotary`` the (cos, sin) tables broadcastable to (B, heads, N, head_dim)."""
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(x).view(batch, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        if rotary is not None:
            q, k = apply_rotary(q, *rotary), apply_rotary(k, *rotary)
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0)
        return self.proj_dropout(self.proj(x.transpose(1, 2).reshape(batch, tokens, dim)))


class MLP(nn.Module):
    """Two-layer perceptron with exact GELU and dropout after each layer."""

    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc2(self.dropout(F.gelu(self.fc1(x)))))


class TransformerBlock(nn.Module):
    """Pre-LayerNorm block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``, each branch with drop-path."""

    def __init__(self, config: TinyMyoConfig):
        super().__init__()
        self.drop_path = config.drop_path
        self.norm1 = nn.LayerNorm(config.dim)
        self.attn = Attention(config.dim, config.heads, config.dropout)
        self.norm2 = nn.LayerNorm(config.dim)
        self.mlp = MLP(config.dim, config.mlp_dim, config.dropout)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, rotary: Rotary | None = None) -> torch.Tensor:
        """``x`` (B, N, dim) -> (B, N, dim); masks as in :meth:`Attention.forward`."""
        x = x + drop_path(self.attn(self.norm1(x), attn_mask, rotary), self.drop_path, self.training)
        return x + drop_path(self.mlp(self.norm2(x)), self.drop_path, self.training)


class TinyMyoEncoder(nn.Module):
    """Patch embedding, Transformer blocks and final LayerNorm (see the module docstring)."""

    def __init__(self, config: TinyMyoConfig):
        super().__init__()
        if config.position not in POSITION_MODES:
            raise ValueError(f"TinyMyoConfig.position must be one of {POSITION_MODES}, got {config.position!r}")
        if config.dim % config.heads:
            raise ValueError(f"TinyMyoConfig.dim={config.dim} does not divide into heads={config.heads}")
        if config.position == "rope" and (config.dim // config.heads) % 2:
            raise ValueError(f"rotary position encoding needs an even head size, got {config.dim // config.heads}")
        self.config = config
        # One projection shared by all channels: a (1, patch_len) kernel striding along time.
        self.patch_embedding = nn.Conv2d(1, config.dim, (1, config.patch_len), stride=(1, config.patch_len))
        self.position_embedding = (
            nn.Parameter(torch.zeros(config.max_tokens, config.dim)) if config.position == "learned" else None
        )
        self.blocks = nn.ModuleList(TransformerBlock(config) for _ in range(config.depth))
        self.norm = nn.LayerNorm(config.dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform linear weights, zero biases; deeper blocks' output projections
        shrunk by 1 / sqrt(2 * layer) so the residual stream starts near identity."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.xavier_uniform_(self.patch_embedding.weight.view(self.config.dim, -1))
        nn.init.zeros_(self.patch_embedding.bias)
        if self.position_embedding is not None:
            nn.init.trunc_normal_(self.position_embedding, std=0.02)
        with torch.no_grad():
            for layer, block in enumerate(self.blocks, start=1):
                block.attn.proj.weight.div_(math.sqrt(2.0 * layer))
                block.mlp.fc2.weight.div_(math.sqrt(2.0 * layer))

    def num_patches(self, samples: int) -> int:
        """Patches per channel for ``samples`` time steps (which must divide by ``patch_len``)."""
        if samples % self.config.patch_len:
            raise ValueError(
                f"TinyMyo needs a multiple of patch_len={self.config.patch_len} samples per channel, got {samples}"
            )
        return samples // self.config.patch_len

    def embed_patches(self, x: torch.Tensor) -> torch.Tensor:
        """EMG ``x`` (B, channels, samples) -> channel-major patch tokens (B, channels * patches, dim)."""
        if x.dim() != 3 or x.shape[1] != self.config.channels:
            raise ValueError(
                f"TinyMyo expects EMG of shape (batch, {self.config.channels} channels, samples), got {tuple(x.shape)}"
            )
        self.num_patches(x.shape[2])
        return self.patch_embedding(x.unsqueeze(1)).flatten(2).transpose(1, 2)

    def token_positions(self, patches: int, device: torch.device | None = None) -> torch.Tensor:
        """Time index of each channel-major token: (channels * patches,) = 0..patches-1 repeated per channel."""
        return torch.arange(patches, device=device).repeat(self.config.channels)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Encode EMG ``x`` (B, channels, samples) into tokens (B, channels * samples // patch_len, dim).

        ``lengths`` (B,): valid samples per item of a zero-padded batch; tokens of
        patches that hold no valid sample are masked out of attention (their own
        outputs are meaningless).
        """
        tokens = self.embed_patches(x)
        patches = x.shape[2] // self.config.patch_len
        padding_mask = None
        if lengths is not None:
            lengths = check_lengths(lengths, x.shape[0], x.shape[2], x.device)
            valid_patches = (lengths + self.config.patch_len - 1) // self.config.patch_len
            padding_mask = (torch.arange(patches, device=x.device) >= valid_patches[:, None]).repeat(1, self.config.channels)
        return self.encode_tokens(tokens, padding_mask, self.token_positions(patches, x.device))

    def encode_tokens(
        self,
        tokens: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run the blocks and the final norm over ``tokens`` (B, N, dim) -> (B, N, dim).

        ``padding_mask`` (B, N) bool: True marks padding tokens, which no token
        attends to. ``positions`` (N,) or (B, N) int: each token's time index for
        the ``rope``/``learned`` modes (default 0..N-1; ignored for ``none``).
        """
        batch, length, _ = tokens.shape
        if positions is None and self.config.position != "none":
            positions = torch.arange(length, device=tokens.device)
        rotary = None
        if self.config.position == "learned":
            if int(positions.max()) >= self.config.max_tokens:
                raise ValueError(
                    f"time index {int(positions.max())} is beyond the learned position table "
                    f"(max_tokens={self.config.max_tokens}); raise max_tokens or use position='rope'"
                )
            tokens = tokens + self.position_embedding[positions]
        elif self.config.position == "rope":
            rotary = rotary_tables(positions, self.config.dim // self.config.heads)
            # (N, hd) broadcasts over (B, heads, N, hd) as is; (B, N, hd) needs a heads axis.
            if positions.dim() == 2:
                rotary = (rotary[0][:, None], rotary[1][:, None])
        attn_mask = None if padding_mask is None else ~padding_mask.view(batch, 1, 1, length)
        for block in self.blocks:
            tokens = block(tokens, attn_mask, rotary)
        return self.norm(tokens)


def patches(x: torch.Tensor, patch_len: int) -> torch.Tensor:
    """EMG ``x`` (B, C, T) -> its patches (B, C * T // patch_len, patch_len), in token order."""
    batch, channels, samples = x.shape
    return x.reshape(batch, channels * (samples // patch_len), patch_len)


class TinyMyoPretrainer(nn.Module):
    """Masked patch reconstruction: the encoder, a learned mask token and a linear patch decoder."""

    def __init__(self, config: TinyMyoConfig):
        super().__init__()
        self.encoder = TinyMyoEncoder(config)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, config.dim))
        self.decoder_pred = nn.Linear(config.dim, config.patch_len)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        nn.init.xavier_uniform_(self.decoder_pred.weight)
        nn.init.zeros_(self.decoder_pred.bias)

    @property
    def config(self) -> TinyMyoConfig:
        return self.encoder.config

    def forward(self, x: torch.Tensor, patch_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Reconstruct the patches of ``x`` (B, C, T) -> (B, C * T // patch_len, patch_len).

        ``patch_mask`` (B, C * T // patch_len) bool: True replaces that patch's
        token by the mask token before the blocks. Compare the result with
        :func:`patches` of the (scaled) input.
        """
        tokens = self.encoder.embed_patches(x)
        if patch_mask is not None:
            tokens = torch.where(patch_mask[..., None], self.mask_token.to(tokens.dtype), tokens)
        positions = self.encoder.token_positions(x.shape[2] // self.config.patch_len, x.device)
        return self.decoder_pred(self.encoder.encode_tokens(tokens, positions=positions))


# --- checkpoints in the released layout

#: Prefix of every key in released files (and in Lightning checkpoints of a module named ``model``).
RELEASED_PREFIX = "model."
#: Our parameter-name prefixes -> the released file's, for the names that differ
#: (``encoder.`` is ours only: the released model is one flat module).
RELEASED_NAMES = {
    "encoder.patch_embedding.": "patch_embedding.patch_embed.proj.",
    "patch_embedding.": "patch_embedding.patch_embed.proj.",
    "encoder.": "",
    "decoder_pred.": "model_head.decoder_pred.",
}
# Parts a checkpoint may lack: our additions to the release, and the pretraining head.
_OPTIONAL_PARTS = ("position_embedding", "mask_token", "model_head.decoder_pred.")
_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.")
_CONFIG_METADATA = "tinymyo_config"


def released_name(name: str) -> str:
    """The released-layout key (without ``model.``) of one of our parameter names."""
    for ours, released in RELEASED_NAMES.items():
        if name.startswith(ours):
            return released + name[len(ours) :]
    return name


@dataclass
class LoadReport:
    """What :func:`load_tinymyo` did with a checkpoint's keys (released names, ``model.`` stripped)."""

    path: str
    config: TinyMyoConfig
    loaded: list[str] = field(default_factory=list)
    #: Parameters of our model the file lacks (left at their fresh initialisation).
    missing: list[str] = field(default_factory=list)
    #: Keys of the file our model has no place for, as ``"key [shape]"``.
    unused: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{self.path}: loaded {len(self.loaded)} tensors"]
        if self.missing:
            lines.append(f"  missing (freshly initialised): {', '.join(self.missing)}")
        if self.unused:
            lines.append(f"  unused: {', '.join(self.unused)}")
        return "\n".join(lines)


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors of a safetensors file or a torch/Lightning checkpoint, ``model.`` stripped, and its metadata."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    metadata: dict[str, str] = {}
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
                state = {key: handle.get_tensor(key) for key in handle.keys()}
        else:
            state = load_torch_file(path)
            if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
                state = state["state_dict"]
    except ValueError:
        raise
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise ValueError(f"{path}: cannot read checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a state dict of tensors (nor a Lightning checkpoint with one)")
    return {key.removeprefix(RELEASED_PREFIX): value for key, value in state.items()}, metadata


def infer_config(state: dict[str, torch.Tensor], source: str = "checkpoint") -> TinyMyoConfig:
    """The architecture a released-layout state dict (``model.`` stripped) implies.

    Width, patch length, depth and MLP size come from tensor shapes; the head
    count is not visible in weights and is taken as width / 64 (the released
    head size); channels from ``channel_embed`` where present, else 16.
    """
    patch_key, mlp_key = "patch_embedding.patch_embed.proj.weight", "blocks.0.mlp.fc1.weight"
    absent = [key for key in (patch_key, mlp_key) if key not in state]
    if absent:
        sample = ", ".join(sorted(state)[:5])
        raise ValueError(
            f"{source}: not a TinyMyo checkpoint (no {' or '.join(absent)} among its {len(state)} keys, e.g. {sample})"
        )
    dim, _, _, patch_len = state[patch_key].shape
    depth = len({int(m.group(1)) for key in state if (m := _BLOCK_KEY.match(key))})
    channels = state["channel_embed"].shape[1] if "channel_embed" in state else TinyMyoConfig.channels
    return TinyMyoConfig(
        channels=channels,
        patch_len=patch_len,
        dim=dim,
        depth=depth,
        heads=max(1, dim // 64),
        mlp_dim=state[mlp_key].shape[0],
    )


def trained_position_mode(state: dict[str, torch.Tensor], saved: TinyMyoConfig | None) -> str:
    """The position mode a checkpoint's weights were trained with.

    Our own files (:func:`save_tinymyo`) record it; a released checkpoint was
    trained with none (see the module docstring) unless it carries a learned
    position table.
    """
    if saved is not None:
        return saved.position
    return "learned" if "position_embedding" in state else "none"


def load_tinymyo(
    path: str | os.PathLike,
    config: TinyMyoConfig | None = None,
    pretrainer: bool = False,
) -> tuple[TinyMyoEncoder | TinyMyoPretrainer, LoadReport]:
    """Build a TinyMyo encoder (or, with ``pretrainer``, the masked pretrainer) from a checkpoint.

    ``path``: a released safetensors file, one written by :func:`save_tinymyo`,
    or a torch/Lightning ``.ckpt`` (``state_dict`` inside); keys in the released
    layout, ``model.`` prefix optional. ``config``: the architecture to build;
    by default the one saved by :func:`save_tinymyo`, else inferred from the
    shapes (:func:`infer_config`) with the position mode the weights were
    trained with (:func:`trained_position_mode`; a given ``config`` with another
    mode is built as asked, with a warning). Returns the model (in train mode)
    and a :class:`LoadReport` listing unused and missing keys.

    Raises ``ValueError`` for a file that is not a TinyMyo checkpoint, a block
    count, head count or tensor shape that differs from ``config`` (naming the
    key and both shapes), or missing encoder weights.
    """
    state, metadata = read_checkpoint(path)
    saved = TinyMyoConfig(**json.loads(metadata[_CONFIG_METADATA])) if _CONFIG_METADATA in metadata else None
    inferred = infer_config(state, str(path))
    trained_position = trained_position_mode(state, saved)
    if config is None:
        config = saved or dataclasses.replace(inferred, position=trained_position)
    elif inferred.depth != config.depth:
        raise ValueError(f"{path}: checkpoint has {inferred.depth} Transformer blocks, the config asks for {config.depth}")
    elif saved is not None and saved.heads != config.heads:
        raise ValueError(f"{path}: checkpoint was trained with {saved.heads} attention heads, the config asks for {config.heads}")

    if config.position != trained_position:
        log.warning(
            "%s: these weights were trained with position encoding %r, the config asks for %r, so the network will "
            "compute something else than it was trained to (set model.encoder.position=%s to match)",
            path, trained_position, config.position, trained_position,
        )
    model = TinyMyoPretrainer(config) if pretrainer else TinyMyoEncoder(config)
    report = LoadReport(path=str(path), config=config)
    mismatched, to_load, required_missing = [], {}, []
    for name, param in model.state_dict().items():
        key = released_name(name)
        if key not in state:
            (report.missing if key.startswith(_OPTIONAL_PARTS) else required_missing).append(key)
        elif state[key].shape != param.shape:
            mismatched.append(f"{key}: checkpoint {tuple(state[key].shape)}, model {tuple(param.shape)}")
        else:
            to_load[name] = state[key]
            report.loaded.append(key)
    if mismatched:
        more = f"\n  ... and {len(mismatched) - 5} more" if len(mismatched) > 5 else ""
        raise ValueError(
            f"{path}: tensor shapes differ from the configured TinyMyo:\n  " + "\n  ".join(mismatched[:5]) + more
        )
    if required_missing:
        raise ValueError(f"{path}: checkpoint lacks encoder weights: {', '.join(required_missing)}")
    model.load_state_dict(to_load, strict=False)
    used = set(report.loaded)
    report.unused = [f"{key} {list(value.shape)}" for key, value in state.items() if key not in used]
    log.info("%s", report)
    return model, report


def tinymyo_state_dict(model: TinyMyoEncoder | TinyMyoPretrainer) -> dict[str, torch.Tensor]:
    """``model``'s parameters under released-layout keys (``model.`` prefix included)."""
    return {RELEASED_PREFIX + released_name(name): value for name, value in model.state_dict().items()}


def save_tinymyo(model: TinyMyoEncoder | TinyMyoPretrainer, path: str | os.PathLike) -> None:
    """Write ``model`` atomically as a released-layout safetensors file that :func:`load_tinymyo` reads.

    The config is stored in the file's metadata, so the head count and
    position mode come back too.
    """
    metadata = {_CONFIG_METADATA: json.dumps(dataclasses.asdict(model.config))}
    atomic_save_safetensors(path, tinymyo_state_dict(model), metadata=metadata)
