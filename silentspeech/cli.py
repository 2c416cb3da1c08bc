"""The ``silentspeech`` command line.

Each subcommand is a small function here that parses arguments and calls the
library; the work itself lives in the library modules. ``silentspeech
COMMAND --help`` documents each one.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

# The spec vocabularies of --vocoder and --asr: the packages' light __init__ modules (--help stays fast).
from silentspeech.decoding import LEXICONS
from silentspeech.evaluation import ASR_SPEC_HELP, DEFAULT_ASR
from silentspeech.quickstart.layout import QUICKSTART_UTTERANCES
from silentspeech.runtime import DEVICE_CHOICES
from silentspeech.vocoder import DEFAULT_VOCODER, VOCODER_SPEC_HELP

log = logging.getLogger("silentspeech")


class CLIError(Exception):
    """An error to print as one line, without a traceback."""


# --- subcommands -----------------------------------------------------------


def _add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device``, resolved by :func:`silentspeech.runtime.pick_device` (CUDA without a GPU: a one-line error)."""
    parser.add_argument(
        "--device", default="auto", metavar="{" + ",".join(DEVICE_CHOICES) + ",cuda:N}",
        help="where the models run: auto (CUDA when present, else the CPU), cpu, cuda or cuda:N (default: %(default)s)",
    )


def _add_corpus_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", type=Path, help="Gaddy-layout corpus folder (emg_data, or the folder holding it)")
    parser.add_argument(
        "--split-file",
        type=Path,
        help="dev/test sentence lists (testset_largedev.json format); default: the corpus's own testset*.json, "
        "else a stable hash split",
    )
    parser.add_argument("--closed-vocab", action="store_true", help="use the closed-vocabulary subset (dates and times)")
    parser.add_argument("--alignments", type=Path, help="MFA TextGrid folder (default ROOT/text_alignments)")


def _add_inspect_arguments(parser: argparse.ArgumentParser) -> None:
    _add_corpus_arguments(parser)
    parser.add_argument("--quick", action="store_true", help="read headers only; skip the NaN check of every EMG array")


def _run_inspect(args: argparse.Namespace) -> int:
    from silentspeech.data.gaddy import read_corpus

    corpus = read_corpus(
        args.root, args.split_file, args.closed_vocab, check_values=not args.quick, alignments=args.alignments
    )
    print(corpus.summary())
    if not args.quick:
        from silentspeech.emg_statistics import REAL_REFERENCE, corpus_emg_statistics

        stats = corpus_emg_statistics(corpus.utterances)
        if stats is not None:
            print(f"EMG shape (60 Hz notches; 20 Hz high-pass, the 2-20 Hz share after 2 Hz): {stats}")
            print(f"  real facial EMG for comparison (EMG-UKA, 5 silent sentences): {REAL_REFERENCE}")
    return 0


def _add_prepare_arguments(parser: argparse.ArgumentParser) -> None:
    _add_corpus_arguments(parser)
    parser.add_argument("--out", type=Path, required=True, help="cache folder (created; an interrupted run resumes)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2; 0 = in this process)")
    parser.add_argument("--n-mfcc", type=int, default=80, help="MFCC per frame (default 80, exactly invertible)")
    parser.add_argument("--mains", type=float, default=60.0, help="mains frequency to notch, Hz (default 60; 50 in Europe)")
    parser.add_argument(
        "--notch-harmonics", type=int, default=7, help="notch mains x 1..N (default 7: 60..420 Hz, the Gaddy reference's)"
    )


def _run_prepare(args: argparse.Namespace) -> int:
    from silentspeech.data.cache import prepare_cache
    from silentspeech.preprocessing import EMGPreprocessing

    report = prepare_cache(
        args.root,
        args.out,
        split_file=args.split_file,
        workers=args.workers,
        n_mfcc=args.n_mfcc,
        closed_vocab=args.closed_vocab,
        preprocessing=EMGPreprocessing(mains=args.mains, notch_harmonics=args.notch_harmonics),
        alignments=args.alignments,
    )
    print(report.summary())
    return 0


