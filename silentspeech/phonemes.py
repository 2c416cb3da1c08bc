"""Phoneme labels per acoustic frame, from Montreal Forced Aligner TextGrids.

The inventory is the 48-symbol set used on the Gaddy corpus (Gaddy & Klein 2021; docs/design.md, *Phonemes*):
ARPAbet without stress marks, including the TIMIT-style reductions (``ax``,
``dx``, ``el`` ...), plus ``sil``. MFA writes ``AH0``-style phones with stress
digits and marks pauses as ``""``, ``sil``, ``sp`` or ``spn`` (spoken noise);
all of those become ``sil``.

TextGrid reading is our own small tokenizer rather than a dependency: we need
only the interval tiers of MFA output, and Praat's text formats (long and
short) reduce to "the sequence of numbers and quoted strings in the file",
which a single regular expression captures.
"""

from __future__ import annotations

import os
import re

import numpy as np

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
# Quoted strings (Praat doubles a quote inside a string) and free-standing numbers;
# numbers in brackets such as ``item [1]:`` are labels, not values.
_TOKEN = re.compile(r'"((?:[^"]|"")*)"|(?<![\[\w.])(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)(?![\]\w.])')


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
    returned as written (see :func:`phoneme_frames` for the mapping). Raises
    :class:`TextGridError` naming the file when it is malformed.
    """
    tokens = [
        (m.group(1).replace('""', '"'), None) if m.group(1) is not None else (None, float(m.group(2)))
        for m in _TOKEN.finditer(_read_text(path))
    ]
    position = 0

    def take(kind: type):
        nonlocal position
        if position >= len(tokens):
            raise TextGridError(f"{path}: TextGrid ends early (truncated?)")
        text, number = tokens[position]
        position += 1
        if kind is str:
            if text is None:
                raise TextGridError(f"{path}: expected a quoted string at value {position}, found {number}")
            return text
        if number is None:
            raise TextGridError(f"{path}: expected a number at value {position}, found {text!r}")
        return number

    if take(str) != "ooTextFile" or take(str) != "TextGrid":
        raise TextGridError(f"{path}: not a Praat TextGrid text file")
    take(float), take(float)  # grid start and end
    interval_tiers: dict[str, list[tuple[float, float, str]]] = {}
    for _ in range(int(take(float))):
        tier_class, name = take(str), take(str)
        take(float), take(float)
        count = int(take(float))
        if tier_class == "IntervalTier":
            interval_tiers[name] = [(take(float), take(float), take(str)) for _ in range(count)]
        elif tier_class == "TextTier":
            for _ in range(count):
                take(float), take(str)
        else:
            raise TextGridError(f"{path}: unknown tier class {tier_class!r}")
    by_name = {name.lower(): intervals for name, intervals in interval_tiers.items()}
    if tier.lower() in by_name:
        return by_name[tier.lower()]
    if len(interval_tiers) == 1:
        return next(iter(interval_tiers.values()))
    raise TextGridError(f"{path}: no interval tier named {tier!r} (tiers: {sorted(interval_tiers)})")


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
    if not intervals or intervals[0][0] != 0.0:
        raise ValueError("format_textgrid: intervals must start at 0 s")
    for (_, end, _), (start, next_end, label) in zip(intervals, intervals[1:]):
        if start != end or next_end <= start:
            raise ValueError(f"format_textgrid: interval {label!r} at {start} s does not follow the previous one (ended {end} s)")
    xmax = intervals[-1][1]
    quote = lambda text: '"' + text.replace('"', '""') + '"'  # noqa: E731
    lines = [
        'File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0", f"xmax = {xmax:g}", "tiers? <exists>",
        "size = 1", "item []:", "    item [1]:", '        class = "IntervalTier"', f"        name = {quote(tier)}",
        "        xmin = 0", f"        xmax = {xmax:g}", f"        intervals: size = {len(intervals)}",
    ]
    for k, (start, end, label) in enumerate(intervals, start=1):
        lines += [f"        intervals [{k}]:", f"            xmin = {start:g}", f"            xmax = {end:g}", f"            text = {quote(label)}"]
    return "\n".join(lines) + "\n"
