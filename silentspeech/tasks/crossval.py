"""Cross-validation of a gesture recipe: classical, scratch and pretrained models on the same folds.

``silentspeech train RECIPE --folds K`` reads the recipe's recordings once,
deals the split groups (files, or single runs for ``data.split_by=segment``)
into ``K`` stratified folds (:func:`~silentspeech.data.gestures.splits.fold_unit_split`),
and on each fold trains, on the same training windows and scores on the
same held-out windows:

- the classical baselines (Hudgins features with a random forest and with
  LDA, :mod:`silentspeech.models.classic`);
- the recipe's network from scratch (``model.pretrained`` emptied, a full
  fine-tune);
- when the recipe names ``model.pretrained``: the network started from it,
  in the recipe's ``model.mode`` (``finetune`` or ``probe``).

Each network run is an ordinary run folder ``OUT/fold{k}/{scratch,pretrained}``.
``OUT/crossval.json`` holds every fold's scores and ``OUT/crossval.md`` the
table of mean +- sample standard deviation over folds (accuracy and
macro-F1), which is also printed.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import time
from pathlib import Path

from silentspeech.atomic import atomic_write_json, atomic_write_text
from silentspeech.data.gestures.recipe import load_gesture_data, read_gesture_corpus
from silentspeech.data.gestures.splits import fold_unit_split
from silentspeech.metrics import mean_sd
from silentspeech.models.classic import CLASSIFIERS
from silentspeech.runs import CROSSVAL_REPORT, CROSSVAL_RESULTS, TEST_METRICS
from silentspeech.tables import markdown_table
from silentspeech.tasks.gesture import GestureConfig, check_model_config, fit_classic, train

log = logging.getLogger(__name__)

CLASSIC_NAMES = {"forest": "classical: random forest", "lda": "classical: LDA"}


def network_variants(config: GestureConfig) -> dict[str, GestureConfig]:
    """Name -> recipe of each network to train per fold: ``scratch``, and ``pretrained`` when the recipe names one."""
    scratch = copy.deepcopy(config)
    scratch.model.pretrained = ""
    scratch.model.mode = "finetune"
    variants = {"scratch": scratch}
    if config.model.pretrained:
        variants["pretrained"] = copy.deepcopy(config)
    return variants


def cross_validate(config: GestureConfig, folds: int) -> Path:
    """Train and score every model on ``folds`` folds; writes the reports into ``config.out`` and returns it."""
    if config.task != "gesture":
        raise ValueError(f"--folds cross-validates gesture recipes; this recipe's task is {config.task!r}")
    check_model_config(config.model)  # a missing model.pretrained fails now, not after fold 1's scratch run
    out = Path(config.out)
    start = time.perf_counter()
    corpus = read_gesture_corpus(config.data)
    log.info("read %d segments in %.1f s", len(corpus.segments), time.perf_counter() - start)
    results: dict[str, list[dict[str, float]]] = {}
    seconds: dict[str, float] = {}
    for fold in range(folds):
        units = fold_unit_split(corpus.segments, folds, fold, config.data.val_fraction, config.data.split_seed, config.data.split_by)
        data = load_gesture_data(config.data, corpus, units)
        for classifier in CLASSIFIERS:
            began = time.perf_counter()
            classic = dataclasses.replace(config.classic, classifier=classifier)
            scores = fit_classic(classic, data, config.seed)
            name = CLASSIC_NAMES[classifier]
            results.setdefault(name, []).append({"accuracy": scores.accuracy, "macro_f1": scores.macro_f1})
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - began
        for name, variant in network_variants(config).items():
            began = time.perf_counter()
            variant = copy.deepcopy(variant)
            variant.out = str(out / f"fold{fold}" / name)
            variant.classic.classifier = "none"  # scored above, once per fold
            variant.trainer.test = True
            run_dir = train(variant, data)
            metrics = json.loads((run_dir / TEST_METRICS).read_text())
            label = f"network: {name}" + (f" ({variant.model.mode})" if name == "pretrained" else "")
            results.setdefault(label, []).append({"accuracy": metrics["test/accuracy"], "macro_f1": metrics["test/macro_f1"]})
            seconds[label] = seconds.get(label, 0.0) + time.perf_counter() - began
        log.info("fold %d of %d: %s", fold + 1, folds, ", ".join(f"{k} {v[-1]['accuracy']:.3f}" for k, v in results.items()))
    table = crossval_table(results, seconds, folds, config)
    atomic_write_json(out / CROSSVAL_RESULTS, {"folds": folds, "results": results, "seconds": seconds})
    atomic_write_text(out / CROSSVAL_REPORT, table)
    print(table)
    return out


def crossval_table(results: dict[str, list[dict[str, float]]], seconds: dict[str, float], folds: int, config: GestureConfig) -> str:
    """Markdown: one row per model, accuracy and macro-F1 as mean +- sd over folds, and the time it took."""
    rows = []
    for name, folds_scores in results.items():
        accuracy = mean_sd([100 * r["accuracy"] for r in folds_scores])
        f1 = mean_sd([r["macro_f1"] for r in folds_scores])
        rows.append([name, f"{accuracy[0]:.1f} +- {accuracy[1]:.1f}", f"{f1[0]:.3f} +- {f1[1]:.3f}", f"{seconds[name]:.0f}"])
    title = f"{folds}-fold cross-validation by {config.data.split_by} (stratified), {config.data.root or config.data.dataset}"
    table = markdown_table(["model", "accuracy (%)", "macro-F1", "time (s, all folds)"], rows, "lrrr")
    return f"{title}\n\n{table}\n"
