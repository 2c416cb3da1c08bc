"""What the speech tasks (production and recognition) share: data from the prepared cache, model, training entry.

Training reads every utterance kind listed in ``train_kinds`` of the train
split; validation and test read the *silent* utterances of the dev and test
splits (the Gaddy protocol: dev and test are silent only). When the cache
has no manifest yet and ``data.root`` names a corpus, it is prepared first,
once per node (Lightning's ``prepare_data``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pytorch_lightning as pl
import torch

from silentspeech.data.cache import (
    MANIFEST,
    CachedUtterances,
    LengthBucketBatchSampler,
    collate_utterances,
    prepare_cache,
    read_manifest,
)
from silentspeech.models.speech import SpeechModel
from silentspeech.preprocessing import EMGPreprocessing, differing_constants
from silentspeech.tasks.engine import TaskModule, TrainerConfig, fit, training_loader

log = logging.getLogger(__name__)


@dataclass
class SpeechDataConfig:
    """Where the utterances come from and how they are batched."""

    #: Prepared cache folder (``silentspeech prepare``).
    cache: str = ""
    #: Gaddy-layout corpus prepared into ``cache`` when the cache has no manifest yet ("" = none).
    root: str = ""
    #: Dev/test split file for that preparation ("" = the corpus' own or the documented default).
    split_file: str = ""
    #: Cap on padded EMG samples per training batch (689.06 Hz samples x utterances).
    max_total_samples: int = 64_000
    #: Cap for validation and test batches (0 = the training cap).
    eval_max_total_samples: int = 0
    #: DataLoader worker processes (0 = load in the training process).
    workers: int = 0
    #: Utterance kinds to train on: ``silent`` and/or ``voiced``.
    train_kinds: list[str] = field(default_factory=lambda: ["silent", "voiced"])
    #: EMG preprocessing the cache is prepared with (and must have been prepared with): notch,
    #: high-pass, resampling and scaling constants (docs/design.md, *EMG preprocessing*).
    preprocessing: EMGPreprocessing = field(default_factory=EMGPreprocessing)
    #: Training augmentation: shift each utterance's EMG left by 0..max_shift samples
    #: (Gaddy reference code; docs/design.md, *EMG preprocessing*).
    max_shift: int = 7
    #: Training augmentation imitating moved electrodes: each utterance's channels are remixed by
    #: I + channel_mixing x N(0, 1) (gains on the diagonal, cross-talk off it; 0 = off; :func:`mix_channels`).
    channel_mixing: float = 0.0


def check_emg_batch(batch: dict, channels: int) -> None:
    """Raise ``ValueError`` naming the utterances when a batch's EMG does not have ``channels`` channels."""
    emg = batch["emg"]
    if emg.ndim != 3 or emg.shape[1] != channels:
        names = ", ".join(batch["ids"][:3]) + (" ..." if len(batch["ids"]) > 3 else "")
        raise ValueError(
            f"EMG batch of shape {tuple(emg.shape)} (utterances {names}) does not have the model's "
            f"{channels} channels (model.emg_channels); check the cache and the recipe"
        )


