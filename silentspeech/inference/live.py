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
voices the rest. :class:`GrowingWav` appends the pieces to a WAV file as they come; :class:`LiveRunner` runs a session
on a background thread for a page that polls it (the demo's live tab).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import soundfile as sf

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

    def voice(self, until: int, final: bool = False) -> np.ndarray | None:
        """Audio ``(samples,)`` float32 at the vocoder's rate for raw samples ``voiced..until``, or None when too few.

        ``final``: the stream has ended; the rest is voiced whatever its
        length (if it can be filtered) and the filters after it are primed as
        for a lone recording.
        """
        received = self.offset + self.buffer.shape[0]
        until = min(until, received)
        if until - self.voiced < (MIN_FILTER_SAMPLES if final else self.min_samples):
            return None
        raw = self.buffer[self.voiced - self.offset : until - self.offset]
        primed_before, primed_after = primed_neighbours(raw, self.rate)
        before = self.buffer[max(self.offset, self.voiced - self.context) - self.offset : self.voiced - self.offset]
        after = self.buffer[until - self.offset : until + self.context - self.offset]
        emg = preprocess_emg(
            raw, self.preprocessing, before=before if len(before) else primed_before,
            after=primed_after if final or not len(after) else after, source=self.source,
        )
        audio = self.pipeline.run_preprocessed(emg, recognize=False).audio
        self.voiced = until
        keep = max(self.offset, until - self.context)  # the next stretch's left context
        self.buffer, self.offset = self.buffer[keep - self.offset :], keep
        return audio


@dataclass
class LiveUpdate:
    """What one chunk (or the end) brought: the recogniser's event and any new speech."""

    event: StreamEvent
    #: Speech voiced after this chunk, (samples,) float32 at the vocoder's rate; None if none.
    audio: np.ndarray | None = None
    #: Wall milliseconds from the chunk's arrival to that speech (None without it).
    voice_latency_ms: float | None = None


class LiveSession:
    """A :class:`StreamingRecognizer` and an optional :class:`StreamingVoice` fed the same chunks."""

    def __init__(self, recognizer: StreamingRecognizer, voice: StreamingVoice | None = None) -> None:
        self.recognizer, self.voice = recognizer, voice

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
            self._voice(update, arrival, until, final=False)
        return update

    def finish(self) -> LiveUpdate:
        """End of the stream: the final text, and the speech of everything not voiced yet."""
        arrival = time.perf_counter()
        update = LiveUpdate(self.recognizer.finish(arrival))
        if self.voice is not None:
            self._voice(update, arrival, self.recognizer.received, final=True)
        return update

    def _voice(self, update: LiveUpdate, arrival: float, until: int, final: bool) -> None:
        audio = self.voice.voice(until, final)
        if audio is not None:
            update.audio, update.voice_latency_ms = audio, 1000 * (time.perf_counter() - arrival)

    def updates(self, chunks: Iterable[tuple[np.ndarray, float]]) -> Iterator[LiveUpdate]:
        """Push every ``(chunk, arrival)`` and yield each update, then :meth:`finish`'s.

        Ctrl-C (KeyboardInterrupt) while waiting for a chunk ends the stream
        there: the final update still comes (the source's own context manager
        releases the board).
        """
        try:
            for chunk, arrival in chunks:
                yield self.push(chunk, arrival)
        except KeyboardInterrupt:
            pass
        yield self.finish()


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
        if update.audio is not None:
            self.pieces.append(update.audio)
            if not update.event.final:
                self.voice_ms.append(update.voice_latency_ms)
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
                for chunk, arrival in rechunk(source.blocks(), max(1, round(self.chunk_ms / 1000 * source.rate)), source.rate):
                    self._record(session.push(chunk, arrival), source.dropped, running=True)
                    if self.stopping.is_set():
                        break
                if recognizer.received:
                    self._record(session.finish(), source.dropped, running=False)
        except Exception as err:  # shown on the page: a board that fails mid-run, a stream that ends too soon
            with self.lock:
                self.state = replace(self.state, error=str(err) or type(err).__name__)
        finally:
            with self.lock:
                self.state = replace(self.state, running=False)
