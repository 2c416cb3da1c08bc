"""English speech with a phoneme timeline from espeak-ng, through ctypes.

:func:`speak` renders a prompt with libespeak-ng (bundled, with its data, by
the ``espeakng-loader`` wheel: no system package needed) and returns the
22050 Hz samples together with every phoneme's start sample, taken from the
``espeakEVENT_PHONEME`` events that the library emits while synthesising:
a timeline exactly aligned with the audio. :func:`to_arpabet` maps espeak's
English phoneme mnemonics to the project's ARPAbet classes
(:data:`silentspeech.phonemes.PHONEMES`).

Why ctypes and not a wrapper package: the wrappers on PyPI call the
``espeak-ng`` program for phoneme strings or audio only; the per-phoneme
sample positions exist only in the C library's synthesis callback. The
structures below follow ``espeak-ng/speak_lib.h`` (espeak-ng 1.51); the
layout is checked at run time by the END event's sample position, which must
equal the number of samples delivered.

libespeak-ng keeps one global synthesiser per process, so calls are
serialised by a lock; the library is loaded and initialised on first use.
Determinism: its random noise is reseeded before every synthesis, but the
phase of its pitch "flutter" is a static counter in ``wavegen.c`` that runs
on from one synthesis to the next and no call resets it; a voice with flutter
therefore renders a prompt slightly differently (timing by up to ~10 ms)
depending on what was rendered before. So :func:`speak` loads every voice
from a voice file of its own (:func:`_voice_file`: the language file and
the variant of the installed espeak-ng data, with ``flutter 0`` appended),
and the waveform generator keeps more state across calls (a sign that
toggles, glottal phase) that nothing resets, not even
``espeak_Terminate``/``espeak_Initialize``. So on systems with ``fork``
every prompt is rendered in a forked child of a process whose synthesiser
was initialised but has never spoken, and the samples and events come back
through a pipe (a few milliseconds per prompt): each rendition starts from
the same state. Without ``fork`` (Windows) renditions are rendered in
process and may differ slightly with what was rendered before.
"""

from __future__ import annotations

import ctypes
import functools
import json
import multiprocessing.util
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Sample rate of espeak-ng's output, Hz.
ESPEAK_RATE = 22050
#: Name prefix of the per-process temporary folder that holds the voice files (removed at exit).
VOICE_FOLDER_PREFIX = "silentspeech-espeak-"
#: Longest voice file path (bytes) that ``espeak_SetVoiceByFile`` loads: a longer one fails
#: (measured with the bundled espeak-ng 1.51, a 60-byte path refused, 59 loaded).
VOICE_PATH_LIMIT = 59

# speak_lib.h: espeak_AUDIO_OUTPUT, espeak_EVENT_TYPE, espeak_PARAMETER, initialise options, synth flags.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_EVENT_LIST_TERMINATED, _EVENT_END, _EVENT_MSG_TERMINATED, _EVENT_PHONEME = 0, 5, 6, 7
_RATE, _PITCH, _RANGE = 1, 3, 4
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
#: Seed of espeak-ng's random noise, set before every synthesis.
_RAND_SEED = 1


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms
        ("sample", ctypes.c_int),  # samples since the start of the message
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


class EspeakError(RuntimeError):
    """espeak-ng could not be loaded or could not speak a prompt."""


@dataclass(frozen=True)
class Voice:
    """How espeak-ng speaks: voice name with variant, rate (words per minute), pitch and pitch range (0-100)."""

    name: str = "en-us"
    rate: int = 175
    pitch: int = 50
    pitch_range: int = 50


@dataclass(frozen=True)
class Spoken:
    """One rendered prompt.

    ``audio`` float32 ``(samples,)`` at 22050 Hz in [-1, 1]; ``phonemes`` the
    espeak mnemonics in order and ``starts`` int64 ``(phonemes,)`` their first
    sample (non-decreasing, below ``samples``).
    """

    audio: np.ndarray
    phonemes: tuple[str, ...]
    starts: np.ndarray


