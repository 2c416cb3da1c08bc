"""Reader of the Gaddy & Klein silent-speech EMG corpus.

Corpus: Gaddy & Klein 2020 (Zenodo record 4064409); conventions from their
reference code, github.com/dgaddy/silent_speech (docs/design.md, *The Gaddy
silent-speech corpus*).

Layout under the corpus root::

    voiced_parallel_data/<session>/          silent_parallel_data/<session>_silent/
    nonparallel_data/<session>/              closed_vocab/voiced/<session>/
    closed_vocab/silent/<session>_silent/    text_alignments/<session>/<session>_<i>_audio.TextGrid

with ``{i}_info.json``, ``{i}_emg.npy`` (raw EMG (samples, 8) at 1 kHz) and
``{i}_audio_clean.flac`` (16 kHz) per utterance ``i``. Another corpus in this
layout (EMG-UKA's 6 channels at 600 Hz, say) is read with its rate and channel
count in the :class:`~silentspeech.preprocessing.EMGPreprocessing` given.

:func:`read_corpus` scans the folders, skips the silence clips
(``sentence_index == -1``), pairs every silent utterance with a voiced twin
of the same ``(book, sentence_index)``, assigns splits and keeps a count of
every bad utterance it skipped (:class:`Skip`, with the file and the reason).
It reads only metadata and array headers unless asked to check values, so a
scan of the whole corpus takes seconds. The single-file readers
(:func:`read_info`, :func:`read_emg_header`, :func:`load_utterance` ...)
raise :class:`CorpusError` naming the file instead.

Splits: a split file (format of ``testset_largedev.json``: ``{"dev": [[book,
idx], ...], "test": [...]}``) given by path, else one lying in the corpus
root or beside its ``emg_data`` folder (:func:`find_split_file`), else :func:`hash_split`, a stable hash of
``(book, sentence_index)`` that puts about 10 % of the sentences in dev and
10 % in test. Only silent utterances are evaluated: a voiced
utterance of a dev or test sentence gets the split ``"excluded"`` - it stays
out of every split and is kept only as its silent twin's target.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from silentspeech.data.emg_files import npy_format_problem, read_emg_file
from silentspeech.features import AUDIO_RATE, FRAME_RATE, HOP_LENGTH, AudioError, acoustic_features, load_audio, read_audio
from silentspeech.phonemes import TextGridError, phoneme_frames, read_textgrid
from silentspeech.preprocessing import (
    EMG_PER_FRAME,
    MIN_FILTER_SAMPLES,
    EMGError,
    EMGPreprocessing,
    align_to_frames,
    check_emg_rate,
    preprocess_emg,
)
from silentspeech.text import normalize_text

log = logging.getLogger(__name__)

#: Corpus folder of each utterance kind, and whether its utterances are silent.
KIND_FOLDERS: dict[str, tuple[str, bool]] = {
    "voiced_parallel": ("voiced_parallel_data", False),
    "silent_parallel": ("silent_parallel_data", True),
    "nonparallel": ("nonparallel_data", False),
    "closed_vocab_voiced": ("closed_vocab/voiced", False),
    "closed_vocab_silent": ("closed_vocab/silent", True),
}
#: Kinds of the open-vocabulary corpus, voiced twins looked up in this order.
OPEN_VOCAB_KINDS = ("voiced_parallel", "nonparallel", "silent_parallel")
#: Kinds of the closed-vocabulary (dates and times) subset.
CLOSED_VOCAB_KINDS = ("closed_vocab_voiced", "closed_vocab_silent")
#: Rate of the recorded audio and of the ``chunks`` audio counts, Hz.
RAW_AUDIO_RATE = 16000
#: Largest disagreement between ``chunks`` and the audio file's length, s.
AUDIO_LENGTH_TOLERANCE_S = 0.05
#: Split files looked for in a corpus root when none is given, in this order
#: (``testset.json``: the synthetic corpus's; the other two: the Gaddy code's).
SPLIT_FILE_NAMES = ("testset.json", "testset_largedev.json", "testset_origdev.json")
#: Splits; "excluded" marks voiced recordings of dev/test sentences.
SPLITS = ("train", "dev", "test", "excluded")


class CorpusError(ValueError):
    """A corpus file that cannot be used: ``str(err)`` is ``"<path>: <reason>"``."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason

    @classmethod
    def wrap(cls, path: str | os.PathLike, err: Exception) -> "CorpusError":
        """A CorpusError for ``path`` from another error whose message may already start with it."""
        message, prefix = str(err), f"{path}: "
        return cls(path, message[len(prefix) :] if message.startswith(prefix) else message)


