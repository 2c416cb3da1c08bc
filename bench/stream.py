"""Streaming recognition: chunk -> text latency, and what streaming costs in accuracy.

Streams test utterances of a quickstart output (default ``runs/quickstart``
or ``$SILENTSPEECH_QUICKSTART``:
its corpus, recognition model and 4-gram LM) through
:class:`~silentspeech.inference.streaming.StreamingRecognizer` in 200 ms chunks,
replayed at recording speed, once per firming setting (``--settings``:
settle ms : agreement chunks). Prints per setting the latency from a chunk's
arrival to its text (median, p95, max over all chunks), the final decode's
time, and the word error rate of the streamed final text and of the offline
pipeline (beam search with the LM on each whole utterance) against the prompts.

    .venv/bin/python bench/stream.py --threads 2            # about 30 s per setting
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

from silentspeech.benchmark import QUICKSTART, bench_arguments, print_report, set_threads
from silentspeech.data.emg_files import read_emg_file
from silentspeech.data.gaddy import read_corpus
from silentspeech.decoding.settings import resolve_lm_settings
from silentspeech.inference.pipeline import SilentSpeechPipeline
from silentspeech.inference.streaming import StreamingRecognizer, replay_recording
from silentspeech.metrics import error_rates
from silentspeech.quickstart.layout import QuickstartLayout
from silentspeech.text import normalize_text


def stream_utterance(pipeline: SilentSpeechPipeline, path: Path, chunk_ms: float, realtime: bool, settle_s: float, agreement: int):
    """Stream one recording; returns (chunk latencies ms, process CPU ms per chunk, final decode ms, final text)."""
    recording = read_emg_file(path, channels=pipeline.channels)
    recognizer = StreamingRecognizer(pipeline, recording.rate, recording.source, settle_s=settle_s, agreement=agreement)
    latencies, cpu = [], []
    events = recognizer.events(replay_recording(recording, chunk_ms, realtime))
    while True:
        start = time.process_time()
        event = next(events)
        if event.final:
            return latencies, cpu, event.latency_ms, event.firm
        cpu.append(1000 * (time.process_time() - start))
        latencies.append(event.latency_ms)


def main() -> None:
    parser = bench_arguments(__doc__, repeats=1)
    parser.add_argument("--quickstart", type=Path, default=QUICKSTART, help="quickstart output folder (default: %(default)s)")
    parser.add_argument("--utterances", type=int, default=6, help="test utterances streamed (default 6)")
    parser.add_argument("--chunk-ms", type=float, default=200.0, help="chunk length, ms (default 200)")
    parser.add_argument("--settings", nargs="+", default=["400:2", "800:2"], help="settle_ms:agreement pairs (default 400:2 800:2)")
    parser.add_argument("--no-realtime", dest="realtime", action="store_false", help="feed chunks as fast as they are decoded")
    args = parser.parse_args()
    layout = QuickstartLayout(args.quickstart)
    if not (layout.recognition.is_dir() and layout.lm.is_file() and layout.corpus.is_dir()):
        sys.exit(f"{args.quickstart}: no quickstart output (recognition, lm, corpus); run `make quickstart` or pass --quickstart")
    set_threads(args.threads)

    test = [u for u in read_corpus(layout.corpus).utterances if u.split == "test"][: args.utterances]
    # The LM settings tune-lm chose on dev (beam width, weights, lexicon), as `silentspeech stream` decodes with them.
    settings = resolve_lm_settings(layout.recognition, layout.lm)
    pipeline = SilentSpeechPipeline(recognizer=layout.recognition, device="cpu", **settings.pipeline_keywords())
    references = [normalize_text(u.text) for u in test]
    offline = [pipeline.run(read_emg_file(u.emg_path, channels=pipeline.channels)).beam_text for u in test]
    offline_wer = 100 * error_rates(references, offline).wer
    rows = []
    for setting in args.settings:
        settle_ms, agreement = setting.split(":")
        latencies, cpu, finals, texts = [], [], [], []
        for _ in range(args.repeats):
            for utterance in test:
                chunk_ms, cpu_ms, final_ms, text = stream_utterance(
                    pipeline, utterance.emg_path, args.chunk_ms, args.realtime, float(settle_ms) / 1000, int(agreement)
                )
                latencies += chunk_ms
                cpu += cpu_ms
                finals.append(final_ms)
                texts.append(text)
        p50, p95 = np.percentile(latencies, [50, 95])
        streamed_wer = 100 * error_rates(references * args.repeats, texts).wer
        rows.append(
            [f"settle {settle_ms} ms, agreement {agreement}", len(latencies), p50, p95, max(latencies),
             statistics.median(cpu), statistics.median(finals), streamed_wer, offline_wer]
        )
    print_report(
        "Streaming: chunk -> text latency",
        ["firming", "chunks", "median ms", "p95 ms", "max ms", "CPU ms/chunk", "final decode ms", "WER streamed %", "WER offline %"],
        rows,
        args.threads,
        args.markdown,
        notes=[
            f"{len(test)} test utterances of {layout.corpus} in {args.chunk_ms:g} ms chunks, "
            f"{'replayed at recording speed' if args.realtime else 'fed as fast as decoded'}; "
            f"model {layout.recognition}, LM {layout.lm} (beam {pipeline.beam_decoder.beam_width}).",
            "Latency: a chunk's arrival to the event with its text (firm + tentative), wall clock; CPU ms/chunk: median process "
            "CPU time of one chunk, all threads; "
            "offline: the pipeline on each whole utterance.",
        ],
    )


if __name__ == "__main__":
    main()
