"""The independent corpus on disk: plan, split file, resumable writing, summary.

Layout (what :mod:`silentspeech.data.gaddy` reads)::

    voiced_parallel_data/<day>/  silent_parallel_data/<day>_silent/  nonparallel_data/<day>/  testset.json

with ``{i}_emg.npy`` (float32 ``(samples, 8)`` at 1 kHz), ``{i}_audio.flac``
and ``{i}_audio_clean.flac`` (16 kHz, 16 samples per EMG sample),
``{i}_button.npy`` (bool ``(samples,)``) and ``{i}_info.json`` (``book``,
``sentence_index``, ``text``, ``chunks``); every folder starts with silence
clips (``sentence_index`` -1). Two thirds of the sentences are parallel (a
voiced and a silent recording each, spread over the parallel days), one
third nonparallel (voiced only, a day of its own). ``testset.json`` lists the
dev and test sentences, drawn from the parallel ones.

Re-running into the same folder with the same settings completes it:
``independent_corpus.json`` records the settings, and an utterance whose five
files exist is kept (``info`` is written last). Other settings, or a folder
holding something else, raise :class:`IndependentCorpusExistsError`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from silentspeech.atomic import atomic_open, atomic_write_json
import silentspeech.data.synthetic.independent.articulation as articulation
import silentspeech.data.synthetic.independent.recording as recording
import silentspeech.data.synthetic.independent.sentences as sentences
from silentspeech.workers import each_result

#: Name and version of the generator, recorded in :data:`MARKER`.
GENERATOR_NAME, GENERATOR_VERSION = "independent", 1
#: Marker file with the corpus settings, and the split file.
MARKER, SPLIT_FILE = "independent_corpus.json", "testset.json"
#: Recording days: the parallel ones in order, then the nonparallel one.
PARALLEL_DAYS, NONPARALLEL_DAY = tuple(f"7-{k}" for k in range(1, 13)), "6-30"
#: Files of utterance ``i``, in writing order (``info`` last: it marks a complete utterance).
UTTERANCE_FILES = ("{i}_emg.npy", "{i}_audio.flac", "{i}_audio_clean.flac", "{i}_button.npy", "{i}_info.json")
#: Estimated length of an utterance before it is spoken: pauses plus seconds per syllable (espeak-ng near 150 wpm).
PAUSES_S, SYLLABLE_S, SILENT_SLOWER = 0.9, 0.26, 1.15
#: Fewest spoken utterances of a corpus.
MIN_UTTERANCES = 10


class IndependentCorpusExistsError(ValueError):
    """The output folder holds something other than this corpus."""


@dataclass(frozen=True)
class PlannedUtterance:
    """One utterance to write: where, what and how."""

    folder: str  #: kind folder / session folder, e.g. ``silent_parallel_data/7-2_silent``
    index: int
    day: str  #: recording day, e.g. ``7-2``
    book: str
    sentence_index: int  #: -1 for a silence clip
    text: str
    silent: bool


def estimated_seconds(text: str, silent: bool = False) -> float:
    """Length of an utterance of ``text`` estimated from its syllables, s."""
    seconds = PAUSES_S + SYLLABLE_S * len(articulation.prompt_syllables(text))
    return seconds * (SILENT_SLOWER if silent else 1.0)


def choose_sentences(
    pool: list[str], utterances: int | None, hours: float | None, seed: int, dev_fraction: float, test_fraction: float, source: str
) -> tuple[list[int], list[int]]:
    """Indices into ``pool`` of the parallel and the nonparallel sentences, in recording order.

    Sentences are taken in a seeded random order, two parallel then one
    nonparallel, until ``utterances`` spoken utterances are reached or the
    training utterances' estimated length reaches ``hours``. Raises
    ``ValueError`` naming ``source`` when the pool runs out first.
    """
    order = np.random.default_rng([seed, 0x5E1]).permutation(len(pool))
    parallel, nonparallel, count, seconds = [], [], 0, 0.0
    train_share = 1.0 - dev_fraction - test_fraction
    for k in order:
        if (utterances is not None and count >= utterances) or (hours is not None and seconds >= hours * 3600):
            break
        nonparallel_turn = len(parallel) + len(nonparallel) > 0 and (len(parallel) + len(nonparallel)) % 3 == 2
        if nonparallel_turn or (utterances is not None and utterances - count == 1):
            nonparallel.append(int(k))
            count, seconds = count + 1, seconds + estimated_seconds(pool[k])
        else:
            parallel.append(int(k))
            count += 2
            seconds += train_share * (estimated_seconds(pool[k]) + estimated_seconds(pool[k], silent=True))
    else:
        wanted = f"{utterances} utterances" if utterances is not None else f"{hours} h of training utterances"
        raise ValueError(f"{source}: only {len(pool)} usable sentences, too few for {wanted}")
    return parallel, nonparallel


def split_sentences(parallel: list[int], book: str, seed: int, dev_fraction: float, test_fraction: float) -> dict[str, list]:
    """The split file's content: ``{"dev": [[book, idx], ...], "test": [...]}`` drawn from the parallel sentences."""
    order = [parallel[k] for k in np.random.default_rng([seed, 0x7E57]).permutation(len(parallel))]
    dev_count = max(1, round(dev_fraction * len(order))) if len(order) >= 3 and dev_fraction > 0 else 0
    test_count = max(1, round(test_fraction * len(order))) if len(order) >= 3 and test_fraction > 0 else 0
    dev, test = sorted(order[:dev_count]), sorted(order[dev_count : dev_count + test_count])
    return {"dev": [[book, k] for k in dev], "test": [[book, k] for k in test]}


