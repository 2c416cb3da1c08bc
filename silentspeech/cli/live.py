"""Subcommands on a live EMG source (a board or an LSL stream): ``record`` (a corpus in the Gaddy layout) and
``live`` (text and speech as the EMG is recorded)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from silentspeech.cli.common import CLIError, Command, add_board_arguments, open_board
from silentspeech.cli.speech import add_streaming_arguments, latency_line, show_stream, streaming_pipeline, streaming_recognizer
from silentspeech.vocoder import DEFAULT_VOCODER, VOCODER_SPEC_HELP

#: Seconds between two updates of the quality line on a terminal.
QUALITY_EVERY_S = 0.25


def _add_record_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="corpus root: takes go to OUT/voiced_parallel_data/SESSION/ or OUT/silent_parallel_data/SESSION_silent/")
    add_board_arguments(parser)
    prompts = parser.add_mutually_exclusive_group(required=True)
    prompts.add_argument("--prompts", type=Path, help="file of prompts, one sentence per line")
    prompts.add_argument("--book", type=Path, help="plain-text book whose sentences are the prompts, in order")
    parser.add_argument("--mode", choices=("voiced", "silent"), required=True, help="read aloud, or mouth silently")
    timing = parser.add_mutually_exclusive_group(required=True)
    timing.add_argument("--seconds", type=float, help="length of every take, s")
    timing.add_argument("--key", action="store_true", help="start and stop every take with Enter")
    parser.add_argument("--session", help="session name (default: today as month-day, e.g. 12-7); an existing one continues")
    parser.add_argument("--count", type=int, help="takes to record in this run (default: every prompt not yet recorded)")
    parser.add_argument("--no-audio", action="store_true", help="do not use the microphone even if there is one")


def _run_record(args: argparse.Namespace) -> int:
    import numpy as np

    from silentspeech.acquisition.quality import QUALITY_WINDOW_S, signal_quality
    from silentspeech.acquisition.recorder import (
        default_session,
        open_microphone,
        read_prompts,
        record_take,
        resume_point,
        session_folder,
        wait_for_enter,
        write_utterance,
    )
    from silentspeech.preprocessing import EMGPreprocessing

    if args.seconds is not None and args.seconds <= 0:
        raise CLIError(f"--seconds must be positive, got {args.seconds:g}")
    prompts = read_prompts(args.prompts or args.book, book=args.book is not None)
    folder = session_folder(args.out, args.session or default_session(), args.mode)
    index, sentence = resume_point(folder, prompts.book)
    remaining = len(prompts.sentences) - sentence
    if remaining <= 0:
        raise CLIError(f"{folder}: all {len(prompts.sentences)} prompts of {prompts.book} are recorded; name a new --session")
    count = remaining if args.count is None else min(args.count, remaining)
    microphone = None
    tty = sys.stdout.isatty()
    shown = [0.0]

    def show_quality(blocks: list) -> None:
        now = time.perf_counter()
        if tty and now - shown[0] >= QUALITY_EVERY_S:
            shown[0] = now
            recent, samples = [], 0
            for block in reversed(blocks):  # only the newest second is measured
                recent.append(block)
                samples += len(block)
                if samples >= QUALITY_WINDOW_S * source.rate:
                    break
            print(f"\r\033[K  {signal_quality(np.concatenate(recent[::-1]), source.rate).line(source.channel_names)}", end="", flush=True)

    try:
        with open_board(args, EMGPreprocessing().channels) as source:  # the Gaddy layout holds 8 channels
            microphone = None if args.no_audio else open_microphone()
            print(f"{source.name}: {source.rate:g} Hz, channels {', '.join(source.channel_names)}; "
                  f"microphone: {microphone.name if microphone else 'none (audio files hold silence)'}")
            print(f"session {folder}: takes {index} to {index + count - 1}, prompts {sentence} to {sentence + count - 1} of {prompts.book}")
            for k in range(count):
                i, s = index + k, sentence + k
                text = prompts.sentences[s]
                print(f"[{k + 1}/{count}] {args.mode} take {i}, sentence {s}: {text}", flush=True)
                stop = None
                if args.key:
                    input("  Enter starts the take ")
                    stop = wait_for_enter("  Enter stops it\n")
                dropped = source.dropped
                take = record_take(source, args.seconds, microphone, stop, show_quality)
                if tty:
                    print("\r\033[K", end="")
                quality = signal_quality(take.emg, source.rate).line(source.channel_names)
                details = {"mode": args.mode, "board": args.board, "channels": source.channel_names,
                           "microphone": microphone.name if microphone else None, "dropped_samples": source.dropped - dropped}
                info = write_utterance(folder, i, take, source.rate, text, prompts.book, s, details)
                print(f"  wrote {info.parent / f'{i}_*'}: {take.emg.shape[0] / source.rate:.2f} s, "
                      f"{source.dropped - dropped} samples dropped; {quality}", flush=True)
    finally:
        if microphone is not None:
            microphone.close()
    return 0


def _add_live_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recognizer", type=Path, help="recognition run directory (or its best.safetensors)")
    parser.add_argument("--producer", type=Path, help="production run directory: also voice the EMG as its text settles")
    parser.add_argument("--vocoder", default=DEFAULT_VOCODER, help=f"{VOCODER_SPEC_HELP} (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("live.wav"), help="WAV the speech is appended to as it comes (with --producer; default: %(default)s)")
    parser.add_argument("--no-play", dest="play", action="store_false",
                        help="do not play the speech (default: play it on the default output device when sounddevice and one exist)")
    parser.add_argument("--seconds", type=float, help="stop after this much EMG, s (default: when the source ends, or Ctrl-C)")
    add_board_arguments(parser)
    add_streaming_arguments(parser)


def _run_live(args: argparse.Namespace) -> int:
    import contextlib

    import numpy as np

    from silentspeech.features import AUDIO_RATE
    from silentspeech.inference.live import GrowingWav, LiveSession, StreamingVoice, open_speaker, rechunk

    if args.seconds is not None and args.seconds <= 0:
        raise CLIError(f"--seconds must be positive, got {args.seconds:g}")
    if args.producer is not None and args.out.is_dir():
        raise CLIError(f"--out {args.out} is a folder; give the WAV file to write, e.g. {args.out / 'live.wav'}")
    pipeline = streaming_pipeline(args, producer=args.producer, vocoder=args.vocoder)
    pieces = []
    # The first calls' one-time set-up (seconds) before the board streams: otherwise it piles up as a backlog.
    pipeline.warm_up()
    with open_board(args, pipeline.channels) as source:
        print(f"{source.name}: {source.rate:g} Hz, channels {', '.join(source.channel_names)}", flush=True)
        recognizer = streaming_recognizer(args, pipeline, source.rate, source.name)
        voice = None if pipeline.producer is None else StreamingVoice(pipeline, source.rate, source.name)
        session = LiveSession(recognizer, voice)
        limit = None if args.seconds is None else round(args.seconds * source.rate)
        chunks = rechunk(source.blocks(), max(1, round(args.chunk_ms / 1000 * source.rate)), source.rate, limit)
        speaker = open_speaker(AUDIO_RATE) if voice and args.play else None
        if voice:
            print(f"speech: {args.out}" + (f" and {speaker.name}" if speaker else " (not played: no output device)" if args.play else ""), flush=True)
        with GrowingWav(args.out, AUDIO_RATE) if voice else contextlib.nullcontext() as wav:

            def events():
                for update in session.updates(chunks):
                    for piece in update.pieces:
                        wav.append(piece.audio)
                        if speaker:
                            speaker.append(piece.audio)
                        pieces.append(piece)
                    yield update.event

            try:
                final, latencies = show_stream(events(), "live")
            finally:
                if speaker:
                    speaker.close(drain=True)
        print(latency_line(latencies, args.chunk_ms, final))
        if voice is not None:
            summary = "no speech (too little EMG)"
            if pieces:
                summary = f"{wav.samples / AUDIO_RATE:.2f} s of speech in {len(pieces)} pieces"
            voice_latencies = [piece.latency_ms for piece in pieces if not piece.final]  # the stream's end is not a live latency
            if voice_latencies:
                p50, p95 = np.percentile(voice_latencies, [50, 95])
                summary += (f"; latency chunk -> voice: median {p50:.0f} ms, p95 {p95:.0f} ms, max {max(voice_latencies):.0f} ms "
                            f"({len(voice_latencies)} pieces voiced while streaming)")
            elif pieces:
                summary += "; latency chunk -> voice: none (the stream ended before a stretch settled)"
            if pieces and pieces[-1].final:
                summary += f"; end -> last speech {pieces[-1].latency_ms:.0f} ms"
            print(f"voice ({pipeline.vocoder.description}): wrote {args.out}: {summary}")
        print(f"dropped samples: {source.dropped}")
    return 0


RECORD = Command(
    "record",
    "Record a corpus in the Gaddy layout from a board or LSL stream: one take per prompt, resumable.",
    _add_record_arguments,
    _run_record,
)
LIVE = Command(
    "live",
    "Recognise (and with --producer voice) EMG from a board or LSL stream as it is recorded: text, speech WAV, latency.",
    _add_live_arguments,
    _run_live,
)