@dataclass(frozen=True)
class Skip:
    """An utterance left out of the corpus: the offending file and why."""

    path: str
    reason: str
    kind: str


@dataclass
class Utterance:
    """One usable utterance; arrays are read later by :func:`load_utterance`."""

    id: str  #: e.g. ``silent_parallel_data/5-4_silent/12``
    kind: str  #: a key of :data:`KIND_FOLDERS`
    silent: bool
    session: str  #: session folder name, e.g. ``5-4_silent``
    folder: Path
    index: int
    book: str
    sentence_index: int
    text: str  #: normalised with :func:`silentspeech.text.normalize_text`
    emg_samples: int  #: raw EMG samples at 1 kHz
    audio_path: Path
    alignment: Path | None = None  #: MFA TextGrid, when one exists
    split: str = "train"
    twin: str | None = None  #: id of the voiced twin (silent utterances only)

    @property
    def emg_path(self) -> Path:
        return self.folder / f"{self.index}_emg.npy"

    @property
    def sentence(self) -> tuple[str, int]:
        return (self.book, self.sentence_index)


@dataclass
class Session:
    """Counts of one session folder, for ``silentspeech inspect``."""

    name: str
    kind: str
    utterances: int = 0
    silence_clips: int = 0
    skipped: int = 0
    seconds: float = 0.0


@dataclass
class Corpus:
    """Result of :func:`read_corpus`.

    ``utterances`` is the selected subset (open or closed vocabulary) with
    twins and splits assigned; ``scanned`` every usable utterance of every
    kind; ``skipped`` every bad utterance found, with its file and reason.
    """

    root: Path
    closed_vocab: bool
    split_source: str
    utterances: list[Utterance]
    scanned: list[Utterance]
    skipped: list[Skip]
    sessions: list[Session]
    missing_alignments: int = 0
    #: The split file that defined dev and test; None for the hash split.
    split_file: Path | None = None
    by_id: dict[str, Utterance] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_id = {u.id: u for u in self.utterances}

    def split_counts(self) -> dict[str, Counter]:
        """``{split: Counter(silent=..., voiced=...)}`` of the selected utterances."""
        counts: dict[str, Counter] = {s: Counter() for s in SPLITS}
        for u in self.utterances:
            counts[u.split]["silent" if u.silent else "voiced"] += 1
        return counts

    def summary(self) -> str:
        """Human-readable report: sessions, counts and hours by kind, splits, problems."""
        lines = [f"Gaddy corpus at {self.root}", "", f"{'session':<34}{'utterances':>11}{'-1 clips':>10}{'skipped':>9}{'hours':>8}"]
        for s in self.sessions:
            name = f"{KIND_FOLDERS[s.kind][0]}/{s.name}"
            lines.append(f"{name:<34}{s.utterances:>11}{s.silence_clips:>10}{s.skipped:>9}{s.seconds / 3600:>8.3f}")
        lines += ["", f"{'kind':<34}{'utterances':>11}{'-1 clips':>10}{'skipped':>9}{'hours':>8}"]
        for kind in KIND_FOLDERS:
            group = [s for s in self.sessions if s.kind == kind]
            if group:
                lines.append(
                    f"{kind.replace('_', ' '):<34}{sum(s.utterances for s in group):>11}"
                    f"{sum(s.silence_clips for s in group):>10}{sum(s.skipped for s in group):>9}"
                    f"{sum(s.seconds for s in group) / 3600:>8.3f}"
                )
        subset = "closed vocabulary" if self.closed_vocab else "open vocabulary"
        lines += ["", f"splits of the {subset} subset ({self.split_source}; 'excluded' = voiced recordings of dev/test sentences):"]
        for split, counts in self.split_counts().items():
            lines.append(f"  {split:<9} {counts['silent']:>6} silent {counts['voiced']:>6} voiced")
        if self.missing_alignments:
            lines.append(f"  {self.missing_alignments} selected utterances have no phoneme alignment (TextGrid)")
        lines += ["", f"problems: {len(self.skipped)} utterances skipped"]
        for reason, count in Counter(_reason_class(s.reason) for s in self.skipped).most_common():
            lines.append(f"  {count:>6} x {reason}")
        for s in self.skipped:
            lines.append(f"  {s.path}: {s.reason}")
        return "\n".join(lines)


