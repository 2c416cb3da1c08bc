"""Streaming recognition: raw EMG chunks in, text that firms up out, with the latency of each chunk.

:class:`StreamingRecognizer` takes raw EMG ``(samples, channels)`` at the
recording's rate in chunks (typically 200 ms) and, after each one, returns a
:class:`StreamEvent`: the *firm* text (words that will not change any more),
the *tentative* tail (the current best guess for the rest), and how long the
chunk waited for its text.

How each chunk is processed, and why:

* **Filtering: the current segment is re-filtered whole.** The models were
  trained on zero-phase (``filtfilt``) notch and high-pass filtered EMG
  (:func:`silentspeech.preprocessing.preprocess_emg`). A causal filter carrying its
  state across chunks would be cheaper, but it shifts phase and has half the
  attenuation (one pass instead of two), so the network would see input unlike
  its training data. Re-running :func:`~silentspeech.preprocessing.preprocess_emg`
  on the segment received so far gives exactly the offline input except for
  the newest few hundred milliseconds (the backward pass starts at the
  segment's end), which are tentative anyway. Resampling the segment from its
  first sample keeps its 689.06 Hz samples, and so its 86.13 Hz frames, on one
  grid: frame ``k`` of a segment starting at raw sample ``s`` covers
  ``s / rate + k / 86.13`` seconds onwards.
* **The Transformer is re-run on the whole segment**, through the
  pipeline's :class:`~silentspeech.inference.onnx.OnnxSpeechModel` (ONNX Runtime on
  CPU). Its attention is bidirectional, so every frame's posteriors may change
  when later EMG arrives; re-running it is the only exact option. The segment
  is bounded by ``max_segment_s`` (6 s by default, about a Gaddy utterance):
  beyond it a new segment starts ``context_s`` (1.5 s) before the end of the
  firm text, so the network keeps some left context, and its filters are
  primed with the raw second before it (as neighbouring utterances are in the
  offline cache); the stream's start and the segment's newest end are primed
  as the pipeline primes a lone recording
  (:func:`~silentspeech.inference.pipeline.primed_neighbours`). The cost per chunk thus stays bounded on an endless stream:
  filtering grows linearly with the segment and attention quadratically
  (CPU time per chunk by segment length: docs/measurements.md).
  Within one segment the final greedy text is exactly the offline pipeline's.
* **Decoding: beam search with the LM over the frames not yet firm.** Each
  chunk, the frames after the firm text are decoded by
  :meth:`~silentspeech.decoding.beam.BeamSearchDecoder.decode_words`, the LM
  continuing from the firm words. A word becomes firm when it ends at least
  ``settle_s`` before the newest frame, another word follows it, and the
  hypotheses of the last ``agreement`` chunks all have the same word in the
  same place. Decoding then restarts at the next word's first frame, so beam
  search only ever covers the unfirm tail: its cost does not grow with the
  utterance. The final call decodes the tail and firms all. Firming early
  costs some accuracy (a word's first letters may still change once the
  utterance's end arrives; streamed against offline WER for two
  ``settle_s`` values: docs/measurements.md).

The greedy (best-path) transcript of the segment is reported with the final
event, for comparison with :attr:`~silentspeech.inference.pipeline.PipelineResult.greedy_text`.
EMG far outside the amplitude the models were trained on (other units: the
text is then gibberish) is reported once, by the event after the first
second of the stream (:attr:`StreamEvent.warning`), as the offline pipeline
reports it in its result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import BinaryIO, Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from silentspeech.data.emg_files import EMGRecording
from silentspeech.decoding.beam import greedy_decode
from silentspeech.features import FRAME_RATE
from silentspeech.inference.pipeline import SilentSpeechPipeline, primed_neighbours
from silentspeech.preprocessing import EMG_RATE, EMGError, amplitude_warning, check_emg, check_emg_rate, preprocess_emg

#: Raw EMG before a new segment that primes its zero-phase filters, seconds.
FILTER_CONTEXT_S = 1.0
#: Fewest raw samples :func:`~silentspeech.preprocessing.preprocess_emg` filters; shorter segments wait.
MIN_SEGMENT_SAMPLES = 64
#: EMG a segment holds before its amplitude is checked against the trained range, seconds
#: (a stream shorter than this is checked at its end).
AMPLITUDE_CHECK_S = 1.0


@dataclass
class StreamEvent:
    """The recogniser's output after one chunk (or after :meth:`StreamingRecognizer.finish`)."""

    #: Seconds of EMG received so far (the end of the chunk), stream time.
    time_s: float
    #: Text that will not change: every firm word so far.
    firm: str
    #: Current guess for the words after the firm text (may change).
    tentative: str
    #: Wall milliseconds from the chunk's arrival to this event.
    latency_ms: float
    #: True for the event of :meth:`StreamingRecognizer.finish` (tentative is then empty).
    final: bool = False
    #: Best-path transcript of the current segment (final event only).
    greedy: str | None = None
    #: A reason to distrust the text, on the event after which it arose (once per stream): EMG far
    #: outside the trained amplitude (:func:`~silentspeech.preprocessing.amplitude_warning`).
    warning: str | None = None

    @property
    def text(self) -> str:
        """Firm and tentative text together."""
        return " ".join(part for part in (self.firm, self.tentative) if part)