def _add_lm_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="lm_action", metavar="ACTION")
    actions.required = True
    build = actions.add_parser(
        "build",
        help="estimate a word n-gram LM (modified Kneser-Ney) and write it as ARPA",
        description="Estimate a word n-gram LM on normalised text and write ARPA (KenLM's lmplz/build_binary "
        "are used when on PATH). Held-out sentences never enter: corpus roots exclude their dev/test prompts, split by "
        "the split file found in the root or beside its emg_data folder (as prepare finds it). What was held out is "
        "written beside the LM (.provenance.json) and checked by evaluate and tune-lm.",
    )
    build.add_argument(
        "corpora", nargs="+", type=Path,
        help="books (plain text; Gutenberg header/footer stripped), sentence-per-line files (--lines) "
        "or Gaddy/synthetic corpus roots (their training prompts)",
    )
    build.add_argument("--order", type=int, default=4, help="n-gram order (default 4)")
    build.add_argument("--out", type=Path, required=True, help="ARPA file to write, e.g. lm/books_4gram.arpa")
    build.add_argument(
        "--exclude", type=Path, action="append", default=[], metavar="PATH",
        help="sentences to keep out (repeatable): a sentence-per-line file, a cache manifest.json (non-train "
        "texts), a corpus root (its dev/test prompts) or a split file (testset_largedev.json format)",
    )
    build.add_argument(
        "--corpus-root", type=Path, action="append", default=[], metavar="DIR",
        help="corpus root where a split file given with --exclude finds its prompt texts",
    )
    build.add_argument("--keep-held-out", action="store_true", help="corpus roots contribute their dev/test prompts too")
    build.add_argument("--lines", action="store_true", help="text files hold one sentence per line (not prose)")
    score = actions.add_parser(
        "perplexity",
        help="perplexity of held-out text under an LM (ours and KenLM's)",
        description="Perplexity of held-out text under an ARPA LM, scored by our reader and by kenlm.Model.",
    )
    score.add_argument("lm", type=Path, help="ARPA file (or KenLM binary: KenLM's score only)")
    score.add_argument("texts", nargs="+", type=Path, help="books or sentence-per-line files (--lines)")
    score.add_argument("--lines", action="store_true", help="text files hold one sentence per line (not prose)")


def _run_lm(args: argparse.Namespace) -> int:
    from silentspeech.decoding import ngram as lm

    if args.lm_action == "build":
        report = lm.build_lm(
            args.corpora, args.out, args.order, args.exclude, args.corpus_root, args.keep_held_out, args.lines
        )
        print(f"wrote {report.arpa} ({report.estimator}, order {report.order})")
        if report.binary:
            print(f"wrote {report.binary} (KenLM binary)")
        print("\n".join(report.summary()))
        print("n-grams: " + ", ".join(f"{n}-grams {c}" for n, c in enumerate(report.counts, start=1)))
        return 0
    sentences = [s for path in args.texts for s in lm.text_sentences(path, args.lines)]
    scorers = [("kenlm", lambda: lm.kenlm_perplexity(args.lm, sentences))]
    if not lm.is_kenlm_binary(args.lm):
        scorers.insert(0, ("ours", lambda: lm.perplexity(lm.read_arpa(args.lm), sentences)))
    for name, score in scorers:
        result = score()
        print(
            f"{name:>5}: perplexity {result.perplexity:.2f} over {result.tokens} tokens "
            f"({result.sentences} sentences; OOV {result.oov} words, {100 * result.oov / (result.tokens - result.sentences):.2f} %)"
        )
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


def _add_export_arguments(parser: argparse.ArgumentParser) -> None:
    targets = parser.add_subparsers(dest="export_target", metavar="TARGET")
    targets.required = True
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


