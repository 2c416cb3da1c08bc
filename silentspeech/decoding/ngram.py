"""Word n-gram language models: corpus text in, ARPA out, scores and perplexity.

The recogniser's beam search (:mod:`silentspeech.decoding.beam`) scores words
with a KenLM model. KenLM's estimator ``lmplz`` ships with no package
registry, so this module carries its own interpolated modified Kneser-Ney
estimator (Chen & Goodman 1998) and writes the ARPA text format that
``kenlm.Model`` reads. Where ``lmplz`` and ``build_binary`` are on PATH,
:func:`build_lm` uses them instead and also writes a KenLM binary. No Python
package fits in its place: NLTK's ``nltk.lm`` Kneser-Ney uses one fixed
discount instead of the three count-of-count discounts of the modified
estimator, and writes no ARPA file for KenLM to load.

Corpus text is normalised exactly like the recogniser's targets
(:func:`silentspeech.text.normalize_text`), one sentence per LM sentence:
books are split into sentences first (Project Gutenberg header and footer
removed), Gaddy/synthetic corpus roots contribute their prompt texts.
Sentences of held-out splits are excluded so that an LM never sees the test
set (see :func:`build_lm`); what was excluded is recorded beside the LM
(:mod:`silentspeech.decoding.provenance`) for evaluation to check.

ARPA files are checked (header counts against sections, field counts,
numbers, ``\\end\\``) before KenLM sees them: KenLM may crash or hang on a
malformed file.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from silentspeech.atomic import atomic_open
from silentspeech.decoding.provenance import HeldOutSource, file_sha256, write_provenance
from silentspeech.text import CHARACTERS, normalize_text

log = logging.getLogger(__name__)

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
#: Log10 probability ARPA files give ``<s>``, which is never predicted.
NEVER = -99.0
#: Discounts lmplz falls back to (``--discount_fallback``) when count-of-counts are degenerate.
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)
#: A corpus sentence this many words long or longer that lies inside a held-out sentence is dropped too.
MIN_FRAGMENT_WORDS = 4
#: First bytes of a KenLM binary model.
KENLM_BINARY_MAGIC = b"mmap lm http://kheafield.com/code"

_WORD = re.compile(f"[{re.escape(CHARACTERS.replace(' ', ''))}]+")


class ArpaError(ValueError):
    """An ARPA file that is missing, truncated, malformed or unusable by the recogniser."""


# --- corpus text -------------------------------------------------------------

_GUTENBERG_START = re.compile(r"^\*\*\*\s*START OF (THE|THIS) PROJECT GUTENBERG.*$", re.IGNORECASE | re.MULTILINE)
_GUTENBERG_END = re.compile(
    r"^(\*\*\*\s*END OF (THE|THIS) PROJECT GUTENBERG|End of (the )?Project Gutenberg).*$", re.IGNORECASE | re.MULTILINE
)
# A sentence ends at . ! or ? (closing quotes/brackets may follow) before whitespace
# and a capital, digit or opening quote. Lower case after "?" or "!" usually
# continues the sentence ('"Yes!" said he.').
_SENTENCE_END = re.compile(r"""([.!?]+)['"’”)\]_]*\s+(?=['"“‘(\[_]*[A-Z0-9])""")
# Words whose trailing full stop does not end a sentence.
_ABBREVIATIONS = frozenset("mr mrs messrs dr st mme mlle prof rev capt col gen lt sgt hon jr sr vs etc cf".split())


def strip_gutenberg(text: str) -> str:
    """Text between the Project Gutenberg START and END markers, or ``text`` if there are none."""
    start = _GUTENBERG_START.search(text)
    if start:
        text = text[start.end() :]
    end = _GUTENBERG_END.search(text)
    if end:
        text = text[: end.start()]
    return text


def split_sentences(text: str) -> list[str]:
    """Split prose into raw (not yet normalised) sentences.

    Paragraphs are separated by blank lines; hard-wrapped lines inside a
    paragraph are joined. A paragraph always ends a sentence (chapter
    titles become sentences of their own). Abbreviations such as "Mr." and
    initials such as "H. G." do not end a sentence.
    """
    sentences = []
    for paragraph in re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
        paragraph = " ".join(paragraph.split())
        start = 0
        for match in _SENTENCE_END.finditer(paragraph):
            last_word = paragraph[start : match.start()].rsplit(" ", 1)[-1].strip("'\"“‘(")
            if match.group(1) == "." and (last_word.lower() in _ABBREVIATIONS or re.fullmatch(r"[A-Z]", last_word)):
                continue
            sentences.append(paragraph[start : match.end()].strip())
            start = match.end()
        if paragraph[start:].strip():
            sentences.append(paragraph[start:].strip())
    return sentences


