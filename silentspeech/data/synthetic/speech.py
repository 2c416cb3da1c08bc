"""A synthetic EMG/speech corpus in the exact layout of the Gaddy corpus.

``generate_corpus(out, utterances, seed)`` writes, deterministically for a
seed, what the Gaddy reader expects (docs/design.md, *The Gaddy silent-speech corpus*)::

    voiced_parallel_data/<s>/  silent_parallel_data/<s>_silent/  nonparallel_data/<s>/
    closed_vocab/voiced/<s>/   closed_vocab/silent/<s>_silent/   testset.json

with ``{i}_emg.npy`` (raw EMG, float32 ``(samples, 8)`` at 1 kHz),
``{i}_audio.flac`` and ``{i}_audio_clean.flac`` (mono, 16 kHz),
``{i}_button.npy`` (bool ``(samples,)``) and ``{i}_info.json`` (``book``,
``sentence_index``, ``text``, ``chunks`` agreeing with the arrays) per
utterance; each session folder starts with silence clips
(``sentence_index == -1``, empty text) as in the real corpus.

The audio holds the voiced speech (room noise for silent utterances); every voiced utterance its phoneme alignment
``text_alignments/<s>/<s>_{i}_audio.TextGrid`` as the Montreal Forced Aligner
writes them for the real corpus.

How a recording is made (generator 5). The prompt (:mod:`silentspeech.data.synthetic.language`)
is spoken by espeak-ng (:mod:`silentspeech.data.synthetic.espeak`) at the
session's rate, pitch and pitch range (drawn per session among settings
Whisper still transcribes well). espeak-ng reports every phoneme
with its sample position; mapped to ARPAbet classes, this timeline is both
the TextGrid and the articulation (:mod:`silentspeech.data.synthetic.articulation`):
the speaker moves through fixed per-phoneme articulatory targets with smooth
transitions, giving a trajectory ``(samples, 12)`` at 1 kHz aligned with the
audio. From it (:mod:`silentspeech.data.synthetic.recording`):

* audio: espeak-ng's samples, resampled to 16 kHz between rests, with a
  faint noise floor;
* EMG: the trajectory drives one muscle under each electrode; each muscle's
  activation recruits motor units whose action-potential trains make its
  surface signal (:mod:`silentspeech.data.synthetic.emg`), seen by the
  session's displaced electrodes with cross-talk, plus a motion artefact
  below 20 Hz loosely tied to the jaw, then 60 Hz mains hum with harmonics,
  baseline drift, per-session gain and offset, sensor noise. Its shape
  statistics (:mod:`silentspeech.emg_statistics`), the share of power in
  2-20 Hz included, lie near real facial EMG's.

A silent twin repeats a voiced parallel sentence (same book and
``sentence_index``) with a smooth random time warp of the voiced timeline,
mouthed: hypo-articulated targets, no voicing, weaker muscles with per-channel
gains of its session, and no speech in its audio (room noise only); like
the real corpus, it has no TextGrid of its own (training uses its voiced
twin's).

No library synthesises paired EMG and speech, so this module is our own; it
reuses espeak-ng for the speech and scipy for filtering and resampling.

Re-running into an existing folder resumes: ``synthetic_corpus.json`` there
records the settings; with the same settings every utterance whose five files
(and TextGrid, when voiced) exist is skipped and the others are written again (identically, each
utterance has its own random stream). Other settings, or a non-empty folder
that is not a synthetic corpus, raise :class:`CorpusExistsError`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from silentspeech.atomic import atomic_open, atomic_write_json
from silentspeech.data.synthetic import espeak, language
from silentspeech.data.synthetic.articulation import Performance, articulatory_trajectory, mouthed, perform, rest_trajectory, time_warp
from silentspeech.data.synthetic.recording import (
    AUDIO_PER_EMG, AUDIO_RATE, microphone_audio, room_noise, session_recording, speech_audio, synthesize_emg,
)
from silentspeech.phonemes import format_textgrid
from silentspeech.preprocessing import RAW_EMG_RATE
from silentspeech.text import normalize_text
from silentspeech.workers import each_result

#: Version of the generator, recorded in ``synthetic_corpus.json``.
GENERATOR_VERSION = 5
#: Marker file with the settings of the corpus in a folder.
MARKER = "synthetic_corpus.json"
#: Split file written beside the kind folders.
SPLIT_FILE = "testset.json"
#: Phoneme alignments of the voiced utterances, as Montreal Forced Aligner writes them for the real corpus.
ALIGNMENT_FOLDER = "text_alignments"

#: Books of the prompts (the ``book`` field), as the real corpus names its sources.
PARALLEL_BOOK = "books/synthetic_parallel.txt"
NONPARALLEL_BOOK = "books/synthetic_nonparallel.txt"
CLOSED_VOCAB_BOOK = "datedata.txt"
#: Session (recording day) names: parallel sessions in order, then nonparallel and closed vocabulary.
PARALLEL_SESSIONS = ("5-4", "5-5", "5-6", "5-7", "5-8", "5-9", "5-10", "5-11")
NONPARALLEL_SESSION = "4-24"
CLOSED_VOCAB_SESSION = "5-19"
#: Share of the utterances per kind (parallel and closed vocabulary count voiced + silent).
PARALLEL_SHARE, CLOSED_VOCAB_SHARE = 0.80, 0.08
#: Hours of training-split EMG per planned utterance: the 1200-utterance corpus of seed 0 holds
#: 0.659 h of training utterances (864 of them; dev, test and their voiced twins are the rest).
TRAINING_HOURS_PER_UTTERANCE = 0.659 / 1200
#: Files of one utterance ``i``, written in this order (``info`` last: it marks a complete utterance).
UTTERANCE_FILES = ("{i}_emg.npy", "{i}_audio.flac", "{i}_audio_clean.flac", "{i}_button.npy", "{i}_info.json")


#: The books in a fixed order: part of each sentence's random stream.
_BOOKS = (PARALLEL_BOOK, NONPARALLEL_BOOK, CLOSED_VOCAB_BOOK)


class CorpusExistsError(ValueError):
    """The output folder holds something other than this corpus."""




@dataclass(frozen=True)
class PlannedUtterance:
    """One utterance of the plan: where it goes and what is said."""

    folder: str  #: e.g. ``silent_parallel_data/5-4_silent``
    index: int
    session: str  #: recording session, e.g. ``5-4``
    book: str  #: "" for silence clips
    sentence_index: int  #: -1 for silence clips
    text: str  #: raw prompt, "" for silence clips
    silent: bool
    serial: int  #: position in the plan: seeds this utterance's own noise

    @property
    def is_silence_clip(self) -> bool:
        return self.sentence_index == -1


@dataclass
class CorpusSummary:
    """What :func:`generate_corpus` wrote (``counts`` by kind folder)."""

    root: Path
    split_file: Path
    seed: int
    utterances: int  #: spoken utterances (silence clips not included)
    silence_clips: int
    counts: dict[str, int]
    sessions: list[str]
    dev_sentences: int
    test_sentences: int
    written: int  #: utterances written in this run (silence clips included)
    skipped: int  #: complete utterances found and kept (a resumed run)
    seconds: float  #: total duration of the EMG, s
    vocabulary_words: int  #: distinct normalised words of the open-vocabulary prompts
    grammar_words: int = field(default_factory=lambda: len(language.open_vocabulary()))

    def __str__(self) -> str:
        lines = [f"synthetic corpus at {self.root} (seed {self.seed})"]
        for folder, count in self.counts.items():
            lines.append(f"  {folder:<16} {count:>6} utterances")
        lines.append(f"  {self.silence_clips} silence clips, {self.seconds / 60:.1f} min of EMG in sessions {', '.join(self.sessions)}")
        lines.append(f"  {self.vocabulary_words} distinct words used (grammar: {self.grammar_words})")
        lines.append(f"  written {self.written}, already present {self.skipped}")
        lines.append(f"  split file: {self.split_file} ({self.dev_sentences} dev, {self.test_sentences} test sentences)")
        return "\n".join(lines)


def _unique_prompts(rng: np.random.Generator, count: int, make) -> list[str]:
    prompts: list[str] = []
    seen: set[str] = set()
    while len(prompts) < count:
        prompt = make(rng)
        key = normalize_text(prompt)
        if key not in seen:
            seen.add(key)
            prompts.append(prompt)
    return prompts


def utterances_for_hours(hours: float) -> int:
    """Utterances to plan for about ``hours`` of training-split EMG (at least 10); ``ValueError`` unless ``hours > 0``."""
    if not hours > 0:
        raise ValueError(f"hours must be positive (got {hours})")
    return max(10, round(hours / TRAINING_HOURS_PER_UTTERANCE))


def plan_corpus(
    utterances: int, seed: int, sessions: int = 3, silence_clips: int = 2, dev_fraction: float = 0.1, test_fraction: float = 0.15
) -> tuple[list[PlannedUtterance], dict[str, list[list]]]:
    """Every utterance of the corpus and the split, without any signal.

    ``utterances`` spoken utterances: 80 % parallel (half voiced, half their
    silent twins) spread over ``sessions`` sessions, 8 % closed vocabulary
    (voiced and silent twins), the rest nonparallel voiced; each folder starts
    with ``silence_clips`` silence clips. The split holds
    ``[book, sentence_index]`` of parallel sentences only, ``dev_fraction``
    and ``test_fraction`` of them.
    """
    if utterances < 10:
        raise ValueError(f"a synthetic corpus needs at least 10 utterances (got {utterances})")
    if not 1 <= sessions <= len(PARALLEL_SESSIONS):
        raise ValueError(f"sessions must be 1-{len(PARALLEL_SESSIONS)} (got {sessions})")
    if silence_clips < 0:
        raise ValueError(f"silence_clips must be >= 0 (got {silence_clips})")
    if seed < 0:
        raise ValueError(f"seed must be >= 0 (got {seed})")
    if not (0 < dev_fraction and 0 < test_fraction and dev_fraction + test_fraction < 1):
        raise ValueError(f"dev_fraction and test_fraction must be positive with a sum below 1 (got {dev_fraction}, {test_fraction})")
    rng = np.random.default_rng([seed, 1])
    closed_pairs = max(1, round(utterances * CLOSED_VOCAB_SHARE / 2))
    nonparallel = max(1, round(utterances * (1 - PARALLEL_SHARE - CLOSED_VOCAB_SHARE)))
    pairs = (utterances - nonparallel - 2 * closed_pairs) // 2
    nonparallel = utterances - 2 * pairs - 2 * closed_pairs
    parallel_prompts = _unique_prompts(rng, pairs, language.open_sentence)
    nonparallel_prompts = _unique_prompts(rng, nonparallel, language.open_sentence)
    closed_prompts = _unique_prompts(rng, closed_pairs, language.closed_vocab_sentence)

    folders: dict[str, list[tuple[str, str, int, str, bool]]] = {}

    def add(folder: str, session: str, book: str, index: int, text: str, silent: bool) -> None:
        folders.setdefault(folder, []).append((session, book, index, text, silent))

    names = PARALLEL_SESSIONS[:sessions]
    for i, prompt in enumerate(parallel_prompts):
        session = names[i * sessions // pairs]
        add(f"voiced_parallel_data/{session}", session, PARALLEL_BOOK, i, prompt, False)
    for i, prompt in enumerate(parallel_prompts):
        session = names[i * sessions // pairs]
        add(f"silent_parallel_data/{session}_silent", session, PARALLEL_BOOK, i, prompt, True)
    for i, prompt in enumerate(nonparallel_prompts):
        add(f"nonparallel_data/{NONPARALLEL_SESSION}", NONPARALLEL_SESSION, NONPARALLEL_BOOK, i, prompt, False)
    for i, prompt in enumerate(closed_prompts):
        add(f"closed_vocab/voiced/{CLOSED_VOCAB_SESSION}", CLOSED_VOCAB_SESSION, CLOSED_VOCAB_BOOK, i, prompt, False)
    for i, prompt in enumerate(closed_prompts):
        add(f"closed_vocab/silent/{CLOSED_VOCAB_SESSION}_silent", CLOSED_VOCAB_SESSION, CLOSED_VOCAB_BOOK, i, prompt, True)

    plan: list[PlannedUtterance] = []
    for folder, entries in folders.items():
        session = entries[0][0]
        # Recording order within a session is shuffled, as prompts were in the real corpus.
        recorded = [entries[k] for k in rng.permutation(len(entries))]
        for index in range(silence_clips):
            plan.append(PlannedUtterance(folder, index, session, "", -1, "", folder.endswith("_silent"), len(plan)))
        for index, (session, book, sentence_index, text, silent) in enumerate(recorded, start=silence_clips):
            plan.append(PlannedUtterance(folder, index, session, book, sentence_index, text, silent, len(plan)))

    order = rng.permutation(pairs)
    n_test = max(1, round(pairs * test_fraction))
    n_dev = max(1, round(pairs * dev_fraction))
    if n_test + n_dev >= pairs:
        raise ValueError(f"{pairs} parallel sentences leave none for training with {n_dev} dev and {n_test} test; use more utterances")
    split = {
        "dev": [[PARALLEL_BOOK, int(i)] for i in sorted(order[n_test : n_test + n_dev])],
        "test": [[PARALLEL_BOOK, int(i)] for i in sorted(order[:n_test])],
    }
    return plan, split


def _spoken(item: PlannedUtterance, seed: int) -> espeak.Spoken:
    """espeak-ng's rendition of ``item``'s prompt in its session's voice (the rate varies by +-3 % per sentence)."""
    voice = session_recording(item.session, seed).voice
    rng = np.random.default_rng([seed, 2, _BOOKS.index(item.book), item.sentence_index])
    voice = dataclasses.replace(voice, rate=int(round(voice.rate * rng.uniform(0.97, 1.03))))
    return espeak.speak(item.text, voice)


