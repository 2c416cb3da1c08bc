"""Prompts of the independent corpus: sentences of a plain-text book, or a small grammar of its own.

A book (for instance a Project Gutenberg text) is read as UTF-8, its
Gutenberg header and licence footer cut off at the ``*** START OF`` /
``*** END OF`` (or ``End of the Project Gutenberg``) lines, transliterated to ASCII, joined into paragraphs and
split into sentences at ``.``, ``!`` or ``?`` followed by a capital or digit
(not after a title such as ``Mr.``). A sentence is kept when it has 4 to 20
words, only letters, digits and basic punctuation, and ends in ``.``, ``!``
or ``?`` (titles and headings do not); repeats (equal after
:func:`silentspeech.text.normalize_text`) are kept once. A sentence's
``sentence_index`` is its position among the kept ones.

Without a book the prompts come from :func:`grammar_sentences`: a handful of
clause patterns over word lists about weather, the sea, a workshop and a
kitchen, written for this generator and sharing no content word lists with
the default corpus's grammar.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
from unidecode import unidecode

from silentspeech.decoding.ngram import strip_gutenberg
from silentspeech.text import normalize_text

#: Shortest and longest sentence kept from a book, in words.
MIN_WORDS, MAX_WORDS = 4, 20
#: Book name recorded in ``{i}_info.json`` for grammar prompts.
GRAMMAR_BOOK = "books/independent_grammar.txt"

_ALLOWED = re.compile(r"^[A-Za-z0-9 ,.;:'!?\-]+[.!?]$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")
_TITLES = re.compile(r"\b(Mr|Mrs|Ms|Dr|St|Mt|Capt|Col|Gen|Rev|Prof|No)\.$")


def book_name(path: str | os.PathLike) -> str:
    """The ``book`` field of a book's utterances: ``books/<file name>``, as the real corpus names its sources."""
    return f"books/{Path(path).name}"


