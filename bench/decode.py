"""Decoding speed: greedy CTC and KenLM beam search at beam widths 50, 100 and 500.

Builds a 4-gram LM on the fly from a book (default: Sherlock Holmes from
../shared/data/text), then decodes synthetic CTC posteriors: real sentences
of another book (default: The War of the Worlds), each spelled over a 5 s
utterance at 86.13 frames/s (431 frames), logits peaked on the characters
with Gaussian noise. Prints utterances per second, real-time factor
(decoding time / audio time), median and spread (min-max) over repeated
runs, peak memory, and WER/CER against the sentences as a sanity check.

    OMP_NUM_THREADS=1 .venv/bin/python bench/decode.py            # about a minute on one core
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from silentspeech.audio import FRAME_RATE
from silentspeech.decoding import BeamSearchDecoder, greedy_decode
from silentspeech.lm import book_sentences, estimate_kneser_ney, write_arpa
from silentspeech.metrics import error_rates
from silentspeech.text import BLANK, NUM_CLASSES, text_to_ids

TEXT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "text"
UTTERANCE_S = 5.0


def synthetic_posteriors(sentence: str, frames: int, peak: float, noise: float, rng: np.random.Generator) -> np.ndarray:
    """CTC log posteriors (frames, 38): each character holds the first half of its time slot, blank the rest."""
    ids = text_to_ids(sentence)
    logits = np.zeros((frames, NUM_CLASSES))
    slot = frames / len(ids)
    for i, label in enumerate(ids):
        start, end = int(i * slot), int((i + 1) * slot)
        middle = max(start + 1, start + int(slot / 2))
        logits[start:middle, label] = peak
        logits[middle:end, BLANK] = peak
    logits += rng.normal(0.0, noise, logits.shape)
    return (logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)).astype(np.float32)


def timed(decode, repeats: int) -> tuple[list[float], list[str]]:
    """Wall-clock seconds of each of ``repeats`` calls of ``decode()``, and its last output."""
    seconds, texts = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        texts = decode()
        seconds.append(time.perf_counter() - start)
    return seconds, texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lm-text", type=Path, default=TEXT / "sherlock_holmes_pg1661.txt", help="book the 4-gram is built on")
    parser.add_argument("--sentences", type=Path, default=TEXT / "war_of_the_worlds_pg36.txt", help="book the utterances spell")
    parser.add_argument("--utterances", type=int, default=4, help="utterances per run (default 4)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per setting (default 3)")
    parser.add_argument("--beams", type=int, nargs="+", default=[50, 100, 500], help="beam widths (default 50 100 500)")
    parser.add_argument("--workers", type=int, default=1, help="decoding processes (default 1)")
    parser.add_argument("--noise", type=float, default=1.75, help="std of the logit noise (peak 8; default 1.75)")
    args = parser.parse_args()
    for path in (args.lm_text, args.sentences):
        if not path.is_file():
            sys.exit(f"{path} not found; pass --lm-text and --sentences (plain-text books)")

    rng = np.random.default_rng(0)
    frames = round(UTTERANCE_S * FRAME_RATE)
    candidates = [s for s in book_sentences(args.sentences) if 50 <= len(s) <= 90]
    sentences = [candidates[i] for i in rng.choice(len(candidates), args.utterances, replace=False)]
    log_probs = np.stack([synthetic_posteriors(s, frames, 8.0, args.noise, rng) for s in sentences])
    audio_s = args.utterances * UTTERANCE_S

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        lm_path = Path(tmp) / "bench.arpa"
        write_arpa(estimate_kneser_ney(book_sentences(args.lm_text), order=4), lm_path)
        build_s = time.perf_counter() - start
        start = time.perf_counter()
        decoder = BeamSearchDecoder(lm_path, workers=args.workers)
        load_s = time.perf_counter() - start

        print(f"LM: 4-gram on {args.lm_text.name}, built in {build_s:.1f} s, loaded in {load_s:.1f} s ({lm_path.stat().st_size / 1e6:.1f} MB ARPA)")
        print(
            f"input: {args.utterances} utterances x {UTTERANCE_S:.0f} s = {frames} frames at {FRAME_RATE} frames/s, "
            f"logit noise {args.noise}; {args.repeats} runs each"
        )
        print(
            f"threads: {args.workers} decoding process(es), OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
            f"{os.cpu_count()} CPUs visible\n"
        )
        print(f"{'decoder':<16}{'utt/s':>9}{'RTF':>9}{'RTF spread':>18}{'WER':>8}{'CER':>8}")
        settings = [("greedy", lambda: greedy_decode(log_probs))]
        for beam in args.beams:
            settings.append((f"beam {beam}", lambda beam=beam: (decoder.reset_params(beam_width=beam), decoder.decode_batch(log_probs))[1]))
        for name, decode in settings:
            seconds, texts = timed(decode, args.repeats)
            rates = error_rates(sentences, texts)
            median = statistics.median(seconds)
            spread = f"{min(seconds) / audio_s:.3g}-{max(seconds) / audio_s:.3g}"
            print(f"{name:<16}{args.utterances / median:>9.4g}{median / audio_s:>9.3g}{spread:>18}{rates.wer:>8.3f}{rates.cer:>8.3f}")
        decoder.close()

    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    print(f"\npeak memory (max RSS, this process + workers): {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