def plan_corpus(
    pool: list[str], book: str, parallel: list[int], nonparallel: list[int], sessions: int, silence_clips: int
) -> list[PlannedUtterance]:
    """Every utterance of the corpus: parallel sentences round-robin over ``sessions`` days, silence clips first in each folder."""
    folders: dict[str, list[PlannedUtterance]] = {}

    def add(folder: str, day: str, sentence: int | None, silent: bool) -> None:
        items = folders.setdefault(folder, [])
        if not items:
            items += [PlannedUtterance(folder, k, day, book, -1, "", silent) for k in range(silence_clips)]
        text = pool[sentence] if sentence is not None else ""
        items.append(PlannedUtterance(folder, len(items), day, book, sentence if sentence is not None else -1, text, silent))

    for j, k in enumerate(parallel):
        day = PARALLEL_DAYS[j % sessions]
        add(f"voiced_parallel_data/{day}", day, k, False)
        add(f"silent_parallel_data/{day}_silent", day, k, True)
    for k in nonparallel:
        add(f"nonparallel_data/{NONPARALLEL_DAY}", NONPARALLEL_DAY, k, False)
    return [item for items in folders.values() for item in items]


def _chunks(samples: int, rng: np.random.Generator) -> list[list[int]]:
    """The ``[emg, audio, button]`` sample counts of the recording's blocks (about 0.5-2 s each)."""
    sizes, left = [], samples
    while left > 0:
        size = min(left, int(rng.integers(500, 2000)))
        sizes.append(size)
        left -= size
    return [[s, s * recording.AUDIO_PER_EMG, s] for s in sizes]


def utterance_rng(seed: int, item: PlannedUtterance) -> np.random.Generator:
    """The utterance's own random stream."""
    return np.random.default_rng([seed, recording.stable_number(item.folder), item.index])


def write_utterance(root: Path, item: PlannedUtterance, seed: int) -> int:
    """Render and write one utterance's five files (``info`` last); returns its EMG samples."""
    rng = utterance_rng(seed, item)
    rendered = recording.render(seed, item.day, item.text, item.silent, rng)
    folder = root / item.folder
    folder.mkdir(parents=True, exist_ok=True)
    samples = rendered.emg.shape[0]
    with atomic_open(folder / f"{item.index}_emg.npy") as handle:
        np.save(handle, rendered.emg, allow_pickle=False)
    for name, audio in (("audio", rendered.audio), ("audio_clean", rendered.audio_clean)):
        with atomic_open(folder / f"{item.index}_{name}.flac") as handle:
            sf.write(handle, audio, recording.AUDIO_RATE, format="FLAC", subtype="PCM_16")
    with atomic_open(folder / f"{item.index}_button.npy") as handle:
        np.save(handle, np.zeros(samples, dtype=bool), allow_pickle=False)
    info = {"book": item.book, "sentence_index": item.sentence_index, "text": item.text, "chunks": _chunks(samples, rng)}
    atomic_write_json(folder / f"{item.index}_info.json", info)
    return samples


