"""EMG -> text speed: the full-size speech model with greedy and KenLM beam-search decoding, 1, 5 and 10 s of EMG.

Two paths per length, timed in the same run with their calls interleaved:

- ``plain``: eager torch forward (``torch.inference_mode``), pyctcdecode on every frame;
- ``fast``: the ONNX Runtime graph (``silentspeech.inference.onnx``), beam search
  skipping blank-only runs (``silentspeech.decoding.beam.drop_blank_runs``): what
  ``SilentSpeechPipeline`` runs on a CPU.

The forward pass is the full TinyMyo speech model (width 192, 8 blocks,
random weights: the cost does not depend on them). Beam search cost does
depend on how peaked the posteriors are, so decoding reads the posteriors of
the trained recogniser (``--recognizer``) on that many seconds of test EMG
(``--cache``, test utterances joined); without them it falls back to noisy
posteriors spelling grammar sentences, and says so. Raw 1000 Hz EMG ->
689.06 Hz preprocessing is timed once per length (the same code on both
paths). ``total`` = preprocess + forward + beam search; RTF = total / EMG
seconds; ``beam/fwd`` = beam search time over forward time; ``same text``
compares the two paths' beam hypotheses, ``max logit diff`` their CTC
logits (largest absolute difference). ``fwd CPU ms`` is the process CPU time
of a forward pass (all threads): on a busy machine it shows the cost that
wall time hides under other processes' load.

    .venv/bin/python bench/emg_to_text.py --threads 2 [--repeats 7] [--markdown]
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from silentspeech.benchmark import (
    QUICKSTART,
    bench_arguments,
    grammar_lm,
    peak_memory,
    print_report,
    real_time_factor,
    set_threads,
    spelled_posteriors,
    test_split_posteriors,
    time_calls,
)
from silentspeech.decoding.beam import DEFAULT_BEAM_WIDTH, BeamSearchDecoder, greedy_decode
from silentspeech.inference.onnx import OnnxSpeechModel
from silentspeech.models.speech import SpeechModel, SpeechModelConfig
from silentspeech.preprocessing import EMG_RATE, EMGPreprocessing, preprocess_emg

RAW_RATE = 1000.0  # Hz, the Gaddy corpus's


def posterior_source(args, lengths: list[float]) -> tuple[dict[float, np.ndarray], str]:
    """Log posteriors (frames, 38) for each length in seconds, and a line saying where they come from."""
    frames = {seconds: round(seconds * EMG_RATE) for seconds in lengths}
    if (Path(args.recognizer) / "config.yaml").is_file() and (Path(args.cache) / "manifest.json").is_file():
        split = test_split_posteriors(args.recognizer, args.cache)
        joined = torch.from_numpy(np.concatenate(split.emg))
        while joined.shape[0] < max(frames.values()):
            joined = torch.cat([joined, joined])
        with torch.inference_mode():
            posteriors = {
                seconds: torch.log_softmax(split.recognizer(joined[:samples].T[None])["ctc_logits"], -1)[0].numpy()
                for seconds, samples in frames.items()
            }
        return posteriors, f"Decoding: posteriors of the trained recogniser {args.recognizer} on test EMG of {args.cache} (utterances joined)."
    from silentspeech.data.synthetic.language import sentences
    from silentspeech.text import normalize_text

    rng = np.random.default_rng(0)
    posteriors = {}
    for seconds, samples in frames.items():
        # About 2.5 words per second of speech.
        text = " ".join(normalize_text(s) for s in sentences(max(1, round(seconds / 2)), seed=7))
        posteriors[seconds] = spelled_posteriors(text, -(-samples // 8), rng)
    return posteriors, (
        f"Decoding: NO trained recogniser at {args.recognizer} (run `make quickstart`): noisy synthetic posteriors "
        "spelling grammar sentences instead; beam-search times are indicative only."
    )


def main() -> None:
    parser = bench_arguments(__doc__, repeats=7)
    parser.add_argument("--recognizer", default=str(QUICKSTART / "recognition"), help="trained recognition run (default: the quickstart's)")
    parser.add_argument("--cache", default=str(QUICKSTART / "cache"), help="data cache with a test split (default: the quickstart's)")
    parser.add_argument("--lm", type=Path, default=QUICKSTART / "lm" / "synthetic_4gram.arpa", help="KenLM; absent: a 4-gram of the grammar is built")
    parser.add_argument("--beam", type=int, default=DEFAULT_BEAM_WIDTH, help=f"beam width (default {DEFAULT_BEAM_WIDTH})")
    parser.add_argument("--lengths", type=float, nargs="+", default=[1.0, 5.0, 10.0], help="EMG seconds (default 1 5 10)")
    args = parser.parse_args()
    set_threads(args.threads)

    torch.manual_seed(0)
    model = SpeechModel(SpeechModelConfig(outputs=["ctc"])).eval()
    start = time.perf_counter()
    fast_model = OnnxSpeechModel(model)
    export_s = time.perf_counter() - start
    posteriors, source = posterior_source(args, args.lengths)
    with tempfile.TemporaryDirectory() as tmp:
        lm = args.lm if args.lm.is_file() else grammar_lm(Path(tmp) / "grammar.arpa")
        lm_line = f"LM: {args.lm}" if args.lm.is_file() else "LM: a 4-gram of 5000 synthetic-grammar sentences built for this run"
        plain_decoder = BeamSearchDecoder(lm, beam_width=args.beam, drop_blank_runs=False)
        fast_decoder = BeamSearchDecoder(lm, beam_width=args.beam)

    rows = []
    rng = np.random.default_rng(0)
    for seconds in args.lengths:
        raw = rng.normal(0.0, 20.0, (round(seconds * RAW_RATE), 8))
        settings = EMGPreprocessing(rate=RAW_RATE, channels=8, mains=60.0)
        emg = torch.from_numpy(preprocess_emg(raw, settings)).T[None].contiguous()
        log_probs = posteriors[seconds]

        def plain_forward():
            with torch.inference_mode():
                return model(emg)["ctc_logits"]

        calls = {
            "preprocess": lambda: preprocess_emg(raw, settings),
            "plain forward": plain_forward,
            "fast forward": lambda: fast_model(emg)["ctc_logits"],
            "greedy": lambda: greedy_decode(log_probs[None]),
            "plain beam": lambda: plain_decoder.decode(log_probs),
            "fast beam": lambda: fast_decoder.decode(log_probs),
        }
        plain_text, plain_memory = peak_memory(lambda: (plain_forward(), plain_decoder.decode(log_probs))[1])
        fast_text, fast_memory = peak_memory(lambda: (calls["fast forward"](), fast_decoder.decode(log_probs))[1])
        timings = time_calls(calls, repeats=args.repeats)
        logit_difference = float((calls["fast forward"]() - plain_forward()).abs().max())
        for path, memory in (("plain", plain_memory), ("fast", fast_memory)):
            forward, beam = timings[f"{path} forward"], timings[f"{path} beam"]
            total_ms = timings["preprocess"].median_ms + forward.median_ms + beam.median_ms
            rows.append([
                f"{seconds:g}",
                path,
                timings["preprocess"].median_ms,
                forward.median_ms,
                forward.spread,
                forward.cpu_ms,
                timings["greedy"].median_ms,
                beam.median_ms,
                beam.spread,
                total_ms,
                real_time_factor(total_ms / 1000, seconds),
                beam.median_ms / forward.median_ms,
                None if memory is None else memory.increase_mb,
                "yes" if plain_text == fast_text else "NO",
                None if path == "plain" else f"{logit_difference:.1e}",
            ])

    headers = ["EMG s", "path", "preprocess ms", "forward ms", "fwd IQR", "fwd CPU ms", "greedy ms", "beam+LM ms", "beam IQR",
               "total ms", "RTF", "beam/fwd", "peak +MB", "same text", "max logit diff"]
    notes = [
        f"Model: full TinyMyo speech model ({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, width 192, "
        f"8 blocks, random weights); ONNX export and check took {export_s:.1f} s (backend: {fast_model.backend}).",
        source,
        f"{lm_line}; beam width {args.beam}, alpha {plain_decoder.alpha:g}, beta {plain_decoder.beta:g}. "
        f"Medians of {args.repeats} interleaved runs after one warm-up; IQR = interquartile range, ms; "
        "peak +MB = RSS high-water mark over the RSS before a cold forward + beam search.",
        "Targets (issue 9, 2 threads): total <= 250 ms at 5 s (RTF 0.05); full-model forward <= 60 ms at 5 s; beam <= forward.",
    ]
    print_report("EMG -> text (encoder + greedy / beam search with a 4-gram LM)", headers, rows, args.threads, args.markdown, notes)


if __name__ == "__main__":
    main()
