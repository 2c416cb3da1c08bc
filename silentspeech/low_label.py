"""Pretraining where labels are few: where the runs live, how long they train, and their paired comparison.

Masked-reconstruction pretraining (``recipes/synthetic/speech_pretrain.yaml``)
gave no accuracy gain where labels are plentiful (docs/measurements.md,
*Ten seeds*); a foundation model's promise is the low-label regime.
``bench/low_label.py`` pretrains the trunk on hours of unlabelled EMG of
other sessions, fine-tunes it on a quarter hour of labelled utterances and
compares it, seed by seed, with the same recipe from scratch on the same
quarter hour: on generator 5 and on the independent generator, whose EMG the
pretraining never saw.

What lives here: the folders of every corpus and run (:class:`LowLabelLayout`),
the check that the unlabelled corpus shares no recording session with a
labelled one (:func:`shared_sessions`), the epochs that give a run about a
given number of optimiser steps (:func:`epochs_for_steps`), and the test
greedy CER of each run with the paired bootstrap interval of the difference
over the test utterances of every seed pooled (:func:`compare_pairs`).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from silentspeech.metrics import paired_bootstrap_difference
from silentspeech.quickstart.seeds import SeedPair

#: Generators a labelled corpus may come from (``synth-corpus --generator``).
GENERATORS = ("default", "independent")
#: Each generator's settings file at a corpus's root, and the name its ``generator`` field holds.
_MARKERS = {"synthetic_corpus.json": "default", "independent_corpus.json": "independent"}


@dataclass(frozen=True)
class LowLabelLayout:
    """Where ``bench/low_label.py`` keeps every corpus, cache and run under ``out``."""

    out: Path

    @property
    def unlabelled(self) -> Path:
        """The unlabelled corpus's folder: ``corpus/``, ``cache/`` and the pretraining run ``pretrain/``."""
        return self.out / "unlabelled"

    @property
    def pretrain(self) -> Path:
        return self.unlabelled / "pretrain"

    def corpus(self, generator: str) -> Path:
        """The corpus of ``generator`` (``unlabelled`` for the pretraining corpus)."""
        return self.out / generator / "corpus"

    def cache(self, generator: str) -> Path:
        return self.out / generator / "cache"

    def runs(self, generator: str, seed: int) -> tuple[Path, Path]:
        """The recognition runs of ``seed`` on ``generator``'s labelled corpus: fine-tuned from the pretrained trunk, and from scratch."""
        folder = self.out / generator / f"seed{seed}"
        return folder / "pretrained", folder / "scratch"


def corpus_sessions(root: Path) -> tuple[str, int, list[str]]:
    """``(generator, seed, session names)`` of a synthetic corpus written by ``synth-corpus``.

    A session's recording (electrode shift, gains, voice) is drawn from its
    generator, the corpus seed and its name, so two corpora share a session
    exactly when these three agree. Raises ``ValueError`` naming the folder
    when it holds no synthetic corpus's settings file.
    """
    for marker, generator in _MARKERS.items():
        path = root / marker
        if path.is_file():
            seed = json.loads(path.read_text())["seed"]
            names = {info.parent.name.removesuffix("_silent") for info in root.rglob("*_info.json")}
            return generator, int(seed), sorted(names)
    raise ValueError(f"{root}: not a synthetic corpus (no {' or '.join(_MARKERS)})")


def shared_sessions(unlabelled: Path, labelled: Path) -> list[str]:
    """Names of the recording sessions the two corpora share (same generator, seed and name); empty when the pretraining saw none of them."""
    generator_a, seed_a, names_a = corpus_sessions(unlabelled)
    generator_b, seed_b, names_b = corpus_sessions(labelled)
    if (generator_a, seed_a) != (generator_b, seed_b):
        return []
    return sorted(set(names_a) & set(names_b))