def read_text_file(path: str | os.PathLike) -> str:
    """A text file's content (UTF-8, or Latin-1 where it is not valid UTF-8)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such text file")
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        log.warning("%s is not valid UTF-8; reading it as Latin-1", path)
        return data.decode("latin-1")


def book_sentences(path: str | os.PathLike) -> list[str]:
    """Normalised sentences of a plain-text book (Gutenberg header/footer stripped, CRLF or LF)."""
    raw = read_text_file(path)
    normalised = (normalize_text(s) for s in split_sentences(strip_gutenberg(raw)))
    return [s for s in normalised if s]


def line_sentences(path: str | os.PathLike) -> list[str]:
    """Normalised sentences of a file with one sentence per line."""
    normalised = (normalize_text(line) for line in read_text_file(path).splitlines())
    return [s for s in normalised if s]


def text_sentences(path: str | os.PathLike, one_per_line: bool = False) -> list[str]:
    """Normalised sentences of a text file: a book (prose), or one sentence per line."""
    return line_sentences(path) if one_per_line else book_sentences(path)


@dataclass(frozen=True)
class RootPrompts:
    """A corpus root's prompt texts, normalised: training prompts, held-out (dev/test) prompts and where the split came from."""

    train: list[str]
    held_out: set[str]
    source: HeldOutSource


def corpus_root_prompts(root: str | os.PathLike, split_file: str | os.PathLike | None = None) -> RootPrompts:
    """Training and held-out prompts of a Gaddy-layout corpus root, normalised.

    Splits are the recogniser's (:func:`silentspeech.data.gaddy.read_corpus`,
    open-vocabulary subset): from ``split_file``, else the corpus's own split
    file found as ``prepare`` finds it (:func:`silentspeech.data.gaddy.find_split_file`:
    in the root, or beside its ``emg_data`` folder), else the reader's stable
    hash split, as ``silentspeech prepare`` assigns them. Held out are the dev
    and test prompts; a training prompt that is also held out is dropped.
    """
    from silentspeech.data.gaddy import read_corpus

    corpus = read_corpus(root, split_file)
    if corpus.split_file is None:
        log.warning(
            "%s: no split file given or found (in the root, root/emg_data or beside an emg_data folder): held-out "
            "prompts come from the %s; if the model was prepared with a split file, give it (--exclude FILE "
            "--corpus-root ROOT) or copy it beside emg_data/", root, corpus.split_source,
        )
    texts = {split: {u.text for u in corpus.utterances if u.split == split and u.text} for split in ("dev", "test")}
    held_out = {u.text for u in corpus.utterances if u.split != "train" and u.text}
    train = sorted({u.text for u in corpus.utterances if u.split == "train" and u.text} - held_out)
    if not train:
        raise ValueError(f"{root}: no training prompts with text in this corpus")
    source = HeldOutSource(
        kind="corpus root",
        path=str(corpus.root.resolve()),
        sentences=len(held_out),
        dev=len(texts["dev"]),
        test=len(texts["test"]),
        split=corpus.split_source,
        split_file=str(corpus.split_file.resolve()) if corpus.split_file else None,
        split_file_sha256=file_sha256(corpus.split_file) if corpus.split_file else None,
    )
    return RootPrompts(train, held_out, source)