def _is_complete(root: Path, item: PlannedUtterance) -> bool:
    return all((root / item.folder / name.format(i=item.index)).is_file() for name in UTTERANCE_FILES)


def _refuse_other_content(root: Path, settings: dict) -> None:
    """Raise :class:`IndependentCorpusExistsError` unless ``root`` is absent, empty, or this corpus with ``settings``."""
    marker = root / MARKER
    if not marker.is_file():
        if root.is_dir() and any(root.iterdir()):
            raise IndependentCorpusExistsError(f"{root}: folder is not empty and holds no independent corpus ({MARKER} missing)")
        return
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise IndependentCorpusExistsError(f"{marker}: corpus marker cannot be read ({err})") from None
    if not isinstance(recorded, dict):
        raise IndependentCorpusExistsError(f"{marker}: corpus marker is not a JSON object")
    changes = [f"{key} {recorded.get(key)!r} (asked {value!r})" for key, value in settings.items() if recorded.get(key) != value]
    if changes or set(recorded) != set(settings):
        raise IndependentCorpusExistsError(f"{root}: holds an independent corpus with other settings: {', '.join(changes) or 'other keys'}")


@dataclass
class IndependentCorpusSummary:
    """What :func:`generate_independent_corpus` wrote."""

    root: Path
    split_file: Path
    seed: int
    book: str
    utterances: int  #: spoken utterances (silence clips not included)
    silence_clips: int
    counts: dict[str, int]  #: spoken utterances by kind folder
    sessions: list[str]
    dev_sentences: int
    test_sentences: int
    written: int  #: utterances written in this run (silence clips included)
    skipped: int  #: complete utterances found and kept
    seconds: float  #: EMG of every utterance, s
    training_seconds: float  #: EMG of the training utterances (not dev/test silent, not their voiced twins), s

    def __str__(self) -> str:
        lines = [f"independent corpus at {self.root} (seed {self.seed}, sentences of {self.book})"]
        lines += [f"  {folder:<22} {count:>6} utterances" for folder, count in self.counts.items()]
        lines.append(f"  {self.silence_clips} silence clips, {self.seconds / 3600:.3f} h of EMG "
                     f"({self.training_seconds / 3600:.3f} h training) in sessions {', '.join(self.sessions)}")
        lines.append(f"  written {self.written}, already present {self.skipped}")
        lines.append(f"  split file: {self.split_file} ({self.dev_sentences} dev, {self.test_sentences} test sentences)")
        return "\n".join(lines)


def _check_settings(utterances: int | None, hours: float | None, sessions: int, workers: int, silence_clips: int,
                    dev_fraction: float, test_fraction: float) -> None:
    if utterances is not None and hours is not None:
        raise ValueError("give utterances or hours, not both")
    if utterances is not None and (isinstance(utterances, bool) or utterances < MIN_UTTERANCES):
        raise ValueError(f"utterances must be at least {MIN_UTTERANCES} (got {utterances})")
    if hours is not None and not (np.isfinite(hours) and hours > 0):
        raise ValueError(f"hours must be a positive number (got {hours})")
    if not 1 <= sessions <= len(PARALLEL_DAYS):
        raise ValueError(f"sessions must be 1 to {len(PARALLEL_DAYS)} (got {sessions})")
    if workers < 0 or silence_clips < 0:
        raise ValueError(f"workers and silence_clips must not be negative (got {workers} and {silence_clips})")
    if not (0 <= dev_fraction and 0 <= test_fraction and dev_fraction + test_fraction < 1):
        raise ValueError(f"dev_fraction and test_fraction must be >= 0 and sum below 1 (got {dev_fraction}, {test_fraction})")


def _prompt_pool(book: str | os.PathLike | None, utterances: int | None, hours: float | None, seed: int) -> tuple[list[str], str, str]:
    """``(sentences, book field, book digest)`` of a book file or of the grammar."""
    if book is not None:
        pool = sentences.book_sentences(book)
        return pool, sentences.book_name(book), hashlib.sha256("\n".join(pool).encode("utf-8")).hexdigest()
    count = utterances if utterances is not None else int(hours * 3600 / 2.0) + 50
    return sentences.grammar_sentences(count, seed), sentences.GRAMMAR_BOOK, "grammar"


