"""Scoring speech production: synthesise a split, transcribe it with an ASR, report WER/CER and MCD.

The Gaddy protocol (Gaddy & Klein 2020; docs/design.md, *Text, decoding and
scoring*): the audio a production model and a
vocoder make from EMG is transcribed by an independent ASR, and WER/CER
(corpus level, normalised text) are computed against the prompts. Voiced
utterances also have their true audio, so their mel-cepstral distortion
against it is reported (the cache's MFCC of the true audio vs the MFCC of
the synthesised audio, frames paired one to one).

Two ASR backends (:func:`load_asr`):

* ``speechbrain:DIR``: a speechbrain ``EncoderDecoderASR`` model folder
  (e.g. ``speechbrain/asr-crdnn-rnnlm-librispeech`` downloaded on a
  connected machine); audio is resampled to its rate (16 kHz).
* a run directory of ``task: audio_asr`` (:mod:`silentspeech.tasks.audio_asr`),
  the project's own CTC recogniser over MFCC, trained on the cache's voiced audio.

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
from typing import Protocol, Sequence

import numpy as np
import torch
from tqdm import tqdm

from silentspeech.atomic import atomic_write_json, atomic_write_text
from silentspeech.features import AUDIO_RATE, acoustic_features
from silentspeech.metrics import error_rates, mel_cepstral_distortion, utterance_errors
from silentspeech.runs import run_cache, run_directory
from silentspeech.runtime import pick_device

SPEECHBRAIN_PREFIX = "speechbrain:"


class AudioASR(Protocol):
    """Anything that transcribes 22050 Hz audio clips."""

    name: str

    def transcribe(self, audios: Sequence[np.ndarray]) -> list[str]:
        """Transcripts of ``audios``, each ``(samples,)`` float32 at 22050 Hz."""


class ProjectAudioASR:
    """The project's own recogniser: a ``task: audio_asr`` run directory (greedy CTC over MFCC)."""

    def __init__(self, run_dir: str | os.PathLike, device: torch.device) -> None:
        from silentspeech.tasks import load_checkpoint

        model, _ = load_checkpoint(run_dir, task="audio_asr")
        self.model = model.to(device).eval()
        self.name = f"audio_asr:{run_dir}"

    def transcribe(self, audios: Sequence[np.ndarray]) -> list[str]:
        from silentspeech.tasks.audio_asr import transcribe_audio

        return transcribe_audio(self.model, list(audios))


class SpeechBrainASR:
    """A local speechbrain ``EncoderDecoderASR`` folder (hyperparams.yaml and its checkpoint files)."""

    def __init__(self, directory: str | os.PathLike, device: torch.device) -> None:
        from speechbrain.inference.ASR import EncoderDecoderASR

        directory = Path(directory)
        if not (directory / "hyperparams.yaml").is_file():
            raise FileNotFoundError(f"{directory}: not a speechbrain ASR folder (no hyperparams.yaml)")
        self.asr = EncoderDecoderASR.from_hparams(source=str(directory), savedir=str(directory), run_opts={"device": str(device)})
        self.rate = int(getattr(getattr(self.asr, "audio_normalizer", None), "sample_rate", 16000))
        self.device = device
        self.name = f"speechbrain:{directory}"

    def transcribe(self, audios: Sequence[np.ndarray]) -> list[str]:
        import librosa

        texts = []
        for audio in audios:
            resampled = librosa.resample(np.asarray(audio, dtype=np.float32), orig_sr=AUDIO_RATE, target_sr=self.rate)
            wav = torch.from_numpy(resampled)[None].to(self.device)
            words, _ = self.asr.transcribe_batch(wav, torch.ones(1, device=self.device))
            texts.append(words[0])
        return texts


