"""The language of the synthetic corpus: a sentence grammar over word lists.

Two kinds of prompt, as in the real corpus (Gaddy & Klein 2020; docs/design.md, *The Gaddy
silent-speech corpus*):

* open-vocabulary sentences from a small English-like grammar (subject,
  verb phrase with tense and agreement, objects chosen by meaning,
  prepositional phrases, adverbs), 4 to 9 words, more than 1,000 distinct
  words. Verbs pick the noun classes they take ("ate the fresh bread", "crossed
  the narrow bridge") and adjectives fit their nouns, so an n-gram language
  model trained on some of these sentences helps decoding others. Words are
  drawn with Zipf-like weights (earlier list entries are more frequent), so a
  few hundred training sentences cover most words of held-out ones;
* closed-vocabulary prompts of dates and times ("the fourth of July at ten
  thirty", "03:09 AM").

The open grammar's words live in ``grammar_words.yaml`` beside this module
(package data): nouns and adjectives by meaning class, verbs by the class of
their object with their irregular forms, adverbs, time phrases, prepositions
and determiners. This module keeps the grammar: inflection, agreement, phrase
templates and the spelling of dates and times. The word lists are our own; no
corpus or word-list package gives semantically typed nouns, verbs with their
object classes and full inflections, which is what gives the sentences n-gram
structure.

Every function takes a ``numpy.random.Generator`` so a corpus seed fixes the
prompts exactly.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

import numpy as np
import yaml

from silentspeech.text import normalize_text

#: Words per open-vocabulary sentence (inclusive bounds).
MIN_WORDS, MAX_WORDS = 4, 9
#: The open grammar's word lists: package data of this module's package.
WORDS_FILE = "grammar_words.yaml"


def _words(block: str) -> tuple[str, ...]:
    return tuple(block.split())


def _lines(block: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in block.strip().splitlines() if line.strip())


_WORD_LISTS = yaml.safe_load(resources.files("silentspeech.data.synthetic").joinpath(WORDS_FILE).read_text(encoding="utf-8"))

# --- nouns and adjectives --------------------------------------------------------

#: Nouns by meaning class (person, animal, object, food, drink, place, vehicle, nature), commonest first.
NOUNS = {kind: _words(block) for kind, block in _WORD_LISTS["nouns"].items()}
#: Nouns without a plural or an indefinite article in our grammar.
MASS_NOUNS = frozenset(_words(_WORD_LISTS["mass_nouns"]))
_IRREGULAR_PLURALS = dict(line.split() for line in _lines(_WORD_LISTS["irregular_plurals"]))
#: Adjectives by the noun class they describe.
ADJECTIVES = {kind: _words(block) for kind, block in _WORD_LISTS["adjectives"].items()}
#: Degree words that may stand before an adjective.
INTENSIFIERS = _words(_WORD_LISTS["intensifiers"])

# --- verbs ---------------------------------------------------------------


@dataclass(frozen=True)
class Verb:
    """All forms of one verb: ``base`` (walk), ``third`` (walks), ``past``
    (walked), ``participle`` (walked), ``ing`` (walking)."""

    base: str
    third: str
    past: str
    participle: str
    ing: str


#: Verbs that double their final consonant before -ed and -ing (stop -> stopped).
_DOUBLING = frozenset(_words(_WORD_LISTS["doubling_verbs"]))


def _third_person(base: str) -> str:
    if base in ("have",):
        return "has"
    if base.endswith(("s", "sh", "ch", "x", "z", "o")):
        return base + "es"
    if base.endswith("y") and base[-2] not in "aeiou":
        return base[:-1] + "ies"
    return base + "s"


def _regular_past(base: str) -> str:
    if base.endswith("e"):
        return base + "d"
    if base.endswith("y") and base[-2] not in "aeiou":
        return base[:-1] + "ied"
    if base in _DOUBLING:
        return base + base[-1] + "ed"
    return base + "ed"


def _present_participle(base: str) -> str:
    if base.endswith("ie"):
        return base[:-2] + "ying"
    if base.endswith("e") and not base.endswith(("ee", "ye", "oe")):
        return base[:-1] + "ing"
    if base in _DOUBLING:
        return base + base[-1] + "ing"
    return base + "ing"


def _verb(spec: str) -> Verb:
    """``"walk"`` (regular) or ``"eat ate eaten"`` (base, past, participle)."""
    parts = spec.split()
    base = parts[0]
    past = parts[1] if len(parts) > 1 else _regular_past(base)
    participle = parts[2] if len(parts) > 2 else past
    return Verb(base, _third_person(base), past, participle, _present_participle(base))


def _verbs(block: str) -> tuple[Verb, ...]:
    """One verb per line of ``block``, each as :func:`_verb` reads it."""
    return tuple(_verb(line) for line in _lines(block))


#: Transitive verbs of a person subject, by the class of their object.
TRANSITIVE = {kind: _verbs(block) for kind, block in _WORD_LISTS["transitive_verbs"].items()}
#: Intransitive activity verbs of a person subject (take a place phrase or adverb).
ACTIVITIES = _verbs(_WORD_LISTS["activity_verbs"])
#: Motion verbs: a person or an animal moving along a direction phrase.
MOTIONS = _verbs(_WORD_LISTS["motion_verbs"])
#: Intransitive verbs of an animal subject.
ANIMAL_ACTIONS = _verbs(_WORD_LISTS["animal_verbs"])
#: Ditransitive verbs: person gives a person an object.
DITRANSITIVE = _verbs(_WORD_LISTS["ditransitive_verbs"])

# --- adverbs and phrases -------------------------------------------------------

MANNER_ADVERBS = _words(_WORD_LISTS["manner_adverbs"])
FREQUENCY_ADVERBS = _words(_WORD_LISTS["frequency_adverbs"])
#: Time phrases by the tense family they fit.
TIME_PHRASES = {family: _lines(block) for family, block in _WORD_LISTS["time_phrases"].items()}
LOCATIVE_PREPOSITIONS = _words(_WORD_LISTS["locative_prepositions"])
DIRECTION_PREPOSITIONS = _words(_WORD_LISTS["direction_prepositions"])

# --- function words ------------------------------------------------------------

#: (subject, object, person key) for pronoun subjects and objects.
PRONOUNS = (
    ("i", "me", "1s"), ("you", "you", "2"), ("he", "him", "3s"), ("she", "her", "3s"),
    ("we", "us", "p"), ("they", "them", "p"),
)
POSSESSIVES = _words(_WORD_LISTS["possessives"])
NUMERALS = _words(_WORD_LISTS["numerals"])
PLURAL_QUANTIFIERS = _words(_WORD_LISTS["plural_quantifiers"])
MODALS = _words(_WORD_LISTS["modals"])

#: Words after which "a" stays "a" although they start with a vowel letter.
_CONSONANT_SOUND = frozenset(_words("useful useless european one university unicorn"))
#: Words after which "a" becomes "an" although they start with a consonant letter.
_VOWEL_SOUND = frozenset(_words("honest hour"))


def _article(next_word: str) -> str:
    vowel = next_word[0] in "aeiou"
    if next_word in _CONSONANT_SOUND:
        vowel = False
    if next_word in _VOWEL_SOUND:
        vowel = True
    return "an" if vowel else "a"


#: Zipf exponent of word choice within a list.
ZIPF = 1.2


def _pick(rng: np.random.Generator, items, zipf: float = ZIPF):
    """One item; weight ``1 / (rank + 2) ** zipf`` so early entries are common."""
    ranks = np.arange(len(items))
    weights = 1.0 / (ranks + 2.0) ** zipf
    return items[rng.choice(len(items), p=weights / weights.sum())]


def _chance(rng: np.random.Generator, p: float) -> bool:
    return bool(rng.random() < p)


def plural(noun: str) -> str:
    """English plural of one of our nouns (``box`` -> ``boxes``, ``wolf`` -> ``wolves``)."""
    if noun in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[noun]
    if noun.endswith(("s", "sh", "ch", "x", "z")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


@dataclass(frozen=True)
class _Phrase:
    words: tuple[str, ...]
    person: str  # agreement key: "1s", "2", "3s" or "p"


def _noun_phrase(rng: np.random.Generator, kind: str, allow_plural: bool = True) -> _Phrase:
    noun = _pick(rng, NOUNS[kind])
    mass = noun in MASS_NOUNS
    is_plural = allow_plural and not mass and _chance(rng, 0.3)
    head = plural(noun) if is_plural else noun
    modifier: list[str] = []
    if _chance(rng, 0.4):
        if _chance(rng, 0.1):
            modifier.append("very")
        modifier.append(_pick(rng, ADJECTIVES[kind], zipf=0.8))
    first = (modifier or [head])[0]
    roll = rng.random()
    if is_plural:
        if roll < 0.45:
            det = ["the"]
        elif roll < 0.6:
            det = [_pick(rng, POSSESSIVES)]
        elif roll < 0.8:
            det = [_pick(rng, PLURAL_QUANTIFIERS)]
        else:
            det = [_pick(rng, NUMERALS)]
    elif mass:
        if roll < 0.5:
            det = ["the"]
        elif roll < 0.7:
            det = ["some"]
        elif roll < 0.85:
            det = [_pick(rng, POSSESSIVES)]
        else:
            det = []
    else:
        if roll < 0.45:
            det = ["the"]
        elif roll < 0.72:
            det = [_article(first)]
        elif roll < 0.88:
            det = [_pick(rng, POSSESSIVES)]
        else:
            det = [_pick(rng, ("this", "that", "every", "each", "no"))]
    return _Phrase(tuple(det + modifier + [head]), "p" if is_plural else "3s")


def _subject(rng: np.random.Generator, kind: str = "person") -> tuple[_Phrase, str | None]:
    """A subject phrase and, for pronouns, the matching object pronoun."""
    if kind == "person" and _chance(rng, 0.3):
        subject, obj, person = PRONOUNS[rng.integers(len(PRONOUNS))]
        return _Phrase((subject,), person), obj
    return _noun_phrase(rng, kind), None


_TENSES = ("past", "present", "past_progressive", "present_progressive", "perfect", "future", "modal", "negative_past", "negative_present", "past_perfect")
_TENSE_WEIGHTS = np.array([0.40, 0.16, 0.07, 0.06, 0.07, 0.08, 0.06, 0.04, 0.03, 0.03])

_TENSE_FAMILY = {
    "past": "past", "past_progressive": "past", "negative_past": "past", "past_perfect": "past",
    "present": "present", "negative_present": "present",
    "future": "future", "present_progressive": "future", "modal": "future", "perfect": None,
}


def _verb_group(rng: np.random.Generator, verb: Verb, tense: str, person: str) -> list[str]:
    """Inflected verb words for ``tense`` agreeing with a ``person`` subject."""
    singular3 = person == "3s"
    if tense == "past":
        return [verb.past]
    if tense == "present":
        return [verb.third if singular3 else verb.base]
    if tense == "past_progressive":
        return ["was" if person in ("1s", "3s") else "were", verb.ing]
    if tense == "present_progressive":
        return [{"1s": "am", "3s": "is"}.get(person, "are"), verb.ing]
    if tense == "perfect":
        return ["has" if singular3 else "have", verb.participle]
    if tense == "past_perfect":
        return ["had", verb.participle]
    if tense == "future":
        return ["will", verb.base]
    if tense == "modal":
        return [_pick(rng, MODALS), verb.base]
    if tense == "negative_past":
        return ["did", "not", verb.base]
    if tense == "negative_present":
        return ["does" if singular3 else "do", "not", verb.base]
    raise ValueError(f"unknown tense {tense!r}")


def _place_phrase(rng: np.random.Generator, prepositions: tuple[str, ...]) -> list[str]:
    return [_pick(rng, prepositions, zipf=0.7), *_noun_phrase(rng, "place", allow_plural=False).words]


def _adjunct(rng: np.random.Generator, tense: str) -> list[str]:
    """Optional trailing manner adverb, place phrase or time phrase."""
    roll = rng.random()
    if roll < 0.25:
        return [_pick(rng, MANNER_ADVERBS)]
    if roll < 0.45:
        return _place_phrase(rng, LOCATIVE_PREPOSITIONS)
    family = _TENSE_FAMILY[tense]
    if roll < 0.6 and family is not None:
        return _pick(rng, TIME_PHRASES[family]).split()
    return []


def _transitive(rng, tense):
    kind = _pick(rng, ("object", "food", "person", "place", "animal", "vehicle", "drink", "nature"), zipf=0.6)
    subject, _ = _subject(rng)
    verb = _pick(rng, TRANSITIVE[kind])
    if kind == "person" and _chance(rng, 0.25):
        obj = [PRONOUNS[rng.integers(len(PRONOUNS))][1]]
    else:
        obj = list(_noun_phrase(rng, kind).words)
    return [*subject.words, *_verb_group(rng, verb, tense, subject.person), *obj, *_adjunct(rng, tense)]


def _coordinated(rng, tense):
    kind = _pick(rng, ("object", "food"))
    subject, _ = _subject(rng)
    first, second = (_pick(rng, TRANSITIVE[kind]) for _ in range(2))
    obj = _noun_phrase(rng, kind)
    pronoun = "them" if obj.person == "p" else "it"
    return [*subject.words, *_verb_group(rng, first, tense, subject.person), *obj.words, "and",
            *_verb_group(rng, second, tense, subject.person)[-1:], pronoun]


def _activity(rng, tense):
    subject, _ = _subject(rng)
    verb = _pick(rng, ACTIVITIES)
    words = [*subject.words, *_verb_group(rng, verb, tense, subject.person)]
    if tense == "present" and _chance(rng, 0.4):
        words.insert(len(subject.words), _pick(rng, FREQUENCY_ADVERBS))
    return words + _adjunct(rng, tense)


def _motion(rng, tense):
    subject, _ = _subject(rng, _pick(rng, ("person", "animal"), zipf=0.3))
    verb = _pick(rng, MOTIONS)
    words = [*subject.words, *_verb_group(rng, verb, tense, subject.person), *_place_phrase(rng, DIRECTION_PREPOSITIONS)]
    if _chance(rng, 0.3):
        words.append(_pick(rng, MANNER_ADVERBS))
    return words


def _animal(rng, tense):
    subject, _ = _subject(rng, "animal")
    verb = _pick(rng, ANIMAL_ACTIONS)
    return [*subject.words, *_verb_group(rng, verb, tense, subject.person), *_adjunct(rng, tense)]


def _ditransitive(rng, tense):
    subject, _ = _subject(rng)
    verb = _pick(rng, DITRANSITIVE)
    if _chance(rng, 0.4):
        recipient = [PRONOUNS[rng.integers(len(PRONOUNS))][1]]
    else:
        recipient = list(_noun_phrase(rng, "person", allow_plural=False).words)
    thing = _noun_phrase(rng, _pick(rng, ("object", "food", "animal"), zipf=0.5)).words
    return [*subject.words, *_verb_group(rng, verb, tense, subject.person), *recipient, *thing]


def _existential(rng, tense):
    thing = _noun_phrase(rng, _pick(rng, ("object", "animal", "person", "vehicle", "food"), zipf=0.5))
    present = _TENSE_FAMILY[tense] in ("present", "future")
    be = ("is" if thing.person == "3s" else "are") if present else ("was" if thing.person == "3s" else "were")
    return ["there", be, *thing.words, *_place_phrase(rng, LOCATIVE_PREPOSITIONS)]


def _copular(rng, tense):
    kind = _pick(rng, ("person", "object", "place", "food", "animal", "vehicle", "nature", "drink"), zipf=0.5)
    thing = _noun_phrase(rng, kind)
    present = _TENSE_FAMILY[tense] in ("present", "future")
    be = ("is" if thing.person == "3s" else "are") if present else ("was" if thing.person == "3s" else "were")
    words = [*thing.words, be]
    if _chance(rng, 0.3):
        words.append(_pick(rng, INTENSIFIERS))
    return words + [_pick(rng, ADJECTIVES[kind])]


_TEMPLATES = (_transitive, _activity, _motion, _animal, _ditransitive, _existential, _copular, _coordinated)
_TEMPLATE_WEIGHTS = np.array([0.34, 0.15, 0.15, 0.07, 0.07, 0.08, 0.09, 0.05])


def _capitalise(words: list[str]) -> str:
    text = " ".join("I" if w == "i" else w for w in words)
    return text[0].upper() + text[1:] + "."


def open_sentence(rng: np.random.Generator) -> str:
    """One open-vocabulary sentence of 4-9 words, capitalised with a full stop.

    Example: ``"The old farmer carried a heavy basket to the market."``
    """
    while True:
        template = _TEMPLATES[rng.choice(len(_TEMPLATES), p=_TEMPLATE_WEIGHTS / _TEMPLATE_WEIGHTS.sum())]
        tense = _TENSES[rng.choice(len(_TENSES), p=_TENSE_WEIGHTS / _TENSE_WEIGHTS.sum())]
        words = template(rng, tense)
        family = _TENSE_FAMILY[tense]
        if family is not None and len(words) < MAX_WORDS - 1 and _chance(rng, 0.1):
            words = _pick(rng, TIME_PHRASES[family]).split() + words
        if MIN_WORDS <= len(words) <= MAX_WORDS:
            return _capitalise(words)


# --- closed vocabulary: dates and times ------------------------------------------

MONTHS = _words("january february march april may june july august september october november december")
WEEKDAYS = _words("monday tuesday wednesday thursday friday saturday sunday")
_UNITS = _words("one two three four five six seven eight nine")
_ORDINAL_UNITS = _words("first second third fourth fifth sixth seventh eighth ninth")
_TEENS = _words("ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen")
_ORDINAL_TEENS = _words("tenth eleventh twelfth thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth")
_TENS = {2: "twenty", 3: "thirty", 4: "forty", 5: "fifty"}
_ORDINAL_TENS = {2: "twentieth", 3: "thirtieth"}
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _spell(n: int, units: tuple[str, ...], teens: tuple[str, ...], round_tens: dict[int, str]) -> str:
    if n < 10:
        return units[n - 1]
    if n < 20:
        return teens[n - 10]
    tens, unit = divmod(n, 10)
    return round_tens[tens] if unit == 0 else f"{_TENS[tens]} {units[unit - 1]}"


def number_words(n: int) -> str:
    """Cardinal 1-59 in words (``45`` -> ``"forty five"``)."""
    if not 1 <= n <= 59:
        raise ValueError(f"number_words covers 1-59, got {n}")
    return _spell(n, _UNITS, _TEENS, _TENS)


def ordinal_words(n: int) -> str:
    """Ordinal 1-31 in words (``21`` -> ``"twenty first"``)."""
    if not 1 <= n <= 31:
        raise ValueError(f"ordinal_words covers 1-31, got {n}")
    return _spell(n, _ORDINAL_UNITS, _ORDINAL_TEENS, _ORDINAL_TENS)


def _spoken_time(hour: int, minute: int) -> str:
    if minute == 0:
        return f"{number_words(hour)} o'clock"
    if minute < 10:
        return f"{number_words(hour)} oh {number_words(minute)}"
    return f"{number_words(hour)} {number_words(minute)}"


def closed_vocab_sentence(rng: np.random.Generator) -> str:
    """One date/time prompt, in words or digits like the real ``datedata.txt``.

    Examples: ``"The fourth of July at ten thirty"``, ``"03:09 AM"``,
    ``"Friday at half past seven"``.
    """
    month = int(rng.integers(12))
    day = int(rng.integers(1, _DAYS_IN_MONTH[month] + 1))
    hour = int(rng.integers(1, 13))
    minute = int(rng.choice([0, 5, 9, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, int(rng.integers(60))]))
    ampm = _pick(rng, ("AM", "PM"), zipf=0.0)
    name = MONTHS[month].capitalize()
    weekday = WEEKDAYS[rng.integers(7)].capitalize()
    form = int(rng.integers(8))
    if form == 0:
        return f"The {ordinal_words(day)} of {name} at {_spoken_time(hour, minute)}"
    if form == 1:
        return f"{name} {ordinal_words(day)} at {_spoken_time(hour, minute)} {ampm}"
    if form == 2:
        return f"{weekday} the {ordinal_words(day)} of {name}"
    if form == 3:
        part = _pick(rng, ("half past", "quarter past", "quarter to"), zipf=0.0)
        return f"{weekday} at {part} {number_words(hour)}"
    if form == 4:
        return f"{number_words(hour)} {number_words(minute) if minute else 'hundred'} in the {_pick(rng, ('morning', 'afternoon', 'evening'), zipf=0.0)}".capitalize()
    if form == 5:
        return f"{hour:02d}:{minute:02d} {ampm}"
    if form == 6:
        return f"{name} {day} at {hour}:{minute:02d} {ampm}"
    return f"{month + 1:02d}/{day:02d} {weekday}"


# --- the vocabulary as a whole -----------------------------------------------------


@functools.lru_cache(maxsize=1)
def open_vocabulary() -> frozenset[str]:
    """Every normalised word the open-vocabulary grammar can produce."""
    words: set[str] = set()
    for kind, nouns in NOUNS.items():
        words.update(nouns)
        words.update(plural(n) for n in nouns if n not in MASS_NOUNS)
    for adjectives in ADJECTIVES.values():
        words.update(adjectives)
    verbs = [v for group in TRANSITIVE.values() for v in group]
    verbs += [*ACTIVITIES, *MOTIONS, *ANIMAL_ACTIONS, *DITRANSITIVE]
    for verb in verbs:
        words.update((verb.base, verb.third, verb.past, verb.participle, verb.ing))
    words.update(INTENSIFIERS + MANNER_ADVERBS + FREQUENCY_ADVERBS + LOCATIVE_PREPOSITIONS + DIRECTION_PREPOSITIONS)
    words.update(POSSESSIVES + NUMERALS + PLURAL_QUANTIFIERS + MODALS)
    for phrases in TIME_PHRASES.values():
        for phrase in phrases:
            words.update(phrase.split())
    for subject, obj, _ in PRONOUNS:
        words.update((subject, obj))
    words.update(_words("the a an this that every each no some and there is are was were am has have had will did does do not it them"))
    return frozenset(normalize_text(w) for w in words)


def sentences(count: int, seed: int = 0, closed_vocab: bool = False) -> list[str]:
    """``count`` prompts from the grammar (e.g. extra language-model text).

    Raw text as written into ``info.json``; normalise with
    :func:`silentspeech.text.normalize_text` before use as a target.
    """
    rng = np.random.default_rng(seed)
    make = closed_vocab_sentence if closed_vocab else open_sentence
    return [make(rng) for _ in range(count)]
