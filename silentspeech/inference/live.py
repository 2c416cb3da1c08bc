"""Live silent speech: a source's raw EMG blocks -> text as it firms up, and speech for each settled stretch.

:class:`LiveSession` joins the pieces behind ``silentspeech live``, the
demo's live tab and ``bench/live.py``: the blocks of an
:class:`~silentspeech.acquisition.sources.EMGSource` (any size, as the board
delivers them) are cut into chunks by :func:`rechunk` and pushed into a
:class:`~silentspeech.inference.streaming.StreamingRecognizer`, whose events
carry the firm and tentative text. With a production model, a
:class:`StreamingVoice` voices the EMG up to the recogniser's firm boundary
each time it moves: that EMG will not change the text any more, and the
boundary lies in the pause before the next word, so the pieces of speech
join where the speaker paused. In a long pause or a long word the boundary
stands still; speech then does not wait for it once the EMG older than the
recogniser's settle time has gone unvoiced for :data:`MAX_VOICE_LAG_S`. Each piece is preprocessed with the real EMG
on both sides (up to :data:`~silentspeech.inference.streaming.FILTER_CONTEXT_S`)
as the cache's neighbouring utterances prime the training data's filters,
then run through the production model and the vocoder. The end of the stream
voices the rest. Voicing runs on a thread of its own: the recogniser's
next chunk never waits for the vocoder (on the same thread, a chunk that
settled a stretch held the chunks behind it for the whole synthesis, and the
text's p95 latency grew to several chunks; bench/results.md), and the speech
of a stretch comes with the first update after it is ready.
:class:`GrowingWav` appends the pieces to a WAV file as they come and :class:`Speaker` plays them
when an output device exists; :class:`LiveRunner` runs a session
on a background thread for a page that polls it (the demo's live tab).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import soundfile as sf

from silentspeech.acquisition.recorder import open_sound_device
from silentspeech.features import FRAME_RATE
from silentspeech.inference.pipeline import SilentSpeechPipeline, primed_neighbours
from silentspeech.inference.streaming import FILTER_CONTEXT_S, StreamEvent, StreamingRecognizer
from silentspeech.preprocessing import MIN_FILTER_SAMPLES, preprocess_emg

#: Shortest stretch of settled EMG voiced on its own, seconds (shorter ones wait for more).
MIN_VOICE_S = 0.3
#: Longest stretch of EMG older than the recogniser's settle time left unvoiced while the firm boundary stands still, seconds.
MAX_VOICE_LAG_S = 2.0


def rechunk(
    blocks: Iterable[tuple[np.ndarray, float]], chunk_samples: int, rate: float, max_samples: int | None = None
) -> Iterator[tuple[np.ndarray, float]]:
    """Join ``(block (samples, channels), arrival)`` pairs into chunks of ``chunk_samples``; yields ``(chunk, arrival)``.

    ``arrival`` is that of a block's newest sample (``perf_counter`` s); the
    samples before it are taken to have come at ``rate`` Hz. A consumer that
    fell behind gets every whole chunk that has arrived since, joined into
    one, with the arrival of the oldest (so its latency counts the wait), as
    :func:`~silentspeech.inference.streaming.replay_recording` hands them. The
    last chunk may be shorter. Stops after ``max_samples`` samples (None: when
    ``blocks`` ends).
    """
    pending, held, total = [], 0, 0
    for block, arrival in blocks:
        if max_samples is not None:
            block = block[: max_samples - total]
        pending.append(block)
        held += block.shape[0]
        total += block.shape[0]
        if held >= chunk_samples:
            whole = held // chunk_samples * chunk_samples
            joined = np.concatenate(pending)
            # The first chunk's last sample came (held - chunk_samples) samples before this block's newest.
            yield joined[:whole], arrival - (held - chunk_samples) / rate
            pending, held = [joined[whole:]], held - whole
        if max_samples is not None and total >= max_samples:
            break
    if held:
        yield np.concatenate(pending), time.perf_counter()


class StreamingVoice:
    """Raw EMG in, speech audio out for every stretch the caller declares settled (module docstring).

    Args:
        pipeline: a pipeline with a producer (production model and vocoder).
        rate: raw EMG rate, Hz.
        source: name of the input, for error messages.
    """

    def __init__(self, pipeline: SilentSpeechPipeline, rate: float, source: str = "EMG stream") -> None:
        if pipeline.producer is None:
            raise ValueError("streaming voice needs a pipeline with a producer (production model)")
        self.pipeline, self.rate, self.source = pipeline, float(rate), source
        self.preprocessing = replace(pipeline.preprocessing, rate=self.rate, channels=pipeline.channels)
        self.context = int(FILTER_CONTEXT_S * rate)
        self.min_samples = max(MIN_FILTER_SAMPLES, int(MIN_VOICE_S * rate))
        self.buffer = np.zeros((0, pipeline.channels))  #: raw EMG from sample ``offset`` on
        self.offset = 0
        self.voiced = 0  #: raw samples voiced so far

    def push(self, chunk: np.ndarray) -> None:
        """Add raw EMG ``(samples, channels)`` (already checked by the recogniser)."""
        self.buffer = np.concatenate([self.buffer, chunk])

    def take(self, until: int, final: bool = False) -> "_Stretch | None":
        """Cut raw samples ``voiced..until`` (with their filter context) for :meth:`synthesize`; None when too few.

        Cheap (slicing only), so the recogniser's thread calls it and hands
        the stretch to the voicing thread. ``final``: the stream has ended;
        the rest is taken whatever its length (if it can be filtered) and the
        filters after it are primed as for a lone recording.
        """
        received = self.offset + self.buffer.shape[0]
        until = min(until, received)
        if until - self.voiced < (MIN_FILTER_SAMPLES if final else self.min_samples):
            return None
        raw = self.buffer[self.voiced - self.offset : until - self.offset]
        primed_before, primed_after = primed_neighbours(raw, self.rate)
        before = self.buffer[max(self.offset, self.voiced - self.context) - self.offset : self.voiced - self.offset]
        after = self.buffer[until - self.offset : until + self.context - self.offset]
        stretch = _Stretch(
            raw=raw, before=before if len(before) else primed_before,
            after=primed_after if final or not len(after) else after, start=self.voiced, final=final,
        )
        self.voiced = until
        keep = max(self.offset, until - self.context)  # the next stretch's left context
        self.buffer, self.offset = self.buffer[keep - self.offset :], keep
        return stretch

    def synthesize(self, stretch: "_Stretch") -> np.ndarray:
        """Audio ``(samples,)`` float32 at the vocoder's rate for a stretch from :meth:`take`."""
        emg = preprocess_emg(stretch.raw, self.preprocessing, before=stretch.before, after=stretch.after, source=self.source)
        return self.pipeline.run_preprocessed(emg, recognize=False).audio