def is_split_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a JSON split file (``{"dev": [...], "test": [...]}``)."""
    path = Path(path)
    if path.suffix != ".json" or not path.is_file():
        return False
    try:
        content = json.loads(path.read_text())
    except ValueError:
        return False
    return isinstance(content, dict) and ("dev" in content or "test" in content)


def cache_utterances(path: str | os.PathLike) -> list[dict]:
    """Manifest entries of a data cache, given its folder or its ``manifest.json``."""
    from silentspeech.data.cache import MANIFEST, read_manifest

    path = Path(path)
    return read_manifest(path.parent if path.name == MANIFEST else path)["utterances"]


def held_out_sentences(path: str | os.PathLike) -> set[str]:
    """Normalised sentences that must not enter a language model, read from ``path``.

    ``path`` is a data-cache ``manifest.json`` (the text of every non-train
    entry, :func:`cache_utterances`) or a file with one sentence per line. Split files and corpus
    roots are handled by :func:`build_lm` (their text is in the corpus).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file of sentences to exclude")
    if path.suffix == ".json":
        return {normalize_text(e["text"]) for e in cache_utterances(path) if e["split"] != "train"} - {""}
    return set(line_sentences(path))


def exclude_sentences(sentences: Sequence[str], held_out: set[str]) -> tuple[list[str], int]:
    """Drop corpus sentences that overlap a held-out sentence; returns (kept, dropped count).

    All sentences are normalised. A corpus sentence is dropped when it
    contains a held-out sentence, or when it has at least
    :data:`MIN_FRAGMENT_WORDS` words and lies inside one: a book's sentence
    splitter need not cut exactly where the prompt list did.
    """
    if not held_out:
        return list(sentences), 0
    padded_held_out = [f" {h} " for h in held_out]
    kept = []
    for sentence in sentences:
        padded = f" {sentence} "
        inside = sentence.count(" ") + 1 >= MIN_FRAGMENT_WORDS and any(padded in h for h in padded_held_out)
        if not inside and not any(h in padded for h in padded_held_out):
            kept.append(sentence)
    return kept, len(sentences) - len(kept)


# --- estimation --------------------------------------------------------------


@dataclass
class NgramModel:
    """A back-off n-gram model as an ARPA file holds it.

    ``ngrams[n - 1]`` maps each listed n-gram (a tuple of n words) to
    ``(log10 probability, log10 back-off weight)``; the back-off weight of an
    n-gram that is never a context is 0.
    """

    order: int
    ngrams: list[dict[tuple[str, ...], tuple[float, float]]]
    discounts: list[tuple[float, float, float]] = field(default_factory=list)

    @property
    def vocabulary(self) -> set[str]:
        """Every unigram, ``<s>``, ``</s>`` and ``<unk>`` included."""
        return {gram[0] for gram in self.ngrams[0]}

    def log10_prob(self, word: str, context: Sequence[str]) -> float:
        """Log10 P(word | context) with back-off; unknown words count as ``<unk>``.

        ``context`` lists preceding words, oldest first (``("<s>",)`` at a
        sentence start); only the last ``order - 1`` matter.
        """
        unigrams = self.ngrams[0]
        history = context[max(0, len(context) - self.order + 1) :]
        known = tuple(w if (w,) in unigrams else UNK for w in history)
        word = word if (word,) in unigrams else UNK
        backoff = 0.0
        for start in range(len(known) + 1):
            entry = self.ngrams[len(known) - start].get(known[start:] + (word,))
            if entry is not None:
                return entry[0] + backoff
            if start < len(known):
                context_entry = self.ngrams[len(known) - start - 1].get(known[start:])
                backoff += context_entry[1] if context_entry else 0.0
        return backoff - 100.0  # <unk> is not in the model: KenLM scores it -100

    def sentence_log10(self, sentence: str) -> float:
        """Log10 probability of a normalised sentence, ``</s>`` included, from ``<s>``."""
        context = [BOS]
        total = 0.0
        for word in sentence.split() + [EOS]:
            total += self.log10_prob(word, context)
            context.append(word)
        return total


def _discounts(adjusted: Counter, order: int) -> tuple[float, float, float]:
    """Modified Kneser-Ney discounts D1, D2, D3+ from the count-of-counts of one order."""
    t = Counter(c for c in adjusted.values() if c <= 4)
    if all(t[k] > 0 for k in (1, 2, 3, 4)):
        y = t[1] / (t[1] + 2 * t[2])
        discounts = (1 - 2 * y * t[2] / t[1], 2 - 3 * y * t[3] / t[2], 3 - 4 * y * t[4] / t[3])
        if all(0 < d < k for k, d in zip((1, 2, 3), discounts)):
            return discounts
    log.info("order %d: count-of-counts %s too sparse for discounts; using %s", order, dict(t), FALLBACK_DISCOUNTS)
    return FALLBACK_DISCOUNTS


