"""Subcommands that run trained models on recordings and judge the speech: ``voice`` (EMG -> WAV), ``stream``
(EMG -> text as it arrives), ``evaluate-production`` (a production model scored by an ASR) and ``vocoder``
(train vocoders, compare them with Griffin-Lim)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from silentspeech.cli.common import CLIError, Command, add_beam_search_arguments, add_device_argument

# The spec vocabularies of --vocoder and --asr: the packages' light __init__ modules (--help stays fast).
from silentspeech.evaluation import ASR_SPEC_HELP, DEFAULT_ASR
from silentspeech.vocoder import DEFAULT_VOCODER, VOCODER_SPEC_HELP

if TYPE_CHECKING:
    from silentspeech.inference.pipeline import SilentSpeechPipeline


def _add_inference_mains_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mains", type=float,
        help="mains frequency to notch, Hz (default: the run's recorded data.preprocessing.mains; every other "
        "preprocessing constant is always the run's)",
    )


def add_espeak_arguments(parser: argparse.ArgumentParser) -> None:
    """--espeak-voice and --espeak-rate: how espeak-ng speaks the recogniser's text (voice through text)."""
    from silentspeech.inference.text_voice import DEFAULT_ESPEAK_RATE, DEFAULT_ESPEAK_VOICE, ESPEAK_RATES

    parser.add_argument(
        "--espeak-voice", default=DEFAULT_ESPEAK_VOICE,
        help="espeak-ng voice of the voice through text: a language (en-us, en-gb) or language+variant (en-us+m3, en-us+f2) "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--espeak-rate", type=int, default=DEFAULT_ESPEAK_RATE,
        help=f"its speaking rate, words per minute ({ESPEAK_RATES[0]}-{ESPEAK_RATES[1]}; default: %(default)s)",
    )


def _add_voice_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint", type=Path,
        help="production run directory (or its best.safetensors); with --via text the recognition run whose text is spoken",
    )
    parser.add_argument(
        "input", type=Path,
        help="raw EMG: a Gaddy utterance {i}_emg.npy (its {i}_info.json gives 1000 Hz) or a bare (samples, channels) "
        ".npy/.csv with --rate; the channel count must be the model's (8 for Gaddy)",
    )
    parser.add_argument("--out", type=Path, required=True, help="WAV file to write (22050 Hz, 16-bit)")
    parser.add_argument(
        "--via", choices=("direct", "text"), default="direct",
        help="direct (the default): EMG -> production model -> features -> vocoder, the system's speech; text: "
        "EMG -> recogniser -> beam-search text -> espeak-ng, the intelligible fallback (CHECKPOINT is then a recognition run)",
    )
    parser.add_argument("--vocoder", default=DEFAULT_VOCODER, help=f"{VOCODER_SPEC_HELP} (default: %(default)s; direct path)")
    parser.add_argument("--lm", type=Path, help="ARPA/KenLM LM for beam search with --via text (default: the one tune-lm saved, else no LM)")
    add_beam_search_arguments(parser)
    add_espeak_arguments(parser)
    parser.add_argument("--rate", type=float, help="sampling rate of INPUT in Hz (250-20000; required for a bare array)")
    _add_inference_mains_argument(parser)
    add_device_argument(parser)


def _voice_pipeline(args: argparse.Namespace) -> SilentSpeechPipeline:
    """The pipeline ``voice`` runs: the production model and vocoder, or (``--via text``) the recogniser and espeak-ng."""
    from silentspeech.inference.pipeline import SilentSpeechPipeline

    if args.via == "direct":
        return SilentSpeechPipeline(producer=args.checkpoint, vocoder=args.vocoder, device=args.device, mains=args.mains)
    from silentspeech.config import recipe_task
    from silentspeech.decoding.settings import resolve_lm_settings
    from silentspeech.inference.text_voice import TextVoice
    from silentspeech.runs import config_file

    config = config_file(args.checkpoint)
    task = recipe_task(config) if args.checkpoint.exists() and config.is_file() else None
    if task != "recognition":
        found = f"is a {task} run" if task else ("does not exist" if not args.checkpoint.exists() else f"is no run (no {config})")
        raise CLIError(f"--via text speaks a recogniser's text: give a recognition run as CHECKPOINT ({args.checkpoint} {found})")
    settings = resolve_lm_settings(args.checkpoint, args.lm, args.alpha, args.beta, args.beam)
    return SilentSpeechPipeline(
        recognizer=args.checkpoint, device=args.device, mains=args.mains, text_voice=TextVoice(args.espeak_voice, args.espeak_rate),
        **({} if settings is None else settings.pipeline_keywords()),
    )


