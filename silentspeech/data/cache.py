"""Preprocessing cache of a Gaddy-layout corpus, and the torch side that reads it.

:func:`prepare_cache` runs the slow part once - EMG filtering and resampling,
audio resampling and MFCC, phoneme frames - and writes::

    out/settings.json              what the arrays were made with (checked on resume)
    out/utterances/<id>.npz        emg (8 n, 8) float32 at 689.06 Hz, features (n, n_mfcc)
                                   float32 at 86.13 Hz, phonemes (n,) int64 when aligned,
                                   source (str, see source_fingerprint)
    out/manifest.json              one entry per utterance, written last

Every file is written atomically, so a killed run leaves only complete
entries; running it again reuses them (while their source files are
unchanged: each entry records their sizes and times) and writes the manifest
at the end. Worker processes die with the run (:mod:`silentspeech.workers`).
Bad utterances are skipped, counted and listed in the manifest's ``skipped``.

:class:`CachedUtterances` is the torch ``Dataset`` over one split;
:func:`collate_utterances` pads a batch (EMG channels first, as models take
it); :class:`LengthBucketBatchSampler` groups utterances of similar length
under a cap on padded EMG samples per batch.
"""

from __future__ import annotations

import json
import logging
import os
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from tqdm import tqdm

from silentspeech.atomic import atomic_save_npz, atomic_write_json
from silentspeech.data.gaddy import (
    CLOSED_VOCAB_KINDS,
    OPEN_VOCAB_KINDS,
    SPLITS,
    CorpusError,
    Skip,
    Utterance,
    load_utterance,
    read_corpus,
)
from silentspeech.preprocessing import EMG_PER_FRAME, EMGPreprocessing
from silentspeech.text import text_to_ids
from silentspeech.workers import each_result

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SETTINGS = "settings.json"
#: Bumped whenever the arrays' meaning changes, so old caches are not reused.
CACHE_VERSION = 1
#: Padding value of phoneme labels (torch's ``cross_entropy`` ``ignore_index``).
PHONEME_PAD = -100


def cache_file_name(utterance_id: str) -> str:
    """File name of an utterance's arrays: the id with ``/`` replaced by ``__``."""
    return utterance_id.replace("/", "__") + ".npz"


@dataclass
class PrepareReport:
    """What :func:`prepare_cache` did."""

    out: Path
    written: int
    reused: int
    skipped: list[Skip]
    splits: dict[str, dict[str, int]]  #: {split: {"silent": n, "voiced": n}}
    seconds: float

    def summary(self) -> str:
        lines = [
            f"cache at {self.out}: {self.written} utterances written, {self.reused} reused, "
            f"{len(self.skipped)} skipped, {self.seconds:.1f} s"
        ]
        for split, counts in self.splits.items():
            lines.append(f"  {split:<9} {counts['silent']:>6} silent {counts['voiced']:>6} voiced")
        for skip in self.skipped:
            lines.append(f"  skipped {skip.path}: {skip.reason}")
        return "\n".join(lines)


def source_fingerprint(utterance: Utterance) -> str:
    """Size and modification time of every file an entry is made from.

    The EMG, its session neighbours (they shape the filtering), the audio and
    the TextGrid: an entry is reused only while all of them are unchanged, so
    a corpus regenerated or corrected in place is prepared again.
    """
    paths = [
        utterance.emg_path,
        utterance.folder / f"{utterance.index - 1}_emg.npy",
        utterance.folder / f"{utterance.index + 1}_emg.npy",
        utterance.audio_path,
        utterance.alignment,
    ]
    parts = []
    for path in paths:
        stat = path.stat() if path is not None and path.exists() else None
        parts.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}" if stat else "-")
    return "|".join(parts)