def _performance_of(item: PlannedUtterance, spoken: espeak.Spoken, seed: int) -> Performance:
    """The performance of ``item``: the voiced one of its sentence, time-warped and mouthed for a silent twin."""
    book = _BOOKS.index(item.book)
    voiced = perform(spoken, np.random.default_rng([seed, 2, book, item.sentence_index, 1]))
    if not item.silent:
        return voiced
    warped = time_warp(voiced, np.random.default_rng([seed, 3, book, item.sentence_index]))
    return mouthed(warped, np.random.default_rng([seed, 6, book, item.sentence_index]))


def _chunks(samples: int, rng: np.random.Generator) -> list[list[int]]:
    """``[emg, audio, button]`` sample counts of the recording blocks, like the real ``chunks``."""
    chunks = []
    left = samples
    while left > 0:
        size = min(left, int(rng.integers(10, 21)) * 6)
        chunks.append([size, size * AUDIO_PER_EMG, size])
        left -= size
    return chunks


def _write_flac(path: Path, audio: np.ndarray) -> None:
    with atomic_open(path, "wb") as handle:
        sf.write(handle, audio, AUDIO_RATE, format="FLAC", subtype="PCM_16")


def _write_npy(path: Path, array: np.ndarray) -> None:
    with atomic_open(path, "wb") as handle:
        np.save(handle, array, allow_pickle=False)


