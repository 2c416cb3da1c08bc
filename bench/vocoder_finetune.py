"""Dev WER of EMG -> speech against steps of fine-tuning the universal HiFi-GAN V1 on the production model's predictions.

Issue 32, point 3: how many optimiser steps of ``vocoder/v1_finetune.yaml``
(the quickstart's ``vocoder`` stage: V1 fine-tuned on the production model's
predicted features, DTW-aligned to the true audio, discriminators from the
first step) it takes before the fine-tuned V1 beats the pretrained one. One
fine-tune runs to the largest of ``--steps``, keeping the generator at each
(the recipe's ``save_generator_at``); step 0 is the pretrained V1. For each
point the dev split's silent utterances go EMG -> production model ->
vocoder (OpenVINO, bfloat16 where the CPU has it) -> Whisper tiny.en, as in
the quickstart's listening stage (:func:`silentspeech.quickstart.listening.rendering_row`),
and are scored against their prompts: WER with its bootstrap 95 % interval
over utterances, and the WER minus the pretrained V1's on the same
utterances with its paired bootstrap 95 % interval (an interval wholly below
zero: that step beats the pretrained V1 on these utterances). Griffin-Lim on
the same predicted features is the reference row.

    .venv/bin/python bench/vocoder_finetune.py --run --threads 2 [--steps 0 20 40 80 160] [--lr 5e-5] [--utterances N] [--markdown]

It reads a finished quickstart (``--quickstart``: its cache and production
model) and works in a temporary folder unless ``--out`` names one (there the
fine-tune, per-point transcripts and ``curve.json`` are kept; a second run
with the same learning rate and overrides reuses the fine-tune for the points
it kept, and resumes a killed one). On 2 cores one step (2 segments of 8192
samples, with the discriminators) takes about 5 s, on one thread about 10 s
(8 to 20 s on a shared VM), so the default curve takes 15 to 30 minutes of
training plus about 8 of scoring (48 dev utterances): without ``--run`` (as
``make bench`` calls it) the script only prints a skipped section.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from silentspeech.atomic import atomic_write_json
from silentspeech.benchmark import QUICKSTART, print_report, print_skipped, set_threads, stdout_to_stderr
from silentspeech.config import bundled_recipe
from silentspeech.data.cache import MANIFEST
from silentspeech.evaluation.asr import WhisperASR
from silentspeech.quickstart.layout import QuickstartLayout
from silentspeech.quickstart.listening import PRETRAINED, rendering_row, row_word_errors
from silentspeech.runs import LAST_CHECKPOINT
from silentspeech.vocoder import GRIFFIN_LIM
from silentspeech.vocoder.train import VocoderRecipe, load_vocoder_recipe, step_generator_path, train_vocoder

SETTINGS = "settings.json"
TITLE = "Vocoder fine-tune: dev WER against steps (EMG -> production -> V1 -> Whisper)"


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="store_true", help="run the bench (about 30 to 50 minutes); without it a skipped section is printed")
    parser.add_argument("--quickstart", type=Path, default=QUICKSTART, help="a finished quickstart: its cache and production model (default %(default)s)")
    parser.add_argument("--steps", type=int, nargs="+", default=[0, 20, 40, 80, 160], help="points of the curve, optimiser steps (0: the pretrained V1; default 0 20 40 80 160)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate of both optimisers (default: the recipe's, 1e-4)")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="further recipe overrides, e.g. discriminator_start_step=40")
    parser.add_argument("--utterances", type=int, default=0, help="first N silent dev utterances scored (default 0: all)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--out", type=Path, default=None, help="keep the fine-tune and the transcripts here (default: a temporary folder)")
    parser.add_argument("--markdown", action="store_true", help="print a markdown section for bench/results.md")
    return parser


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace, layout: QuickstartLayout) -> None:
    """Exit with one line for a missing quickstart output or settings no run could use."""
    problems = [f"{path}: no quickstart {what}; run `make quickstart` or pass --quickstart" for path, what in
                ((layout.cache / MANIFEST, "cache"), (layout.production / "config.yaml", "production model")) if not path.is_file()]
    problems += [f"--steps must be >= 0, got {step}" for step in args.steps if step < 0]
    problems += [f"{flag} must be positive, got {value:g}" for flag, value in (("--threads", args.threads), ("--lr", args.lr)) if value is not None and not value > 0]
    if args.utterances < 0:
        problems.append(f"--utterances must be >= 0, got {args.utterances}")
    if problems:
        parser.exit(2, f"{parser.prog}: error: {problems[0]}\n")


def finetune_recipe(args: argparse.Namespace, layout: QuickstartLayout, run: Path, steps: list[int]) -> VocoderRecipe:
    """``vocoder/v1_finetune.yaml`` as the quickstart's vocoder stage runs it, to ``max(steps)`` steps, keeping each step's generator."""
    overrides = [
        f"cache={layout.cache}", f"finetune_on={layout.production}", f"out_dir={run}", "max_minutes=0",
        f"max_steps={max(steps, default=0)}", f"save_generator_at=[{','.join(map(str, steps))}]", f"cpu_threads={args.threads}",
        *([f"learning_rate={args.lr}"] if args.lr else []), *args.set,
    ]
    return load_vocoder_recipe(bundled_recipe("vocoder/v1_finetune.yaml"), overrides)


def fine_tune(recipe: VocoderRecipe) -> float:
    """Run (or finish, or reuse) the fine-tune in ``recipe.out_dir``; returns its minutes (0 when every kept generator is there)."""
    run = Path(recipe.out_dir)
    if all(step_generator_path(run, step).is_file() for step in recipe.save_generator_at):
        return 0.0
    start = time.monotonic()
    with stdout_to_stderr():
        train_vocoder(recipe, resume=(run / LAST_CHECKPOINT).is_file())
    missing = [step for step in recipe.save_generator_at if not step_generator_path(run, step).is_file()]
    if missing:  # a resumed run already past them
        raise ValueError(f"{run}: the fine-tune there went past step {missing[0]} without keeping it; use another --out")
    return (time.monotonic() - start) / 60


def main() -> None:
    parser = arguments()
    args = parser.parse_args()
    if not args.run:
        print_skipped(TITLE, "about 30 to 50 minutes: a fine-tune of V1 and Whisper on every point", args.threads, args.markdown)
        return
    layout = QuickstartLayout(args.quickstart)
    check_arguments(parser, args, layout)
    set_threads(args.threads)
    steps = sorted(set(args.steps) - {0})
    with tempfile.TemporaryDirectory(prefix="vocoder_finetune_") as scratch:
        work = args.out or Path(scratch)
        # Steps are not settings: a fine-tune serves every curve whose points it kept.
        settings = {"quickstart": str(args.quickstart.resolve()), "lr": args.lr, "set": args.set}
        if (work / SETTINGS).is_file() and json.loads((work / SETTINGS).read_text()) != settings:
            parser.exit(2, f"{parser.prog}: error: {work / SETTINGS} holds a fine-tune made with {(work / SETTINGS).read_text()!r:.300}; use another --out\n")
        atomic_write_json(work / SETTINGS, settings)
        try:
            recipe = finetune_recipe(args, layout, work / "vocoder", steps)
            minutes = fine_tune(recipe) if steps else 0.0
        except (ValueError, FileNotFoundError) as err:
            parser.exit(2, f"{parser.prog}: error: {err}\n")
        start = time.monotonic()
        judge = WhisperASR(threads=args.threads)
        points = [("Griffin-Lim", GRIFFIN_LIM)] + [(f"V1, step {step}", step_generator_path(recipe.out_dir, step) if step else PRETRAINED)
                                                   for step in sorted(set(args.steps))]
        rows = []
        with stdout_to_stderr():
            for name, vocoder in points:
                folder = work / "dev" / name.lower().replace(", ", "_").replace(" ", "_").replace("-", "_")
                rows.append(rendering_row(name, vocoder, layout.cache, layout.production, judge, folder, "dev", args.utterances))
        pretrained = next((row for row in rows if row["condition"] == "V1, step 0"), None)
        for row in rows:
            if pretrained is not None and row is not pretrained:
                row["vs_pretrained"] = list(row_word_errors(row).against(row_word_errors(pretrained)))
        atomic_write_json(work / "curve.json", {"settings": settings, "training_minutes": minutes, "rows": rows})
        scoring = (time.monotonic() - start) / 60

    def points_text(value: float) -> str:
        return f"{100 * value:+.1f}"

    table = [
        [r["condition"], r["utterances"], f"{100 * r['wer']:.1f} [{100 * r['wer_low']:.1f}, {100 * r['wer_high']:.1f}]", f"{100 * r['cer']:.1f}",
         f"{r['substitutions']} / {r['deletions']} / {r['insertions']} of {r['reference_words']}",
         "-" if "vs_pretrained" not in r else "{} [{}, {}]".format(*map(points_text, r["vs_pretrained"]))]
        for r in rows
    ]
    notes = [
        f"Quickstart `{args.quickstart}`; silent dev utterances, judged by {judge.name}.",
        f"Fine-tune: `vocoder/v1_finetune.yaml`, learning rate {recipe.learning_rate:g} (decay {recipe.lr_decay} per epoch), batch {recipe.batch_size} x "
        f"{recipe.segment_samples} samples, discriminators from step {recipe.discriminator_start_step} (adversarial weight {recipe.adversarial_weight:g}, "
        f"feature matching {recipe.feature_matching_weight:g}, mel {recipe.mel_loss_weight:g}); {max(steps, default=0)} steps in {minutes:.1f} min"
        f"{' (reused)' if steps and not minutes else ''}; rendering and scoring {scoring:.1f} min.",
        "WER vs step 0: the row's WER minus the pretrained V1's on the same utterances, with the paired bootstrap 95 % interval; "
        "wholly below zero means that step beats the pretrained V1.",
    ]
    print_report(TITLE, ["vocoder", "n", "WER % [95 % interval]", "CER %", "S / D / I of words", "WER vs step 0, points [paired 95 %]"],
                 table, args.threads, args.markdown, notes)


if __name__ == "__main__":
    main()