def estimate_kneser_ney(sentences: Iterable[str], order: int = 4) -> NgramModel:
    """Interpolated modified Kneser-Ney model of normalised sentences, as a back-off model.

    The highest order uses raw counts; lower orders use continuation counts
    (distinct left neighbours), except n-grams starting with ``<s>``, which
    have none and keep raw counts. Each order has its own discounts
    D1, D2, D3+ from its count-of-counts. The unigram distribution is
    interpolated with a uniform one over the vocabulary (``<unk>``
    included), so every word gets a probability. The interpolated
    probability of each listed n-gram is stored with the interpolation
    weight of its context as back-off weight, which makes the ARPA back-off
    model equal the interpolated one.
    """
    if order < 2:
        raise ValueError(f"order must be at least 2 (KenLM reads no unigram-only models), got {order}")
    raw = [Counter() for _ in range(order)]
    for sentence in sentences:
        tokens = (BOS, *sentence.split(), EOS)
        for n in range(1, order + 1):
            counts = raw[n - 1]
            for i in range(len(tokens) - n + 1):
                counts[tokens[i : i + n]] += 1
    if not raw[0]:
        raise ValueError("no sentences to estimate a language model from")

    adjusted = [Counter() for _ in range(order)]
    adjusted[order - 1] = raw[order - 1]
    for n in range(order - 1, 0, -1):
        for gram in raw[n]:
            adjusted[n - 1][gram[1:]] += 1
        adjusted[n - 1].update({gram: c for gram, c in raw[n - 1].items() if gram[0] == BOS})
    del adjusted[0][(BOS,)]  # <s> is never predicted

    vocabulary_size = len(adjusted[0]) + (0 if (UNK,) in adjusted[0] else 1)
    probs: list[dict[tuple[str, ...], float]] = []
    weights: list[dict[tuple[str, ...], float]] = []  # interpolation weight per context, by context length
    discounts = []
    for n in range(1, order + 1):
        counts = adjusted[n - 1]
        d = _discounts(counts, n)
        discounts.append(d)
        totals: dict[tuple[str, ...], float] = defaultdict(float)
        discounted: dict[tuple[str, ...], float] = defaultdict(float)
        for gram, c in counts.items():
            totals[gram[:-1]] += c
            discounted[gram[:-1]] += d[min(c, 3) - 1]
        gamma = {context: discounted[context] / totals[context] for context in totals}
        lower = probs[-1] if probs else None
        probs.append(
            {
                gram: (c - d[min(c, 3) - 1]) / totals[gram[:-1]]
                + gamma[gram[:-1]] * (lower[gram[1:]] if lower is not None else 1 / vocabulary_size)
                for gram, c in counts.items()
            }
        )
        weights.append(gamma)
    probs[0].setdefault((UNK,), weights[0][()] / vocabulary_size)

    ngrams = []
    for n in range(1, order + 1):
        contexts = weights[n] if n < order else {}
        table = {gram: (math.log10(p), math.log10(contexts[gram]) if gram in contexts else 0.0) for gram, p in probs[n - 1].items()}
        ngrams.append(table)
    ngrams[0][(BOS,)] = (NEVER, math.log10(weights[1][(BOS,)]))
    return NgramModel(order=order, ngrams=ngrams, discounts=discounts)


def write_arpa(model: NgramModel, path: str | os.PathLike) -> None:
    """Write ``model`` as an ARPA file (log10, tab-separated, n-grams sorted), atomically."""
    with atomic_open(path, "w") as out:
        out.write("\\data\\\n")
        for n, table in enumerate(model.ngrams, start=1):
            out.write(f"ngram {n}={len(table)}\n")
        for n, table in enumerate(model.ngrams, start=1):
            out.write(f"\n\\{n}-grams:\n")
            for gram in sorted(table):
                logp, backoff = table[gram]
                line = f"{logp:.7g}\t{' '.join(gram)}"
                out.write(f"{line}\t{backoff:.7g}\n" if backoff != 0.0 else line + "\n")
        out.write("\n\\end\\\n")


# --- reading and checking ARPA files ------------------------------------------


