"""Text normalisation and the CTC character set.

Normalisation follows the evaluation protocol of the Gaddy corpus
(Gaddy reference code, github.com/dgaddy/silent_speech; docs/design.md,
*Text, decoding and scoring*): unidecode, lower case, punctuation removed, no number to
words. The recogniser's targets, the language model's corpus and WER/CER
references all go through :func:`normalize_text`, so they agree exactly.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
from unidecode import unidecode

#: Characters the recogniser emits, in label order after the blank.
CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789 "
#: CTC blank index (torch's ``ctc_loss`` default).
BLANK = 0
#: CTC labels: blank first (as the empty string, pyctcdecode's convention), then CHARACTERS.
LABELS: list[str] = [""] + list(CHARACTERS)
#: Number of CTC classes: 26 letters, 10 digits, space and blank.
NUM_CLASSES = len(LABELS)

_CHAR_TO_ID = {c: i for i, c in enumerate(LABELS) if c}
_NOT_ALLOWED = re.compile(r"[^a-z0-9 ]+")
_SPACES = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Normalise a transcript for recognition and scoring.

    ``"Café—it's 10 o'clock!"`` becomes ``"cafeits 10 oclock"``: unidecode to
    ASCII, lower case, punctuation deleted (not replaced by a space, as jiwer's
    ``RemovePunctuation`` does), whitespace collapsed, ends stripped.
    """
    ascii_text = unidecode(text).lower()
    # Punctuation is deleted; other whitespace-like separators become spaces.
    no_punct = "".join(ch for ch in ascii_text if not unicodedata.category(ch).startswith("P"))
    no_punct = _SPACES.sub(" ", no_punct)
    return _SPACES.sub(" ", _NOT_ALLOWED.sub("", no_punct)).strip()


def text_to_ids(text: str) -> np.ndarray:
    """Encode normalised text as CTC label ids (int64, shape ``(len(text),)``).

    Raises ``ValueError`` naming the first character outside the charset, so
    callers must normalise first.
    """
    try:
        return np.array([_CHAR_TO_ID[c] for c in text], dtype=np.int64)
    except KeyError as err:
        raise ValueError(f"character {err.args[0]!r} is not in the charset; normalise the text first: {text!r}") from None


def ids_to_text(ids) -> str:
    """Decode label ids (blanks skipped, no CTC collapsing) back to text."""
    return "".join(LABELS[int(i)] for i in ids if int(i) != BLANK)