def _reason_class(reason: str) -> str:
    """The reason without its details (numbers, parentheses), to count skips of one kind together."""
    return re.sub(r"\d+", "#", re.sub(r"\(.*\)", "(...)", reason))


def find_corpus_root(root: str | os.PathLike) -> Path:
    """The folder holding the kind folders: ``root`` itself or ``root/emg_data``.

    Raises :class:`CorpusError` when neither holds any of :data:`KIND_FOLDERS`.
    """
    root = Path(root)
    for candidate in (root, root / "emg_data"):
        if any((candidate / folder).is_dir() for folder, _ in KIND_FOLDERS.values()):
            return candidate
    if not root.is_dir():
        raise CorpusError(root, "no such folder")
    names = ", ".join(folder for folder, _ in KIND_FOLDERS.values())
    raise CorpusError(root, f"not a Gaddy corpus (none of {names} found)")


def require_regular_file(path: str | os.PathLike) -> None:
    """Raise :class:`CorpusError` unless ``path`` is a regular file.

    Checked before opening: opening a FIFO named like a corpus file would
    block for ever, and a folder fails with a less clear message.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise CorpusError(path, "missing") from None
    except OSError as err:
        raise CorpusError(path, f"cannot read ({err.strerror})") from None
    if not stat.S_ISREG(mode):
        raise CorpusError(path, "not a regular file (a folder, FIFO or device under a corpus file's name)")


def read_info(path: str | os.PathLike) -> dict:
    """Read and validate a ``{i}_info.json``.

    Returns the dict with ``book`` (str), ``sentence_index`` (int), ``text``
    (str) and ``chunks`` (list of ``[emg, audio, button]`` sample counts, or
    None when absent). Raises :class:`CorpusError` naming the file.
    """
    require_regular_file(path)
    try:
        with open(path, encoding="utf-8") as handle:
            info = json.load(handle)
    except OSError as err:
        raise CorpusError(path, f"cannot read ({err.strerror})") from None
    except UnicodeDecodeError:
        raise CorpusError(path, "not UTF-8 text (a Gaddy info file is UTF-8 JSON)") from None
    except json.JSONDecodeError as err:
        raise CorpusError(path, f"not valid JSON ({err})") from None
    if not isinstance(info, dict):
        raise CorpusError(path, f"expected a JSON object, got a JSON {type(info).__name__}")
    for key, kind in (("book", str), ("sentence_index", int), ("text", str)):
        if not isinstance(info.get(key), kind) or isinstance(info.get(key), bool):
            raise CorpusError(path, f"field {key!r} missing or not a {kind.__name__} (got {info.get(key)!r})")
    chunks = info.get("chunks")
    if chunks is not None:
        valid = isinstance(chunks, list) and all(
            isinstance(c, list) and len(c) >= 2 and all(isinstance(v, int) and v >= 0 for v in c) for c in chunks
        )
        if not valid:
            raise CorpusError(path, "field 'chunks' is not a list of [emg, audio, button] sample counts")
    return {"book": info["book"], "sentence_index": info["sentence_index"], "text": info["text"], "chunks": chunks}


def read_emg_header(path: str | os.PathLike, channels: int = 8) -> int:
    """Number of samples of an EMG ``.npy`` ``(samples, channels)``, from its header.

    Memory-maps the file, so a truncated file, a non-numeric dtype or a wrong
    channel count is caught without reading the data. Raises
    :class:`CorpusError` naming the file.
    """
    require_regular_file(path)
    problem = npy_format_problem(path)
    if problem:
        raise CorpusError(path, problem)
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as err:  # numpy raises ValueError, EOFError, OSError for damaged files
        raise CorpusError(path, f"not a readable .npy array, truncated or damaged ({err})") from None
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise CorpusError(path, f"EMG is not numeric (dtype {array.dtype})")
    if np.iscomplexobj(array):
        raise CorpusError(path, f"EMG is complex (dtype {array.dtype}); expected real samples")
    if array.ndim != 2 or array.shape[1] != channels:
        raise CorpusError(path, f"expected EMG of shape (samples, {channels}), got {array.shape}")
    if array.shape[0] == 0:
        raise CorpusError(path, "EMG holds no samples")
    return int(array.shape[0])


def check_utterance(utterance: "Utterance", preprocessing: EMGPreprocessing = EMGPreprocessing()) -> None:
    """Raise :class:`CorpusError` for every utterance :func:`load_utterance` would refuse, without its work.

    Reads the EMG, the audio and the TextGrid in full through the same
    readers :func:`load_utterance` uses (NaN or infinite EMG or audio, a bad
    TextGrid) and applies its length rules (EMG long enough to filter, at
    least one acoustic frame) from the lengths alone, without filtering,
    resampling or MFCC. ``silentspeech inspect`` runs it on every utterance
    so that it finds what ``silentspeech prepare`` finds.
    """
    emg_path = utterance.emg_path
    try:
        emg = read_emg_file(emg_path, rate=preprocessing.rate, channels=preprocessing.channels).emg
    except EMGError as err:
        raise CorpusError.wrap(emg_path, err) from None
    if emg.shape[0] < MIN_FILTER_SAMPLES:
        raise CorpusError(emg_path, f"{emg.shape[0]} samples is too short to filter (need at least {MIN_FILTER_SAMPLES})")
    try:
        audio, audio_rate = read_audio(utterance.audio_path)
    except AudioError as err:
        raise CorpusError.wrap(utterance.audio_path, err) from None
    emg_frames = round(emg.shape[0] * preprocessing.target_rate / preprocessing.rate) // EMG_PER_FRAME
    audio_frames = round(audio.shape[0] * AUDIO_RATE / audio_rate) // HOP_LENGTH
    n_frames = min(emg_frames, audio_frames)
    if n_frames == 0:
        raise CorpusError(emg_path, "utterance is shorter than one acoustic frame")
    if utterance.alignment is not None:
        try:
            phoneme_frames(read_textgrid(utterance.alignment), n_frames, FRAME_RATE, source=str(utterance.alignment))
        except TextGridError as err:
            raise CorpusError.wrap(utterance.alignment, err) from None


def read_audio_header(path: str | os.PathLike) -> float:
    """Duration in seconds of an audio file, from its header; :class:`CorpusError` if unreadable."""
    require_regular_file(path)
    try:
        info = sf.info(os.fspath(path))
    except Exception as err:  # soundfile raises several types for damaged files
        raise CorpusError(path, f"unreadable audio ({err})") from None
    if info.frames <= 0:
        raise CorpusError(path, "audio file holds no samples")
    return info.frames / info.samplerate


def audio_file(folder: Path, index: int) -> Path:
    """``{i}_audio_clean.flac``, or the raw ``{i}_audio.flac`` where no clean one exists."""
    clean = folder / f"{index}_audio_clean.flac"
    raw = folder / f"{index}_audio.flac"
    return raw if not clean.exists() and raw.exists() else clean


def _check_chunks(info_path: Path, chunks: list, emg_path: Path, emg_samples: int, audio_path: Path, audio_s: float) -> None:
    emg_total = sum(c[0] for c in chunks)
    if emg_total != emg_samples:
        raise CorpusError(info_path, f"chunks sum to {emg_total} EMG samples but {emg_path.name} holds {emg_samples}")
    chunk_s = sum(c[1] for c in chunks) / RAW_AUDIO_RATE
    if abs(chunk_s - audio_s) > AUDIO_LENGTH_TOLERANCE_S:
        raise CorpusError(info_path, f"chunks sum to {chunk_s:.3f} s of audio but {audio_path.name} lasts {audio_s:.3f} s")


def _utterance_indices(folder: Path) -> tuple[list[int], list[Path]]:
    indices, bad = [], []
    for path in folder.glob("*_info.json"):
        stem = path.name[: -len("_info.json")]
        (indices.append(int(stem)) if stem.isdigit() else bad.append(path))
    return sorted(indices), sorted(bad)


def scan_session(
    folder: Path, kind: str, alignments: Path, check_values: bool = False, preprocessing: EMGPreprocessing = EMGPreprocessing()
) -> tuple[list[Utterance], list[Skip], Session]:
    """Read every utterance of one session folder; bad ones become :class:`Skip` records.

    ``preprocessing`` gives the corpus's raw EMG rate (for the session's
    seconds) and channel count, and what ``check_values`` checks against.
    """
    folder_name, silent = KIND_FOLDERS[kind]
    session = Session(name=folder.name, kind=kind)
    utterances, skipped = [], []
    indices, odd_names = _utterance_indices(folder)
    for path in odd_names:
        skipped.append(Skip(str(path), "info file name does not start with an utterance number", kind))
    for index in indices:
        info_path = folder / f"{index}_info.json"
        try:
            info = read_info(info_path)
            if info["sentence_index"] == -1:
                session.silence_clips += 1
                continue
            text = normalize_text(info["text"])
            if not text:
                raise CorpusError(info_path, f"empty text (sentence_index {info['sentence_index']})")
            emg_path = folder / f"{index}_emg.npy"
            emg_samples = read_emg_header(emg_path, preprocessing.channels)
            audio_path = audio_file(folder, index)
            audio_s = read_audio_header(audio_path)
            if info["chunks"] is not None:
                _check_chunks(info_path, info["chunks"], emg_path, emg_samples, audio_path, audio_s)
            alignment = alignments / folder.name / f"{folder.name}_{index}_audio.TextGrid"
            utterance = Utterance(
                id=f"{folder_name}/{folder.name}/{index}",
                kind=kind,
                silent=silent,
                session=folder.name,
                folder=folder,
                index=index,
                book=info["book"],
                sentence_index=info["sentence_index"],
                text=text,
                emg_samples=emg_samples,
                audio_path=audio_path.resolve(),
                alignment=alignment if alignment.is_file() else None,
            )
            if check_values:
                check_utterance(utterance, preprocessing)
        except CorpusError as err:
            skipped.append(Skip(err.path, err.reason, kind))
            log.debug("skipped %s", err)
            continue
        utterances.append(utterance)
        session.seconds += emg_samples / preprocessing.rate
    session.utterances = len(utterances)
    session.skipped = len(skipped)
    return utterances, skipped, session


def read_split_file(path: str | os.PathLike) -> tuple[set[tuple[str, int]], set[tuple[str, int]]]:
    """Dev and test sentence sets of a split file ``{"dev": [[book, idx], ...], "test": [...]}``.

    A sentence listed in both counts as test (logged). Raises
    :class:`CorpusError` naming the file when it is unreadable or malformed.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            splits = json.load(handle)
    except OSError as err:
        raise CorpusError(path, f"cannot read split file ({err.strerror})") from None
    except json.JSONDecodeError as err:
        raise CorpusError(path, f"split file is not valid JSON ({err})") from None
    sets = []
    for name in ("dev", "test"):
        pairs = splits.get(name) if isinstance(splits, dict) else None
        if not isinstance(pairs, list) or not all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) and isinstance(p[1], int) for p in pairs
        ):
            raise CorpusError(path, f"split file needs a {name!r} list of [book, sentence_index] pairs")
        sets.append({(book, index) for book, index in pairs})
    dev, test = sets
    if dev & test:
        # The published testset_origdev.json lists two sentences in both; the test set keeps them.
        log.warning("%s: %d sentences are in both dev and test; they count as test: %s", path, len(dev & test), sorted(dev & test))
    return dev - test, test


