"""Recording a corpus in the Gaddy layout from a live source (``silentspeech record``).

The protocol follows Gaddy & Klein's data-collection scripts
(docs/design.md, *Live acquisition*): prompts are the sentences of a book
(or a file of one sentence per line), shown one at a time and read in order,
the sentence index kept in each utterance's info file; one utterance per
prompt, each the EMG (and the microphone's 16 kHz audio when there is one)
of one take; the ``chunks`` of the info file are the sizes of the blocks the
recording loop read. A session continues where it stopped: a new run
numbers its utterances after the session's last and starts at the prompt
after the last one recorded from the same prompt file.

Where it writes, under the corpus root ``OUT``: voiced takes in
``OUT/voiced_parallel_data/<session>/``, silent ones in
``OUT/silent_parallel_data/<session>_silent/`` (the reader pairs a silent
utterance with a voiced one of the same prompt file and sentence index, so
record the voiced session of a prompt file before its silent one). Per
utterance ``i``: ``{i}_emg.npy`` (samples, channels) at 1000 Hz,
``{i}_audio_clean.flac`` (16 kHz) and ``{i}_info.json``, written in that order,
each atomically, so a killed run leaves no utterance half visible (the
reader keys on the info file).

Rates: the corpus layout is 1000 Hz EMG (the reader assumes it), so a board
of another rate (BrainFlow's synthetic board and the Cyton on its dongle: 250
Hz) is resampled to 1000 Hz when written; ``chunks`` then count the written
samples of each block (block boundaries scaled to 1000 Hz) and the info file
keeps the board's own rate as ``board_rate``. Audio: without a microphone
(no ``sounddevice`` package, no input device) the audio file holds silence
of the take's length, so the layout stays readable, and ``microphone`` is
null in the info file: such voiced takes cannot train a production model.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Callable, Sequence, TypeVar

import numpy as np
import soundfile as sf

from silentspeech.acquisition.sources import EMGSource
from silentspeech.atomic import atomic_open, atomic_write_json
from silentspeech.decoding.ngram import read_text_file, split_sentences, strip_gutenberg
from silentspeech.preprocessing import RAW_EMG_RATE, resample

log = logging.getLogger(__name__)

#: Audio rate of the recorded microphone and of ``chunks``' audio counts, Hz (the Gaddy layout's).
AUDIO_RATE = 16000
#: Corpus folder of each mode's sessions, and the suffix of its session folder.
MODE_FOLDERS = {"voiced": ("voiced_parallel_data", ""), "silent": ("silent_parallel_data", "_silent")}


@dataclass(frozen=True)
class Prompts:
    """The sentences to read and the name their utterances carry as ``book``."""

    book: str  #: the prompt file's name (silent and voiced takes of one sentence pair by it and the index)
    sentences: list[str]


def read_prompts(path: str | os.PathLike, book: bool = False) -> Prompts:
    """Sentences of ``path``: one per non-empty line, or (``book``) the sentences of prose, Gutenberg header dropped.

    Raises ValueError naming the file when it holds no sentence, OSError when it cannot be read.
    """
    path = Path(path)
    text = read_text_file(path)
    if book:
        sentences = split_sentences(strip_gutenberg(text))
    else:
        sentences = [line.strip() for line in text.splitlines() if line.strip()]
    if not sentences:
        raise ValueError(f"{path}: no prompts in it ({'an empty file' if not text.strip() else 'no sentence found'})")
    return Prompts(path.name, sentences)


def session_folder(root: str | os.PathLike, session: str, mode: str) -> Path:
    """The folder of ``session``'s ``mode`` (``voiced`` or ``silent``) takes under the corpus ``root``."""
    folder, suffix = MODE_FOLDERS[mode]
    return Path(root) / folder / (session + suffix)


def default_session() -> str:
    """Today as month-day (``12-7``), the reference corpus's session names."""
    today = datetime.date.today()
    return f"{today.month}-{today.day}"


def resume_point(folder: Path, book: str) -> tuple[int, int]:
    """``(next utterance index, next sentence index)`` of a session folder, for prompts named ``book``.

    The index follows the highest ``{i}_info.json``; the sentence follows the
    highest ``sentence_index`` recorded from ``book`` (0 for a new session).
    """
    index, sentence = 0, 0
    for info_path in folder.glob("*_info.json"):
        stem = info_path.name[: -len("_info.json")]
        if not stem.isdigit():
            continue
        index = max(index, int(stem) + 1)
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ValueError(f"{info_path}: cannot resume the session from it ({err})") from None
        if isinstance(info, dict) and info.get("book") == book and isinstance(info.get("sentence_index"), int):
            sentence = max(sentence, info["sentence_index"] + 1)
    return index, sentence


class Microphone:
    """The default input device at 16 kHz mono, through ``sounddevice``; :func:`open_microphone` makes one."""

    def __init__(self, sounddevice) -> None:
        self.pieces: list[np.ndarray] = []
        self.lock = threading.Lock()
        self.name = sounddevice.query_devices(kind="input")["name"]
        self.stream = sounddevice.InputStream(channels=1, samplerate=AUDIO_RATE, callback=self._collect)
        self.stream.start()

    def _collect(self, data, frames, when, status) -> None:
        with self.lock:
            self.pieces.append(data[:, 0].copy())

    def drain(self) -> np.ndarray:
        """Audio ``(samples,)`` float32 at 16 kHz received since the last call."""
        with self.lock:
            pieces, self.pieces = self.pieces, []
        return np.concatenate(pieces) if pieces else np.zeros(0, np.float32)

    def close(self) -> None:
        self.stream.stop()
        self.stream.close()