class _Synthesiser:
    """The process's libespeak-ng, initialised for synchronous output with phoneme events."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as err:
            raise EspeakError("espeak-ng is not installed: pip install espeakng-loader") from err
        try:
            self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        except OSError as err:
            raise EspeakError(f"cannot load libespeak-ng from {espeakng_loader.get_library_path()} ({err})") from None
        data = espeakng_loader.get_data_path().encode()
        rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, _INITIALIZE_PHONEME_EVENTS)
        if rate != ESPEAK_RATE:
            raise EspeakError(f"espeak-ng initialisation failed or gave {rate} Hz (expected {ESPEAK_RATE}; data at {data.decode()})")
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
        ]
        self.lib.espeak_SetVoiceByFile.argtypes = [ctypes.c_char_p]
        self.lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, str]] = []
        self._callback = _Callback(self._receive)  # kept referenced: the library holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lock = threading.Lock()

    def _receive(self, wav, count: int, events) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (count,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            name = event.id.string.decode("utf-8", "replace") if event.type == _EVENT_PHONEME else ""
            self._events.append((event.type, event.sample, name))
            i += 1
        return 0

    def _synth(self, text: str) -> int:
        self.lib.espeak_ng_SetRandSeed(_RAND_SEED)  # breath noise draws from it
        encoded = text.encode("utf-8")
        return self.lib.espeak_Synth(encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)

    def _render(self, text: str, voice: Voice, voice_file: Path) -> tuple[int, list[np.ndarray], list[tuple[int, int, str]]]:
        if self.lib.espeak_SetVoiceByFile(str(voice_file).encode()) != 0:
            raise EspeakError(f"espeak-ng cannot load voice {voice.name!r}")
        for parameter, value in ((_RATE, voice.rate), (_PITCH, voice.pitch), (_RANGE, voice.pitch_range)):
            self.lib.espeak_SetParameter(parameter, int(value), 0)
        self._chunks, self._events = [], []
        status = self._synth(text)
        return status, self._chunks, self._events

    def _render_in_child(self, text: str, voice: Voice, voice_file: Path) -> tuple[int, list[np.ndarray], list[tuple[int, int, str]]]:
        """:meth:`_render` in a forked child, so this process's synthesiser never leaves its initial state."""
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: render, send a JSON header line and the int16 samples, leave
            os.close(read_end)
            try:
                status, chunks, events = self._render(text, voice, voice_file)
                audio = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
                header = {"status": status, "events": events, "error": None}
            except EspeakError as err:
                audio, header = np.zeros(0, dtype=np.int16), {"status": -1, "events": [], "error": str(err)}
            with os.fdopen(write_end, "wb") as out:
                out.write(json.dumps(header).encode() + b"\n" + audio.astype("<i2").tobytes())
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            payload = pipe.read()
        os.waitpid(pid, 0)
        line, _, samples = payload.partition(b"\n")
        try:
            header = json.loads(line)
        except json.JSONDecodeError:
            raise EspeakError(f"espeak-ng crashed on {text!r}") from None
        if header["error"]:
            raise EspeakError(header["error"])
        events = [(int(kind), int(sample), str(name)) for kind, sample, name in header["events"]]
        return int(header["status"]), [np.frombuffer(samples, dtype="<i2")], events

    def speak(self, text: str, voice: Voice) -> Spoken:
        with self.lock:
            # Written here, not in the forked child: the child leaves by os._exit, which
            # would strand a voice folder made there (one per prompt).
            voice_file = _voice_file(voice.name)
            render = self._render_in_child if hasattr(os, "fork") else self._render
            status, chunks, events = render(text, voice, voice_file)
        if status != 0:
            raise EspeakError(f"espeak-ng failed on {text!r} (status {status})")
        audio = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        ends = [sample for kind, sample, _ in events if kind in (_EVENT_END, _EVENT_MSG_TERMINATED)]
        phonemes = [(sample, name) for kind, sample, name in events if kind == _EVENT_PHONEME]
        if audio.size == 0 or not phonemes:
            raise EspeakError(f"espeak-ng produced no speech for {text!r}")
        starts = np.array([sample for sample, _ in phonemes], dtype=np.int64)
        if (ends and ends[-1] > audio.size) or np.any(np.diff(starts) < 0) or starts[-1] > audio.size or starts[0] < 0:
            raise EspeakError(f"espeak-ng events do not match its audio for {text!r} (library version with another event layout?)")
        return Spoken((audio / 32768.0).astype(np.float32), tuple(name for _, name in phonemes), starts)