def generate_independent_corpus(
    out: str | os.PathLike,
    utterances: int | None = None,
    seed: int = 0,
    book: str | os.PathLike | None = None,
    sessions: int = 3,
    workers: int = 1,
    progress: bool = True,
    hours: float | None = None,
    silence_clips: int = 2,
    dev_fraction: float = 0.1,
    test_fraction: float = 0.15,
) -> IndependentCorpusSummary:
    """Write the independent evaluation corpus in the Gaddy layout to ``out``.

    Args:
        out: output folder (created; if it exists it must be empty or an
            independent corpus of the same settings, which is then completed).
        utterances: spoken utterances (at least 10); None with ``hours``
            None means 300.
        seed: fixes prompts, sessions, timing and every noise: same seed, same files.
        book: a plain-text book (e.g. Project Gutenberg) whose 4-20-word
            sentences are the prompts; None uses the generator's own grammar.
        sessions: parallel recording days (``7-1``, ``7-2``, ...; 1-12).
        workers: processes rendering utterances (0 or 1: this one); the files
            are the same for any number.
        progress: show a tqdm progress bar.
        hours: instead of ``utterances``: estimated hours of training
            utterances (the summary reports the real figure).
        silence_clips: ``sentence_index == -1`` clips at the start of each folder.
        dev_fraction, test_fraction: shares of the parallel sentences in ``out/testset.json``.

    Returns:
        An :class:`IndependentCorpusSummary`. Raises ``ValueError`` with a
        one-line message for bad settings, a missing or empty book, and
        :class:`IndependentCorpusExistsError` when ``out`` holds something else.
    """
    _check_settings(utterances, hours, sessions, workers, silence_clips, dev_fraction, test_fraction)
    if utterances is None and hours is None:
        utterances = 300
    pool, book_field, digest = _prompt_pool(book, utterances, hours, seed)
    source = str(book) if book is not None else "the independent grammar"
    parallel, nonparallel = choose_sentences(pool, utterances, hours, seed, dev_fraction, test_fraction, source)
    split = split_sentences(parallel, book_field, seed, dev_fraction, test_fraction)
    plan = plan_corpus(pool, book_field, parallel, nonparallel, sessions, silence_clips)
    root = Path(out)
    settings = {
        "generator": GENERATOR_NAME, "version": GENERATOR_VERSION, "seed": seed, "utterances": utterances, "hours": hours,
        "book": book_field, "book_sha256": digest, "sessions": sessions, "silence_clips": silence_clips,
        "dev_fraction": dev_fraction, "test_fraction": test_fraction,
    }
    _refuse_other_content(root, settings)
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_json(root / MARKER, settings)
    atomic_write_json(root / SPLIT_FILE, split)

    todo = [item for item in plan if not _is_complete(root, item)]
    with tqdm(total=len(plan), initial=len(plan) - len(todo), desc="independent corpus", unit="utt", disable=not progress) as bar:
        for _ in each_result(write_utterance, [(root, item, seed) for item in todo], workers):
            bar.update()

    held_out = {k for _, k in split["dev"] + split["test"]}
    samples = {item: int(np.load(root / item.folder / f"{item.index}_emg.npy", mmap_mode="r").shape[0]) for item in plan}
    spoken = [item for item in plan if item.sentence_index != -1]
    return IndependentCorpusSummary(
        root=root, split_file=root / SPLIT_FILE, seed=seed, book=book_field, utterances=len(spoken),
        silence_clips=len(plan) - len(spoken), counts=dict(Counter(item.folder.split("/")[0] for item in spoken)),
        sessions=sorted({item.folder.rsplit("/", 1)[1] for item in plan}), dev_sentences=len(split["dev"]),
        test_sentences=len(split["test"]), written=len(todo), skipped=len(plan) - len(todo),
        seconds=sum(samples.values()) / articulation.RATE,
        training_seconds=sum(samples[item] for item in spoken if item.sentence_index not in held_out) / articulation.RATE,
    )
