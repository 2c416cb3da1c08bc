"""Subcommands that make models: ``train`` a recipe, ``distill`` a teacher into a student, run the whole
``quickstart``, and ``export`` a trained model for a device."""

from __future__ import annotations

import argparse
from pathlib import Path

from silentspeech.cli.common import CLIError, Command
from silentspeech.quickstart.layout import QUICKSTART_UTTERANCES


def _add_quickstart_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/quickstart", help="output folder (default: %(default)s)")
    parser.add_argument("--utterances", type=int, default=QUICKSTART_UTTERANCES, help="spoken utterances of the synthetic corpus (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the corpus and cache stages, and for training the pretrained and the "
        "from-scratch models side by side (below 2: one after the other) (default: %(default)s)")
    parser.add_argument(
        "--stages",
        default="default",
        help="comma-separated stages out of corpus,cache,lm,pretrain,recognition,production,evaluate,vocoder,listen,report; "
        "'default' is all but vocoder (the V1 fine-tune, which at this budget made V1 worse: docs/measurements.md), "
        "'all' every stage; finished stages are reused (default: %(default)s)",
    )
    parser.add_argument(
        "--scratch",
        action="store_true",
        help="also train recognition and production from scratch beside the models fine-tuned from the pretrained trunk, "
        "for the report's pretrained-against-scratch table (about 3 minutes more on 2 cores)",
    )


def _run_quickstart(args: argparse.Namespace) -> int:
    from silentspeech.quickstart.run import DEFAULT_STAGES, STAGES, run_quickstart

    named = {"all": STAGES, "default": DEFAULT_STAGES}
    stages = named.get(args.stages) or tuple(s.strip() for s in args.stages.split(",") if s.strip())
    run_quickstart(args.out, utterances=args.utterances, seed=args.seed, stages=stages, workers=args.workers, compare_scratch=args.scratch)
    return 0


def _add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", type=Path, help="recipe YAML naming its task, e.g. recipes/synthetic/recognition.yaml")
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE",
        help="recipe overrides, e.g. data.cache=/tmp/syncache trainer.max_epochs=3 out=runs/x (unknown keys are listed)",
    )
    parser.add_argument("--resume", action="store_true", help="continue the run in OUT from its last.ckpt (same as resume=true)")
    parser.add_argument(
        "--folds", type=int, default=0, metavar="K",
        help="gesture recipes: K-fold cross-validation by recording (stratified) of the classical baselines, the network "
        "from scratch and, with model.pretrained, pretrained; OUT/crossval.md holds mean +- sd",
    )


def _run_train(args: argparse.Namespace) -> int:
    from silentspeech.tasks import train_recipe

    if args.folds:
        from silentspeech.config import load_recipe, recipe_task
        from silentspeech.tasks.crossval import cross_validate
        from silentspeech.tasks.gesture import GestureConfig

        if args.folds < 2 or args.resume:
            raise CLIError("--folds needs K >= 2 and cannot --resume (each fold is a fresh run)")
        if recipe_task(args.recipe) != "gesture":
            raise CLIError(f"{args.recipe}: --folds cross-validates gesture recipes (task: gesture), not {recipe_task(args.recipe)!r}")
        run_dir = cross_validate(load_recipe(GestureConfig, args.recipe, args.overrides), args.folds)
        print(f"cross-validation: {run_dir}")
        return 0
    run_dir = train_recipe(args.recipe, args.overrides, resume=args.resume)
    print(f"run directory: {run_dir}")
    return 0