def _add_synth_corpus_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="output folder (created; a folder of the same settings is completed)")
    parser.add_argument("--utterances", type=int, default=300, help="spoken utterances, at least 10 (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="random seed: same seed, same files (default 0)")
    parser.add_argument("--sessions", type=int, default=3, help="parallel recording sessions 5-4, 5-5, ... (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="processes rendering utterances; the files are the same for any number (default 2)")


def _run_synth_corpus(args: argparse.Namespace) -> int:
    from silentspeech.data.synthetic.speech import generate_corpus

    summary = generate_corpus(args.out, utterances=args.utterances, seed=args.seed, sessions=args.sessions, workers=args.workers)
    print(summary)
    return 0


def _add_vocoder_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="vocoder_action", metavar="ACTION")
    actions.required = True
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


def _add_quickstart_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/quickstart", help="output folder (default: %(default)s)")
    parser.add_argument("--utterances", type=int, default=QUICKSTART_UTTERANCES, help="spoken utterances of the synthetic corpus (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the corpus and cache stages, and for training the pretrained and the "
        "from-scratch models side by side (below 2: one after the other) (default: %(default)s)")
    parser.add_argument(
        "--stages",
        default="all",
        help="comma-separated stages out of corpus,cache,lm,pretrain,recognition,production,evaluate,vocoder,listen,report, "
        "or 'all'; finished stages are reused (default: %(default)s)",
    )
    parser.add_argument(
        "--no-scratch",
        action="store_true",
        help="train recognition and production only from the pretrained trunk, not also from scratch "
        "(the report then has no pretrained-against-scratch table; about 2 minutes less on 2 cores)",
    )


def _run_quickstart(args: argparse.Namespace) -> int:
    from silentspeech.quickstart.run import STAGES, run_quickstart

    stages = STAGES if args.stages == "all" else tuple(s.strip() for s in args.stages.split(",") if s.strip())
    run_quickstart(args.out, utterances=args.utterances, seed=args.seed, stages=stages, workers=args.workers, compare_scratch=not args.no_scratch)
    return 0


def _add_beam_search_arguments(parser: argparse.ArgumentParser) -> None:
    """--alpha, --beta and --beam, resolved by :func:`silentspeech.decoding.settings.resolve_lm_settings`."""
    parser.add_argument("--alpha", type=float, help="LM weight (default: tuned, else 0.5)")
    parser.add_argument("--beta", type=float, help="word insertion bonus (default: tuned, else 1.5)")
    parser.add_argument("--beam", type=int, help="beam width (default: tuned, else 250)")


def _add_allow_lm_leak_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-lm-leak", action="store_true",
        help="go on (with a warning) when the LM's provenance shows sentences of the scored split were not held out of it",
    )


def _add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="recognition run directory (or its best.safetensors)")
    parser.add_argument("--split", default="test", help="cache split to evaluate (default: %(default)s)")
    parser.add_argument("--cache", type=Path, help="prepared cache (default: the run's data.cache)")
    parser.add_argument("--lm", type=Path, help="ARPA/KenLM LM for beam search (default: the one tune-lm saved, else greedy only)")
    _add_beam_search_arguments(parser)
    _add_allow_lm_leak_argument(parser)
    parser.add_argument("--out", type=Path, help="output folder (default: <run dir>/eval_<split>/)")


def _run_evaluate(args: argparse.Namespace) -> int:
    from silentspeech.evaluation.recognition import evaluate_recognition, evaluation_folder, markdown_report

    summary = evaluate_recognition(
        args.checkpoint, args.split, args.cache, args.lm, args.alpha, args.beta, args.beam, args.out, allow_lm_leak=args.allow_lm_leak
    )
    print(markdown_report(summary))
    out = args.out or evaluation_folder(args.checkpoint, args.split)
    print(f"wrote {out}/results.csv, summary.json, report.md")
    return 0


def _add_tune_lm_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="recognition run directory (or its best.safetensors)")
    parser.add_argument("--lm", type=Path, required=True, help="ARPA/KenLM language model, e.g. lm/books_4gram.arpa")
    parser.add_argument("--alphas", type=float, nargs="+", help="LM weights to try (default: 0.25 0.5 1 1.5)")
    parser.add_argument("--betas", type=float, nargs="+", help="word bonuses to try (default: 0 1 1.85 3)")
    parser.add_argument(
        "--unk-offsets", type=float, nargs="+",
        help="unknown-word offsets (log10) to try at the best pair (default: -5 -10 -2)",
    )
    parser.add_argument(
        "--lexicons", nargs="+", choices=LEXICONS,
        help="decoding lexicons to try at the best pair: lm (the LM's own words, an ARPA file's), none (lexicon-free), "
        "train (the cache's training words); the first tunes alpha/beta (default: lm none train)",
    )
    parser.add_argument("--beam", type=int, help="beam width (default: 100)")
    parser.add_argument("--cache", type=Path, help="prepared cache (default: the run's data.cache); its dev split is used")
    _add_allow_lm_leak_argument(parser)


