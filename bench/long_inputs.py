"""Peak memory of long recordings: 10, 60 and 120 s of EMG through the whole pipeline (text and speech).

Runs :class:`~silentspeech.inference.pipeline.SilentSpeechPipeline` as
``silentspeech voice`` and the demo do: preprocessing, the recogniser (greedy
and beam search), the producer and the vocoder, on random 1000 Hz EMG of
each length. Each length runs in a fresh process (the allocator of a process
that ran a longer input keeps its pages), which builds the pipeline, warms it
up on 1 s and then makes one call; ``peak MB`` is that process's RSS
high-water mark during the call (models, libraries and ONNX Runtime sessions
included), ``+MB`` its increase over the RSS before it
(:func:`~silentspeech.benchmark.peak_memory`). Recordings over 20 s run in
windows (:mod:`silentspeech.inference.windows`), so the increase grows
linearly with length; the target is a 120 s peak under 2 GB.

Models: the runs given, else the quickstart-size models of
``recipes/synthetic/recognition.yaml`` and ``production.yaml`` and the
``vocoder/small.yaml`` HiFi-GAN with seed-0 random weights (memory depends on
their size, not their weights). Beam search runs without an LM, at a small
width (``--beam``): on an untrained model's flat posteriors a wide beam takes
minutes, and its memory is a few MB either way.

    .venv/bin/python bench/long_inputs.py --threads 2 [--lengths 10 60 120] [--recognizer RUN --producer RUN --vocoder RUN]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from silentspeech.benchmark import bench_arguments, peak_memory, print_report, set_threads
from silentspeech.config import bundled_recipe, load_recipe, recipe_task
from silentspeech.inference.pipeline import SilentSpeechPipeline
from silentspeech.tasks import get_task
from silentspeech.vocoder.generator import build_generator
from silentspeech.vocoder.synthesis import Vocoder, load_vocoder
from silentspeech.vocoder.train import load_vocoder_recipe

RAW_RATE = 1000.0  # Hz, the Gaddy corpus's
TARGET_MB = 2048  # peak RSS for 120 s (issue 20)


def untrained_model(recipe: str) -> torch.nn.Module:
    """The model of a bundled recipe with seed-0 random weights."""
    path = bundled_recipe(recipe)
    task = get_task(recipe_task(path))
    torch.manual_seed(0)
    return task.build_model(load_recipe(task.schema, path)).eval()


def build_pipeline(args: argparse.Namespace) -> SilentSpeechPipeline:
    if args.vocoder is not None:
        vocoder = load_vocoder(args.vocoder, device="cpu")  # a spec (v1-universal, the pipeline's default) or a path
    else:
        config = load_vocoder_recipe(bundled_recipe("vocoder/small.yaml")).generator
        torch.manual_seed(0)
        vocoder = Vocoder(config, build_generator(config), "vocoder/small.yaml (random weights)")
    return SilentSpeechPipeline(
        recognizer=args.recognizer or untrained_model("recipes/synthetic/recognition.yaml"),
        producer=args.producer or untrained_model("recipes/synthetic/production.yaml"),
        vocoder=vocoder, beam=args.beam, device="cpu",
    )


def measure(args: argparse.Namespace, seconds: float) -> dict:
    """One cold call of ``seconds`` of EMG in this process: its peak memory and stage timings."""
    pipeline = build_pipeline(args)
    pipeline.warm_up()
    raw = np.random.default_rng(0).normal(0.0, 20.0, (round(seconds * RAW_RATE), pipeline.channels))
    start = time.perf_counter()
    result, memory = peak_memory(lambda: pipeline.run(raw, RAW_RATE))
    return {
        "seconds": seconds, "wall_s": time.perf_counter() - start, "timings": result.timings,
        "peak_mb": None if memory is None else memory.peak_mb, "increase_mb": None if memory is None else memory.increase_mb,
        "frames": len(result.features), "audio_s": len(result.audio) / result.audio_rate,
    }


def main() -> None:
    parser = bench_arguments(__doc__, repeats=1)
    parser.add_argument("--lengths", type=float, nargs="+", default=[10.0, 60.0, 120.0], help="EMG seconds (default 10 60 120)")
    parser.add_argument("--recognizer", type=Path, help="recognition run (default: the synthetic recipe's model, untrained)")
    parser.add_argument("--producer", type=Path, help="production run (default: the synthetic recipe's model, untrained)")
    parser.add_argument("--vocoder", help="vocoder spec or path, e.g. v1-universal, the pipeline's default (default: vocoder/small.yaml, untrained)")
    parser.add_argument("--beam", type=int, default=16, help="beam width (default %(default)s; see the docstring)")
    parser.add_argument("--child", type=float, help=argparse.SUPPRESS)  # one measurement, printed as JSON
    args = parser.parse_args()
    set_threads(args.threads)
    if args.child is not None:
        print(json.dumps(measure(args, args.child)))
        return

    rows = []
    for seconds in args.lengths:
        command = [sys.executable, __file__, "--threads", str(args.threads), "--beam", str(args.beam), "--child", str(seconds)]
        for option in ("recognizer", "producer", "vocoder"):
            if getattr(args, option) is not None:
                command += [f"--{option}", str(getattr(args, option))]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{seconds:g} s failed:\n{done.stderr[-2000:]}")
        row = json.loads(done.stdout.strip().splitlines()[-1])
        timings = row["timings"]
        rows.append([
            f"{seconds:g}", row["frames"], row["peak_mb"], row["increase_mb"],
            *(1000 * timings.get(stage, 0.0) for stage in ("recognize", "beam_search", "produce", "vocode")), row["wall_s"],
        ])
    notes = [
        "One cold call per length, each in a fresh process after a 1 s warm-up; peak MB = the process's RSS high-water "
        "mark during the call, +MB = its increase over the RSS before the call.",
        f"Models: {args.recognizer or 'recipes/synthetic/recognition.yaml (untrained)'}, "
        f"{args.producer or 'recipes/synthetic/production.yaml (untrained)'}, {args.vocoder or 'vocoder/small.yaml (untrained)'}; "
        f"beam width {args.beam}, no LM. Target: peak under {TARGET_MB} MB for 120 s.",
    ]
    headers = ["EMG s", "frames", "peak MB", "+MB", "recognize ms", "beam ms", "produce ms", "vocode ms", "call s"]
    print_report("Peak memory of long recordings (whole pipeline)", headers, rows, args.threads, args.markdown, notes)


if __name__ == "__main__":
    main()
