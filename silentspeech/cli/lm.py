"""Subcommands on language models and the recogniser's text: build and score LMs (``lm``), tune the beam search's
LM weights on dev (``tune-lm``), score a recognition model on a split (``evaluate``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from silentspeech.cli.common import Command, add_beam_search_arguments

# The --lexicons vocabulary: the decoding package's light __init__ (--help stays fast).
from silentspeech.decoding import LEXICONS


def _add_lm_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="lm_action", metavar="ACTION", required=True)
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
    add_beam_search_arguments(parser)
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


# --- the subcommands ---------------------------------------------------------

LM = Command(
    "lm",
    "Build word n-gram language models (ARPA) and score held-out perplexity.",
    _add_lm_arguments,
    _run_lm,
)
EVALUATE = Command(
    "evaluate",
    "Evaluate a recognition model on a split: greedy and LM beam search WER/CER, per-utterance CSV, report.",
    _add_evaluate_arguments,
    _run_evaluate,
)
TUNE_LM = Command(
    "tune-lm",
    "Grid-search LM weight alpha and word bonus beta on dev; save the best pair beside the checkpoint.",
    _add_tune_lm_arguments,
    _run_tune_lm,
)