def _run_voice(args: argparse.Namespace) -> int:
    from silentspeech.data.emg_files import read_emg_file
    from silentspeech.features import write_wav

    if args.out.is_dir():  # checked before loading anything: a WAV cannot replace a folder
        raise CLIError(f"--out {args.out} is a folder; give the WAV file to write, e.g. {args.out / 'speech.wav'}")
    pipeline = _voice_pipeline(args)
    recording = read_emg_file(args.input, rate=args.rate, channels=pipeline.channels)
    result = pipeline.run(recording)  # EMGError (a ValueError) names the file and the problem
    for warning in result.warnings:
        print(f"silentspeech voice: warning: {warning}", file=sys.stderr)
    if args.via == "text":
        audio, made_by = result.text_audio, f"text -> {result.text_voice}"
    else:
        audio, made_by = result.audio, f"vocoder: {result.vocoder}"
    write_wav(args.out, audio, result.audio_rate)
    print(f"wrote {args.out}: {len(audio) / result.audio_rate:.2f} s at {result.audio_rate} Hz, {made_by}")
    if args.via == "text":
        print(f"text: {result.beam_text if result.beam_text is not None else result.greedy_text}")
    if recording.text:
        print(f"prompt: {recording.text}")
    print("timings: " + ", ".join(f"{stage} {1000 * t:.0f} ms" for stage, t in result.timings.items()))
    return 0


def _add_stream_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recognizer", type=Path, help="recognition run directory (or its best.safetensors)")
    parser.add_argument(
        "input", nargs="?", default="-",
        help="raw EMG: a Gaddy utterance {i}_emg.npy (1000 Hz), a bare (samples, channels) .npy/.csv with --rate, "
        "or - (the default) for stdin: little-endian float32 samples with the channels interleaved and no header, "
        "as numpy's emg.astype('<f4').tobytes() writes a (samples, channels) array; --rate is then required",
    )
    parser.add_argument("--rate", type=float, help="sampling rate of INPUT in Hz (250-20000; required for a bare array and stdin)")
    parser.add_argument(
        "--realtime", action=argparse.BooleanOptionalAction, default=True,
        help="replay a file at recording speed, chunk by chunk (default); --no-realtime feeds it as fast as it is "
        "decoded (stdin always arrives at its writer's pace)",
    )
    add_streaming_arguments(parser)