def _run_tune_lm(args: argparse.Namespace) -> int:
    from silentspeech.evaluation.recognition import tune_lm
    from silentspeech.runs import LM_PARAMS, run_directory

    grid = {"alphas": args.alphas, "betas": args.betas, "beam_width": args.beam, "unk_offsets": args.unk_offsets, "lexicons": args.lexicons}
    result = tune_lm(
        args.checkpoint, args.lm, cache=args.cache, allow_lm_leak=args.allow_lm_leak, **{k: v for k, v in grid.items() if v is not None}
    )
    print(result.summary())
    print(f"wrote {run_directory(args.checkpoint) / LM_PARAMS}")
    return 0


def _add_voice_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="production run directory (or its best.safetensors)")
    parser.add_argument(
        "input", type=Path,
        help="raw EMG: a Gaddy utterance {i}_emg.npy (its {i}_info.json gives 1000 Hz) or a bare (samples, channels) "
        ".npy/.csv with --rate; the channel count must be the model's (8 for Gaddy)",
    )
    parser.add_argument("--out", type=Path, required=True, help="WAV file to write (22050 Hz, 16-bit)")
    parser.add_argument("--vocoder", default=DEFAULT_VOCODER, help=f"{VOCODER_SPEC_HELP} (default: %(default)s)")
    parser.add_argument("--rate", type=float, help="sampling rate of INPUT in Hz (900-20000; required for a bare array)")
    _add_inference_mains_argument(parser)
    _add_device_argument(parser)


def _add_inference_mains_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mains", type=float,
        help="mains frequency to notch, Hz (default: the run's recorded data.preprocessing.mains; every other "
        "preprocessing constant is always the run's)",
    )


def _run_voice(args: argparse.Namespace) -> int:
    from silentspeech.data.emg_files import read_emg_file
    from silentspeech.features import write_wav
    from silentspeech.inference.pipeline import SilentSpeechPipeline

    if args.out.is_dir():  # checked before loading anything: a WAV cannot replace a folder
        raise CLIError(f"--out {args.out} is a folder; give the WAV file to write, e.g. {args.out / 'speech.wav'}")
    pipeline = SilentSpeechPipeline(producer=args.checkpoint, vocoder=args.vocoder, device=args.device, mains=args.mains)
    recording = read_emg_file(args.input, rate=args.rate, channels=pipeline.channels)
    result = pipeline.run(recording)  # EMGError (a ValueError) names the file and the problem
    for warning in result.warnings:
        print(f"silentspeech voice: warning: {warning}", file=sys.stderr)
    write_wav(args.out, result.audio, result.audio_rate)
    seconds = len(result.audio) / result.audio_rate
    print(f"wrote {args.out}: {seconds:.2f} s at {result.audio_rate} Hz, vocoder: {result.vocoder}")
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
    parser.add_argument("--rate", type=float, help="sampling rate of INPUT in Hz (900-20000; required for a bare array and stdin)")
    parser.add_argument("--chunk-ms", type=float, default=200.0, help="EMG per chunk, ms (default: %(default)g)")
    parser.add_argument(
        "--realtime", action=argparse.BooleanOptionalAction, default=True,
        help="replay a file at recording speed, chunk by chunk (default); --no-realtime feeds it as fast as it is "
        "decoded (stdin always arrives at its writer's pace)",
    )
    parser.add_argument("--lm", type=Path, help="ARPA/KenLM LM for beam search (default: the one tune-lm saved, else no LM)")
    _add_beam_search_arguments(parser)
    parser.add_argument("--settle-ms", type=float, default=800.0, help="a word must end this long before the newest EMG to become firm (default: %(default)g)")
    parser.add_argument("--agreement", type=int, default=2, help="... and be the same in this many consecutive chunks' hypotheses (default: %(default)s)")
    parser.add_argument("--max-segment-s", type=float, default=6.0, help="longest EMG the network is re-run on per chunk, s (default: %(default)g)")
    parser.add_argument("--context-s", type=float, default=1.5, help="firm EMG a new segment keeps as the network's left context, s (default: %(default)g)")
    _add_inference_mains_argument(parser)
    _add_device_argument(parser)