@functools.lru_cache(maxsize=None)
def _voice_file(name: str) -> Path:
    """A voice file for ``name`` (``language`` or ``language+variant``, e.g. ``en-us+m3``) without pitch flutter.

    Written once per process into a temporary folder: the installed
    language file, the variant's settings (its own ``language``/``name``
    lines left out) and ``flutter 0``. Raises :class:`EspeakError` when the
    language or the variant is not in the installed data.
    """
    import espeakng_loader

    data = Path(espeakng_loader.get_data_path())
    language, _, variant = name.partition("+")
    matches = [p for p in (data / "lang").rglob("*") if p.is_file() and p.name.lower() == language.lower()]
    if not matches:
        raise EspeakError(f"espeak-ng has no voice {name!r} (no language {language!r} under {data / 'lang'})")
    lines = matches[0].read_text(encoding="utf-8", errors="replace").splitlines()
    if variant:
        variant_file = data / "voices" / "!v" / variant
        if not variant_file.is_file():
            raise EspeakError(f"espeak-ng has no voice {name!r} (no variant {variant_file})")
        lines += [line for line in variant_file.read_text(encoding="utf-8", errors="replace").splitlines()
                  if not line.split()[:1] or line.split()[0] not in ("language", "name", "flutter")]
    path = Path(_voice_folder()) / name.replace("+", "_")
    if len(str(path).encode()) > VOICE_PATH_LIMIT:
        raise EspeakError(f"{path}: espeak-ng loads no voice file whose path is over {VOICE_PATH_LIMIT} bytes; set TMPDIR to a shorter folder")
    path.write_text("\n".join([*lines, "flutter 0", ""]), encoding="utf-8")
    return path


@functools.lru_cache(maxsize=1)
def _voice_folder() -> str:
    # espeak-ng refuses long voice file paths (VOICE_PATH_LIMIT): a deep TMPDIR
    # (macOS's /var/folders/..., pytest's tmp_path) gives way to /tmp.
    base = tempfile.gettempdir()
    if len(os.path.join(base, VOICE_FOLDER_PREFIX + "x" * 8, "en-us_m3")) > VOICE_PATH_LIMIT and os.access("/tmp", os.W_OK):
        base = "/tmp"
    folder = tempfile.mkdtemp(prefix=VOICE_FOLDER_PREFIX, dir=base)
    # multiprocessing's exit hook, not atexit: pool workers (synth-corpus --workers) run
    # the former and then leave by os._exit, skipping atexit handlers.
    multiprocessing.util.Finalize(None, shutil.rmtree, args=(folder, True), exitpriority=0)
    return folder


@functools.lru_cache(maxsize=1)
def _synthesiser() -> _Synthesiser:
    return _Synthesiser()


def speak(text: str, voice: Voice = Voice()) -> Spoken:
    """Render ``text`` with espeak-ng; deterministic for a text and voice (whatever was rendered before).

    Raises :class:`EspeakError` naming the prompt when the library is
    missing, the voice unknown, or the synthesis yields no audio or no
    phoneme events.
    """
    if not text.strip():
        raise EspeakError("espeak-ng: empty prompt")
    return _synthesiser().speak(text, voice)