def add_streaming_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the streaming recogniser that ``stream`` and ``live`` share (chunks, LM, firming, mains, device)."""
    parser.add_argument("--chunk-ms", type=float, default=200.0, help="EMG per chunk, ms (default: %(default)g)")
    parser.add_argument("--lm", type=Path, help="ARPA/KenLM LM for beam search (default: the one tune-lm saved, else no LM)")
    add_beam_search_arguments(parser)
    parser.add_argument("--settle-ms", type=float, default=800.0, help="a word must end this long before the newest EMG to become firm (default: %(default)g)")
    parser.add_argument("--agreement", type=int, default=2, help="... and be the same in this many consecutive chunks' hypotheses (default: %(default)s)")
    parser.add_argument("--max-segment-s", type=float, default=6.0, help="longest EMG the network is re-run on per chunk, s (default: %(default)g)")
    parser.add_argument("--context-s", type=float, default=1.5, help="firm EMG a new segment keeps as the network's left context, s (default: %(default)g)")
    _add_inference_mains_argument(parser)
    add_device_argument(parser)


def streaming_pipeline(args: argparse.Namespace, **models):
    """The :class:`~silentspeech.inference.pipeline.SilentSpeechPipeline` of :func:`add_streaming_arguments`' options:
    ``args.recognizer`` with its LM settings (given, else tuned, else none), plus ``models`` (producer, vocoder)."""
    from silentspeech.decoding.settings import resolve_lm_settings
    from silentspeech.inference.pipeline import SilentSpeechPipeline

    if args.chunk_ms <= 0:
        raise CLIError(f"--chunk-ms must be positive, got {args.chunk_ms:g}")
    settings = resolve_lm_settings(args.recognizer, args.lm, args.alpha, args.beta, args.beam)
    # Without an LM given or tuned, beam search runs without one.
    lm = {} if settings is None else settings.pipeline_keywords()
    return SilentSpeechPipeline(recognizer=args.recognizer, device=args.device, mains=args.mains, **models, **lm)


def streaming_recognizer(args: argparse.Namespace, pipeline, rate: float, source: str):
    """The :class:`~silentspeech.inference.streaming.StreamingRecognizer` of :func:`add_streaming_arguments`' options."""
    from silentspeech.inference.streaming import StreamingRecognizer

    return StreamingRecognizer(
        pipeline, rate, source, settle_s=args.settle_ms / 1000, agreement=args.agreement,
        max_segment_s=args.max_segment_s, context_s=args.context_s,
    )


def show_stream(events, command: str):
    """Print each streaming event as it comes and return ``(final event, chunk latencies ms)``.

    On a terminal one line is rewritten: the firm text, then the tentative
    tail dimmed (the oldest words give way to fit the width); elsewhere each
    newly firm stretch gets a line with its stream time. Warnings go to
    stderr, before the text they put in doubt.
    """
    import shutil

    tty = sys.stdout.isatty()
    latencies, shown = [], ""
    for event in events:  # the last event is the final one
        if not event.final:
            latencies.append(event.latency_ms)
        if event.warning:  # on its own line, before the text that it puts in doubt
            print("\r\033[K" if tty else "", end="", flush=True)
            print(f"silentspeech {command}: warning: {event.warning}", file=sys.stderr, flush=True)
        if tty:
            firm, overflow = event.firm, len(event.firm) + len(event.tentative) + 2 - shutil.get_terminal_size().columns
            firm = firm if overflow <= 0 else "…" + firm[overflow + 1 :]
            print(f"\r\033[K{firm} \033[2m{event.tentative}\033[0m", end="", flush=True)
        elif event.firm != shown:
            print(f"{event.time_s:7.2f} s  {event.firm[len(shown):].strip()}", flush=True)
        shown = event.firm
    if tty:
        print("\r\033[K", end="")
    print(f"final: {event.firm}")
    print(f"greedy: {event.greedy}")
    return event, latencies


def latency_line(latencies: list[float], chunk_ms: float, final) -> str:
    """The chunk -> text latency summary (median, p95, max; final decode) of :func:`show_stream`'s latencies."""
    import numpy as np

    if not latencies:
        return f"latency chunk -> text: no chunk before the end ({final.time_s:.2f} s of EMG); final decode {final.latency_ms:.0f} ms"
    p50, p95 = np.percentile(latencies, [50, 95])
    return (
        f"latency chunk -> text over {len(latencies)} chunks of {chunk_ms:g} ms ({final.time_s:.2f} s of EMG): "
        f"median {p50:.0f} ms, p95 {p95:.0f} ms, max {max(latencies):.0f} ms; final decode {final.latency_ms:.0f} ms"
    )


