"""The speech model: EMG at 689.06 Hz -> per-frame outputs at the 86.13 Hz audio frame rate.

Architecture (the silent-speech model of TinyMyo's code, Fasulo et al. 2025,
github.com/pulp-bio/BioFoundation; docs/design.md, *The speech model*)::

    emg (B, 8, T)
      -> 3 residual downsampling blocks, each halving the rate (8x: 689.06 -> 86.13 Hz)
      -> Linear(width, dim)  (+ the frame envelope embedding, when configured)
                                              (pretraining: masked frames' tokens -> a learned mask token)
      -> TinyMyo Transformer blocks + final LayerNorm over frames (pretrained or fresh)
      -> heads: acoustic (MFCC), phoneme logits, CTC logits, EMG reconstruction (pretraining)

Each frame is one token; attention runs within an utterance (batch and time
are never mixed). Variable-length batches are handled exactly: every stage
zeroes the samples beyond an item's length, as a lone item's convolution
padding would, and padded frames are masked out of attention, so in eval
mode an item's outputs do not depend on what it is batched with. (In train
mode BatchNorm statistics include the padding.)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from silentspeech.models.tinymyo import TinyMyoConfig, TinyMyoEncoder, check_lengths, load_tinymyo
from silentspeech.phonemes import NUM_PHONEMES
from silentspeech.preprocessing import EMG_PER_FRAME
from silentspeech.text import NUM_CLASSES

log = logging.getLogger(__name__)

#: Head name -> key of its output in :meth:`SpeechModel.forward`.
OUTPUT_KEYS = {"acoustic": "acoustic", "phoneme": "phoneme_logits", "ctc": "ctc_logits", "reconstruction": "reconstruction"}
#: Downsampling blocks, each halving the rate: 2 ** 3 = EMG_PER_FRAME.
DOWNSAMPLING_BLOCKS = 3


@dataclass
class SpeechModelConfig:
    """Hyper-parameters of :class:`SpeechModel` (an OmegaConf structured config)."""

    #: EMG channels of the input.
    emg_channels: int = 8
    #: Channels of the convolutional downsampler.
    width: int = 192
    #: The Transformer (channels and patch_len only shape the unused patch
    #: embedding; they must match a pretrained checkpoint). Rotary positions by
    #: default: the frames need an order and rope adds no weights to load.
    encoder: TinyMyoConfig = field(default_factory=lambda: TinyMyoConfig(position="rope"))
    #: Heads to build, any of ``acoustic``, ``phoneme``, ``ctc``, ``reconstruction``
    #: (production: acoustic + phoneme; recognition: ctc; speech pretraining: reconstruction).
    outputs: list[str] = field(default_factory=lambda: ["acoustic", "phoneme"])
    #: Acoustic features per frame (MFCC coefficients).
    n_mfcc: int = 80
    #: TinyMyo checkpoint whose blocks and final norm initialise the encoder
    #: (read by ``SpeechModel(config)``; set it to None when rebuilding a
    #: trained model whose weights are loaded afterwards).
    pretrained: str | None = None
    #: A speech model run (e.g. ``task: speech_pretrain``) whose downsampler,
    #: input projection and encoder initialise this model; its heads are not
    #: used. The architecture must match (errors name the tensors that do not).
    init_from: str | None = None
    #: Add each frame's log energy per channel (of the EMG and of its first difference, smoothed over
    #: :data:`ENVELOPE_FRAMES` frames) to its token (:class:`EnvelopeEmbedding`).
    envelope: bool = False
    #: Subtract each channel's mean log energy over the utterance from the envelope (gain invariance).
    envelope_normalise: bool = False


#: Frames (11.6 ms each) the envelope's energies are averaged over: about 58 ms, the scale of a
#: muscle's activation changes.
ENVELOPE_FRAMES = 5
#: Floor of the energies before the log, in squared preprocessed units (values are O(1)).
ENVELOPE_FLOOR = 1e-3


class EnvelopeEmbedding(nn.Module):
    """The EMG's amplitude envelope per frame, embedded as a token: (B, C, F * 8) -> (B, F, dim).

    Articulation shows in surface EMG mostly as how strongly each muscle
    fires: the power of its motor-unit trains, not their waveform. The
    downsampler can learn a rectifier, but a fixed energy feature gives it
    to the Transformer from the first step. Per channel: the mean square of
    the EMG and of its first difference (which weighs the higher
    frequencies, where the action potentials are) in each frame, averaged
    over :data:`ENVELOPE_FRAMES` frames, log-compressed, batch-normalised
    and projected to the token width. With ``normalise`` each channel's mean
    log energy over the item is subtracted first: a channel's gain
    (electrode contact, a session's placement, mouthing instead of speaking)
    scales its power, so it shifts the log energy by a constant that this
    removes, as cepstral mean normalisation does for a microphone.
    """

    def __init__(self, channels: int, dim: int, normalise: bool = False):
        super().__init__()
        self.normalise = normalise
        self.norm = nn.BatchNorm1d(2 * channels)
        self.projection = nn.Linear(2 * channels, dim)

    def forward(self, emg: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """``emg`` (B, C, F * 8) at 689.06 Hz, zero past each item's end -> (B, F, dim).

        ``valid`` (B, 1, F), 1 for an item's frames and 0 for its padding,
        keeps the padding out of the average, so that an item's envelope
        does not depend on what it is batched with.
        """
        difference = F.pad(emg[..., 1:] - emg[..., :-1], (1, 0))
        power = torch.cat([emg, difference], dim=1).pow(2)
        energy = power.unflatten(2, (-1, EMG_PER_FRAME)).mean(dim=3)
        if valid is None:
            valid = torch.ones_like(energy[:, :1])
        window = dict(kernel_size=ENVELOPE_FRAMES, stride=1, padding=ENVELOPE_FRAMES // 2)
        energy = F.avg_pool1d(energy * valid, **window) / F.avg_pool1d(valid, **window).clamp_min(1e-6)
        log_energy = torch.log(energy + ENVELOPE_FLOOR)
        if self.normalise:
            mean = (log_energy * valid).sum(dim=2, keepdim=True) / valid.sum(dim=2, keepdim=True).clamp_min(1.0)
            log_energy = (log_energy - mean) * valid
        return self.projection(self.norm(log_energy).transpose(1, 2))


class ResidualDownsample(nn.Module):
    """Halve the time rate: GELU(BN(conv3(GELU(BN(conv3/2(x))))) + BN(conv1/2(x)))."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv1d(in_channels, out_channels, 3, stride=2, padding=1, bias=False)
        self.norm1 = nn.BatchNorm1d(out_channels)
        self.conv2 = nn.Conv1d(out_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm1d(out_channels)
        self.skip = nn.Conv1d(in_channels, out_channels, 1, stride=2, bias=False)
        self.skip_norm = nn.BatchNorm1d(out_channels)

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` (B, in, L) -> (B, out, ceil(L / 2)); ``valid`` (B, 1, ceil(L / 2)) zeroes the padding."""
        hidden = F.gelu(self.norm1(self.conv1(x)))
        if valid is not None:
            hidden = hidden * valid
        out = F.gelu(self.norm2(self.conv2(hidden)) + self.skip_norm(self.skip(x)))
        return out if valid is None else out * valid


class SpeechModel(nn.Module):
    """EMG (B, 8, T) at 689.06 Hz -> frame outputs at 86.13 Hz (see the module docstring)."""

    def __init__(self, config: SpeechModelConfig):
        super().__init__()
        unknown = set(config.outputs) - set(OUTPUT_KEYS)
        if unknown or not config.outputs:
            raise ValueError(f"SpeechModelConfig.outputs must name some of {list(OUTPUT_KEYS)}, got {config.outputs}")
        self.config = config
        channels = [config.emg_channels] + [config.width] * DOWNSAMPLING_BLOCKS
        self.downsample = nn.ModuleList(ResidualDownsample(a, b) for a, b in zip(channels, channels[1:]))
        self.input_projection = nn.Linear(config.width, config.encoder.dim)
        self.envelope = EnvelopeEmbedding(config.emg_channels, config.encoder.dim, config.envelope_normalise) if config.envelope else None
        if config.pretrained:
            self.encoder, report = load_tinymyo(config.pretrained, config.encoder)
            log.info("speech model encoder from %s", report)
        else:
            self.encoder = TinyMyoEncoder(config.encoder)
        # Frames come from the downsampler, not from patches: frozen so optimisers
        # and DDP skip it; kept so the encoder exports whole (tinymyo.save_tinymyo).
        self.encoder.patch_embedding.requires_grad_(False)
        sizes = {
            "acoustic": config.n_mfcc,
            "phoneme": NUM_PHONEMES,
            "ctc": NUM_CLASSES,
            "reconstruction": config.emg_channels * EMG_PER_FRAME,
        }
        self.heads = nn.ModuleDict({name: nn.Linear(config.encoder.dim, sizes[name]) for name in config.outputs})
        # Masked-reconstruction pretraining hides frames by swapping their tokens for this
        # learned vector (silentspeech.tasks.speech_pretrain); only the model with the
        # reconstruction head has it, so fine-tuned models and exports never carry it.
        self.mask_token = nn.Parameter(torch.randn(config.encoder.dim) * 0.02) if "reconstruction" in config.outputs else None
        if config.init_from:
            self.load_trunk(config.init_from)

    def load_trunk(self, run: str) -> None:
        """Copy the downsampler, input projection and encoder of the speech model saved in ``run`` (heads left as they are).

        ``run`` is a run directory (its ``best.safetensors``) or a weights
        file. Raises ``ValueError`` naming the tensors that are missing or
        have other shapes, so a pretrained run of another size is refused.
        """
        from safetensors.torch import load_file

        from silentspeech.runs import weights_file

        path = weights_file(run)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no speech model weights to initialise from (model.init_from)")
        try:
            saved = load_file(str(path))
        except Exception as err:  # safetensors raises its own types for damaged files
            raise ValueError(f"{path}: not a readable safetensors file ({err})") from None
        trunk = {key: value for key, value in self.state_dict().items() if not key.startswith("heads.")}
        missing = sorted(set(trunk) - set(saved))
        shapes = [f"{key} {tuple(saved[key].shape)} vs {tuple(value.shape)}" for key, value in trunk.items() if key in saved and saved[key].shape != value.shape]
        if missing or shapes:
            raise ValueError(f"{path} does not fit this speech model: missing {missing[:5]}, shape mismatch (file vs model) {shapes[:5]}")
        self.load_state_dict({key: saved[key] for key in trunk}, strict=False)
        log.info("speech model trunk (%d tensors) from %s", len(trunk), path)

    @staticmethod
    def frame_lengths(emg_lengths: torch.Tensor) -> torch.Tensor:
        """Output frames per item: ceil(samples / 8) for ``emg_lengths`` (B,) samples at 689.06 Hz."""
        return (emg_lengths + EMG_PER_FRAME - 1) // EMG_PER_FRAME

    def forward(
        self,
        emg: torch.Tensor,
        emg_lengths: torch.Tensor | None = None,
        padded_frames: bool = True,
        token_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Map EMG to per-frame outputs.

        ``emg``: (B, 8, T) preprocessed EMG at 689.06 Hz, zero-padded after each
        item's end; T need not be a multiple of 8. ``emg_lengths``: (B,) valid
        samples per item (default: all T). ``token_mask`` (B, F) bool, for
        masked-reconstruction pretraining only: True frames enter the
        Transformer as the learned mask token instead of their own token
        (the model must have the ``reconstruction`` output). Returns a dict with, per configured
        head, ``acoustic`` (B, F, n_mfcc), ``phoneme_logits`` (B, F, 48),
        ``ctc_logits`` (B, F, 38) (unnormalised), ``reconstruction``
        (B, F, channels x 8: each frame's EMG samples, channel-major), plus ``hidden`` (B, F, dim), the
        encoder output, with F = ceil(T / 8); frames past
        ``frame_lengths(emg_lengths)`` are padding.

        Attention skips its padding mask when no item has padding frames (one
        utterance, or equal frame counts): the unmasked kernel is fused and
        faster (docs/measurements.md), and the outputs are the same. A
        traced graph cannot look at the data, so it keeps the mask unless
        ``padded_frames=False`` promises that every item fills all F frames
        (``silentspeech.inference.onnx`` exports one graph of each kind).
        """
        if emg.dim() != 3 or emg.shape[1] != self.config.emg_channels:
            raise ValueError(
                f"SpeechModel expects EMG of shape (batch, {self.config.emg_channels} channels, samples); "
                f"got shape {tuple(emg.shape)}"
            )
        batch, _, samples = emg.shape
        frames = -(-samples // EMG_PER_FRAME)
        emg = F.pad(emg, (0, frames * EMG_PER_FRAME - samples))
        if emg_lengths is not None:
            emg_lengths = check_lengths(emg_lengths, batch, samples, emg.device)
        elif samples % EMG_PER_FRAME:
            emg_lengths = torch.full((batch,), samples, device=emg.device)

        x, valid = emg, None
        for level, block in enumerate(self.downsample, start=1):
            if emg_lengths is not None:
                stride = 2**level
                valid_steps = (emg_lengths + stride - 1) // stride
                valid = (torch.arange(x.shape[2] // 2, device=x.device) < valid_steps[:, None]).unsqueeze(1).to(x.dtype)
            x = block(x, valid)

        padding_mask = None if valid is None else valid[:, 0] == 0
        if padding_mask is not None:
            # A trace cannot look at the data: it keeps the mask unless the caller promised no padding frames.
            needs_mask = padded_frames and (torch.jit.is_tracing() or bool(padding_mask.any()))
            padding_mask = padding_mask if needs_mask else None
        tokens = self.input_projection(x.transpose(1, 2))
        if self.envelope is not None:
            tokens = tokens + self.envelope(emg, valid)
        if token_mask is not None:
            if self.mask_token is None:
                raise ValueError("token_mask needs a model built with the 'reconstruction' output (it holds the mask token)")
            if token_mask.shape != tokens.shape[:2]:
                raise ValueError(f"token_mask must be (batch, frames) = {tuple(tokens.shape[:2])}, got {tuple(token_mask.shape)}")
            tokens = torch.where(token_mask.to(tokens.device)[..., None], self.mask_token.to(tokens.dtype), tokens)
        positions = torch.arange(frames, device=emg.device)
        hidden = self.encoder.encode_tokens(tokens, padding_mask, positions)
        outputs = {OUTPUT_KEYS[name]: head(hidden) for name, head in self.heads.items()}
        outputs["hidden"] = hidden
        return outputs