@dataclass
class _Stretch:
    """Raw EMG ``(samples, channels)`` to voice, with the raw EMG that primes its filters on each side."""

    raw: np.ndarray
    before: np.ndarray
    after: np.ndarray
    start: int  #: stream index of its first raw sample
    final: bool


@dataclass
class VoicePiece:
    """The speech of one settled stretch."""

    #: (samples,) float32 at the vocoder's rate.
    audio: np.ndarray
    #: Wall milliseconds from the arrival of the chunk after which the stretch was settled to its speech.
    latency_ms: float
    #: Stream seconds of EMG received when the stretch was handed to the voicing thread.
    asked_s: float
    #: Voiced by the stream's end (its latency counts from :meth:`LiveSession.finish`).
    final: bool = False


@dataclass
class LiveUpdate:
    """What one chunk (or the end) brought: the recogniser's event and any speech finished since the last update."""

    event: StreamEvent
    #: Speech finished since the last update, oldest first (all of the stream's rest on the final update).
    pieces: list[VoicePiece] = field(default_factory=list)

    @property
    def audio(self) -> np.ndarray | None:
        """The pieces' speech joined, (samples,) float32 at the vocoder's rate; None without any."""
        return np.concatenate([piece.audio for piece in self.pieces]) if self.pieces else None