@dataclass
class _Segment:
    """Raw EMG since a segment start and the decoding state within it."""

    start: int  #: global index of its first raw sample
    before: np.ndarray | None  #: raw EMG (samples, channels) just before it, for the filters
    chunks: list[np.ndarray] = field(default_factory=list)  #: raw (samples, channels) float64
    samples: int = 0
    firm_frame: int = 0  #: first frame not covered by firm words
    #: The latest hypotheses (words after firm_frame), newest last.
    history: list[list[str]] = field(default_factory=list)

    def unfirm(self) -> str:
        return " ".join(self.history[-1]) if self.history else ""

    def raw(self) -> np.ndarray:
        if len(self.chunks) > 1:
            self.chunks = [np.concatenate(self.chunks)]
        return self.chunks[0]


class StreamingRecognizer:
    """Raw EMG chunks -> firm and tentative text (see the module docstring).

    Args:
        pipeline: a :class:`~silentspeech.inference.pipeline.SilentSpeechPipeline` with a
            recognizer and a beam decoder (``beam`` > 0; its LM, alpha and beta are used).
        rate: raw EMG sampling rate, Hz (250-20000, :func:`~silentspeech.preprocessing.check_emg_rate`;
            below the models' training rate with a warning).
        source: name of the input, for error messages.
        settle_s: a word must end this many seconds before the newest EMG to become firm.
        agreement: ... and be the same in the hypotheses of this many consecutive chunks.
        max_segment_s: longest EMG the network and filters are re-run on, seconds.
        context_s: firm EMG a new segment keeps before the unfirm tail as the network's left context, seconds.
    """

    def __init__(
        self,
        pipeline: SilentSpeechPipeline,
        rate: float,
        source: str = "EMG stream",
        settle_s: float = 0.8,
        agreement: int = 2,
        max_segment_s: float = 6.0,
        context_s: float = 1.5,
    ) -> None:
        if pipeline.recognizer is None or pipeline.beam_decoder is None:
            raise ValueError("streaming needs a pipeline with a recognizer and beam search (beam > 0)")
        rate = check_emg_rate(rate, source, trained_rate=pipeline.preprocessing.rate)
        if agreement < 1:
            raise ValueError(f"agreement must be at least 1 chunk, got {agreement}")
        if max_segment_s < 2 * (context_s + settle_s):
            raise ValueError(
                f"max_segment_s ({max_segment_s:g} s) must be at least twice context_s + settle_s ({context_s:g} + {settle_s:g} s): "
                "a new segment holds the context and the unfirm tail"
            )
        self.pipeline = pipeline
        self.rate = float(rate)
        self.source = source
        self.settle_frames = int(round(settle_s * FRAME_RATE))
        self.agreement = agreement
        self.max_segment_samples = int(max_segment_s * rate)
        self.context_frames = int(round(context_s * FRAME_RATE))
        self.preprocessing = replace(pipeline.preprocessing, rate=self.rate, channels=pipeline.channels)  # the runs' constants
        self.firm_words: list[str] = []
        self.received = 0  #: raw samples received
        self.segment = _Segment(start=0, before=None)
        self.amplitude_checked = False
        self.pending_warning: str | None = None  #: a warning not yet reported by an event
        # First calls load and plan (the resampler's library, the graph's kernels): make them before the first chunk.
        preprocess_emg(np.zeros((int(rate), pipeline.channels)), self.preprocessing)
        with torch.inference_mode():
            pipeline.recognizer_graph(torch.zeros(1, pipeline.channels, int(EMG_RATE), device=pipeline.device))

    @property
    def firm_sample(self) -> int:
        """Raw samples of the stream before the first unfirm word: EMG that will not change the text any more."""
        return self.segment.start + int(round(self.segment.firm_frame * self.rate / FRAME_RATE))

    def events(self, chunks: Iterable[tuple[np.ndarray, float]]) -> Iterator[StreamEvent]:
        """Push every ``(chunk, arrival)`` of ``chunks`` (from :func:`replay_recording` or
        :func:`read_float32_chunks`) and yield each event, then the final one of :meth:`finish`."""
        for chunk, arrival in chunks:
            yield self.push(chunk, arrival)
        yield self.finish()

    def push(self, chunk: np.ndarray, arrival: float | None = None) -> StreamEvent:
        """Add raw EMG ``(samples, channels)`` at :attr:`rate`; returns the text so far.

        ``arrival`` is the ``time.perf_counter()`` at which the chunk arrived
        (default: now); the event's latency counts from it. Raises
        :class:`~silentspeech.preprocessing.EMGError` for a wrong channel count or NaN.
        """
        arrival = time.perf_counter() if arrival is None else arrival
        chunk = check_emg(chunk, self.pipeline.channels, f"{self.source} at {self.received / self.rate:.2f} s")
        self.segment.chunks.append(chunk)
        self.segment.samples += chunk.shape[0]
        self.received += chunk.shape[0]
        if self.segment.samples < MIN_SEGMENT_SAMPLES:
            return self._event(self.segment.unfirm(), arrival)
        log_probs = self._log_probs()
        words = self._decode_tail(log_probs)
        self._firm_agreed(words, horizon=len(log_probs) - self.settle_frames)
        if self.segment.samples > self.max_segment_samples:
            self._start_new_segment(log_probs)
        return self._event(self.segment.unfirm(), arrival)

    def finish(self, arrival: float | None = None) -> StreamEvent:
        """End of the stream: decode the tail, firm every word; returns the final event.

        Raises :class:`~silentspeech.preprocessing.EMGError` when the whole
        stream held too few samples to recognise anything (an empty or
        1-sample file would otherwise end "successfully" with no text).
        """
        arrival = time.perf_counter() if arrival is None else arrival
        if self.received < MIN_SEGMENT_SAMPLES:
            got = f"only {self.received} EMG samples received" if self.received else "no EMG received"
            raise EMGError(f"{self.source}: {got}; at least {MIN_SEGMENT_SAMPLES} are needed to recognise anything")
        greedy = None
        if self.segment.samples >= MIN_SEGMENT_SAMPLES:
            log_probs = self._log_probs(final=True)
            greedy = greedy_decode(log_probs[None])[0]
            self.firm_words += [word for word, _, _ in self._decode_tail(log_probs)]
        self.segment.history = []
        event = self._event("", arrival)
        event.final, event.greedy = True, greedy
        return event

    @torch.inference_mode()
    def _log_probs(self, final: bool = False) -> np.ndarray:
        """CTC log posteriors ``(frames, 38)`` at 86.13 Hz of the current segment (``final``: the stream's end)."""
        raw = self.segment.raw()
        primed_before, primed_after = primed_neighbours(raw, self.rate)  # as the pipeline primes a lone recording
        before = primed_before if self.segment.before is None else self.segment.before
        emg = preprocess_emg(raw, self.preprocessing, before=before, after=primed_after, source=self.source)
        if not self.amplitude_checked and (final or emg.shape[0] >= AMPLITUDE_CHECK_S * EMG_RATE):
            self.amplitude_checked = True
            self.pending_warning = amplitude_warning(emg, self.source)
        batch = torch.from_numpy(emg).T[None].to(self.pipeline.device)
        logits = self.pipeline.recognizer_graph(batch)["ctc_logits"].float()
        return F.log_softmax(logits, dim=-1)[0].cpu().numpy()

    def _decode_tail(self, log_probs: np.ndarray) -> list[tuple[str, int, int]]:
        """Beam search over the frames after the firm text; frames are segment indices."""
        start = self.segment.firm_frame
        words = self.pipeline.beam_decoder.decode_words(log_probs[start:], context=self.firm_words)
        return [(word, first + start, end + start) for word, first, end in words]

    def _firm_agreed(self, words: list[tuple[str, int, int]], horizon: int) -> None:
        """Firm the leading words that ended before ``horizon``, have a successor and the same place in the last hypotheses."""
        history = self.segment.history = (self.segment.history + [[word for word, _, _ in words]])[-self.agreement :]
        agreed = 0
        while (
            len(history) == self.agreement
            and agreed + 1 < len(words)
            and words[agreed][2] <= horizon
            and all(agreed < len(earlier) and earlier[agreed] == words[agreed][0] for earlier in history)
        ):
            agreed += 1
        if agreed:
            self.firm_words += [word for word, _, _ in words[:agreed]]
            # Restart decoding at the next word: the frames between belong to the firm word's silence.
            self.segment.firm_frame = words[agreed][1]
            self.segment.history = [hypothesis[agreed:] for hypothesis in history]

    def _start_new_segment(self, log_probs: np.ndarray) -> None:
        """Bound the work per chunk: continue in a segment that starts ``context_s`` before the firm boundary.

        If the firm text lags so far behind that the unfirm tail would fill
        half a segment, every word ending before the settle horizon is firmed
        first (a forced cut; a word straddling it may be split).
        """
        horizon = len(log_probs) - self.settle_frames
        cut = self.segment.firm_frame
        tail_samples = (len(log_probs) - cut) * self.rate / FRAME_RATE
        if tail_samples > self.max_segment_samples / 2:
            ended = [w for w in self._decode_tail(log_probs[:horizon]) if w[2] <= horizon]
            self.firm_words += [word for word, _, _ in ended]
            cut = horizon
        keep = min(cut, self.context_frames)  # firm frames kept as the network's left context
        offset = int(round((cut - keep) * self.rate / FRAME_RATE))  # raw samples from the segment start to the new start
        raw = self.segment.raw()
        context = int(FILTER_CONTEXT_S * self.rate)
        before = raw[max(0, offset - context) : offset]
        if offset < context and self.segment.before is not None:
            before = np.concatenate([self.segment.before, before])[-context:]
        self.segment = _Segment(
            start=self.segment.start + offset, before=before if len(before) else None,
            chunks=[raw[offset:]], samples=raw.shape[0] - offset, firm_frame=keep,
        )

    def _event(self, tentative: str, arrival: float) -> StreamEvent:
        warning, self.pending_warning = self.pending_warning, None
        return StreamEvent(
            time_s=self.received / self.rate, firm=" ".join(self.firm_words), tentative=tentative,
            latency_ms=1000 * (time.perf_counter() - arrival), warning=warning,
        )