def read_book(path: str | os.PathLike) -> str:
    """The text of a book file; ``ValueError`` naming the file when it is missing, unreadable or not UTF-8."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: book not found (give the path of a plain-text file)")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: book is not UTF-8 text") from None
    except OSError as err:
        raise ValueError(f"{path}: cannot read the book ({err.strerror})") from None


def split_sentences(text: str) -> list[str]:
    """Every sentence of ``text`` (paragraphs are separated by blank lines), whitespace collapsed."""
    sentences = []
    for paragraph in re.split(r"\n\s*\n", text):
        flat = " ".join(paragraph.replace("_", " ").split())
        pieces = _SENTENCE_END.split(flat) if flat else []
        merged: list[str] = []
        for piece in pieces:
            if merged and _TITLES.search(merged[-1]):
                merged[-1] = f"{merged[-1]} {piece}"
            else:
                merged.append(piece)
        sentences += merged
    return sentences


def usable(sentence: str) -> bool:
    """A sentence of 4-20 words of letters, digits and basic punctuation, ending in ``.``, ``!`` or ``?`` (no ellipsis)."""
    return bool(_ALLOWED.match(sentence)) and ". ." not in sentence and MIN_WORDS <= len(sentence.split()) <= MAX_WORDS and any(c.isalpha() for c in sentence)


def book_sentences(path: str | os.PathLike) -> list[str]:
    """The usable sentences of a book, in book order, each once; ``ValueError`` when there is none."""
    ascii_text = unidecode(strip_gutenberg(read_book(path))).replace('"', "")
    kept, seen = [], set()
    for sentence in split_sentences(ascii_text):
        key = normalize_text(sentence)
        if usable(sentence) and key and key not in seen:
            seen.add(key)
            kept.append(sentence)
    if not kept:
        raise ValueError(f"{path}: book holds no usable sentence (4-20 words of letters, digits and basic punctuation)")
    return kept


_NAMES = ("Marta", "Oskar", "Ingrid", "Tobias", "Greta", "Anselm", "Lotte", "Rufus", "Hedda", "Casper", "Wilma", "Elias")
_TOOLS = (
    "chisel", "trowel", "mallet", "pitchfork", "skillet", "ladle", "anchor", "spindle", "bellows", "wrench", "tongs",
    "sieve", "whetstone", "harpoon", "boathook", "rake", "funnel", "crowbar", "plumb line", "grindstone",
)
_PLACES = (
    "harbour", "loft", "quarry", "workshop", "pantry", "lighthouse", "dock", "greenhouse", "chapel", "ferry", "pier",
    "smithy", "boathouse", "granary", "tannery", "dairy", "jetty", "cooperage",
)
_COLOURS = ("amber", "crimson", "coppery", "scarlet", "ochre", "slate grey", "mauve", "teal", "russet", "sooty", "tawny", "umber")
_QUALITIES = ("crooked", "cracked", "sturdy", "hollow", "stubborn", "brittle", "lopsided", "greasy", "dented", "rickety", "clumsy", "lumpy")
_CARRY_VERBS = ("scrubbed", "sharpened", "weighed", "hauled", "dragged", "lugged", "oiled", "patched", "rinsed", "hoisted", "fetched", "stowed")
_WEATHER = (
    ("the fog", "rolled in"), ("the tide", "turned"), ("the hail", "ceased"), ("the squall", "blew over"),
    ("the frost", "thawed"), ("the thunder", "rumbled"), ("the drizzle", "began"), ("the gale", "eased"),
)
_TIMES = (
    "at low tide", "after vespers", "before sunup", "on Tuesdays", "every fortnight", "by lamplight",
    "at high tide", "in the thaw", "during the gale", "at teatime",
)
_COUNTS = ("a dozen", "a score of", "umpteen", "a handful of", "a pair of", "a gross of", "a heap of", "a brace of")
_PLURALS = ("gulls", "kegs", "herrings", "pebbles", "mackerel", "turnips", "thimbles", "cinders", "oysters", "bobbins", "walnuts", "parsnips")
_FEELINGS = ("sighed", "shrugged", "grumbled", "whistled", "frowned", "nodded", "hummed", "chuckled")


#: Clause patterns of the grammar; every field is drawn from the word lists above.
_PATTERNS = (
    "{who} {carried} the {colour} {tool} in the {place} {when}.",
    "When {weather} {happened}, {who} {felt} and left the {quality} {tool} behind.",
    "{Count} {things} lay beside the {quality} {tool} in the {place}.",
    "Did {who} ask {other} for the {quality} {tool} {when}?",
    "{who} counted {count} {things} and {count_2} {things_2} while {weather} {happened}.",
)


def grammar_sentence(rng: np.random.Generator) -> str:
    """One prompt of the generator's own grammar (5-16 words), drawn with ``rng``."""
    lists = {
        "who": _NAMES, "other": _NAMES, "tool": _TOOLS, "place": _PLACES, "when": _TIMES, "colour": _COLOURS,
        "quality": _QUALITIES, "carried": _CARRY_VERBS, "felt": _FEELINGS, "count": _COUNTS, "count_2": _COUNTS,
        "things": _PLURALS, "things_2": _PLURALS,
    }
    fields = {name: words[int(rng.integers(len(words)))] for name, words in lists.items()}
    fields["weather"], fields["happened"] = _WEATHER[int(rng.integers(len(_WEATHER)))]
    fields["Count"] = fields["count"].capitalize()
    return _PATTERNS[int(rng.integers(len(_PATTERNS)))].format(**fields)


def grammar_sentences(count: int, seed: int) -> list[str]:
    """``count`` distinct grammar prompts (distinct after normalisation), the same for a seed.

    Raises ``ValueError`` when the grammar cannot give that many distinct prompts.
    """
    rng = np.random.default_rng([seed, 0x5E17])
    prompts, seen = [], set()
    for _ in range(50 * count + 1000):
        if len(prompts) == count:
            break
        sentence = grammar_sentence(rng)
        key = normalize_text(sentence)
        if key not in seen:
            seen.add(key)
            prompts.append(sentence)
    if len(prompts) < count:
        raise ValueError(f"the independent grammar gives only {len(prompts)} distinct prompts; ask for fewer utterances or give a book")
    return prompts
