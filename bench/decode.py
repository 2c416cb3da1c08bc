"""Decoding speed: utterances per second of greedy CTC and KenLM beam search against the beam width.

Each beam width is timed on two paths in the same run, their calls
interleaved: ``plain`` (pyctcdecode on every frame) and ``fast`` (blank-only
runs skipped after their first frame, ``silentspeech.decoding.beam.drop_blank_runs``,
the default). ``same text`` compares their hypotheses on every utterance.

Beam-search cost depends on how peaked the posteriors are, so the input is
the posteriors of the trained recogniser (``--recognizer``) on the test split
of ``--cache`` (``make quickstart`` leaves both in ``runs/quickstart``), with
WER/CER against the references. Without them: noisy posteriors spelling
grammar sentences over 5 s each (``--noise``), and the output says so.

    .venv/bin/python bench/decode.py --threads 2 [--repeats 3] [--markdown]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from silentspeech.benchmark import (
    QUICKSTART,
    bench_arguments,
    grammar_lm,
    peak_memory,
    print_report,
    set_threads,
    spelled_posteriors,
    test_split_posteriors,
    time_calls,
)
from silentspeech.decoding.beam import BeamSearchDecoder, drop_blank_runs, greedy_decode
from silentspeech.features import FRAME_RATE
from silentspeech.metrics import error_rates

UTTERANCE_S = 5.0


def decoding_input(args) -> tuple[list[np.ndarray], list[str], str]:
    """Per-utterance log posteriors (frames, 38), their reference texts, and a line saying where they come from."""
    if (Path(args.recognizer) / "config.yaml").is_file() and (Path(args.cache) / "manifest.json").is_file():
        split = test_split_posteriors(args.recognizer, args.cache)
        return split.log_probs, split.texts, f"Input: the trained recogniser {args.recognizer} on the test split of {args.cache}."
    from silentspeech.data.synthetic.language import sentences
    from silentspeech.text import normalize_text

    rng = np.random.default_rng(0)
    texts = [normalize_text(text) for text in sentences(args.utterances, seed=7)]
    frames = round(UTTERANCE_S * FRAME_RATE)
    log_probs = [spelled_posteriors(text, frames, rng, noise=args.noise) for text in texts]
    return log_probs, texts, (
        f"Input: NO trained recogniser at {args.recognizer} (run `make quickstart`): {args.utterances} grammar sentences "
        f"spelled over {UTTERANCE_S:g} s each, logits peak 8 + Gaussian noise {args.noise:g}."
    )


def main() -> None:
    parser = bench_arguments(__doc__, repeats=3)
    parser.add_argument("--recognizer", default=str(QUICKSTART / "recognition"), help="trained recognition run (default: the quickstart's)")
    parser.add_argument("--cache", default=str(QUICKSTART / "cache"), help="data cache with a test split (default: the quickstart's)")
    parser.add_argument("--lm", type=Path, default=QUICKSTART / "lm" / "synthetic_4gram.arpa", help="KenLM; absent: a 4-gram of the grammar is built")
    parser.add_argument("--beams", type=int, nargs="+", default=[50, 100, 250, 500], help="beam widths (default 50 100 250 500)")
    parser.add_argument("--utterances", type=int, default=12, help="utterances of the synthetic fallback (default 12)")
    parser.add_argument("--noise", type=float, default=1.75, help="logit noise of the synthetic fallback (default 1.75)")
    args = parser.parse_args()
    set_threads(args.threads)

    log_probs, texts, source = decoding_input(args)
    seconds = sum(len(item) for item in log_probs) / FRAME_RATE
    kept = sum(len(drop_blank_runs(item)) for item in log_probs) / sum(len(item) for item in log_probs)
    with tempfile.TemporaryDirectory() as tmp:
        lm = args.lm if args.lm.is_file() else grammar_lm(Path(tmp) / "grammar.arpa")
        lm_line = f"LM: {args.lm}" if args.lm.is_file() else "LM: a 4-gram of 5000 synthetic-grammar sentences built for this run"
        decoders = {"plain": BeamSearchDecoder(lm, drop_blank_runs=False), "fast": BeamSearchDecoder(lm)}

    def run(decoder: BeamSearchDecoder, beam: int) -> list[str]:
        decoder.reset_params(beam_width=beam)
        return [decoder.decode(item) for item in log_probs]

    greedy = time_calls({"greedy": lambda: [greedy_decode(item[None])[0] for item in log_probs]}, repeats=args.repeats)["greedy"]
    greedy_rates = error_rates(texts, [greedy_decode(item[None])[0] for item in log_probs])
    rows = [["greedy", "", len(log_probs) / (greedy.median_ms / 1000), greedy.median_ms / 1000 / seconds, greedy.spread,
             100 * greedy_rates.wer, 100 * greedy_rates.cer, None, ""]]
    for beam in args.beams:
        outputs, memory = {}, {}
        for path, decoder in decoders.items():
            outputs[path], memory[path] = peak_memory(lambda decoder=decoder: run(decoder, beam))
        timings = time_calls({path: lambda decoder=decoder: run(decoder, beam) for path, decoder in decoders.items()}, repeats=args.repeats)
        for path, timing in timings.items():
            rates = error_rates(texts, outputs[path])
            rows.append([
                f"beam {beam}",
                path,
                len(log_probs) / (timing.median_ms / 1000),
                timing.median_ms / 1000 / seconds,
                timing.spread,
                100 * rates.wer,
                100 * rates.cer,
                None if memory[path] is None else memory[path].increase_mb,
                "yes" if outputs[path] == outputs["plain"] else "NO",
            ])
    headers = ["decoder", "path", "utt/s", "RTF", "IQR ms (all utts)", "WER %", "CER %", "peak +MB", "same text"]
    notes = [
        source,
        f"{len(log_probs)} utterances, {seconds:.1f} s of EMG; the fast path searches {100 * kept:.0f} % of the frames.",
        f"{lm_line}; alpha {decoders['plain'].alpha:g}, beta {decoders['plain'].beta:g}. Medians of {args.repeats} interleaved "
        "runs over all utterances after one warm-up; RTF = decoding time / EMG time.",
    ]
    print_report("CTC decoding against beam width", headers, rows, args.threads, args.markdown, notes)


if __name__ == "__main__":
    main()