class LiveSession:
    """A :class:`StreamingRecognizer` and an optional :class:`StreamingVoice` fed the same chunks.

    With a voice, a daemon thread voices the stretches in order (module
    docstring); :meth:`finish` waits for it. An error there (a stretch that
    cannot be filtered, say) is raised by the next :meth:`push` or
    :meth:`finish`. :meth:`close` stops the thread without waiting for the
    speech (``updates`` calls it however the stream ends).
    """

    def __init__(self, recognizer: StreamingRecognizer, voice: StreamingVoice | None = None) -> None:
        self.recognizer, self.voice = recognizer, voice
        self._asked: queue.Queue = queue.Queue()  # (stretch, arrival, asked_s), None to stop
        self._done: queue.Queue = queue.Queue()  # VoicePiece, or the exception that stopped the thread
        self._thread = None
        if voice is not None:
            self._thread = threading.Thread(target=self._voice_stretches, name="live-voice", daemon=True)
            self._thread.start()

    def push(self, chunk: np.ndarray, arrival: float | None = None) -> LiveUpdate:
        """Add raw EMG ``(samples, channels)`` that arrived at ``arrival`` (``perf_counter``; default now)."""
        arrival = time.perf_counter() if arrival is None else arrival
        update = LiveUpdate(self.recognizer.push(chunk, arrival))
        if self.voice is not None:
            self.voice.push(chunk)
            recognizer = self.recognizer
            until = recognizer.firm_sample
            settled = recognizer.received - int(recognizer.settle_frames * recognizer.rate / FRAME_RATE)
            if settled - self.voice.voiced > MAX_VOICE_LAG_S * recognizer.rate:
                until = max(until, settled)
            self._ask(self.voice.take(until), arrival)
            update.pieces = self._finished()
        return update

    def finish(self) -> LiveUpdate:
        """End of the stream: the final text, and the speech of everything not handed out yet (waits for it)."""
        arrival = time.perf_counter()
        update = LiveUpdate(self.recognizer.finish(arrival))
        if self.voice is not None:
            self._ask(self.voice.take(self.recognizer.received, final=True), arrival)
            self._asked.put(None)
            self._thread.join()
            self._thread = None
            update.pieces = self._finished()
        return update

    def close(self) -> None:
        """Stop the voicing thread after the stretch it is on; speech not finished yet is dropped."""
        if self._thread is not None:
            while not self._asked.empty():  # drop what it has not started
                try:
                    self._asked.get_nowait()
                except queue.Empty:
                    break
            self._asked.put(None)
            self._thread.join()
            self._thread = None

    def _ask(self, stretch: _Stretch | None, arrival: float) -> None:
        if stretch is not None:
            self._asked.put((stretch, arrival, self.recognizer.received / self.recognizer.rate))

    def _finished(self) -> list[VoicePiece]:
        """The pieces the voicing thread finished so far; raises what stopped it."""
        pieces = []
        while True:
            try:
                done = self._done.get_nowait()
            except queue.Empty:
                return pieces
            if isinstance(done, BaseException):
                raise done
            pieces.append(done)

    def _voice_stretches(self) -> None:
        while (asked := self._asked.get()) is not None:
            stretch, arrival, asked_s = asked
            try:
                audio = self.voice.synthesize(stretch)
            except Exception as err:  # handed to the recogniser's thread, which raises it
                self._done.put(err)
                return
            self._done.put(VoicePiece(audio, 1000 * (time.perf_counter() - arrival), asked_s, stretch.final))

    def updates(self, chunks: Iterable[tuple[np.ndarray, float]]) -> Iterator[LiveUpdate]:
        """Push every ``(chunk, arrival)`` and yield each update, then :meth:`finish`'s.

        Ctrl-C (KeyboardInterrupt) while waiting for a chunk ends the stream
        there: the final update still comes (the source's own context manager
        releases the board). The voicing thread is stopped however this ends.
        """
        try:
            try:
                for chunk, arrival in chunks:
                    yield self.push(chunk, arrival)
            except KeyboardInterrupt:
                pass
            yield self.finish()
        finally:
            self.close()