def render_utterance(item: PlannedUtterance, seed: int, noise_seed: int | None = None) -> dict:
    """Signals and info of one planned utterance.

    Returns ``emg`` float32 ``(samples, 8)`` at 1 kHz, ``audio`` and
    ``audio_clean`` float32 ``(16 * samples,)`` at 16 kHz, ``button`` bool
    ``(samples,)``, ``info`` (the ``info.json`` dict) and ``alignment``: the
    phone intervals ``(start_s, end_s, phone)`` of a voiced utterance, else
    None. With ``noise_seed`` the noise floor of the clean speech is drawn
    from its own generator seeded by it: a second rendition of the
    utterance (same EMG and the same espeak-ng speech, another noise floor).
    Raises :class:`~silentspeech.data.synthetic.espeak.EspeakError` naming
    the utterance when espeak-ng fails on its prompt.
    """
    rng = np.random.default_rng([seed, 4, item.serial])
    noise_rng = rng if noise_seed is None else np.random.default_rng([noise_seed, 5, item.serial])
    session = session_recording(item.session, seed)
    spoken = performance = None
    if item.is_silence_clip:
        trajectory = rest_trajectory(int(rng.integers(1000, 3000)), rng)
    else:
        try:
            spoken = _spoken(item, seed)
            performance = _performance_of(item, spoken, seed)
        except espeak.EspeakError as err:
            raise espeak.EspeakError(f"{item.folder}/{item.index} ({item.text!r}): {err}") from None
        trajectory = articulatory_trajectory(performance)
    emg = synthesize_emg(trajectory, session, item.silent, rng)
    samples = emg.shape[0]
    if spoken is None or performance is None or item.silent:
        clean = room_noise(samples * AUDIO_PER_EMG, 0.001, rng)
    else:
        # Noise reduction leaves a faint floor in the real clean audio too.
        clean = speech_audio(spoken, performance) + room_noise(samples * AUDIO_PER_EMG, 3e-4, noise_rng)
    info = {"book": item.book, "sentence_index": item.sentence_index, "text": item.text, "chunks": _chunks(samples, rng)}
    return {
        "emg": emg,
        "audio": microphone_audio(clean, session, rng),
        "audio_clean": clean,
        "button": np.zeros(samples, dtype=bool),
        "info": info,
        "alignment": None if performance is None or item.silent else performance.intervals(),
    }