def _scan_arpa(path: Path, on_entry: Callable[[int, tuple[str, ...], float, float], None]) -> list[int]:
    """Validate an ARPA file line by line, calling ``on_entry(n, words, log10 p, log10 back-off)``.

    Returns the n-gram counts of the header. Raises :class:`ArpaError`
    naming the file and line for anything KenLM could choke on.
    """
    if is_kenlm_binary(path):
        raise ArpaError(f"{path}: a KenLM binary, not an ARPA text file")
    counts: list[int] = []
    started = False  # past the "\\data\\" line
    section = 0  # order of the section being read; 0 = header
    seen = 0
    with path.open(encoding="utf-8", errors="replace") as lines:
        number = 0
        for number, line in enumerate(lines, start=1):
            line = line.strip()
            if not line:
                continue
            if not started:
                if line != "\\data\\":
                    # Binary bytes in the message would only garble the terminal.
                    found = repr(line[:60]) if line[:60].isprintable() else "binary data (neither an ARPA text file nor a KenLM binary)"
                    raise ArpaError(f"{path}: line {number}: expected '\\data\\' to open an ARPA file, found {found}")
                started = True
                continue
            if section == 0 and line.startswith("ngram "):
                match = re.fullmatch(r"ngram (\d+)\s*=\s*(\d+)", line)
                if not match or int(match.group(1)) != len(counts) + 1:
                    raise ArpaError(f"{path}: line {number}: expected 'ngram {len(counts) + 1}=COUNT', found {line!r}")
                counts.append(int(match.group(2)))
                continue
            header = re.fullmatch(r"\\(\d+)-grams:", line)
            if header or line == "\\end\\":
                if section and seen != counts[section - 1]:
                    raise ArpaError(
                        f"{path}: line {number}: the {section}-gram section has {seen} entries but the header "
                        f"announces {counts[section - 1]}"
                    )
                if line == "\\end\\":
                    if section != len(counts):
                        raise ArpaError(f"{path}: line {number}: \\end\\ after the {section}-grams, header announces order {len(counts)}")
                    return counts
                if not counts or int(header.group(1)) != section + 1 or section + 1 > len(counts):
                    raise ArpaError(f"{path}: line {number}: unexpected section {line!r} (header lists {len(counts)} orders)")
                section, seen = section + 1, 0
                continue
            if section == 0:
                raise ArpaError(f"{path}: line {number}: expected an 'ngram N=COUNT' line or a section header, found {line[:60]!r}")
            fields = line.split()
            if len(fields) not in (section + 1, section + 2):
                raise ArpaError(
                    f"{path}: line {number}: a {section}-gram entry needs {section + 1} or {section + 2} fields, "
                    f"found {len(fields)}: {line[:80]!r}"
                )
            try:
                logp = float(fields[0])
                backoff = float(fields[section + 1]) if len(fields) == section + 2 else 0.0
            except ValueError:
                raise ArpaError(f"{path}: line {number}: log probability or back-off is not a number: {line[:80]!r}") from None
            if not (math.isfinite(logp) and math.isfinite(backoff)) or logp > 0:
                raise ArpaError(f"{path}: line {number}: invalid log10 probability or back-off: {line[:80]!r}")
            seen += 1
            on_entry(section, tuple(fields[1 : section + 1]), logp, backoff)
    if not counts:
        raise ArpaError(f"{path}: empty, or no '\\data\\' header with n-gram counts")
    where = f"inside the {section}-gram section ({seen} of {counts[section - 1]} entries)" if section else "in the header"
    raise ArpaError(f"{path}: ends at line {number} {where} without \\end\\: the file is truncated")


@dataclass(frozen=True)
class ArpaSummary:
    """What :func:`check_arpa` learned: order, n-gram counts per order, unigram vocabulary."""

    path: Path
    order: int
    counts: list[int]
    vocabulary: set[str]


def check_arpa(path: str | os.PathLike) -> ArpaSummary:
    """Validate an ARPA file without keeping its n-grams (streams; fit for large models)."""
    path = Path(path)
    vocabulary: set[str] = set()

    def collect(n: int, words: tuple[str, ...], logp: float, backoff: float) -> None:
        if n == 1:
            vocabulary.add(words[0])

    counts = _scan_arpa(path, collect)
    missing = {BOS, EOS} - vocabulary
    if missing:
        raise ArpaError(f"{path}: the unigrams lack {sorted(missing)}; KenLM needs sentence boundary tokens")
    return ArpaSummary(path=path, order=len(counts), counts=counts, vocabulary=vocabulary)