def find_split_file(root: str | os.PathLike) -> Path | None:
    """The split file shipped with the corpus, if any: one of :data:`SPLIT_FILE_NAMES`.

    Looked for in ``root``, in ``root/emg_data`` and, when ``root`` is the
    ``emg_data`` folder itself, beside it (where the README's Gaddy steps copy
    ``testset_largedev.json``). Every command that takes a corpus root
    (``inspect``, ``prepare``, ``lm build``) finds it here. Raises
    :class:`CorpusError` when one folder holds several: which one the
    dev/test sentences come from must not be a guess.
    """
    root = Path(root)
    folders = [root, root / "emg_data"]
    if root.resolve().name == "emg_data":
        folders.append(root.resolve().parent)
    for folder in folders:
        found = [folder / name for name in SPLIT_FILE_NAMES if (folder / name).is_file()]
        if len(found) > 1:
            names = ", ".join(path.name for path in found)
            raise CorpusError(folder, f"holds several split files ({names}); keep one there or pick one with --split-file")
        if found:
            return found[0]
    return None


def hash_split(sentence: tuple[str, int], dev_fraction: float = 0.1, test_fraction: float = 0.1) -> str:
    """Deterministic split of a ``(book, sentence_index)``: "train", "dev" or "test".

    Uses the first 8 bytes of SHA-256 of ``"{book}\\t{index}"`` as a uniform
    number in [0, 1): below ``dev_fraction`` is dev, the next
    ``test_fraction`` is test. Stable across machines and Python versions.
    """
    digest = hashlib.sha256(f"{sentence[0]}\t{sentence[1]}".encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    return "dev" if u < dev_fraction else "test" if u < dev_fraction + test_fraction else "train"


def _dev_and_test(
    root: str | os.PathLike, split_file: str | os.PathLike | None, silent_sentences: set[tuple[str, int]], closed_vocab: bool = False
) -> tuple[set[tuple[str, int]], set[tuple[str, int]], str, Path | None]:
    """``(dev sentences, test sentences, where the split came from, the split file used or None)``.

    The split file given, else the corpus's own (:func:`find_split_file`),
    else the hash split. The published split files list only open-vocabulary
    (book) sentences: for the closed-vocabulary subset a split file naming
    none of its sentences would put every utterance in train, so that subset
    falls back to the hash split of its own prompts, with a warning.
    """
    if split_file is None:
        split_file = find_split_file(root)
        if split_file is not None:
            log.info("using the corpus's own split file %s", split_file)
    hash_source = "hash split: about 10 % dev, 10 % test of the silent sentences"
    if split_file is not None:
        dev, test = read_split_file(split_file)
        if (dev | test) & silent_sentences:
            return dev, test, f"split file {split_file}", Path(split_file)
        if closed_vocab:
            log.warning(
                "%s lists none of the closed-vocabulary sentences (the published split files hold book sentences only); "
                "the closed-vocabulary subset uses the hash split of its own prompts instead", split_file,
            )
            hash_source = f"hash split of the closed-vocabulary prompts (split file {split_file} lists none of them)"
        else:
            log.warning(
                "%s: none of its %d dev/test sentences is among this corpus's silent utterances, so dev and test "
                "are empty (a split file of another corpus or subset?)", split_file, len(dev | test),
            )
            return dev, test, f"split file {split_file}", Path(split_file)
    dev = {k for k in silent_sentences if hash_split(k) == "dev"}
    test = {k for k in silent_sentences if hash_split(k) == "test"}
    return dev, test, hash_source, None


def read_corpus(
    root: str | os.PathLike,
    split_file: str | os.PathLike | None = None,
    closed_vocab: bool = False,
    check_values: bool = False,
    alignments: str | os.PathLike | None = None,
    preprocessing: EMGPreprocessing = EMGPreprocessing(),
) -> Corpus:
    """Scan a Gaddy corpus, pair silent utterances with voiced twins and assign splits.

    Args:
        root: the corpus folder (or its parent holding ``emg_data``).
        split_file: dev/test sentence lists; None uses the corpus's own
            (:func:`find_split_file`) or, without one, :func:`hash_split`.
        closed_vocab: select the closed-vocabulary subset instead of the open one.
        check_values: also read every utterance's EMG, audio and TextGrid
            in full and skip what :func:`load_utterance` would refuse
            (:func:`check_utterance`; slower: reads every file once).
        alignments: folder of MFA TextGrids; default ``<root>/text_alignments``.
        preprocessing: the EMG constants the corpus is read with: its raw rate
            (Hz; 1000 for Gaddy's, 600 for EMG-UKA's) and channel count; an EMG file of
            another channel count is skipped.

    Every kind is scanned (``scanned``, ``skipped`` and ``sessions`` cover the
    whole corpus); pairing and splits apply to the selected subset. A silent
    utterance without a voiced twin is skipped and counted. Raises
    :class:`CorpusError` when ``root`` is not a corpus or the split file is bad,
    :class:`~silentspeech.preprocessing.EMGError` for a rate outside the
    speech models' bounds (:func:`~silentspeech.preprocessing.check_emg_rate`).
    """
    corpus_root = find_corpus_root(root)
    check_emg_rate(preprocessing.rate, f"{corpus_root} (the EMG rate of the corpus)")
    alignments = Path(alignments) if alignments is not None else corpus_root / "text_alignments"
    scanned, skipped, sessions = [], [], []
    for kind, (folder_name, _) in KIND_FOLDERS.items():
        kind_folder = corpus_root / folder_name
        if not kind_folder.is_dir():
            continue
        for folder in sorted(p for p in kind_folder.iterdir() if p.is_dir()):
            found, bad, session = scan_session(folder, kind, alignments, check_values, preprocessing)
            scanned += found
            skipped += bad
            sessions.append(session)

    kinds = CLOSED_VOCAB_KINDS if closed_vocab else OPEN_VOCAB_KINDS
    selected = sorted((u for u in scanned if u.kind in kinds), key=lambda u: (kinds.index(u.kind), u.session, u.index))
    twins: dict[tuple[str, int], str] = {}
    for u in selected:
        if not u.silent:
            twins.setdefault(u.sentence, u.id)
    dev, test, split_source, split_file = _dev_and_test(root, split_file, {u.sentence for u in selected if u.silent}, closed_vocab)

    utterances = []
    for u in selected:
        if u.silent:
            u.twin = twins.get(u.sentence)
            if u.twin is None:
                info_path = u.folder / f"{u.index}_info.json"
                skipped.append(Skip(str(info_path), f"no voiced twin of {u.sentence} in any voiced folder", u.kind))
                session = next(s for s in sessions if s.kind == u.kind and s.name == u.session)
                session.utterances, session.skipped = session.utterances - 1, session.skipped + 1
                session.seconds -= u.emg_samples / preprocessing.rate
                continue
        held_out = "dev" if u.sentence in dev else "test" if u.sentence in test else None
        u.split = "train" if held_out is None else held_out if u.silent else "excluded"
        utterances.append(u)

    missing = sum(u.alignment is None for u in utterances)
    if not alignments.is_dir():
        log.info("no phoneme alignments at %s: utterances carry no phoneme labels", alignments)
    elif missing:
        log.info("%d of %d utterances have no TextGrid under %s: they carry no phoneme labels", missing, len(utterances), alignments)
    if skipped:
        log.warning("%d utterances skipped (run `silentspeech inspect %s` for the list)", len(skipped), root)
    return Corpus(corpus_root, closed_vocab, split_source, utterances, scanned, skipped, sessions, missing, split_file)


@dataclass
class UtteranceArrays:
    """Model inputs and targets of one utterance, frame-aligned."""

    emg: np.ndarray  #: (8 * n_frames, channels) float32 at 689.06 Hz
    features: np.ndarray  #: (n_frames, n_mfcc) float32 at 86.13 Hz
    phonemes: np.ndarray | None  #: (n_frames,) int64, or None without alignment


def _neighbour_emg(folder: Path, index: int, preprocessing: EMGPreprocessing) -> np.ndarray | None:
    """Raw EMG of utterance ``index`` of the same session, or None where absent or unusable."""
    path = folder / f"{index}_emg.npy"
    if not path.exists():
        return None
    try:
        return read_emg_file(path, rate=preprocessing.rate, channels=preprocessing.channels).emg
    except EMGError as err:  # a bad neighbour only costs edge quality, never the utterance
        log.debug("ignoring neighbour %s: %s", path, err)
        return None


def load_utterance(
    utterance: Utterance, preprocessing: EMGPreprocessing = EMGPreprocessing(), n_mfcc: int = 80
) -> UtteranceArrays:
    """Preprocessed EMG, acoustic features and phonemes of one utterance.

    EMG is filtered together with the previous and next utterance of the same
    session folder (:func:`silentspeech.preprocessing.preprocess_emg`) and resampled
    to 689.06 Hz; the audio is resampled to 22050 Hz and turned into
    ``n_mfcc`` MFCC; both are trimmed so the EMG is exactly 8 x the frame
    count. Raises :class:`CorpusError` naming the file for bad input.
    """
    emg_path = utterance.emg_path
    try:
        raw = read_emg_file(emg_path, rate=preprocessing.rate, channels=preprocessing.channels).emg
        emg = preprocess_emg(
            raw,
            preprocessing,
            before=_neighbour_emg(utterance.folder, utterance.index - 1, preprocessing),
            after=_neighbour_emg(utterance.folder, utterance.index + 1, preprocessing),
            source=str(emg_path),
        )
    except EMGError as err:
        raise CorpusError.wrap(emg_path, err) from None
    try:
        features = acoustic_features(load_audio(utterance.audio_path, AUDIO_RATE), n_mfcc)
    except AudioError as err:
        raise CorpusError.wrap(utterance.audio_path, err) from None
    emg, n_frames = align_to_frames(emg, features.shape[0])
    if n_frames == 0:
        raise CorpusError(emg_path, "utterance is shorter than one acoustic frame")
    phonemes = None
    if utterance.alignment is not None:
        try:
            intervals = read_textgrid(utterance.alignment)
            phonemes = phoneme_frames(intervals, n_frames, FRAME_RATE, source=str(utterance.alignment))
        except TextGridError as err:
            raise CorpusError.wrap(utterance.alignment, err) from None
    return UtteranceArrays(emg=emg, features=features[:n_frames], phonemes=phonemes)