def second_rendition(audio_path: str | os.PathLike, noise_seed: int = 1) -> np.ndarray:
    """A second rendition of a synthetic corpus utterance's clean audio, float32 ``(samples,)`` at 16 kHz.

    ``audio_path`` is an ``{i}_audio_clean.flac`` (or ``{i}_audio.flac``) of a
    corpus written by :func:`generate_corpus`; the utterance is rendered
    again (:func:`render_utterance` with ``noise_seed``): espeak-ng speaks
    it identically, only the faint noise floor is new. Scored against the
    file, it measures how far the same speech lies from itself under another
    noise floor: a floor for any vocoder's distance, not a target (espeak-ng
    has no breath or pitch randomness a second take would bring).
    Raises ``ValueError`` naming the file when it is not part of a synthetic
    corpus.
    """
    path = Path(audio_path)
    root = next((folder for folder in path.parents if (folder / MARKER).is_file()), None)
    if root is None:
        raise ValueError(f"{path}: not in a synthetic corpus (no {MARKER} in any parent folder)")
    seed, plan = _corpus_plan(root)
    key = f"{path.parent.relative_to(root).as_posix()}/{path.name.split('_', 1)[0]}"
    if key not in plan:
        raise ValueError(f"{path}: no utterance {key} in the plan of the corpus at {root}")
    return render_utterance(plan[key], seed, noise_seed)["audio_clean"]


