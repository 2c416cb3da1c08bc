"""How well a vocoder turns true features back into the recorded audio: LSD and MCD beside Griffin-Lim.

On the synthetic corpus a "second rendition" row scores the same speech
rendered again with a new noise floor: what a vocoder that reproduced the
speech exactly would score. (espeak-ng's speech has no breath or pitch
randomness, so this row is now close to zero; vocoder/README.md has the
figures of the earlier formant corpus, where it measured the distances' floor.)
Intelligibility is judged by Whisper instead (:mod:`silentspeech.quickstart.listening`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from tqdm import tqdm

from silentspeech import features as audio_features
from silentspeech.atomic import atomic_write_json
from silentspeech.data.synthetic import speech as synthetic
from silentspeech.features import write_wav
from silentspeech.figures import log_mel_figure, save_figure
from silentspeech.metrics import log_spectral_distance, mel_cepstral_distortion
from silentspeech.vocoder import GRIFFIN_LIM
from silentspeech.vocoder.synthesis import Vocoder, load_vocoder
from silentspeech.vocoder.train import frames_and_audio, split_voiced_audio

log = logging.getLogger(__name__)


@dataclass
class ResynthesisScores:
    """How well one vocoder turns true features back into the recorded audio."""

    method: str  # "hifigan" or "griffin-lim"
    source: str  # checkpoint path, or "griffin-lim fallback"
    utterances: int
    log_spectral_distance_db: float  # mean over utterances
    mel_cepstral_distortion_db: float  # mean over utterances, coefficients 1..24
    per_utterance: list[dict]


def score_resynthesis(vocoder: Vocoder, utterances: Sequence[tuple[str, np.ndarray, np.ndarray]]) -> ResynthesisScores:
    """LSD and MCD of ``vocoder`` on ``(id, mfcc (N, n_mfcc), audio (256 N,))`` triples."""
    return score_signals(
        vocoder.method, vocoder.source, ((*utterance, vocoder.synthesize(utterance[1])) for utterance in utterances), len(utterances)
    )


def score_signals(method: str, source: str, signals: Iterable[tuple[str, np.ndarray, np.ndarray, np.ndarray]], total: int) -> ResynthesisScores:
    """LSD and MCD of ``(id, mfcc (N, n_mfcc), recorded (256 N,), synthesized (256 N,))`` against the recordings.

    ``signals`` may be a generator (``total`` items, for the progress bar): synthesis happens as it is consumed.
    """
    rows = []
    for utterance_id, mfcc, audio, synthesized in tqdm(signals, desc=method, unit="utt", total=total):
        rows.append(
            {
                "id": utterance_id,
                "log_spectral_distance_db": log_spectral_distance(audio, synthesized),
                "mel_cepstral_distortion_db": mel_cepstral_distortion(mfcc, audio_features.acoustic_features(synthesized, mfcc.shape[1])),
            }
        )
    if not rows:
        raise ValueError("no utterances to score")
    return ResynthesisScores(
        method=method,
        source=source,
        utterances=len(rows),
        log_spectral_distance_db=float(np.mean([r["log_spectral_distance_db"] for r in rows])),
        mel_cepstral_distortion_db=float(np.mean([r["mel_cepstral_distortion_db"] for r in rows])),
        per_utterance=rows,
    )


#: ``ResynthesisScores.method`` of the second-rendition row of :func:`compare_resynthesis`.
SECOND_RENDITION = "second rendition"
#: Noise seed of that row's renditions.
RENDITION_NOISE_SEED = 1


def rendered_again(audio_path: str | os.PathLike, samples: int) -> np.ndarray:
    """A synthetic corpus utterance rendered again with new noise, at 22050 Hz, cut to ``samples``."""
    audio = audio_features.resample_audio(synthetic.second_rendition(audio_path, RENDITION_NOISE_SEED), synthetic.AUDIO_RATE)
    return np.pad(audio, (0, max(0, samples - audio.size)))[:samples]


def compare_resynthesis(
    cache_dir: str | os.PathLike,
    vocoder_path: str | os.PathLike | None,
    split: str = "test",
    limit: int = 0,
    out_dir: str | os.PathLike | None = None,
    second_rendition: bool = False,
) -> list[ResynthesisScores]:
    """Griffin-Lim and (when given) a vocoder checkpoint resynthesising the voiced audio of ``split``.

    Each utterance's true MFCC (from its audio) go through each method and
    the output is scored against the recording. With ``second_rendition``
    (synthetic corpora only) a last row scores the same speech rendered again
    with new noise (:func:`silentspeech.data.synthetic.speech.second_rendition`):
    what an ideal vocoder, one that makes a new recording of the utterance,
    would score. Both distances compare against one realisation of the
    noise, which no vocoder can know, so this row is their floor for
    natural-sounding output; Griffin-Lim can score below it (vocoder/README.md).
    With ``out_dir``, writes ``resynthesis.json``, a spectrogram figure
    ``resynthesis.png`` and the first utterance as ``<id>.<method>.wav`` per method.
    """
    items = split_voiced_audio(cache_dir, split)
    if limit:
        items = items[:limit]
    if not items:
        raise ValueError(f"{cache_dir}: no voiced audio for split {split!r}")
    vocoders = [load_vocoder(GRIFFIN_LIM)]
    if vocoder_path is not None:
        vocoders.append(load_vocoder(vocoder_path))
    n_mfcc = vocoders[-1].n_mfcc
    utterances, paths = [], {}
    for utterance_id, path in items:
        try:
            mfcc, audio = frames_and_audio(path, n_mfcc)
        except audio_features.AudioError as err:
            log.warning("skipped %s: %s", utterance_id, err)
            continue
        if mfcc.shape[0] * audio_features.HOP_LENGTH >= audio_features.N_FFT:
            utterances.append((utterance_id, mfcc, audio))
            paths[utterance_id] = path
    scores = [score_resynthesis(vocoder, utterances) for vocoder in vocoders]
    if second_rendition:
        renditions = [rendered_again(paths[i], audio.size) for i, _, audio in tqdm(utterances, desc="rendering again", unit="utt")]
        signals = [(*utterance, rendition) for utterance, rendition in zip(utterances, renditions)]
        scores.append(score_signals(SECOND_RENDITION, f"synthetic corpus, new noise (seed {RENDITION_NOISE_SEED})", signals, len(signals)))
    if out_dir is not None:
        out = Path(out_dir)
        atomic_write_json(out / "resynthesis.json", {"cache": str(cache_dir), "split": split, "scores": [dataclasses.asdict(s) for s in scores]})
        first_id, first_mfcc, first_audio = utterances[0]
        examples = {"recorded": first_audio}
        for vocoder in vocoders:
            examples[vocoder.method] = vocoder.synthesize(first_mfcc)
        if second_rendition:
            examples[SECOND_RENDITION] = renditions[0]
        stem = first_id.replace("/", "_")
        for name, samples in examples.items():
            write_wav(out / f"{stem}.{name}.wav", samples)
        save_figure(log_mel_figure({name: audio_features.log_mel(samples) for name, samples in examples.items()}, title=first_id), out / "resynthesis.png")
    return scores

