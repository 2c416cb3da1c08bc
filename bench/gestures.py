"""Gesture/word training speed: steps/s, where a recipe run's time goes, and a K-fold comparison's wall time.

On real recordings the user points at (e.g. the mouthed words of
``somach_silent_words/Phase_3_Mouthing``), for ``recipes/generic/mouthed_words.yaml``:

1. the bare training step of the recipe's model (forward, loss, backward,
   clip, AdamW on one batch of the recipe's size) at 1 and at ``--threads`` torch threads;
2. one whole ``silentspeech train`` run of the recipe, split into reading the
   files, training steps, and the rest (validation, checkpoints, test,
   the classical baseline, Lightning);
3. with ``--folds K``: the cross-validation of classical, scratch and (with
   ``--pretrained``) pretrained models, total wall time and each model's share.

    .venv/bin/python bench/gestures.py --threads 2 --data .../Phase_3_Mouthing [--folds 5] [--pretrained RUN] [--markdown]
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from silentspeech.benchmark import bench_arguments, print_report, set_threads, time_calls
from silentspeech.config import load_recipe
from silentspeech.data.gestures.recipe import read_gesture_corpus
from silentspeech.runs import CROSSVAL_RESULTS, LAST_WEIGHTS
from silentspeech.tasks.crossval import cross_validate
from silentspeech.tasks.gesture import GestureConfig, build_model, train

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "generic" / "mouthed_words.yaml"
TITLE = "Gesture/word training speed"


def step_timing(config: GestureConfig, channels: int, classes: int, threads: int, repeats: int) -> tuple[float, float]:
    """Median wall and CPU ms of one bare training step at ``threads`` torch threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    config.model.encoder.channels = channels
    config.model.class_names = [str(k) for k in range(classes)]
    model = build_model(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    emg = torch.randn(config.batch_size, channels, config.data.window)
    labels = torch.randint(0, classes, (config.batch_size,))

    def step() -> None:
        loss = F.cross_entropy(model(emg), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    def steps() -> None:
        for _ in range(10):
            step()

    timing = time_calls({"steps": steps}, repeats=repeats)["steps"]
    torch.set_num_threads(before)
    return timing.median_ms / 10, timing.cpu_ms / 10


def main() -> None:
    parser = bench_arguments(__doc__, repeats=3)
    parser.add_argument("--data", type=Path, default=None, help="folder of word recordings (Phase_3_Mouthing); without it the bench is skipped")
    parser.add_argument("--recipe", type=Path, default=RECIPE, help="gesture recipe (default recipes/generic/mouthed_words.yaml)")
    parser.add_argument("--folds", type=int, default=0, help="also time a K-fold cross-validation (0 = skip)")
    parser.add_argument("--pretrained", default="", help="pretraining run for the cross-validation's pretrained model")
    args = parser.parse_args()
    set_threads(args.threads)
    if args.data is None:
        # `make bench` runs every script without arguments; the recordings are the user's to point at.
        print_report(TITLE, ["skipped"], [["no --data given: pass a folder of word recordings, e.g. somach_silent_words/Phase_3_Mouthing"]],
                     args.threads, args.markdown)
        return
    overrides = [f"data.root={args.data}", "trainer.progress_bar=false"]
    config = load_recipe(GestureConfig, args.recipe, overrides)

    began = time.perf_counter()
    corpus = read_gesture_corpus(config.data)
    read_s = time.perf_counter() - began
    channels, classes = corpus.channels, len(corpus.class_names)
    rows = []
    for threads in sorted({1, args.threads}):
        wall_ms, cpu_ms = step_timing(load_recipe(GestureConfig, args.recipe, overrides), channels, classes, threads, args.repeats)
        rows.append([f"bare step, {threads} thread(s)", f"{wall_ms:.1f} ms", f"{1000 / wall_ms:.1f}", f"CPU {cpu_ms:.1f} ms"])

    with tempfile.TemporaryDirectory() as tmp:
        config.out = str(Path(tmp) / "run")
        began, began_cpu = time.perf_counter(), time.process_time()
        run_dir = train(config)
        run_s, run_cpu_s = time.perf_counter() - began, time.process_time() - began_cpu
        from safetensors import safe_open

        with safe_open(run_dir / LAST_WEIGHTS, framework="pt") as handle:
            steps = int(handle.metadata()["step"])
        threads = config.trainer.cpu_threads or args.threads
        step_ms = next(r for r in rows if r[0] == f"bare step, {threads} thread(s)")[1]
        training_s = steps * float(step_ms.split()[0]) / 1000
        rows.append([f"recipe run ({config.trainer.max_epochs} epochs, {steps} steps, {threads} thread(s))", f"{run_s:.1f} s", f"{steps / run_s:.2f}", f"CPU {run_cpu_s:.1f} s"])
        rows.append(["  of which reading and filtering the files", f"{read_s:.1f} s", "", ""])
        rows.append(["  of which training steps (bare step x steps)", f"{training_s:.1f} s", "", ""])
        rows.append(["  of which the rest (validation, checkpoints, test, classical baseline, Lightning)", f"{run_s - read_s - training_s:.1f} s", "", ""])
        if args.folds:
            config = load_recipe(GestureConfig, args.recipe, overrides + ([f"model.pretrained={args.pretrained}"] if args.pretrained else []))
            config.out = str(Path(tmp) / "crossval")
            began = time.perf_counter()
            cross_validate(config, args.folds)
            cv_s = time.perf_counter() - began
            seconds = json.loads((Path(config.out) / CROSSVAL_RESULTS).read_text())["seconds"]
            rows.append([f"{args.folds}-fold comparison, total", f"{cv_s:.1f} s", "", ""])
            rows += [[f"  {name}", f"{s:.1f} s", "", ""] for name, s in seconds.items()]
    notes = [
        f"Recipe {args.recipe.name} on {args.data} ({len(corpus.segments)} recordings, {channels} channels). "
        "bare step = forward, loss, backward, clip, AdamW on one batch; medians of 10-step blocks. The machine is "
        "shared: the load average below says how much of it this run had, and CPU time (all threads of this "
        "process) what the work costs on an idle machine."
    ]
    print_report(TITLE, ["what", "time", "steps/s", "note"], rows, args.threads, args.markdown, notes)


if __name__ == "__main__":
    main()