@functools.lru_cache(maxsize=4)
def _corpus_plan(root: Path) -> tuple[int, dict[str, PlannedUtterance]]:
    """The seed and the planned utterances (by ``folder/index``) of the corpus at ``root``, from its marker file."""
    settings = json.loads((root / MARKER).read_text(encoding="utf-8"))
    if settings.get("version") != GENERATOR_VERSION:
        raise ValueError(f"{root}: corpus of generator version {settings.get('version')}, this is version {GENERATOR_VERSION}; it cannot render it again")
    plan, _ = plan_corpus(
        settings["utterances"], settings["seed"], settings["sessions"], settings["silence_clips"],
        settings["dev_fraction"], settings["test_fraction"],
    )
    return settings["seed"], {f"{item.folder}/{item.index}": item for item in plan}


def alignment_path(root: Path, item: PlannedUtterance) -> Path:
    """Where the TextGrid of ``item`` goes: ``text_alignments/{session}/{session}_{i}_audio.TextGrid`` (the Gaddy layout)."""
    session = item.folder.rsplit("/", 1)[1]
    return root / ALIGNMENT_FOLDER / session / f"{session}_{item.index}_audio.TextGrid"


def _has_alignment(item: PlannedUtterance) -> bool:
    return not (item.silent or item.is_silence_clip)


def write_utterance(root: Path, item: PlannedUtterance, seed: int) -> int:
    """Render ``item`` of the corpus of ``seed`` and write its files under ``root``, each atomically; returns its EMG samples."""
    folder = root / item.folder
    rendered = render_utterance(item, seed)
    _write_npy(folder / f"{item.index}_emg.npy", rendered["emg"])
    _write_flac(folder / f"{item.index}_audio.flac", rendered["audio"])
    _write_flac(folder / f"{item.index}_audio_clean.flac", rendered["audio_clean"])
    _write_npy(folder / f"{item.index}_button.npy", rendered["button"])
    if rendered["alignment"] is not None:
        with atomic_open(alignment_path(root, item), "w") as handle:
            handle.write(format_textgrid(rendered["alignment"]))
    atomic_write_json(folder / f"{item.index}_info.json", rendered["info"])
    return int(rendered["emg"].shape[0])


def _is_complete(root: Path, item: PlannedUtterance) -> bool:
    folder = root / item.folder
    files = all((folder / name.format(i=item.index)).is_file() for name in UTTERANCE_FILES)
    return files and (not _has_alignment(item) or alignment_path(root, item).is_file())