def _run_stream(args: argparse.Namespace) -> int:
    import shutil

    import numpy as np

    from silentspeech.data.emg_files import read_emg_file
    from silentspeech.decoding.settings import resolve_lm_settings
    from silentspeech.inference.pipeline import SilentSpeechPipeline
    from silentspeech.inference.streaming import StreamingRecognizer, read_float32_chunks, replay_recording

    if args.chunk_ms <= 0:
        raise CLIError(f"--chunk-ms must be positive, got {args.chunk_ms:g}")
    settings = resolve_lm_settings(args.recognizer, args.lm, args.alpha, args.beta, args.beam)
    # Without an LM given or tuned, beam search runs without one.
    lm = {} if settings is None else settings.pipeline_keywords()
    pipeline = SilentSpeechPipeline(recognizer=args.recognizer, device=args.device, mains=args.mains, **lm)
    if args.input == "-":
        if args.rate is None:
            raise CLIError("stdin: give the sampling rate with --rate")
        rate, source = args.rate, "stdin"
        chunks = read_float32_chunks(sys.stdin.buffer, pipeline.channels, max(1, round(args.chunk_ms / 1000 * rate)), source)
    else:
        recording = read_emg_file(args.input, rate=args.rate, channels=pipeline.channels)
        rate, source = recording.rate, recording.source
        chunks = replay_recording(recording, args.chunk_ms, args.realtime)
    recognizer = StreamingRecognizer(
        pipeline, rate, source, settle_s=args.settle_ms / 1000, agreement=args.agreement,
        max_segment_s=args.max_segment_s, context_s=args.context_s,
    )
    tty = sys.stdout.isatty()
    latencies, shown = [], ""
    for event in recognizer.events(chunks):  # the last event is the final one
        if not event.final:
            latencies.append(event.latency_ms)
        if event.warning:  # on its own line, before the text that it puts in doubt
            print("\r\033[K" if tty else "", end="", flush=True)
            print(f"silentspeech stream: warning: {event.warning}", file=sys.stderr, flush=True)
        if tty:  # rewrite one line: firm text, then the tentative tail dimmed; the oldest words give way to fit the width
            firm, overflow = event.firm, len(event.firm) + len(event.tentative) + 2 - shutil.get_terminal_size().columns
            firm = firm if overflow <= 0 else "…" + firm[overflow + 1 :]
            print(f"\r\033[K{firm} \033[2m{event.tentative}\033[0m", end="", flush=True)
        elif event.firm != shown:
            print(f"{event.time_s:7.2f} s  {event.firm[len(shown):].strip()}", flush=True)
        shown = event.firm
    if tty:
        print("\r\033[K", end="")
    final = event
    print(f"final: {final.firm}")
    print(f"greedy: {final.greedy}")
    if args.input != "-" and recording.text:
        print(f"prompt: {recording.text}")
    p50, p95 = np.percentile(latencies, [50, 95])
    print(
        f"latency chunk -> text over {len(latencies)} chunks of {args.chunk_ms:g} ms ({final.time_s:.2f} s of EMG): "
        f"median {p50:.0f} ms, p95 {p95:.0f} ms, max {max(latencies):.0f} ms; final decode {final.latency_ms:.0f} ms"
    )
    return 0


def _add_evaluate_production_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="production run directory (or its best.safetensors)")
    parser.add_argument("--asr", default=DEFAULT_ASR, help=f"{ASR_SPEC_HELP} (default: %(default)s)")
    parser.add_argument("--split", default="test", help="cache split to evaluate (default: %(default)s)")
    parser.add_argument("--vocoder", default=DEFAULT_VOCODER, help=f"{VOCODER_SPEC_HELP} (default: %(default)s)")
    parser.add_argument("--cache", type=Path, help="prepared cache (default: the run's data.cache)")
    parser.add_argument("--max-utterances", type=int, default=0, help="evaluate only the first N utterances (default: all)")
    _add_device_argument(parser)
    parser.add_argument("--out", type=Path, help="output folder (default: <run dir>/production_eval_<split>/)")


def _run_evaluate_production(args: argparse.Namespace) -> int:
    from silentspeech.evaluation.asr import load_asr
    from silentspeech.evaluation.production import default_out, evaluate_production

    asr = load_asr(args.asr, args.device)
    scores = evaluate_production(
        args.checkpoint, asr, args.split, args.vocoder, args.cache, args.out, args.max_utterances, args.device
    )
    out = args.out or default_out(args.checkpoint, args.split)
    mcd = "n/a" if scores.mcd_db is None else f"{scores.mcd_db:.2f} dB"
    print(
        f"{scores.split}: {scores.utterances} utterances, vocoder {scores.vocoder}, judge {scores.asr}: "
        f"WER {100 * scores.wer:.2f} % ({scores.substitutions} substitutions, {scores.deletions} deletions, "
        f"{scores.insertions} insertions in {scores.reference_words} words), CER {100 * scores.cer:.2f} %, MCD (voiced) {mcd}"
    )
    print(f"wrote {out}/results.csv, summary.json, report.md")
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