def _run_stream(args: argparse.Namespace) -> int:
    from silentspeech.data.emg_files import read_emg_file
    from silentspeech.inference.streaming import read_float32_chunks, replay_recording

    pipeline = streaming_pipeline(args)
    if args.input == "-":
        if args.rate is None:
            raise CLIError("stdin: give the sampling rate with --rate")
        rate, source = args.rate, "stdin"
        chunks = read_float32_chunks(sys.stdin.buffer, pipeline.channels, max(1, round(args.chunk_ms / 1000 * rate)), source)
    else:
        recording = read_emg_file(args.input, rate=args.rate, channels=pipeline.channels)
        rate, source = recording.rate, recording.source
        chunks = replay_recording(recording, args.chunk_ms, args.realtime)
    recognizer = streaming_recognizer(args, pipeline, rate, source)
    final, latencies = show_stream(recognizer.events(chunks), "stream")
    if args.input != "-" and recording.text:
        print(f"prompt: {recording.text}")
    print(latency_line(latencies, args.chunk_ms, final))
    return 0


def _add_evaluate_production_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="production run directory (or its best.safetensors)")
    parser.add_argument("--asr", default=DEFAULT_ASR, help=f"{ASR_SPEC_HELP} (default: %(default)s)")
    parser.add_argument("--split", default="test", help="cache split to evaluate (default: %(default)s)")
    parser.add_argument("--vocoder", default=DEFAULT_VOCODER, help=f"{VOCODER_SPEC_HELP} (default: %(default)s)")
    parser.add_argument("--cache", type=Path, help="prepared cache (default: the run's data.cache)")
    parser.add_argument("--max-utterances", type=int, default=0, help="evaluate only the first N utterances (default: all)")
    parser.add_argument(
        "--against", metavar="VOCODER",
        help="also render the same utterances with this vocoder (e.g. griffin-lim) and print the WER difference with its "
        "paired bootstrap 95 %% interval over utterances (its files in OUT/against/)",
    )
    add_device_argument(parser)
    parser.add_argument("--out", type=Path, help="output folder (default: <run dir>/production_eval_<split>/)")


def _run_evaluate_production(args: argparse.Namespace) -> int:
    from silentspeech.evaluation.asr import load_asr
    from silentspeech.evaluation.production import default_out, evaluate_production

    asr = load_asr(args.asr, args.device)
    out = args.out or default_out(args.checkpoint, args.split)
    scores = evaluate_production(args.checkpoint, asr, args.split, args.vocoder, args.cache, out, args.max_utterances, args.device)
    mcd = "n/a" if scores.mcd_db is None else f"{scores.mcd_db:.2f} dB"
    print(
        f"{scores.split}: {scores.utterances} utterances, vocoder {scores.vocoder}, judge {scores.asr}: "
        f"WER {100 * scores.wer:.2f} % (95 % bootstrap interval {100 * scores.wer_low:.2f} to {100 * scores.wer_high:.2f}; "
        f"{scores.substitutions} substitutions, {scores.deletions} deletions, "
        f"{scores.insertions} insertions in {scores.reference_words} words), CER {100 * scores.cer:.2f} %, MCD (voiced) {mcd}"
    )
    print(f"wrote {out}/results.csv, summary.json, report.md")
    if args.against:
        other = evaluate_production(args.checkpoint, asr, args.split, args.against, args.cache, out / "against", args.max_utterances, args.device)
        difference, low, high = scores.per_utterance.against(other.per_utterance)
        verdict = "cannot tell them apart" if low <= 0 <= high else ("better" if high < 0 else "worse")
        print(
            f"against {other.vocoder}: WER {100 * other.wer:.2f} %; difference {100 * difference:+.2f} points, paired 95 % bootstrap "
            f"interval {100 * low:+.2f} to {100 * high:+.2f} over {scores.utterances} utterances: {verdict}"
        )
    return 0


