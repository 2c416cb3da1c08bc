"""What an n-gram LM was built from and kept out of: the provenance file beside it, and the check evaluation makes.

``silentspeech lm build`` writes ``<lm>.provenance.json`` beside the ARPA
(``lm/gaddy_4gram.arpa`` -> ``lm/gaddy_4gram.provenance.json``): the corpora,
each source of held-out sentences (a corpus root with the split file that
defined its dev/test prompts and that file's SHA-256, a sentence file, a
cache manifest), how many corpus sentences were dropped as held out, and a
digest of every held-out sentence. The digests let ``evaluate`` and
``tune-lm`` check that every sentence of the split they score was kept out
of the LM (:func:`check_lm_excludes`) without storing the sentences
themselves: an LM whose training text held the test prompts makes beam
search look far better than it is.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

from silentspeech.atomic import atomic_write_json
from silentspeech.text import normalize_text

log = logging.getLogger(__name__)

#: Suffix of the provenance file that replaces the LM's own (``.arpa``, ``.bin``).
PROVENANCE_SUFFIX = ".provenance.json"
PROVENANCE_VERSION = 1


class LMProvenanceError(ValueError):
    """An LM whose provenance shows evaluated sentences were not kept out of it, or an unreadable provenance file."""


@dataclass(frozen=True)
class HeldOutSource:
    """One place an LM build took held-out sentences from."""

    kind: str  #: "corpus root", "sentence file" or "cache manifest"
    path: str  #: absolute path of the root or file
    sentences: int  #: distinct normalised sentences it held out
    dev: int = 0  #: of which dev prompts (corpus roots only)
    test: int = 0  #: of which test prompts (corpus roots only)
    split: str = ""  #: where a corpus root's split came from ("split file ..." or "hash split ...")
    split_file: str | None = None  #: the split file that defined dev/test, absolute
    split_file_sha256: str | None = None

    def describe(self) -> str:
        """One line: what was held out and from where."""
        if self.kind == "corpus root":
            return f"{self.dev} dev + {self.test} test prompts of corpus {self.path} ({self.split})"
        return f"{self.sentences} sentences of {self.kind} {self.path}"


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def sentence_digest(sentence: str) -> str:
    """Short digest (16 hex digits of SHA-256) of a sentence after :func:`~silentspeech.text.normalize_text`."""
    return hashlib.sha256(normalize_text(sentence).encode("utf-8")).hexdigest()[:16]


def provenance_path(lm: str | os.PathLike) -> Path:
    """Where the provenance of ``lm`` lies: its path with :data:`PROVENANCE_SUFFIX` for its suffix."""
    return Path(lm).with_suffix(PROVENANCE_SUFFIX)


def write_provenance(
    lm: Path, corpora: Iterable[str | os.PathLike], sources: Iterable[HeldOutSource], held_out: set[str], **facts: object
) -> Path:
    """Write ``lm``'s provenance (atomically) and return its path; ``facts`` are recorded as given (counts, settings)."""
    path = provenance_path(lm)
    record = {
        "version": PROVENANCE_VERSION,
        "lm": lm.name,
        "corpora": [str(Path(c).resolve()) for c in corpora],
        **facts,
        "held_out_sources": [asdict(s) for s in sources],
        "held_out_sentences": len(held_out),
        "held_out_sha256": sorted(sentence_digest(s) for s in held_out),
    }
    atomic_write_json(path, record)
    return path


def read_provenance(lm: str | os.PathLike) -> dict | None:
    """The provenance record of ``lm``, or None when it has none; :class:`LMProvenanceError` for an unreadable one."""
    path = provenance_path(lm)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LMProvenanceError(f"{path}: unreadable LM provenance ({err})") from None
    if not isinstance(record, dict) or not isinstance(record.get("held_out_sha256"), list):
        raise LMProvenanceError(f"{path}: not an LM provenance file (no held_out_sha256 list)")
    return record


def check_lm_excludes(lm: str | os.PathLike, sentences: Iterable[str], what: str, allow: bool = False) -> int:
    """Check that every one of ``sentences`` (``what``: e.g. "test split") was held out of ``lm``.

    Returns how many were not. Without a provenance file the check cannot be
    made: a warning says so. When some were not held out, raises
    :class:`LMProvenanceError` naming the LM, the count and how it was built,
    or with ``allow`` logs the same message as a warning and goes on.
    """
    record = read_provenance(lm)
    distinct = {normalize_text(s) for s in sentences} - {""}
    if record is None:
        log.warning(
            "%s has no provenance file (%s; written by `silentspeech lm build`): cannot check that the %d %s sentences "
            "were kept out of it", lm, provenance_path(lm).name, len(distinct), what,
        )
        return 0
    held_out = set(record["held_out_sha256"])
    leaked = sorted(s for s in distinct if sentence_digest(s) not in held_out)
    if not leaked:
        log.info("%s: all %d %s sentences were held out of this LM (%s)", lm, len(distinct), what, provenance_path(lm).name)
        return 0
    sources = "; ".join(HeldOutSource(**s).describe() for s in record.get("held_out_sources", [])) or "nothing held out"
    message = (
        f"{lm}: {len(leaked)} of the {len(distinct)} {what} sentences were not held out when this LM was built "
        f"(its {provenance_path(lm).name} records: {sources}), e.g. {leaked[0]!r}; beam-search figures with it may be "
        "optimistic. Rebuild it with the corpus root whose split you evaluate (its split file beside emg_data/) or "
        "--exclude CACHE/manifest.json, or pass --allow-lm-leak to go on anyway"
    )
    if not allow:
        raise LMProvenanceError(message)
    log.warning("%s", message)
    return len(leaked)