def check_vocabulary(vocabulary: Iterable[str], source: str | os.PathLike) -> None:
    """Raise :class:`ArpaError` if words use characters the recogniser cannot emit.

    The decoder's words are made of :data:`silentspeech.text.CHARACTERS`
    (lower-case letters and digits); an LM built on unnormalised text (upper
    case, punctuation tokens) would give every hypothesis ``<unk>`` scores.
    """
    offending = sorted(w for w in vocabulary if w not in (BOS, EOS, UNK) and not _WORD.fullmatch(w))
    if offending:
        shown = ", ".join(repr(w) for w in offending[:10])
        raise ArpaError(
            f"{source}: {len(offending)} words use characters outside the recogniser's charset "
            f"(a-z, 0-9), e.g. {shown}; build the LM from normalised text (silentspeech lm build)"
        )


def read_arpa(path: str | os.PathLike) -> NgramModel:
    """Load an ARPA file into an :class:`NgramModel` (validated; for scoring and tests)."""
    path = Path(path)
    ngrams: list[dict[tuple[str, ...], tuple[float, float]]] = []

    def store(n: int, words: tuple[str, ...], logp: float, backoff: float) -> None:
        while len(ngrams) < n:
            ngrams.append({})
        ngrams[n - 1][words] = (logp, backoff)

    counts = _scan_arpa(path, store)
    while len(ngrams) < len(counts):
        ngrams.append({})
    return NgramModel(order=len(counts), ngrams=ngrams)


# --- perplexity --------------------------------------------------------------


@dataclass(frozen=True)
class Perplexity:
    """Perplexity of held-out sentences: ``10 ** (-log10 probability / tokens)``.

    ``tokens`` counts words plus one ``</s>`` per sentence; out-of-vocabulary
    words are scored as ``<unk>`` (KenLM's convention) and counted in ``oov``.
    """

    perplexity: float
    log10_prob: float
    sentences: int
    tokens: int
    oov: int


def _perplexity(sentences: Sequence[str], vocabulary: Callable[[str], bool], score: Callable[[str], float]) -> Perplexity:
    sentences = [s for s in sentences if s]
    if not sentences:
        raise ValueError("no sentences to compute a perplexity on")
    total = sum(score(s) for s in sentences)
    tokens = sum(len(s.split()) + 1 for s in sentences)
    oov = sum(not vocabulary(w) for s in sentences for w in s.split())
    return Perplexity(10 ** (-total / tokens), total, len(sentences), tokens, oov)


def perplexity(model: NgramModel, sentences: Sequence[str]) -> Perplexity:
    """Perplexity of normalised ``sentences`` under ``model`` (our own ARPA scoring)."""
    unigrams = model.ngrams[0]
    return _perplexity(sentences, lambda w: (w,) in unigrams, model.sentence_log10)


def kenlm_perplexity(lm_path: str | os.PathLike, sentences: Sequence[str]) -> Perplexity:
    """Perplexity of normalised ``sentences`` scored by ``kenlm.Model`` (ARPA checked first)."""
    import kenlm

    lm_path = Path(lm_path)
    if not is_kenlm_binary(lm_path):
        check_arpa(lm_path)
    model = kenlm.Model(str(lm_path))
    return _perplexity(sentences, lambda w: w in model, lambda s: model.score(s, bos=True, eos=True))


def is_kenlm_binary(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a KenLM binary model (by its magic bytes); raises if it does not exist."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such language model file")
    with path.open("rb") as handle:
        return handle.read(len(KENLM_BINARY_MAGIC)) == KENLM_BINARY_MAGIC


# --- building ----------------------------------------------------------------