#: What :func:`open_sound_device` builds on the ``sounddevice`` module.
SoundDevice = TypeVar("SoundDevice")


def open_sound_device(make: Callable[[ModuleType], SoundDevice], what: str) -> SoundDevice | None:
    """``make(sounddevice)`` (a :class:`Microphone`, a live speaker, ...), or None (the reason logged at debug level,
    naming ``what``) without the ``sounddevice`` package, PortAudio or such a device."""
    try:
        import sounddevice
    except (ImportError, OSError) as err:  # OSError: the package is there but PortAudio is not
        log.debug("no %s: %s", what, err)
        return None
    try:
        return make(sounddevice)
    except Exception as err:  # sounddevice.PortAudioError and ValueError (no such device)
        log.debug("no %s: %s", what, err)
        return None


def open_microphone() -> Microphone | None:
    """The default microphone, or None without the ``sounddevice`` package or an input device (:func:`open_sound_device`)."""
    return open_sound_device(Microphone, "microphone")


@dataclass
class Take:
    """One utterance as read: raw EMG at the source's rate, the read blocks' sizes and the microphone's audio."""

    emg: np.ndarray  #: (samples, channels) float64
    blocks: list[int]  #: EMG samples per block read
    audio: np.ndarray | None = None  #: (samples,) float32 at 16 kHz, None without a microphone
    audio_blocks: list[int] = field(default_factory=list)  #: audio samples per block


def record_take(
    source: EMGSource, seconds: float | None, microphone: Microphone | None = None,
    stop: threading.Event | None = None, on_block: Callable[[list[np.ndarray]], None] | None = None,
) -> Take:
    """Read one utterance from ``source``: ``seconds`` of EMG, or until ``stop`` is set.

    Whatever the source buffered before the call is dropped first (the
    prompt was being read). Whole blocks are kept, so the take may run a
    block past ``seconds``. ``on_block`` gets the list of blocks read so far
    after each block (for the quality line).
    """
    source.flush()
    if microphone is not None:
        microphone.drain()
    pieces, blocks, audio, audio_blocks = [], [], [], []
    wanted = None if seconds is None else int(round(seconds * source.rate))
    for block, _ in source.blocks():
        pieces.append(block)
        blocks.append(block.shape[0])
        if microphone is not None:
            audio.append(microphone.drain())
            audio_blocks.append(audio[-1].shape[0])
        if on_block is not None:
            on_block(pieces)
        if (wanted is not None and sum(blocks) >= wanted) or (stop is not None and stop.is_set()):
            break
    if not pieces:
        raise ValueError(f"{source.name}: ended before the take began")
    return Take(np.concatenate(pieces), blocks, np.concatenate(audio) if microphone is not None else None, audio_blocks)


def _scaled_sizes(sizes: Sequence[int], ratio: float, total: int) -> list[int]:
    """Block sizes after resampling by ``ratio``: the scaled boundaries' differences, the last block ending at ``total``."""
    bounds = np.round(np.cumsum(sizes) * ratio).astype(np.int64)
    bounds[-1] = total
    return np.diff(bounds, prepend=0).tolist()


def write_utterance(
    folder: Path, index: int, take: Take, rate: float, text: str, book: str, sentence_index: int,
    details: dict,
) -> Path:
    """Write take ``index`` of a session folder in the Gaddy layout (module docstring); returns the info file.

    ``rate`` is the take's EMG rate (Hz); ``details`` go into the info file
    beside ``book``, ``sentence_index``, ``text``, ``chunks``, ``rate`` and ``board_rate``.
    """
    emg = resample(take.emg, rate, RAW_EMG_RATE)
    emg_blocks = _scaled_sizes(take.blocks, RAW_EMG_RATE / rate, emg.shape[0])
    if take.audio is None:
        audio = np.zeros(int(round(emg.shape[0] * AUDIO_RATE / RAW_EMG_RATE)), np.float32)
        audio_blocks = _scaled_sizes(take.blocks, AUDIO_RATE / rate, audio.shape[0])
    else:
        audio, audio_blocks = take.audio, take.audio_blocks
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_open(folder / f"{index}_emg.npy") as handle:
        np.save(handle, emg.astype(np.float32))
    with atomic_open(folder / f"{index}_audio_clean.flac") as handle:
        sf.write(handle, audio, AUDIO_RATE, format="FLAC", subtype="PCM_16")
    info = {
        "book": book, "sentence_index": sentence_index, "text": text,
        "chunks": [[e, a, 0] for e, a in zip(emg_blocks, audio_blocks)],  # [emg, audio, button] samples per block
        "rate": RAW_EMG_RATE, "board_rate": rate, **details,
        "recorded_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_json(folder / f"{index}_info.json", info)
    return folder / f"{index}_info.json"


def wait_for_enter(prompt: str) -> threading.Event:
    """An event set when the user presses Enter (read on a daemon thread, so a take can run meanwhile)."""
    pressed = threading.Event()

    def wait() -> None:
        try:
            input(prompt)
        except EOFError:
            pass
        pressed.set()

    threading.Thread(target=wait, daemon=True).start()
    time.sleep(0)  # let the prompt print before the take's first line
    return pressed