class GrowingWav:
    """A mono 16-bit WAV written piece by piece: ``PATH.partial`` grows (flushed after each piece) and becomes
    ``PATH`` on :meth:`close` (a context manager), so ``PATH`` only ever holds a whole stream's speech."""

    def __init__(self, path: str | os.PathLike, rate: int) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.file = sf.SoundFile(self.partial, "w", samplerate=rate, channels=1, format="WAV", subtype="PCM_16")
        self.samples = 0

    def append(self, audio: np.ndarray) -> None:
        """Write float audio ``(samples,)`` in [-1, 1] (clipped) and flush it to disk."""
        self.file.write(np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0))
        self.file.flush()
        self.samples += len(audio)

    def close(self) -> None:
        if not self.file.closed:
            self.file.close()
            os.replace(self.partial, self.path)

    def __enter__(self) -> "GrowingWav":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Speaker:
    """The default output device, playing speech pieces in order as they are appended (through ``sounddevice``).

    PortAudio pulls audio from :meth:`_fill` on its own thread; a piece is
    queued and returns at once, so neither the recogniser nor the voicing
    thread waits for playback, and a gap between pieces plays as silence.
    :func:`open_speaker` makes one when a device exists.
    """

    def __init__(self, sounddevice, rate: int) -> None:
        self.lock = threading.Lock()
        self.queued: list[np.ndarray] = []  #: float32 pieces not played yet, the first maybe partly
        self.name = sounddevice.query_devices(kind="output")["name"]
        self.stream = sounddevice.OutputStream(samplerate=rate, channels=1, dtype="float32", callback=self._fill)
        self.stream.start()

    def append(self, audio: np.ndarray) -> None:
        """Queue float audio ``(samples,)`` in [-1, 1] (clipped) after what is playing."""
        with self.lock:
            self.queued.append(np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0))

    def _fill(self, out: np.ndarray, frames: int, when, status) -> None:
        """PortAudio's callback: the next ``frames`` queued samples into ``out`` (frames, 1), silence after them."""
        filled = 0
        with self.lock:
            while filled < frames and self.queued:
                piece = self.queued[0]
                take = min(frames - filled, len(piece))
                out[filled : filled + take, 0] = piece[:take]
                filled += take
                if take == len(piece):
                    self.queued.pop(0)
                else:
                    self.queued[0] = piece[take:]
        out[filled:] = 0.0

    @property
    def pending_s(self) -> float:
        """Seconds of speech queued and not played yet, at the stream's rate."""
        with self.lock:
            return sum(len(piece) for piece in self.queued) / self.stream.samplerate

    def close(self, drain: bool = True) -> None:
        """Stop the device; with ``drain``, first wait until the queued speech has played."""
        try:
            while drain and self.pending_s > 0:
                time.sleep(0.05)
        finally:  # a second Ctrl-C while draining still releases the device
            self.stream.stop()
            self.stream.close()


def open_speaker(rate: int) -> Speaker | None:
    """The default output device at ``rate`` Hz, or None without the ``sounddevice`` package, PortAudio or an output
    device (:func:`~silentspeech.acquisition.recorder.open_sound_device`): speech then only goes to the WAV file."""
    return open_sound_device(lambda sounddevice: Speaker(sounddevice, rate), "speaker")