def shift_emg(emg: torch.Tensor, lengths: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Shift each item of ``emg`` (B, C, T) left by a random 0..``max_shift`` samples.

    The first samples are dropped and the end of each item (``lengths`` (B,)
    valid samples) is zero-filled, so lengths and frame counts stay as they
    are. Draws from torch's global generator.
    """
    if max_shift <= 0:
        return emg
    batch, _, samples = emg.shape
    shifts = torch.randint(0, max_shift + 1, (batch, 1), device=emg.device)
    source = torch.arange(samples, device=emg.device)[None] + shifts
    keep = source < lengths.to(emg.device)[:, None]
    shifted = torch.gather(emg, 2, source.clamp(max=samples - 1)[:, None].expand_as(emg))
    return shifted * keep[:, None].to(emg.dtype)


def mix_channels(emg: torch.Tensor, strength: float) -> torch.Tensor:
    """Remix each item's channels of ``emg`` (B, C, T) by its own matrix I + ``strength`` x N(0, 1) (C, C).

    A displaced electrode picks up its muscles in other proportions, and its
    contact changes its gain: to first order a small linear remix of the
    channels. The preprocessing before the cache is linear and per channel
    (notches, high-pass, resampling, one scale), so remixing preprocessed
    EMG is remixing the recording. Padding stays zero. Draws from torch's
    global generator; ``strength`` 0 returns ``emg`` as it is.
    """
    if strength <= 0:
        return emg
    batch, channels, _ = emg.shape
    mixing = torch.eye(channels, device=emg.device) + strength * torch.randn(batch, channels, channels, device=emg.device)
    return torch.bmm(mixing.to(emg.dtype), emg)


def augment_emg(emg: torch.Tensor, lengths: torch.Tensor, config: SpeechDataConfig) -> torch.Tensor:
    """The training augmentation of ``config`` on a batch ``emg`` (B, C, T) with ``lengths`` (B,) valid samples: shift, then remix."""
    return mix_channels(shift_emg(emg, lengths, config.max_shift), config.channel_mixing)


def check_cache_preprocessing(cache: str | os.PathLike, settings: dict, preprocessing: EMGPreprocessing) -> None:
    """Refuse a cache whose manifest ``settings`` record other EMG preprocessing than ``preprocessing``.

    The message names every differing constant, the cache's value and the
    recipe's, and the two ways out (prepare again into a new folder, or set
    the recipe's ``data.preprocessing`` to the cache's values).
    """
    differing = differing_constants(settings.get("preprocessing", {}), preprocessing, "recipe")
    if differing:
        raise ValueError(
            f"{cache} was prepared with other EMG preprocessing: {'; '.join(differing)}. Prepare it again into a new "
            "folder (silentspeech prepare, or data.cache=NEW with data.root) or set data.preprocessing.* to the cache's values"
        )


class SpeechData(pl.LightningDataModule):
    """Train, dev and test loaders over a prepared cache, sharded by DDP rank."""

    def __init__(self, config: SpeechDataConfig, trainer_config: TrainerConfig, n_mfcc: int, seed: int = 0) -> None:
        super().__init__()
        if not config.cache:
            raise ValueError("data.cache is not set: give the prepared cache folder (data.cache=PATH)")
        self.config = config
        self.trainer_config = trainer_config
        self.n_mfcc = n_mfcc
        self.seed = seed
        self._target_mean: torch.Tensor | None = None

    def prepare_data(self) -> None:
        cache = Path(self.config.cache)
        if (cache / MANIFEST).exists():
            return
        if not self.config.root:
            raise FileNotFoundError(f"{cache}: no prepared cache here ({MANIFEST} missing) and no data.root to prepare it from")
        log.info("preparing %s from %s", cache, self.config.root)
        report = prepare_cache(
            self.config.root, cache, split_file=self.config.split_file or None, workers=max(1, self.config.workers), n_mfcc=self.n_mfcc,
            preprocessing=self.config.preprocessing,
        )
        log.info("%s", report.summary())

    def setup(self, stage: str) -> None:
        cache = self.config.cache
        settings = read_manifest(cache)["settings"]
        if settings["n_mfcc"] != self.n_mfcc:
            raise ValueError(f"{cache} holds {settings['n_mfcc']} MFCC per frame but model.n_mfcc is {self.n_mfcc}; prepare the cache again or change the recipe")
        check_cache_preprocessing(cache, settings, self.config.preprocessing)
        if stage == "fit":
            self.train_set = CachedUtterances(cache, "train", kinds=self.config.train_kinds)
            if len(self.train_set) == 0:
                raise ValueError(f"{cache}: the train split holds no {'/'.join(self.config.train_kinds)} utterances")
        if stage in ("fit", "validate"):
            self.dev_set = self._silent(cache, "dev")
        if stage == "test":
            self.test_set = self._silent(cache, "test")

    @staticmethod
    def _silent(cache: str, split: str) -> CachedUtterances:
        data = CachedUtterances(cache, split, kinds=("silent",))
        if len(data) == 0:
            raise ValueError(f"{cache}: the {split} split holds no silent utterances to evaluate on")
        return data

    def target_mean(self, max_items: int = 512) -> torch.Tensor:
        """Mean target feature vector (F,) over up to ``max_items`` training utterances (evenly spread).

        The "predict the mean" baseline of speech production.
        """
        if self._target_mean is None:
            data = CachedUtterances(self.config.cache, "train", kinds=self.config.train_kinds)
            picks = torch.linspace(0, len(data) - 1, min(max_items, len(data))).round().long().unique()
            frames = torch.cat([data[int(i)]["target_features"] for i in picks])
            self._target_mean = frames.double().mean(0).float()
        return self._target_mean

    def _rank(self) -> tuple[int, int]:
        return (self.trainer.global_rank, self.trainer.world_size) if self.trainer is not None else (0, 1)

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        rank, world_size = self._rank()
        sampler = LengthBucketBatchSampler(
            self.train_set.lengths, self.config.max_total_samples, shuffle=True, seed=self.seed, rank=rank, world_size=world_size
        )
        return training_loader(self.train_set, sampler, self.trainer_config, collate_utterances, self.config.workers)

    def _eval_loader(self, data: CachedUtterances) -> torch.utils.data.DataLoader:
        rank, world_size = self._rank()
        cap = self.config.eval_max_total_samples or self.config.max_total_samples
        sampler = LengthBucketBatchSampler(data.lengths, cap, shuffle=False, rank=rank, world_size=world_size)
        return torch.utils.data.DataLoader(
            data,
            batch_sampler=sampler,
            collate_fn=collate_utterances,
            num_workers=self.config.workers,
            persistent_workers=self.config.workers > 0,  # not restarted at every validation
            pin_memory=torch.cuda.is_available(),
        )

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        return self._eval_loader(self.dev_set)

    def test_dataloader(self) -> torch.utils.data.DataLoader:
        return self._eval_loader(self.test_set)


def build_speech_model(config: Any) -> SpeechModel:
    """The :class:`SpeechModel` a production or recognition recipe describes (``config.model``)."""
    return SpeechModel(config.model)


def train_speech_task(task_class: type[TaskModule], config: Any, callbacks: Sequence[pl.Callback] = ()) -> Path:
    """Train ``task_class(model, config)`` on the recipe's cache; returns the run directory."""
    data = SpeechData(config.data, config.trainer, n_mfcc=config.model.n_mfcc, seed=config.seed)
    return fit(config, lambda: task_class(build_speech_model(config), config), data, callbacks)