# espeak-ng's English phoneme mnemonics (phsource/ph_english*) -> ARPAbet classes. A vowel
# followed by r ("car", "air", "more") becomes two classes that share the phoneme's interval.
_ARPABET = {
    "_": ("sil",), "_:": ("sil",), "_!": ("sil",), "?": ("sil",),
    "p": ("p",), "b": ("b",), "t": ("t",), "t2": ("t",), "d": ("d",), "k": ("k",), "g": ("g",),
    "t#": ("dx",), "d#": ("dx",), "*": ("dx",),
    "tS": ("ch",), "dZ": ("jh",), "f": ("f",), "v": ("v",), "T": ("th",), "D": ("dh",),
    "s": ("s",), "z": ("z",), "S": ("sh",), "Z": ("zh",), "h": ("hh",), "x": ("hh",),
    "m": ("m",), "n": ("n",), "N": ("ng",), "m-": ("em",), "n-": ("en",), "l": ("l",), "l-": ("el",), "@L": ("el",),
    "r": ("r",), "r-": ("r",), "w": ("w",), "W": ("w",), "j": ("y",),
    "i": ("iy",), "i:": ("iy",), "I": ("ih",), "I#": ("ih",), "I2": ("ih",), "e": ("eh",), "E": ("eh",),
    "a": ("ae",), "aa": ("ae",), "a#": ("ax",), "@": ("ax",), "@-": ("ax",), "@2": ("ax",), "@5": ("ax",), "V": ("ah",),
    "3": ("axr",), "3:": ("er",), "0": ("aa",), "A:": ("aa",), "A#": ("aa",), "O:": ("ao",), "O": ("ao",), "O2": ("ao",),
    "U": ("uh",), "u:": ("uw",), "u": ("uw",), "eI": ("ey",), "aI": ("ay",), "aU": ("aw",), "oU": ("ow",), "OI": ("oy",),
    "A@": ("aa", "r"), "e@": ("eh", "r"), "O@": ("ao", "r"), "o@": ("ao", "r"), "U@": ("uh", "r"),
    "i@": ("iy", "r"), "i@3": ("iy", "r"), "aI@": ("ay", "er"), "aI3": ("ay", "er"), "aU@": ("aw", "er"),
}
#: Marks espeak puts in front of a mnemonic (stress) or emits on their own (modifiers, no duration of their own).
_STRESS = "',%="
_MODIFIERS = {";", ":", "#", ""}


def to_arpabet(mnemonic: str) -> tuple[str, ...]:
    """ARPAbet classes (lower case, :data:`silentspeech.phonemes.PHONEMES`) of one espeak English mnemonic.

    Stress marks are dropped; a modifier that carries no sound of its own
    (``;``) gives ``()`` (it joins the previous phoneme). Raises
    :class:`EspeakError` for a mnemonic outside the table.
    """
    name = mnemonic.lstrip(_STRESS)
    if name in _MODIFIERS:
        return ()
    if name not in _ARPABET:
        # Allophone marks after a base phoneme ("r/", "l#"): the base phoneme's class.
        name = name.rstrip("/#-") if name.rstrip("/#-") in _ARPABET else name
    if name not in _ARPABET:
        raise EspeakError(f"espeak-ng phoneme {mnemonic!r} has no ARPAbet class")
    return _ARPABET[name]


def arpabet_timeline(spoken: Spoken) -> list[tuple[int, int, str]]:
    """``(start, end, phoneme)`` intervals covering ``spoken.audio``, samples at 22050 Hz, ARPAbet classes.

    Before the first phoneme event lies ``sil``; each phoneme lasts until the
    next one starts (the last until the end of the audio); a mnemonic of two
    classes splits its interval in halves; zero-length intervals are dropped
    and neighbouring equal classes merged.
    """
    bounds = [*spoken.starts.tolist(), spoken.audio.size]
    intervals: list[tuple[int, int, str]] = [(0, bounds[0], "sil")]
    for k, mnemonic in enumerate(spoken.phonemes):
        start, end = bounds[k], bounds[k + 1]
        classes = to_arpabet(mnemonic)
        if not classes:  # a modifier: the previous phoneme goes on
            intervals[-1] = (intervals[-1][0], end, intervals[-1][2])
            continue
        edges = np.linspace(start, end, len(classes) + 1).round().astype(int)
        intervals.extend((int(a), int(b), c) for a, b, c in zip(edges[:-1], edges[1:], classes))
    merged: list[tuple[int, int, str]] = []
    for start, end, phone in intervals:
        if end <= start:
            continue
        if merged and merged[-1][2] == phone and merged[-1][1] == start:
            merged[-1] = (merged[-1][0], end, phone)
        else:
            merged.append((start, end, phone))
    return merged