def _add_vocoder_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="vocoder_action", metavar="ACTION", required=True)
    train = actions.add_parser(
        "train",
        help="train (or fine-tune) a HiFi-GAN vocoder on a preprocessing cache",
        description="Train a HiFi-GAN on the voiced audio of a `silentspeech prepare` cache (features computed "
        "from the audio, frame-aligned). Writes OUT_DIR/generator.safetensors, config.yaml and last.ckpt.",
    )
    train.add_argument("config", type=Path, help="vocoder recipe, e.g. vocoder/small.yaml (CPU) or vocoder/v1.yaml")
    train.add_argument("overrides", nargs="*", metavar="key=value", help="recipe overrides, e.g. cache=/data/cache max_minutes=15")
    train.add_argument(
        "--finetune-on", metavar="RUN",
        help="production model run: train on its predicted features (voiced and silent utterances, DTW-aligned to the "
        "true audio: their own, or the voiced twin's)",
    )
    train.add_argument(
        "--init", metavar="VOCODER",
        help="start from this generator: v1-universal or v1-lj (pretrained V1, with a V1 recipe such as vocoder/v1_finetune.yaml), "
        "our run folder or file, or an original-layout checkpoint",
    )
    train.add_argument("--resume", action="store_true", help="continue the run in out_dir from its last.ckpt")
    compare = actions.add_parser(
        "compare",
        help="resynthesise a split's audio from true features: Griffin-Lim vs a vocoder (LSD, MCD)",
        description="Turn each utterance's true MFCC back into audio with Griffin-Lim and, when given, a vocoder "
        "checkpoint; print log-spectral distance and mel-cepstral distortion (dB, lower is better).",
    )
    compare.add_argument("--cache", type=Path, required=True, help="preprocessing cache folder")
    compare.add_argument("--vocoder", help=f"{VOCODER_SPEC_HELP}; compared beside Griffin-Lim (default: Griffin-Lim only)")
    compare.add_argument("--split", default="test", help="split whose voiced audio to use (default test)")
    compare.add_argument("--limit", type=int, default=0, help="at most this many utterances (default all)")
    compare.add_argument("--out", type=Path, help="write resynthesis.json, a spectrogram figure and example WAVs here")
    compare.add_argument(
        "--second-rendition", action="store_true",
        help="synthetic corpora: also score the same speech rendered again with new noise, the floor for natural-sounding output",
    )


def _run_vocoder(args: argparse.Namespace) -> int:
    if args.vocoder_action == "train":
        from silentspeech.config import recipe_task
        from silentspeech.runs import GENERATOR_FILE
        from silentspeech.tasks import train_recipe

        task = recipe_task(args.config)
        if task != "vocoder":
            raise CLIError(f"{args.config} is a {task} recipe, not a vocoder one (train it with `silentspeech train`)")
        overrides = list(args.overrides)
        if args.finetune_on:
            overrides.append(f"finetune_on={args.finetune_on}")
        if args.init:
            overrides.append(f"init_from={args.init}")
        out = train_recipe(args.config, overrides, resume=args.resume)
        print(f"vocoder written to {out / GENERATOR_FILE}")
        return 0
    from silentspeech.vocoder.compare import compare_resynthesis

    scores = compare_resynthesis(args.cache, args.vocoder, args.split, args.limit, args.out, args.second_rendition)
    print(f"{'method':<16} {'utterances':>10} {'LSD dB':>8} {'MCD dB':>8}  source")
    for score in scores:
        print(
            f"{score.method:<16} {score.utterances:>10} {score.log_spectral_distance_db:>8.2f} "
            f"{score.mel_cepstral_distortion_db:>8.2f}  {score.source}"
        )
    return 0


# --- the subcommands ---------------------------------------------------------

VOICE = Command(
    "voice",
    "Turn one raw EMG recording into speech audio (WAV) with a production model and a vocoder.",
    _add_voice_arguments,
    _run_voice,
)
STREAM = Command(
    "stream",
    "Recognise EMG as it arrives (a file replayed in real time, or stdin): text as it firms up, chunk latency.",
    _add_stream_arguments,
    _run_stream,
)
EVALUATE_PRODUCTION = Command(
    "evaluate-production",
    "Score a production model: synthesise a split, transcribe it with an ASR, report WER/CER and MCD.",
    _add_evaluate_production_arguments,
    _run_evaluate_production,
)
VOCODER = Command(
    "vocoder",
    "Train HiFi-GAN vocoders and compare them with Griffin-Lim on true features.",
    _add_vocoder_arguments,
    _run_vocoder,
)