def _cached_entry(path: Path) -> tuple[int, bool, str] | None:
    """``(n_frames, has_phonemes, source)`` of a cache entry, from headers; None if unusable."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            with archive.open("features.npy") as handle:
                version = np.lib.format.read_magic(handle)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, _ = read_header(handle)
            with archive.open("source.npy") as handle:
                source = str(np.lib.format.read_array(handle, allow_pickle=False))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    return int(shape[0]), "phonemes.npy" in names, source


def _prepare_one(utterance: Utterance, path: Path, preprocessing: EMGPreprocessing, n_mfcc: int) -> tuple[str, int, bool] | Skip:
    """Worker: compute and atomically save one utterance; a Skip for bad input."""
    source = source_fingerprint(utterance)
    try:
        arrays = load_utterance(utterance, preprocessing, n_mfcc)
    except CorpusError as err:
        return Skip(err.path, err.reason, utterance.kind)
    extra = {} if arrays.phonemes is None else {"phonemes": arrays.phonemes}
    atomic_save_npz(path, emg=arrays.emg, features=arrays.features, source=np.array(source), **extra)
    return utterance.id, arrays.features.shape[0], arrays.phonemes is not None


def _check_settings(out: Path, settings: dict) -> None:
    """Write ``settings.json``, or refuse a cache made with other settings."""
    path = out / SETTINGS
    if path.exists():
        try:
            previous = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            previous = None
        if previous != settings:
            raise CorpusError(
                path,
                f"this cache was made with other settings ({previous} != {settings}); "
                "choose another --out folder or delete this one",
            )
        return
    atomic_write_json(path, settings)


def prepare_cache(
    root: str | os.PathLike,
    out: str | os.PathLike,
    split_file: str | os.PathLike | None = None,
    workers: int = 2,
    n_mfcc: int = 80,
    closed_vocab: bool = False,
    preprocessing: EMGPreprocessing = EMGPreprocessing(),
    alignments: str | os.PathLike | None = None,
) -> PrepareReport:
    """Preprocess a Gaddy-layout corpus at ``root`` into a cache at ``out``.

    Args:
        root: corpus folder (see :func:`silentspeech.data.gaddy.read_corpus`).
        out: cache folder; created, or resumed when it holds a cache made with
            the same settings.
        split_file: dev/test sentence lists (``testset_largedev.json`` format);
            None uses the documented hash split.
        workers: processes; 0 or 1 works in this process.
        n_mfcc: MFCC coefficients per frame (80 is exactly invertible to log-mel).
        closed_vocab: cache the closed-vocabulary subset instead of the open one.
        preprocessing: EMG constants (``mains=50.0`` for 50 Hz recordings; ``rate`` and
            ``channels`` those of the corpus's raw EMG, e.g. 600 Hz and 6 for EMG-UKA).
        alignments: TextGrid folder; default ``<root>/text_alignments``.

    Returns a :class:`PrepareReport`. Raises :class:`CorpusError` for a root
    that is not a corpus, a bad split file or a cache made with other settings,
    and :class:`~silentspeech.preprocessing.EMGError` for a rate the speech
    models do not accept (:func:`~silentspeech.data.gaddy.read_corpus`).
    """
    started = time.perf_counter()
    out = Path(out)
    corpus = read_corpus(root, split_file=split_file, closed_vocab=closed_vocab, alignments=alignments, preprocessing=preprocessing)
    settings = {"version": CACHE_VERSION, "n_mfcc": n_mfcc, "preprocessing": asdict(preprocessing)}
    out.mkdir(parents=True, exist_ok=True)
    _check_settings(out, settings)
    kinds = CLOSED_VOCAB_KINDS if closed_vocab else OPEN_VOCAB_KINDS
    if not corpus.utterances:
        subset = "closed-vocabulary" if closed_vocab else "open-vocabulary"
        raise CorpusError(corpus.root, f"no usable {subset} utterances to prepare (see `silentspeech inspect`)")
    skipped = [s for s in corpus.skipped if s.kind in kinds]

    done, todo = _reusable_entries(corpus.utterances, out)
    reused_ids = set(done)
    for result in _prepare_all(todo, preprocessing, n_mfcc, workers):
        if isinstance(result, Skip):
            log.warning("skipped %s: %s", result.path, result.reason)
            skipped.append(result)
        else:
            done[result[0]] = result[1:]

    entries = _manifest_entries(corpus.utterances, done, skipped)
    manifest = {
        "version": CACHE_VERSION,
        "root": str(corpus.root.resolve()),
        "closed_vocab": closed_vocab,
        "split_source": corpus.split_source,
        "settings": settings,
        "utterances": entries,
        "skipped": [asdict(s) for s in skipped],
    }
    atomic_write_json(out / MANIFEST, manifest)
    reused = sum(e["id"] in reused_ids for e in entries)  # counted from the manifest, so the summary agrees with it
    return PrepareReport(out, len(entries) - reused, reused, skipped, _split_counts(entries), time.perf_counter() - started)


def _reusable_entries(utterances: Sequence[Utterance], out: Path) -> tuple[dict[str, tuple[int, bool]], list[tuple[Utterance, Path]]]:
    """``({id: (n_frames, has_phonemes)} of entries the cache holds for unchanged sources, [(utterance, path)] to prepare)``."""
    done: dict[str, tuple[int, bool]] = {}
    todo = []
    for u in utterances:
        path = out / "utterances" / cache_file_name(u.id)
        entry = _cached_entry(path) if path.exists() else None
        if entry is not None and entry[2] == source_fingerprint(u):
            done[u.id] = entry[:2]
        else:
            todo.append((u, path))
    return done, todo


def _prepare_all(
    todo: Sequence[tuple[Utterance, Path]], preprocessing: EMGPreprocessing, n_mfcc: int, workers: int
) -> list[tuple[str, int, bool] | Skip]:
    """:func:`_prepare_one` for every ``(utterance, path)``, in ``workers`` processes (0 or 1: in this one), with a progress bar."""
    results = []
    calls = [(u, path, preprocessing, n_mfcc) for u, path in todo]
    with tqdm(total=len(todo), desc="prepare", unit="utt", disable=not todo, mininterval=1.0) as progress:
        for result in each_result(_prepare_one, calls, workers):
            results.append(result)
            progress.update()
    return results


def _manifest_entries(utterances: Sequence[Utterance], done: dict[str, tuple[int, bool]], skipped: list[Skip]) -> list[dict]:
    """Manifest entries of the prepared utterances, in corpus order.

    A silent utterance whose voiced twin was skipped takes another voiced
    recording of its sentence as its twin (its ``twin`` is updated), else it
    is skipped too and appended to ``skipped``: its targets come from the twin.
    """
    entries = []
    for u in utterances:
        if u.id not in done:
            continue
        if u.silent and u.twin not in done:
            # Another voiced recording of the sentence stands in, the first as read_corpus orders them,
            # so that prepare keeps what `inspect` (which drops bad twins before pairing) keeps.
            u.twin = next((v.id for v in utterances if not v.silent and v.sentence == u.sentence and v.id in done), u.twin)
        if u.silent and u.twin not in done:
            skip = Skip(str(u.emg_path), f"its voiced twin {u.twin} was skipped", u.kind)
            log.warning("skipped %s: %s", skip.path, skip.reason)
            skipped.append(skip)
            continue
        n_frames, has_phonemes = done[u.id]
        entries.append(
            {
                "id": u.id,
                "split": u.split,
                "silent": u.silent,
                "twin": u.twin,
                "kind": u.kind,
                "session": u.session,
                "book": u.book,
                "sentence_index": u.sentence_index,
                "text": u.text,
                "n_frames": n_frames,
                "has_phonemes": has_phonemes,
                "audio_path": str(u.audio_path),
                "file": f"utterances/{cache_file_name(u.id)}",
            }
        )
    return entries


def _split_counts(entries: Sequence[dict]) -> dict[str, dict[str, int]]:
    """``{split: {"silent": n, "voiced": n}}`` of manifest entries."""
    splits = {s: {"silent": 0, "voiced": 0} for s in SPLITS}
    for e in entries:
        splits[e["split"]]["silent" if e["silent"] else "voiced"] += 1
    return splits


def read_manifest(cache_dir: str | os.PathLike) -> dict:
    """The manifest of a cache; :class:`CorpusError` when it is missing or damaged."""
    path = Path(cache_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise CorpusError(path, "missing: run `silentspeech prepare` first (or let it finish)") from None
    except (OSError, json.JSONDecodeError) as err:
        raise CorpusError(path, f"unreadable manifest ({err})") from None
    if manifest.get("version") != CACHE_VERSION or not isinstance(manifest.get("utterances"), list):
        raise CorpusError(path, f"not a version {CACHE_VERSION} cache manifest; prepare the cache again")
    return manifest


class CachedUtterances(torch.utils.data.Dataset):
    """Utterances of one split of a prepared cache.

    Items are dicts: ``id``; ``emg`` (T, 8) float32 at 689.06 Hz with
    T = 8 x n_frames; ``features`` (n_frames, F) of the utterance's own audio;
    ``target_features`` (M, F): the own features for voiced utterances, the
    voiced twin's for silent ones; ``phonemes`` (M,) int64 aligned with
    ``target_features``, or None without alignment; ``text`` (normalised);
    ``text_ids`` (L,) int64 CTC labels; ``silent`` bool.

    ``lengths[i]`` is item i's EMG sample count (for the batch sampler).
    """

    def __init__(self, cache_dir: str | os.PathLike, split: str = "train", kinds: Sequence[str] = ("silent", "voiced")):
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        if not set(kinds) <= {"silent", "voiced"}:
            raise ValueError(f"kinds must be 'silent' and/or 'voiced', got {tuple(kinds)}")
        self.cache_dir = Path(cache_dir)
        manifest = read_manifest(cache_dir)
        self.by_id: dict[str, dict] = {e["id"]: e for e in manifest["utterances"]}
        self.entries: list[dict] = [
            e for e in manifest["utterances"] if e["split"] == split and ("silent" if e["silent"] else "voiced") in kinds
        ]
        self.lengths: list[int] = [EMG_PER_FRAME * e["n_frames"] for e in self.entries]

    def __len__(self) -> int:
        return len(self.entries)

    def _arrays(self, entry: dict) -> dict[str, np.ndarray]:
        path = self.cache_dir / entry["file"]
        try:
            with np.load(path, allow_pickle=False) as npz:
                return {name: npz[name] for name in npz.files}
        except Exception as err:  # missing or damaged entry
            raise CorpusError(path, f"cannot read cache entry ({err}); prepare the cache again") from None

    def __getitem__(self, index: int) -> dict:
        entry = self.entries[index]
        own = self._arrays(entry)
        if entry["silent"]:
            twin = self.by_id.get(entry["twin"])
            if twin is None:
                raise CorpusError(self.cache_dir / MANIFEST, f"{entry['id']}: voiced twin {entry['twin']} is not in the cache")
            target = self._arrays(twin)
        else:
            target = own
        phonemes = target.get("phonemes")
        return {
            "id": entry["id"],
            "emg": torch.from_numpy(own["emg"]),
            "features": torch.from_numpy(own["features"]),
            "target_features": torch.from_numpy(target["features"]),
            "phonemes": None if phonemes is None else torch.from_numpy(phonemes),
            "text": entry["text"],
            "text_ids": torch.from_numpy(text_to_ids(entry["text"])),
            "silent": bool(entry["silent"]),
        }


def _pad(tensors: list[torch.Tensor], value: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack along a new batch axis, padding axis 0 with ``value``; also the lengths."""
    lengths = torch.tensor([t.shape[0] for t in tensors], dtype=torch.long)
    return torch.nn.utils.rnn.pad_sequence(tensors, batch_first=True, padding_value=value), lengths


def collate_utterances(items: list[dict]) -> dict:
    """Batch :class:`CachedUtterances` items.

    Returns ``emg`` (B, C, T_max) float32 zero-padded (channels first),
    ``emg_lengths`` (B,); ``target_features`` (B, M_max, F), ``target_lengths``;
    ``features`` (B, N_max, F), ``feature_lengths``; ``phonemes`` (B, M_max)
    int64 padded with -100 (all -100 where an item has no labels),
    ``has_phonemes`` (B,) bool; ``text_ids`` (B, L_max) int64 padded with 0,
    ``text_lengths``; ``silent`` (B,) bool; ``texts``; ``ids``.
    """
    emg, emg_lengths = _pad([item["emg"] for item in items])
    target, target_lengths = _pad([item["target_features"] for item in items])
    features, feature_lengths = _pad([item["features"] for item in items])
    phonemes = torch.full(target.shape[:2], PHONEME_PAD, dtype=torch.long)
    for row, item in enumerate(items):
        if item["phonemes"] is not None:
            phonemes[row, : item["phonemes"].shape[0]] = item["phonemes"]
    text_ids, text_lengths = _pad([item["text_ids"] for item in items], value=0)
    return {
        "emg": emg.transpose(1, 2).contiguous(),
        "emg_lengths": emg_lengths,
        "target_features": target,
        "target_lengths": target_lengths,
        "features": features,
        "feature_lengths": feature_lengths,
        "phonemes": phonemes,
        "has_phonemes": torch.tensor([item["phonemes"] is not None for item in items]),
        "text_ids": text_ids.long(),
        "text_lengths": text_lengths,
        "silent": torch.tensor([item["silent"] for item in items]),
        "texts": [item["text"] for item in items],
        "ids": [item["id"] for item in items],
    }


class LengthBucketBatchSampler(torch.utils.data.Sampler):
    """Batches of similar-length utterances under a cap on padded EMG samples.

    A batch's size is ``len(batch) * longest item`` (what the padded tensor
    holds), kept at most ``max_total_samples``; an item longer than the cap
    forms a batch of its own. With ``shuffle``, indices are permuted, sorted
    by length within pools of :attr:`pool_size`, packed, and the batches
    permuted; without it, items are packed in length order. The order is a
    pure function of ``(seed, epoch)``. Batches are dealt round-robin to
    ``world_size`` ranks, the list wrapped around so that every rank gets the
    same number.
    """

    #: Items sorted by length together when shuffling: larger pools pad less, mix less.
    pool_size = 256

    def __init__(
        self,
        lengths: Sequence[int],
        max_total_samples: int,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        if max_total_samples <= 0:
            raise ValueError(f"max_total_samples must be positive, got {max_total_samples}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world_size {world_size}")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.max_total_samples = int(max_total_samples)
        self.shuffle, self.seed, self.rank, self.world_size = shuffle, int(seed), rank, world_size
        self.epoch, self.start_batch = 0, 0
        self._cached: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch's order; skip this rank's first ``start_batch`` batches (resume)."""
        self.epoch, self.start_batch = int(epoch), int(start_batch)

    def _pack(self, order: np.ndarray) -> list[list[int]]:
        batches, batch, longest = [], [], 0
        for index in order.tolist():
            length = int(self.lengths[index])
            if batch and (len(batch) + 1) * max(longest, length) > self.max_total_samples:
                batches.append(batch)
                batch, longest = [], 0
            batch.append(index)
            longest = max(longest, length)
        if batch:
            batches.append(batch)
        return batches

    def rank_batches(self) -> list[list[int]]:
        """All of this rank's batches of the current epoch (before ``start_batch``)."""
        if self._cached is not None and self._cached[0] == self.epoch:
            return self._cached[1]
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch])
            order = rng.permutation(len(self.lengths))
            batches = []
            for start in range(0, len(order), self.pool_size):
                pool = order[start : start + self.pool_size]
                batches += self._pack(pool[np.argsort(self.lengths[pool], kind="stable")])
            batches = [batches[i] for i in rng.permutation(len(batches))]
        else:
            batches = self._pack(np.argsort(self.lengths, kind="stable"))
        per_rank = -(-len(batches) // self.world_size)
        mine = [batches[i % len(batches)] for i in range(self.rank, per_rank * self.world_size, self.world_size)]
        self._cached = (self.epoch, mine)
        return mine

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.rank_batches()[self.start_batch :]

    def __len__(self) -> int:
        return max(0, len(self.rank_batches()) - self.start_batch)