def _add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quickstart", type=Path, default=Path("runs/quickstart"),
        help="quickstart output folder the other defaults come from (default: %(default)s)",
    )
    parser.add_argument(
        "--recognizer", type=Path,
        help="recognition run directory (or .safetensors). Name no model to use the quickstart's as a set; name any "
        "and only the named ones are used (never mixed with the quickstart's)",
    )
    parser.add_argument("--producer", type=Path, help="production run directory (or .safetensors)")
    parser.add_argument(
        "--vocoder",
        help=f"{VOCODER_SPEC_HELP}; default: the quickstart's fine-tuned V1 with the quickstart's models, else "
        f"{DEFAULT_VOCODER} (the page says which)",
    )
    parser.add_argument("--lm", type=Path, help="ARPA/KenLM LM for beam search (with named models: none unless given)")
    parser.add_argument("--corpus", type=Path, help="Gaddy-layout corpus whose test utterances are offered as examples")
    _add_beam_search_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default: %(default)s; 0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, default=7860, help="port to serve on (default: %(default)s)")
    _add_device_argument(parser)


def _check_port_free(host: str, port: int) -> None:
    """CLIError unless ``host:port`` can be served on, checked before the models load (that takes a while)."""
    import socket

    if not 1 <= port <= 65535:
        raise CLIError(f"--port {port}: a port lies between 1 and 65535")
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as err:
        raise CLIError(f"cannot serve on {host}:{port}: {err.strerror or err}") from None


@dataclass
class DemoModels:
    """What the demo serves, and where it came from (printed, and shown on the page's status)."""

    recognizer: Path | None
    producer: Path | None
    vocoder: str
    lm: Path | None
    corpus: Path | None
    source: str


def demo_models(args: argparse.Namespace) -> DemoModels:
    """The models the demo uses: exactly those named on the command line, or, when none is named, the quickstart's as a set.

    Never a mix: given ``--producer`` alone, the demo does not add the
    quickstart's recogniser, LM, corpus or fine-tuned vocoder; the vocoder is
    then ``--vocoder`` (default: the pretrained universal V1 shipped with the
    package) and text is decoded without an LM unless ``--lm`` is given.
    """
    from silentspeech.quickstart.layout import QuickstartLayout

    named = {"--recognizer": args.recognizer, "--producer": args.producer, "--lm": args.lm, "--corpus": args.corpus}
    for option, given in named.items():
        if given is not None and not given.exists():
            raise CLIError(f"{option} {given}: no such file or folder")
    vocoder_named = args.vocoder is not None
    if any(given is not None for given in named.values()) or vocoder_named:
        if args.recognizer is None and args.producer is None:
            raise CLIError("give --recognizer and/or --producer (or nothing, for the quickstart's models as a set)")
        return DemoModels(
            args.recognizer, args.producer, args.vocoder or DEFAULT_VOCODER, args.lm, args.corpus, "the models given on the command line"
        )
    quickstart = QuickstartLayout(args.quickstart)
    for path in (quickstart.recognition, quickstart.production, quickstart.lm, quickstart.corpus):
        if not path.exists():
            raise CLIError(
                f"{path} does not exist: run `make quickstart` first (or `silentspeech quickstart --out {args.quickstart}`; "
                "it trains the demo's default models), or name the models (see silentspeech demo --help)"
            )
    vocoder = str(quickstart.vocoder) if quickstart.vocoder_generator.is_file() else DEFAULT_VOCODER
    return DemoModels(
        quickstart.recognition, quickstart.production, vocoder, quickstart.lm, quickstart.corpus, f"the quickstart's models in {args.quickstart}"
    )


