"""Phoneme labels per acoustic frame, from Montreal Forced Aligner TextGrids.

The inventory is the 48-symbol set used on the Gaddy corpus (Gaddy & Klein 2021; docs/design.md, *Phonemes*):
ARPAbet without stress marks, including the TIMIT-style reductions (``ax``,
``dx``, ``el`` ...), plus ``sil``. MFA writes ``AH0``-style phones with stress
digits and marks pauses as ``""``, ``sil``, ``sp`` or ``spn`` (spoken noise);
all of those become ``sil``.

TextGrids are parsed and written by praatio (``praatio.utilities.textgrid_io``),
which reads Praat's long and short text formats, MFA's ``words``/``phones``
layout among them (MFA itself writes through praatio). What stays here is
what praatio leaves to its caller: decoding the file (UTF-8, or UTF-16 with a
byte-order mark when a label is not ASCII) and checking its Praat header, so
that bad input gets one line naming the file rather than praatio's
``IndexError``, and checking that the intervals reach their tier's end,
since praatio stops quietly where a file was cut between intervals. Its
parser reads times as plain decimals, as Praat and MFA write them for
alignments (no exponent: a boundary under 0.1 ms would not read back).
"""

from __future__ import annotations

import os

import numpy as np
from praatio.utilities import errors as praatio_errors
from praatio.utilities import textgrid_io

#: Phoneme classes, lower case, ``sil`` last (index :data:`SIL`).
PHONEMES: list[str] = (
    "aa ae ah ao aw ax axr ay b ch d dh dx eh el em en er ey f g hh hv ih iy jh k l m n nx ng "
    "ow oy p r s sh t th uh uw v w y z zh sil"
).split()
#: Index of ``sil`` (47).
SIL = PHONEMES.index("sil")
#: Number of phoneme classes (48).
NUM_PHONEMES = len(PHONEMES)

_PHONEME_IDS = {p: i for i, p in enumerate(PHONEMES)}
_SILENCE_MARKS = {"", "sil", "sp", "spn", "<eps>"}


class TextGridError(ValueError):
    """A TextGrid that cannot be read or holds a phone outside :data:`PHONEMES`."""


def phoneme_id(phone: str, source: str = "TextGrid") -> int:
    """Class index of an MFA phone label (stress digits dropped, pauses -> ``sil``)."""
    label = phone.strip().lower().rstrip("012")
    if label in _SILENCE_MARKS:
        return SIL
    if label not in _PHONEME_IDS:
        raise TextGridError(f"{source}: phone {phone!r} is not one of the {NUM_PHONEMES} phoneme classes")
    return _PHONEME_IDS[label]


def _read_text(path: str | os.PathLike) -> str:
    try:
        raw = open(path, "rb").read()
    except OSError as err:
        raise TextGridError(f"{path}: cannot read TextGrid ({err.strerror})") from None
    # Praat writes UTF-16 (with a byte-order mark) when a label is not ASCII.
    encoding = "utf-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as err:
        raise TextGridError(f"{path}: TextGrid is not {encoding} text ({err.reason})") from None


def read_textgrid(path: str | os.PathLike, tier: str = "phones") -> list[tuple[float, float, str]]:
    """Intervals ``(start_s, end_s, label)`` of one interval tier of a TextGrid.

    Reads Praat's long and short text formats. Picks the tier named ``tier``
    (case-insensitive) or, failing that, the only interval tier. Labels are
    returned as written, less surrounding spaces (see :func:`phoneme_frames`
    for the mapping). Raises :class:`TextGridError` naming the file when it is
    malformed or its intervals stop short of the tier's end (truncated).
    """
    text = _read_text(path)
    if not text.startswith('File type = "ooTextFile') or '"TextGrid"' not in text[:80]:
        raise TextGridError(f"{path}: not a Praat TextGrid text file")
    try:
        grid = textgrid_io.parseTextgridStr(text, includeEmptyIntervals=True)
        interval_tiers = {
            str(t["name"]): ([(float(a), float(b), str(label)) for a, b, label in t["entries"]], float(t["xmax"]))
            for t in grid["tiers"]
            if t["class"] == "IntervalTier"
        }
    except (praatio_errors.PraatioException, IndexError, ValueError, KeyError) as err:
        raise TextGridError(f"{path}: TextGrid ends early or is malformed ({type(err).__name__}: {err})") from None
    by_name = {name.lower(): intervals for name, intervals in interval_tiers.items()}
    if tier.lower() in by_name:
        intervals, tier_end = by_name[tier.lower()]
    elif len(interval_tiers) == 1:
        intervals, tier_end = next(iter(interval_tiers.values()))
    else:
        raise TextGridError(f"{path}: no interval tier named {tier!r} (tiers: {sorted(interval_tiers)})")
    # Praat's intervals tile their tier; a short last one means the file was cut between intervals.
    if intervals and abs(intervals[-1][1] - tier_end) > 1e-6:
        raise TextGridError(f"{path}: TextGrid ends early (truncated?): intervals stop at {intervals[-1][1]} s, the tier at {tier_end} s")
    return intervals


def phoneme_frames(
    intervals: list[tuple[float, float, str]], n_frames: int, frame_rate: float, source: str = "TextGrid"
) -> np.ndarray:
    """Phoneme class of every acoustic frame, ``(n_frames,)`` int64.

    Frame ``j`` takes the label of the interval containing its centre
    ``(j + 0.5) / frame_rate`` seconds; frames outside every interval are
    ``sil``. ``frame_rate`` is 86.13 Hz for the 22050 Hz / hop 256 features.
    """
    labels = np.full(n_frames, SIL, dtype=np.int64)
    centres = (np.arange(n_frames) + 0.5) / frame_rate
    for start, end, phone in intervals:
        inside = (centres >= start) & (centres < end)
        labels[inside] = phoneme_id(phone, source)
    return labels


def format_textgrid(intervals: list[tuple[float, float, str]], tier: str = "phones") -> str:
    """A Praat TextGrid (long text format) with one interval tier, as MFA writes it.

    ``intervals`` ``(start_s, end_s, label)`` must be contiguous from 0 (each
    starts where the previous ended); the grid ends with the last one.
    :func:`read_textgrid` reads it back. Raises ``ValueError`` for an empty
    list, a gap or overlap, or an interval that does not move forward.
    """
    # Plain floats: praatio writes each time with repr(), which is "np.float64(0.244)" for a
    # NumPy 2 scalar, and such a file cannot be read back.
    intervals = [(float(start), float(end), str(label)) for start, end, label in intervals]
    if not intervals or intervals[0][0] != 0.0:
        raise ValueError("format_textgrid: intervals must start at 0 s")
    for (_, end, _), (start, next_end, label) in zip(intervals, intervals[1:]):
        if start != end or next_end <= start:
            raise ValueError(f"format_textgrid: interval {label!r} at {start} s does not follow the previous one (ended {end} s)")
    xmax = intervals[-1][1]
    tiers = [{"class": "IntervalTier", "name": tier, "xmin": 0.0, "xmax": xmax, "entries": list(intervals)}]
    return textgrid_io.getTextgridAsStr({"xmin": 0.0, "xmax": xmax, "tiers": tiers}, "long_textgrid", includeBlankSpaces=False)