@dataclass
class LiveSnapshot:
    """Where a :class:`LiveRunner` stands, for a page that polls it."""

    running: bool
    firm: str = ""
    tentative: str = ""
    #: Seconds of EMG received.
    seconds: float = 0.0
    #: All speech so far, (samples,) float32 at the vocoder's rate (None without a producer or before the first piece).
    speech: np.ndarray | None = None
    #: p95 of the chunk -> text and chunk -> voice latencies so far, ms (None before the first).
    text_p95_ms: float | None = None
    voice_p95_ms: float | None = None
    dropped: int = 0
    #: Why the run stopped, when it failed (a one-line message).
    error: str | None = None


class LiveRunner:
    """A :class:`LiveSession` over a source, run on a background thread between :meth:`start` and :meth:`stop`.

    ``open_source`` opens the source afresh for each run (a callable
    returning an :class:`~silentspeech.acquisition.sources.EMGSource`, e.g.
    around :func:`~silentspeech.acquisition.sources.open_source`); the board
    is released when the run stops, fails or the stream ends.
    :meth:`snapshot` is safe to call from another thread at any time.
    """

    def __init__(self, pipeline: SilentSpeechPipeline, open_source, chunk_ms: float = 200.0) -> None:
        self.pipeline, self.open_source, self.chunk_ms = pipeline, open_source, chunk_ms
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.state = LiveSnapshot(running=False)
        self.text_ms: list[float] = []
        self.voice_ms: list[float] = []
        self.pieces: list[np.ndarray] = []

    def start(self) -> None:
        """Start a new run (a running one is stopped first); the text and speech start empty."""
        self.stop()
        self.stopping.clear()
        self.text_ms, self.voice_ms, self.pieces = [], [], []
        with self.lock:
            self.state = LiveSnapshot(running=True)
        self.thread = threading.Thread(target=self._run, name="live-runner", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Stop the run (the final text and speech still come) and wait for it to release the source."""
        self.stopping.set()
        if self.thread is not None:
            self.thread.join()
            self.thread = None

    def snapshot(self) -> LiveSnapshot:
        with self.lock:
            return replace(self.state)

    def _record(self, update: LiveUpdate, dropped: int, running: bool) -> None:
        if not update.event.final:
            self.text_ms.append(update.event.latency_ms)
        for piece in update.pieces:
            self.pieces.append(piece.audio)
            if not piece.final:
                self.voice_ms.append(piece.latency_ms)
        with self.lock:
            self.state = LiveSnapshot(
                running=running, firm=update.event.firm, tentative=update.event.tentative, seconds=update.event.time_s,
                speech=np.concatenate(self.pieces) if self.pieces else None,
                text_p95_ms=float(np.percentile(self.text_ms, 95)) if self.text_ms else None,
                voice_p95_ms=float(np.percentile(self.voice_ms, 95)) if self.voice_ms else None, dropped=dropped,
            )

    def _run(self) -> None:
        try:
            with self.open_source() as source:
                recognizer = StreamingRecognizer(self.pipeline, source.rate, source.name)
                voice = None if self.pipeline.producer is None else StreamingVoice(self.pipeline, source.rate, source.name)
                session = LiveSession(recognizer, voice)
                try:
                    for chunk, arrival in rechunk(source.blocks(), max(1, round(self.chunk_ms / 1000 * source.rate)), source.rate):
                        self._record(session.push(chunk, arrival), source.dropped, running=True)
                        if self.stopping.is_set():
                            break
                    if recognizer.received:
                        self._record(session.finish(), source.dropped, running=False)
                finally:
                    session.close()
        except Exception as err:  # shown on the page: a board that fails mid-run, a stream that ends too soon
            with self.lock:
                self.state = replace(self.state, error=str(err) or type(err).__name__)
        finally:
            with self.lock:
                self.state = replace(self.state, running=False)