def steps_per_epoch(cache: Path, max_total_samples: int, kinds: tuple[str, ...] = ("silent", "voiced")) -> int:
    """Optimiser steps in one epoch of the train split of ``cache`` (its ``kinds``) in batches of at most ``max_total_samples`` padded EMG samples."""
    from silentspeech.data.cache import CachedUtterances, LengthBucketBatchSampler

    return len(LengthBucketBatchSampler(CachedUtterances(cache, "train", kinds=kinds).lengths, max_total_samples))


def epochs_for_steps(cache: Path, max_total_samples: int, steps: int) -> int:
    """Epochs (at least 1) whose steps on ``cache``'s train split come nearest ``steps``."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1 (got {steps})")
    return max(1, round(steps / steps_per_epoch(cache, max_total_samples)))


@dataclass(frozen=True)
class UtteranceErrors:
    """Greedy character errors and reference characters of each silent test utterance of one run, by utterance id."""

    errors: dict[str, int]
    characters: dict[str, int]

    @property
    def cer(self) -> float:
        """Corpus-level CER in % (all errors over all reference characters)."""
        return 100.0 * sum(self.errors.values()) / max(1, sum(self.characters.values()))


def read_utterance_errors(results_csv: Path) -> UtteranceErrors:
    """The silent utterances of an evaluation's ``results.csv`` (``silentspeech evaluate``); ``ValueError`` naming the file when it has none."""
    with results_csv.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("kind") == "silent"]
    if not rows:
        raise ValueError(f"{results_csv}: no silent utterances")
    return UtteranceErrors({r["id"]: int(r["greedy_char_errors"]) for r in rows}, {r["id"]: int(r["reference_chars"]) for r in rows})


@dataclass(frozen=True)
class Comparison:
    """Pretrained against scratch over seeds: each seed's CER (%), and the pooled paired difference (points) with its bootstrap interval."""

    pairs: list[SeedPair]
    difference: float
    low: float
    high: float
    utterances: int
    level: float
    resamples: int


def compare_pairs(results: dict[int, tuple[Path, Path]], resamples: int = 2000, level: float = 0.95) -> Comparison:
    """Compare the pretrained and scratch evaluations of each seed.

    ``results`` maps a seed to the ``results.csv`` of its pretrained and of
    its scratch run on the same test utterances. Each seed's CER is
    corpus-level over its silent test utterances. The difference (pretrained
    minus scratch, CER points) pools every seed's utterances, each pretrained
    utterance paired with the scratch one of its seed, and its interval
    resamples those pairs (:func:`silentspeech.metrics.paired_bootstrap_difference`),
    so it holds both the seeds' and the test sentences' chance.
    """
    if not results:
        raise ValueError("compare_pairs needs at least one seed")
    pairs, errors_a, errors_b, characters = [], [], [], []
    for seed, (pretrained_csv, scratch_csv) in sorted(results.items()):
        pretrained, scratch = read_utterance_errors(pretrained_csv), read_utterance_errors(scratch_csv)
        if pretrained.errors.keys() != scratch.errors.keys():
            raise ValueError(f"{pretrained_csv} and {scratch_csv} hold different test utterances")
        pairs.append(SeedPair(seed, pretrained.cer, scratch.cer))
        for utterance in sorted(pretrained.errors):
            errors_a.append(pretrained.errors[utterance])
            errors_b.append(scratch.errors[utterance])
            characters.append(pretrained.characters[utterance])
    difference, low, high = paired_bootstrap_difference(errors_a, errors_b, characters, resamples=resamples, level=level)
    return Comparison(pairs, 100 * difference, 100 * low, 100 * high, len(characters), level, resamples)


def interval_line(comparison: Comparison) -> str:
    """One sentence: the pooled difference, its interval, and whether the run tells the two apart."""
    c = comparison
    verdict = "cannot tell them apart" if c.low <= 0 <= c.high else ("pretrained is better" if c.high < 0 else "pretrained is worse")
    return (f"Pooled over {len(c.pairs)} seed(s) and {c.utterances} silent test utterances, pretrained minus scratch "
            f"{c.difference:+.2f} CER points, {100 * c.level:.0f} % paired bootstrap interval {c.low:+.2f} to {c.high:+.2f} "
            f"({c.resamples} resamples of the utterance pairs): {verdict}.")