def _add_distill_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("teacher", type=Path, help="trained teacher: a run directory (or its best.safetensors) of the recipe's task")
    parser.add_argument(
        "recipe", type=Path,
        help="gesture, recognition or production recipe whose model section is the student, plus a distill section "
        "(alpha, temperature, hidden_weight), e.g. recipes/synthetic/distill_gestures.yaml",
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides, e.g. distill.alpha=0.5 out=runs/x")
    parser.add_argument("--resume", action="store_true", help="continue the run in OUT from its last.ckpt")


def _run_distill(args: argparse.Namespace) -> int:
    from silentspeech.distill import REPORT_FILE, distill

    result = distill(args.teacher, args.recipe, args.overrides, resume=args.resume)
    print((result.run_dir / REPORT_FILE).read_text())
    print(f"run directory: {result.run_dir}")
    return 0


def _add_export_arguments(parser: argparse.ArgumentParser) -> None:
    targets = parser.add_subparsers(dest="export_target", metavar="TARGET", required=True)
    gap9 = targets.add_parser(
        "gap9",
        help="int8 TinyMyo for GreenWaves GAP9: QDQ ONNX, a C99 package, and a report",
        description="Quantise a TinyMyo encoder or gesture classifier to int8 (calibrated post-training "
        "quantisation, integer LayerNorm/softmax/GELU) and write OUT/model_qdq.onnx, OUT/c/ (C99 for GAP9's "
        "cluster, builds on the host with gcc), OUT/report.md and OUT/export.json. The ONNX model is checked "
        "with onnxruntime, the host C build bit for bit against the integer reference, and int8 against float "
        "accuracy on the run's test split.",
    )
    gap9.add_argument(
        "checkpoint", type=Path,
        help="gesture run (folder, or .safetensors beside its config.yaml), or a bare TinyMyo encoder .safetensors",
    )
    gap9.add_argument("--out", type=Path, required=True, help="output folder (created)")
    gap9.add_argument(
        "--calibration", metavar="WINDOWS",
        help="calibration windows: a .npy of float EMG (count, channels, samples) as the model sees it, or "
        "'synthetic' (synthetic gesture windows; for sizing a bare encoder only). Default: the run's training split",
    )
    gap9.add_argument("--calibration-windows", type=int, default=256, help="windows taken from the training split (default 256)")
    gap9.add_argument("--test-windows", type=int, default=0, help="test windows for the accuracy check (default 0 = all)")
    gap9.add_argument("--channels", type=int, help="bare encoder: channels of the exported input (default: the checkpoint's)")
    gap9.add_argument("--samples", type=int, default=1000, help="with --calibration synthetic: samples per window (default 1000)")
    gap9.add_argument(
        "--percentile", type=float, default=99.9,
        help="activation range: this percentile of |activation| (default 99.9; 100 = the maximum)",
    )
    gap9.add_argument("--check-windows", type=int, default=32, help="windows for the ONNX and C checks (default 32)")
    gap9.add_argument("--l1-kb", type=float, default=96.0, help="L1 kB the kernels may tile into (default 96 of GAP9's ~104 usable)")
    gap9.add_argument(
        "--macs-per-cycle", type=float, default=None,
        help="sustained int8 MAC/cycle of the 8-core cluster for the cost estimate (default 6.3, TinyMyo's published rate)",
    )
    gap9.add_argument("--no-build", action="store_true", help="write the C package but do not compile and check it")


def _run_export(args: argparse.Namespace) -> int:
    from silentspeech.export import export_checkpoint
    from silentspeech.export.report import GAP9Assumptions

    result = export_checkpoint(
        args.checkpoint,
        args.out,
        calibration=args.calibration,
        calibration_windows=args.calibration_windows,
        test_windows=args.test_windows,
        channels=args.channels,
        samples=args.samples,
        percentile=args.percentile,
        check_windows=args.check_windows,
        l1_budget=int(args.l1_kb * 1024),
        assumptions=GAP9Assumptions() if args.macs_per_cycle is None else GAP9Assumptions(macs_per_cycle=args.macs_per_cycle),
        build_c=not args.no_build,
        progress=True,
    )
    checks = result.checks
    print(f"wrote {result.out / 'report.md'}, {result.out / 'c'}" + (f", {result.out / 'model_qdq.onnx'}" if checks.onnx else ""))
    if checks.c_bit_exact:
        print(f"host C build: {checks.c_bit_exact[0]} of {checks.c_bit_exact[1]} windows bit-exact with the integer reference")
    if checks.onnx:
        print(f"ONNX QDQ: max |diff| {checks.onnx.versus_float:.4g} vs float, {checks.onnx.versus_fake_quant:.4g} vs fake-quant")
    if checks.accuracy:
        a = checks.accuracy
        print(f"accuracy on {a.windows} test windows: float {100 * a.float_accuracy:.2f} %, int8 {100 * a.int8_accuracy:.2f} %")
    for reason in checks.skipped:
        print(f"not checked: {reason}")
    return 0


# --- the subcommands ---------------------------------------------------------

QUICKSTART = Command(
    "quickstart",
    "The main job on the synthetic corpus: corpus, cache, language model, recognition, production and vocoder models, report.",
    _add_quickstart_arguments,
    _run_quickstart,
)
TRAIN = Command(
    "train",
    "Train a model from a recipe (production, recognition, ...); --resume continues a killed run.",
    _add_train_arguments,
    _run_train,
)
DISTILL = Command(
    "distill",
    "Distil a trained teacher into a smaller student (KL on softened outputs, hidden matching); report.md.",
    _add_distill_arguments,
    _run_distill,
)
EXPORT = Command(
    "export",
    "Export a trained model for a device: int8 TinyMyo for GAP9 (ONNX QDQ, C99, report).",
    _add_export_arguments,
    _run_export,
)