@dataclass(frozen=True)
class LMBuildReport:
    """What :func:`build_lm` wrote and from what."""

    arpa: Path
    binary: Path | None
    estimator: str
    order: int
    sentences: int
    #: Corpus sentences dropped as held out (containing, or a long fragment of, a held-out sentence).
    excluded: int
    words: int
    counts: list[int]
    #: Where the held-out sentences came from, and how many distinct ones there were.
    sources: list[HeldOutSource] = field(default_factory=list)
    held_out: int = 0
    #: Kept sentences that are dev/test prompts of a corpus root or other held-out sentences (0 unless ``keep_held_out``).
    kept_in_held_out: int = 0
    provenance: Path | None = None

    def summary(self) -> list[str]:
        """Lines for the terminal: what was held out, from where, and the check that no kept sentence is held out."""
        lines = [f"{self.sentences} sentences, {self.words} words"]
        if self.sources:
            lines += [f"held out: {source.describe()}" for source in self.sources]
        else:
            lines.append("held out: nothing (no corpus root or --exclude given); evaluate will refuse this LM on any split")
        lines.append(
            f"{self.held_out} distinct held-out sentences; {self.excluded} corpus sentences dropped as held out; "
            f"kept sentences that are dev/test or held out: {self.kept_in_held_out}"
        )
        if self.provenance:
            lines.append(f"wrote {self.provenance} (what was held out, for evaluate and tune-lm to check)")
        return lines


def build_lm(
    corpora: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    order: int = 4,
    exclude: Sequence[str | os.PathLike] = (),
    corpus_roots: Sequence[str | os.PathLike] = (),
    keep_held_out: bool = False,
    one_per_line: bool = False,
) -> LMBuildReport:
    """Build an ``order``-gram LM of ``corpora`` and write it as ARPA to ``out``, its provenance beside it.

    Each corpus is a book (plain text: sentences split, Gutenberg
    header/footer stripped), a one-sentence-per-line file (``one_per_line``),
    or a Gaddy/synthetic corpus root folder, which contributes its training
    prompts (:func:`corpus_root_prompts`). Held-out sentences are removed
    from every corpus (:func:`exclude_sentences`), gathered from:

    * each corpus root among ``corpora``: its dev/test prompts (unless
      ``keep_held_out``), split by its own split file as ``prepare`` finds it;
    * each entry of ``exclude``: a sentence-per-line file, a cache
      ``manifest.json`` (non-train texts), a corpus root folder (its dev/test
      prompts), or a split file (``testset_largedev.json`` format). A split
      file names ``(book, sentence_index)`` pairs; their text comes from the
      corpus roots among ``corpora``, ``exclude`` and ``corpus_roots``, whose
      splits it then defines.

    Uses ``lmplz`` when it is on PATH, else :func:`estimate_kneser_ney`;
    with ``build_binary`` on PATH a KenLM binary is written beside ``out``
    (``.bin``). The provenance (:mod:`silentspeech.decoding.provenance`)
    records every held-out source, the split file and its hash, and a digest
    of each held-out sentence.
    """
    out = Path(out)
    split_files, held_out, sources = _excluded_sentences(corpora, exclude, corpus_roots)
    sentences, kept_prompts = _corpus_sentences(corpora, split_files, held_out, sources, keep_held_out, one_per_line)
    sentences, excluded = exclude_sentences(sentences, held_out)
    if not sentences:
        raise ValueError("every corpus sentence was excluded as held out; nothing left to build an LM from")
    kept_in_held_out = sum(s in held_out or s in kept_prompts for s in sentences)
    log.info("%d sentences (%d excluded as held out) from %d corpora", len(sentences), excluded, len(corpora))

    out.parent.mkdir(parents=True, exist_ok=True)
    lmplz = shutil.which("lmplz")
    if lmplz:
        _run_lmplz(lmplz, sentences, order, out)
        estimator = "lmplz"
    else:
        write_arpa(estimate_kneser_ney(sentences, order), out)
        estimator = "silentspeech (interpolated modified Kneser-Ney)"
    summary = check_arpa(out)
    provenance = write_provenance(
        out, corpora, sources, held_out, order=order, estimator=estimator, sentences=len(sentences),
        corpus_sentences_dropped=excluded, kept_in_held_out=kept_in_held_out, keep_held_out=keep_held_out,
    )
    return LMBuildReport(
        arpa=out,
        binary=_write_kenlm_binary(out),
        estimator=estimator,
        order=order,
        sentences=len(sentences),
        excluded=excluded,
        words=sum(len(s.split()) for s in sentences),
        counts=summary.counts,
        sources=sources,
        held_out=len(held_out),
        kept_in_held_out=kept_in_held_out,
        provenance=provenance,
    )


