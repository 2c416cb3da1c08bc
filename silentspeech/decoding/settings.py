"""Which language model beam search fuses, and with which weights: ``lm_params.json`` beside a recogniser.

``silentspeech tune-lm`` saves the alpha/beta/beam it found on dev beside
the recognition checkpoint (:func:`save_lm_settings`); evaluation,
streaming and the demo resolve their settings in one way
(:func:`resolve_lm_settings`): values given on the command line first, then
the tuned ones (only for the LM they were tuned for), then the decoding
defaults of :mod:`silentspeech.decoding.beam`. The tuned settings include
the unknown-word offset and the decoding lexicon (the LM's own words, the
tuning cache's training words, or none) that won on dev.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from silentspeech.atomic import atomic_write_json
from silentspeech.decoding.beam import DEFAULT_ALPHA, DEFAULT_BEAM_WIDTH, DEFAULT_BETA, DEFAULT_UNK_OFFSET
from silentspeech.runs import LM_PARAMS, run_directory


@dataclass(frozen=True)
class LMSettings:
    """Which language model beam search fuses, and how."""

    lm: Path
    alpha: float
    beta: float
    beam_width: int
    unk_offset: float = DEFAULT_UNK_OFFSET  #: pyctcdecode's unknown-word offset (decoding.beam)
    #: Decoding lexicon (:func:`~silentspeech.decoding.beam.lm_unigrams` or
    #: :func:`~silentspeech.decoding.beam.training_unigrams`); None: lexicon-free.
    lexicon: tuple[str, ...] | None = None

    def pipeline_keywords(self) -> dict[str, Any]:
        """These settings as keyword arguments of :class:`~silentspeech.inference.pipeline.SilentSpeechPipeline`."""
        return {
            "lm": self.lm, "alpha": self.alpha, "beta": self.beta, "beam": self.beam_width,
            "unk_offset": self.unk_offset, "lexicon": self.lexicon,
        }


def save_lm_settings(checkpoint: str | os.PathLike, settings: LMSettings, **details: Any) -> Path:
    """Write ``settings`` (the LM as an absolute path) and JSON-ready ``details`` to the run's ``lm_params.json``, atomically."""
    path = run_directory(checkpoint) / LM_PARAMS
    atomic_write_json(
        path,
        {
            "lm": str(Path(settings.lm).resolve()), "alpha": settings.alpha, "beta": settings.beta,
            "beam_width": settings.beam_width, "unk_offset": settings.unk_offset,
            "lexicon": None if settings.lexicon is None else list(settings.lexicon), **details,
        },
    )
    return path


def saved_lm_settings(checkpoint: str | os.PathLike) -> dict | None:
    """The ``lm_params.json`` that tune-lm saved beside ``checkpoint``, or None."""
    path = run_directory(checkpoint) / LM_PARAMS
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: unreadable tuned LM settings ({err}); run tune-lm again or delete it") from None


def resolve_lm_settings(
    checkpoint: str | os.PathLike,
    lm: str | os.PathLike | None = None,
    alpha: float | None = None,
    beta: float | None = None,
    beam_width: int | None = None,
) -> LMSettings | None:
    """LM settings for decoding with ``checkpoint``: given values first, then the tuned ``lm_params.json``, then the defaults.

    The tuned alpha/beta/beam apply only to the LM they were tuned for (an
    explicit ``lm`` that is another file gets the decoding defaults). None
    when no LM is given and none was tuned.
    """
    saved = saved_lm_settings(checkpoint)
    if lm is None and saved is None:
        if (alpha, beta, beam_width) != (None, None, None):
            raise ValueError(f"alpha, beta and beam width need a language model: give one, or tune one for {checkpoint} with tune-lm")
        return None
    if lm is None and not Path(saved["lm"]).is_file():
        raise ValueError(f"{run_directory(checkpoint) / LM_PARAMS}: the tuned LM {saved['lm']} does not exist; give the LM with --lm")
    lm = Path(lm if lm is not None else saved["lm"])
    if saved is not None and Path(saved["lm"]).resolve() != lm.resolve():
        saved = None
    saved = saved or {}
    return LMSettings(
        lm=lm,
        alpha=float(alpha if alpha is not None else saved.get("alpha", DEFAULT_ALPHA)),
        beta=float(beta if beta is not None else saved.get("beta", DEFAULT_BETA)),
        beam_width=int(beam_width if beam_width is not None else saved.get("beam_width", DEFAULT_BEAM_WIDTH)),
        unk_offset=float(saved.get("unk_offset", DEFAULT_UNK_OFFSET)),
        lexicon=_saved_lexicon(saved),
    )


def _saved_lexicon(saved: dict) -> tuple[str, ...] | None:
    """The ``lexicon`` word list of a loaded ``lm_params.json`` (None: lexicon-free), checked."""
    words = saved.get("lexicon")
    if words is None:
        return None
    if not isinstance(words, list) or not words or not all(isinstance(w, str) and w for w in words):
        raise ValueError(f"{LM_PARAMS}: 'lexicon' must be a non-empty list of words or null; run tune-lm again")
    return tuple(words)