def _run_demo(args: argparse.Namespace) -> int:
    _check_port_free(args.host, args.port)
    models = demo_models(args)
    from silentspeech.data.gaddy import read_corpus
    from silentspeech.decoding.settings import resolve_lm_settings
    from silentspeech.inference.pipeline import SilentSpeechPipeline

    print(f"using {models.source}:", flush=True)
    for name in ("recognizer", "producer", "vocoder", "lm", "corpus"):
        print(f"  {name:<10} {getattr(models, name) or '-'}", flush=True)
    settings = None
    if models.recognizer is not None and models.lm is not None:
        settings = resolve_lm_settings(models.recognizer, models.lm, args.alpha, args.beta, args.beam)
    pipeline = SilentSpeechPipeline(
        models.recognizer, models.producer, models.vocoder, **(settings.pipeline_keywords() if settings else {}), device=args.device
    )
    print(f"EMG preprocessing: {pipeline.preprocessing_source}", flush=True)
    pipeline.warm_up()
    examples = {}
    if models.corpus is not None:
        examples = {f"{u.id}: {u.text}": u.emg_path for u in read_corpus(models.corpus).utterances if u.split == "test"}
    try:
        from silentspeech.demo import MAX_UPLOAD_BYTES, build_demo
    except ImportError as err:
        raise CLIError(f"the demo needs gradio: pip install 'silentspeech[demo]' ({err})") from None
    try:
        build_demo(pipeline, examples).launch(server_name=args.host, server_port=args.port, max_file_size=MAX_UPLOAD_BYTES)
    except OSError as err:  # e.g. the port is taken
        raise CLIError(f"cannot serve on {args.host}:{args.port}: {err}") from None
    return 0


# --- parser ----------------------------------------------------------------

#: (name, help, add_arguments, run) for every subcommand, in --help order.
COMMANDS: list[tuple[str, str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int | None]]] = [
    ("quickstart", "The main job on the synthetic corpus: corpus, cache, language model, recognition, production and vocoder models, report.", _add_quickstart_arguments, _run_quickstart),
    ("synth-corpus", "Write a synthetic EMG/speech corpus in the Gaddy layout, with its split file.", _add_synth_corpus_arguments, _run_synth_corpus),
    ("inspect", "Summarise a Gaddy-layout corpus: sessions, counts, hours, splits and problems.", _add_inspect_arguments, _run_inspect),
    ("prepare", "Preprocess a Gaddy-layout corpus into a cache of EMG, acoustic features and phonemes.", _add_prepare_arguments, _run_prepare),
    ("lm", "Build word n-gram language models (ARPA) and score held-out perplexity.", _add_lm_arguments, _run_lm),
    ("train", "Train a model from a recipe (production, recognition, ...); --resume continues a killed run.", _add_train_arguments, _run_train),
    ("vocoder", "Train HiFi-GAN vocoders and compare them with Griffin-Lim on true features.", _add_vocoder_arguments, _run_vocoder),
    ("evaluate", "Evaluate a recognition model on a split: greedy and LM beam search WER/CER, per-utterance CSV, report.", _add_evaluate_arguments, _run_evaluate),
    ("tune-lm", "Grid-search LM weight alpha and word bonus beta on dev; save the best pair beside the checkpoint.", _add_tune_lm_arguments, _run_tune_lm),
    ("distill", "Distil a trained teacher into a smaller student (KL on softened outputs, hidden matching); report.md.", _add_distill_arguments, _run_distill),
    ("export", "Export a trained model for a device: int8 TinyMyo for GAP9 (ONNX QDQ, C99, report).", _add_export_arguments, _run_export),
    ("voice", "Turn one raw EMG recording into speech audio (WAV) with a production model and a vocoder.", _add_voice_arguments, _run_voice),
    ("evaluate-production", "Score a production model: synthesise a split, transcribe it with an ASR, report WER/CER and MCD.", _add_evaluate_production_arguments, _run_evaluate_production),
    ("stream", "Recognise EMG as it arrives (a file replayed in real time, or stdin): text as it firms up, chunk latency.", _add_stream_arguments, _run_stream),
    ("demo", "Serve the Gradio demo: upload EMG (or pick a corpus example), get text, speech, figures and timings.", _add_demo_arguments, _run_demo),
]


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per entry of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="silentspeech",
        description="Silent speech from surface EMG: corpora, training, decoding, vocoding, evaluation and export.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, help_text, add_arguments, run in COMMANDS:
        command = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(command)
        command.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``silentspeech`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.run(args) or 0)
    except (CLIError, ValueError, OSError) as err:
        # Library errors carry the file and the problem, and OSError its path (an output folder that
        # is a file or read-only, a full disk): a traceback adds nothing for a user. DeviceError and
        # RecipeError are ValueErrors.
        if args.verbose:
            raise
        print(f"silentspeech {args.command}: error: {str(err) or type(err).__name__}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