def load_asr(spec: str, device: str = "auto") -> AudioASR:
    """``speechbrain:DIR`` -> :class:`SpeechBrainASR`; a run directory -> :class:`ProjectAudioASR`."""
    torch_device = pick_device(device)
    if spec.startswith(SPEECHBRAIN_PREFIX):
        return SpeechBrainASR(spec[len(SPEECHBRAIN_PREFIX) :], torch_device)
    if not Path(spec).exists():
        raise FileNotFoundError(f"--asr {spec}: no such run directory (give an audio_asr run directory or speechbrain:DIR)")
    return ProjectAudioASR(spec, torch_device)


@dataclass
class ProductionScores:
    """Summary of one evaluation (what summary.json holds)."""

    checkpoint: str
    asr: str
    synthesis_method: str
    vocoder: str
    split: str
    utterances: int
    silent_utterances: int
    wer: float
    cer: float
    silent_wer: float | None
    voiced_wer: float | None
    #: Mean MCD (dB) of the voiced utterances against their true audio; None without voiced utterances.
    mcd_db: float | None
    voiced_utterances: int
    seconds_synthesis: float
    seconds_asr: float


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
    vocoder: str | os.PathLike | None = None,
    cache: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    max_utterances: int = 0,
    device: str = "auto",
) -> ProductionScores:
    """Synthesise every utterance of ``split``, transcribe it with ``asr`` and score it.

    ``cache`` defaults to the production run's ``data.cache``; ``max_utterances``
    > 0 keeps the first that many (a quick look). Writes results.csv,
    summary.json and report.md into ``out`` (default :func:`default_out`).
    """
    from silentspeech.data.cache import CachedUtterances
    from silentspeech.inference.pipeline import SilentSpeechPipeline
    from silentspeech.tasks import load_checkpoint

    model, config = load_checkpoint(checkpoint, task="production")
    pipeline = SilentSpeechPipeline(producer=model, vocoder=vocoder, device=device)
    cache = Path(cache) if cache else run_cache(checkpoint, config.data.cache)
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
    voiced_mcd = [r["mcd_db"] for r in rows if not r["silent"]]
    scores = ProductionScores(
        checkpoint=str(checkpoint),
        asr=asr.name,
        synthesis_method=pipeline.vocoder.method,
        vocoder=pipeline.vocoder.source,
        split=split,
        utterances=len(rows),
        silent_utterances=sum(r["silent"] for r in rows),
        wer=rates.wer,
        cer=rates.cer,
        silent_wer=_rate(rows, True),
        voiced_wer=_rate(rows, False),
        mcd_db=float(np.mean(voiced_mcd)) if voiced_mcd else None,
        voiced_utterances=len(voiced_mcd),
        seconds_synthesis=synthesis_seconds,
        seconds_asr=asr_seconds,
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
        f"- synthesis: **{scores.synthesis_method}** (`{scores.vocoder}`)"
        + (" - a fallback vocoder, not the system's speech" if scores.synthesis_method == "griffin-lim" else ""),
        f"- ASR: `{scores.asr}`",
        f"- utterances: {scores.utterances} ({scores.silent_utterances} silent, {scores.voiced_utterances} voiced)",
        "",
        "| metric | value |",
        "| --- | --- |",
        f"| WER (all) | {percent(scores.wer)} |",
        f"| CER (all) | {percent(scores.cer)} |",
        f"| WER silent | {percent(scores.silent_wer)} |",
        f"| WER voiced | {percent(scores.voiced_wer)} |",
        f"| MCD voiced vs true audio | {'n/a' if scores.mcd_db is None else f'{scores.mcd_db:.2f} dB'} |",
        "",
        f"Synthesis {scores.seconds_synthesis:.1f} s, ASR {scores.seconds_asr:.1f} s. WER/CER are corpus level on "
        "normalised text; MCD over coefficients 1-24 of our orthonormal-DCT MFCC (comparable within this project only).",
        "",
        "## Examples",
        "",
    ]
    for row in rows[:examples]:
        lines += [f"- `{row['id']}` (WER {100 * row['wer']:.0f} %)", f"  - ref: {row['text']}", f"  - hyp: {row['transcript']}"]
    return "\n".join(lines) + "\n"