def replay_recording(recording: EMGRecording, chunk_ms: float, realtime: bool = True) -> Iterator[tuple[np.ndarray, float]]:
    """Cut a recording into ``chunk_ms`` chunks; yields ``(chunk (samples, channels), arrival perf_counter time)``.

    With ``realtime`` each chunk arrives when its last sample would have been
    recorded, counted from the first call; a consumer that falls behind gets
    every chunk that has arrived since, joined into one (and the arrival of
    the oldest, so its latency counts the wait). Without ``realtime`` chunks
    arrive as fast as they are asked for.
    """
    step = max(1, int(round(chunk_ms / 1000 * recording.rate)))
    total = recording.emg.shape[0]
    start_clock = time.perf_counter()
    position = 0
    while position < total:
        if not realtime:
            yield recording.emg[position : position + step], time.perf_counter()
            position += step
            continue
        first_end = min(position + step, total)
        first_arrival = start_clock + first_end / recording.rate
        now = time.perf_counter()
        if now < first_arrival:
            time.sleep(first_arrival - now)
            now = first_arrival
        arrived = int((now - start_clock) * recording.rate)  # samples recorded by now
        end = min(total, max(first_end, position + (arrived - position) // step * step))
        yield recording.emg[position:end], first_arrival
        position = end


def read_float32_chunks(stream: BinaryIO, channels: int, chunk_samples: int, source: str = "stdin") -> Iterator[tuple[np.ndarray, float]]:
    """Read raw EMG from a byte stream; yields ``(chunk (samples, channels) float64, arrival perf_counter time)``.

    The stream format: little-endian float32 samples, channels interleaved
    (``samples x channels`` row-major, as ``emg.astype('<f4').tobytes()``
    writes a ``(samples, channels)`` array), no header. A chunk is yielded as
    soon as ``chunk_samples`` samples are in; the last may be shorter. Raises
    :class:`~silentspeech.preprocessing.EMGError` naming ``source`` when the stream
    ends inside a sample frame.
    """
    frame_bytes = 4 * channels
    want = chunk_samples * frame_bytes
    pending = b""
    position = 0
    while True:
        data = stream.read(want - len(pending))
        if data:
            pending += data
            if len(pending) < want:
                continue
        usable = len(pending) // frame_bytes * frame_bytes
        if usable:
            chunk = np.frombuffer(pending[:usable], dtype="<f4").reshape(-1, channels).astype(np.float64)
            yield chunk, time.perf_counter()
            position += chunk.shape[0]
        pending = pending[usable:]
        if not data:
            if pending:
                raise EMGError(
                    f"{source}: the stream ended inside a sample frame: {len(pending)} bytes after sample {position}, "
                    f"but a frame is {channels} channels x 4 bytes (float32) = {frame_bytes} bytes"
                )
            return