def _check_output_folder(root: Path, settings: dict) -> None:
    marker = root / MARKER
    if marker.is_file():
        try:
            existing = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise CorpusExistsError(f"{marker}: unreadable corpus marker ({err}); remove the folder or choose another") from None
        if existing.get("version") != settings["version"]:
            raise CorpusExistsError(
                f"{root}: holds a corpus of synthetic generator version {existing.get('version')}, this is version "
                f"{settings['version']} (docs/measurements.md, *Generator 5*); remove the folder or choose another"
            )
        if existing != settings:
            differing = ", ".join(f"{k} {existing.get(k)!r} (asked {v!r})" for k, v in settings.items() if existing.get(k) != v)
            raise CorpusExistsError(f"{root}: holds a synthetic corpus with other settings: {differing}; choose another folder or the same settings")
    elif root.is_dir() and any(root.iterdir()):
        raise CorpusExistsError(f"{root}: folder is not empty and holds no synthetic corpus ({MARKER} missing); choose an empty or new folder")


def generate_corpus(
    out: str | os.PathLike,
    utterances: int = 300,
    seed: int = 0,
    sessions: int = 3,
    silence_clips: int = 2,
    dev_fraction: float = 0.1,
    test_fraction: float = 0.15,
    progress: bool = True,
    workers: int = 1,
) -> CorpusSummary:
    """Write a synthetic corpus in the Gaddy layout to ``out``.

    Args:
        out: output folder (created; if it exists it must be empty or a
            corpus of the same settings, which is then completed).
        utterances: spoken utterances (at least 10): 80 % parallel (voiced +
            silent twins), 8 % closed vocabulary, the rest nonparallel.
        seed: fixes prompts, timing and every noise; same seed, same files.
        sessions: parallel recording sessions (``5-4``, ``5-5``, ...).
        silence_clips: ``sentence_index == -1`` clips at the start of each folder.
        dev_fraction, test_fraction: shares of the parallel sentences in the
            split file ``out/testset.json``.
        progress: show a tqdm progress bar.
        workers: processes that render utterances (0 or 1: this one); the
            files are the same for any number.

    Returns:
        A :class:`CorpusSummary`. Raises :class:`CorpusExistsError` when
        ``out`` holds something else, ``ValueError`` for bad settings.
    """
    root = Path(out)
    settings = {
        "generator": "silentspeech.data.synthetic.speech", "version": GENERATOR_VERSION, "seed": seed,
        "utterances": utterances, "sessions": sessions, "silence_clips": silence_clips,
        "dev_fraction": dev_fraction, "test_fraction": test_fraction,
    }
    plan, split = plan_corpus(utterances, seed, sessions, silence_clips, dev_fraction, test_fraction)
    _check_output_folder(root, settings)
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_json(root / MARKER, settings)
    atomic_write_json(root / SPLIT_FILE, split)

    complete = [_is_complete(root, item) for item in plan]
    done = [item for item, c in zip(plan, complete) if c]
    todo = [item for item, c in zip(plan, complete) if not c]
    emg_samples = sum(int(np.load(root / item.folder / f"{item.index}_emg.npy", mmap_mode="r").shape[0]) for item in done)
    with tqdm(total=len(plan), initial=len(done), desc="synthetic corpus", unit="utt", disable=not progress) as bar:
        # Every utterance has its own random stream, so the files do not depend on the order or the worker.
        for samples in each_result(write_utterance, [(root, item, seed) for item in todo], workers):
            emg_samples += samples
            bar.update()

    spoken = [p for p in plan if not p.is_silence_clip]
    counts = Counter(p.folder.split("/")[0] if not p.folder.startswith("closed") else "closed_vocab" for p in spoken)
    used = {w for p in spoken if p.book != CLOSED_VOCAB_BOOK for w in normalize_text(p.text).split()}
    return CorpusSummary(
        root=root,
        split_file=root / SPLIT_FILE,
        seed=seed,
        utterances=len(spoken),
        silence_clips=len(plan) - len(spoken),
        counts=dict(counts),
        sessions=sorted({p.folder.rsplit("/", 1)[1] for p in plan}),
        dev_sentences=len(split["dev"]),
        test_sentences=len(split["test"]),
        written=len(todo),
        skipped=len(done),
        seconds=emg_samples / RAW_EMG_RATE,
        vocabulary_words=len(used),
    )