def _excluded_sentences(
    corpora: Sequence[str | os.PathLike], exclude: Sequence[str | os.PathLike], corpus_roots: Sequence[str | os.PathLike]
) -> tuple[list[Path], set[str], list[HeldOutSource]]:
    """``(split files among exclude, held-out sentences of exclude, their sources)``, as :func:`build_lm` describes ``exclude``.

    Raises ``ValueError`` for a split file without a corpus root to take its texts from.
    """
    split_files = [Path(p) for p in exclude if is_split_file(p)]
    exclude_roots = [Path(p) for p in exclude if Path(p).is_dir()] + [Path(r) for r in corpus_roots]
    if split_files and not exclude_roots and not any(Path(c).is_dir() for c in corpora):
        raise ValueError(
            f"{split_files[0]} lists (book, sentence_index) pairs whose text is in a corpus root: "
            "give the corpus root too (--corpus-root)"
        )
    held_out: set[str] = set()
    sources: list[HeldOutSource] = []
    for path in exclude:
        if not Path(path).is_dir() and Path(path) not in split_files:
            from_file = held_out_sentences(path)
            kind = "cache manifest" if Path(path).suffix == ".json" else "sentence file"
            sources.append(HeldOutSource(kind, str(Path(path).resolve()), len(from_file)))
            held_out |= from_file
    for root in exclude_roots:
        for split_file in split_files or [None]:
            prompts = corpus_root_prompts(root, split_file)
            sources.append(prompts.source)
            held_out |= prompts.held_out
    return split_files, held_out, sources


def _corpus_sentences(
    corpora: Sequence[str | os.PathLike],
    split_files: Sequence[Path],
    held_out: set[str],
    sources: list[HeldOutSource],
    keep_held_out: bool,
    one_per_line: bool,
) -> tuple[list[str], set[str]]:
    """``(every normalised sentence of corpora in order, dev/test prompts kept as training text)``.

    The dev/test prompts of corpus roots are added to ``held_out`` and their
    sources to ``sources``; with ``keep_held_out`` they are kept as training
    text instead (and returned). Raises ``ValueError`` for a corpus without sentences.
    """
    sentences: list[str] = []
    kept_prompts: set[str] = set()
    for corpus in corpora:
        if Path(corpus).is_dir():
            from_corpus = []
            for split_file in split_files or [None]:
                prompts = corpus_root_prompts(corpus, split_file)
                from_corpus += prompts.train + (sorted(prompts.held_out) if keep_held_out else [])
                if keep_held_out:
                    kept_prompts |= prompts.held_out
                else:
                    held_out |= prompts.held_out
                    sources.append(prompts.source)
        else:
            from_corpus = text_sentences(corpus, one_per_line)
        if not from_corpus:
            raise ValueError(f"{corpus}: no sentences after normalisation")
        if not held_out and "war of the worlds" in " ".join(from_corpus[:3]):
            log.warning("%s looks like The War of the Worlds, the source of the Gaddy test prompts; nothing is excluded", corpus)
        sentences.extend(from_corpus)
    return sentences, kept_prompts


def _write_kenlm_binary(arpa: Path) -> Path | None:
    """With KenLM's ``build_binary`` on PATH, the binary of ``arpa`` beside it (``.bin``, written atomically); else None."""
    build_binary = shutil.which("build_binary")
    if not build_binary:
        return None
    binary = arpa.with_suffix(".bin")
    with tempfile.TemporaryDirectory(dir=arpa.parent) as tmp:
        staged = Path(tmp) / binary.name
        subprocess.run([build_binary, str(arpa), str(staged)], check=True, capture_output=True)
        os.replace(staged, binary)
    return binary


def _run_lmplz(lmplz: str, sentences: Sequence[str], order: int, out: Path) -> None:
    """Estimate with KenLM's ``lmplz`` (memory capped: the machine is shared), writing ``out`` atomically."""
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        text = Path(tmp) / "corpus.txt"
        text.write_text("\n".join(sentences) + "\n")
        staged = Path(tmp) / out.name
        command = [lmplz, "-o", str(order), "-S", "1G", "-T", tmp, "--discount_fallback", "--text", str(text), "--arpa", str(staged)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"lmplz failed ({result.returncode}): {result.stderr[-2000:]}")
        os.replace(staged, out)
