"""The language of the synthetic corpus: word lists and a sentence grammar.

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

The word lists are our own; no corpus or word-list package gives
semantically typed nouns, verbs with their object classes and full
inflections, which is what gives the sentences n-gram structure.

Every function takes a ``numpy.random.Generator`` so a corpus seed fixes the
prompts exactly.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from silentspeech.text import normalize_text

#: Words per open-vocabulary sentence (inclusive bounds).
MIN_WORDS, MAX_WORDS = 4, 9


def _words(block: str) -> tuple[str, ...]:
    return tuple(block.split())


# --- nouns ---------------------------------------------------------------
# Ordered roughly by how common they should be: sampling weight falls with rank.

PERSONS = _words("""
    man woman boy girl child friend mother father sister brother farmer teacher
    doctor soldier sailor king queen captain stranger neighbor driver baker
    painter writer singer hunter fisherman gardener nurse pilot student uncle aunt
    cousin grandmother grandfather lawyer judge merchant priest guard worker miner
    carpenter tailor cook waiter clerk officer traveler visitor guest servant
    shepherd scientist engineer musician poet artist actor baby prince princess
    lady gentleman widow thief hero giant wizard knight monk porter messenger
    banker butcher grocer plumber barber dancer
""")

ANIMALS = _words("""
    dog cat horse cow sheep goat pig rabbit fox wolf bear deer mouse bird owl
    eagle crow duck goose hen rooster donkey mule lion tiger monkey snake frog
    fish bee butterfly spider squirrel hawk swan pony lamb calf kitten puppy
    turtle whale dolphin camel elephant beetle ant moth
""")

OBJECTS = _words("""
    book letter box basket bag key lamp candle bottle cup plate bowl knife spoon
    hammer rope ladder bucket chair table blanket coat hat shoe boot glove ring
    coin map pen pencil picture mirror clock watch bell drum violin guitar flute
    umbrella ticket newspaper parcel envelope jar kettle pot pan brush broom shovel
    axe saw needle button scarf shirt dress jacket pillow towel wallet purse stone
    stick shell feather flag toy ball doll kite wheel tool lantern compass camera
    radio telephone notebook diary sack barrel crate trunk chest saddle ribbon mask
    sword shield bow arrow net pipe
""")

FOODS = _words("""
    bread apple cheese cake soup egg orange potato pear plum cherry grape peach
    lemon banana melon tomato carrot onion cabbage bean pie stew rice meat sausage
    butter honey jam cookie biscuit sandwich salad pancake porridge nut berry
    mushroom pumpkin corn pepper salt sugar chocolate muffin pudding noodle olive
    bacon ham lettuce
""")

DRINKS = _words("""
    water milk tea coffee juice wine lemonade cider broth cocoa
""")

PLACES = _words("""
    house garden market church school village town city farm forest river lake
    mountain hill valley field road street bridge station harbor beach island
    castle palace tower kitchen cellar attic library museum hospital hotel inn
    shop bakery factory mill barn stable meadow desert cave park square office
    prison temple port camp tent cottage hall room yard orchard pond well shore
    cliff
""")

VEHICLES = _words("""
    car bus train boat ship truck bicycle wagon carriage plane taxi tram canoe
    raft sled cart
""")

NATURE = _words("""
    sun moon star cloud tree flower rainbow storm sky sea wave leaf rose fire
    smoke sunset mist
""")

#: Nouns without a plural or an indefinite article in our grammar.
MASS_NOUNS = frozenset(_words("""
    bread cheese soup rice meat butter honey jam porridge salt sugar chocolate corn
    bacon ham lettuce stew water milk tea coffee juice wine lemonade cider broth
    cocoa sky smoke mist fire
"""))

_IRREGULAR_PLURALS = {
    "man": "men", "woman": "women", "child": "children", "fisherman": "fishermen",
    "gentleman": "gentlemen", "thief": "thieves", "wolf": "wolves", "knife": "knives",
    "leaf": "leaves", "calf": "calves", "mouse": "mice", "goose": "geese", "sheep": "sheep",
    "deer": "deer", "fish": "fish", "potato": "potatoes", "tomato": "tomatoes",
    "hero": "heroes", "shelf": "shelves",
}

# --- adjectives, by the noun class they describe -----------------------------

ADJECTIVES = {
    "person": _words("""
        young old tall tired happy little kind brave poor rich hungry clever sad
        angry quiet lazy busy famous proud shy thirsty lonely honest gentle curious
        nervous polite cheerful wise foolish strong weak patient friendly strange
        sleepy careful beautiful handsome calm eager jealous grateful sick healthy
        cruel
    """),
    "animal": _words("""
        little big small old young wild black white brown gray hungry sleepy fat thin
        tame spotted striped fierce noisy lazy tiny huge wounded clever gentle
    """),
    "object": _words("""
        old small heavy new little red blue green large broken wooden black white
        golden silver iron yellow brown dusty shiny empty full round tiny huge ancient
        precious cheap expensive dirty clean soft sharp rusty strange plain pretty
        useful useless secret favorite long thick thin wet dry leather glass stolen
        magic bright painted torn
    """),
    "food": _words("""
        fresh warm hot sweet ripe cold sour bitter salty green red delicious stale
        tasty spicy crisp juicy soft burnt roasted boiled baked sliced frozen homemade
    """),
    "drink": _words("""
        cold hot warm fresh sweet bitter strong weak cool
    """),
    "place": _words("""
        old quiet small big dark empty new crowded large ancient busy distant famous
        beautiful cold warm muddy narrow wide deep dangerous peaceful lonely hidden
        green sunny windy silent ruined holy royal public private deserted foggy rocky
        sandy flooded
    """),
    "vehicle": _words("""
        old new red blue fast slow broken small large rusty shiny crowded empty noisy
        last first early late
    """),
    "nature": _words("""
        bright dark pale full cold warm strong gentle tall green golden distant
        lonely wild
    """),
}

#: Degree words that may stand before an adjective.
INTENSIFIERS = _words("very quite rather too so")

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
_DOUBLING = frozenset(_words("""
    stop drop grab hug beg plan shop skip trip chop rob nod jog hop rub spot pat tap
    wrap step stir scrub admit regret grin swim run sit get cut put hit set
    dig win begin forget
"""))


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
    return tuple(_verb(line) for line in block.strip().splitlines() if line.strip())


#: Transitive verbs of a person subject, by the class of their object.
TRANSITIVE = {
    "object": _verbs("""
        find found found
        carry
        open
        take took taken
        bring brought brought
        hold held held
        lose lost lost
        drop
        buy bought bought
        sell sold sold
        break broke broken
        fix
        clean
        hide hid hidden
        wash
        throw threw thrown
        push
        pull
        lift
        fill
        empty
        cover
        wrap
        mend
        polish
        borrow
        steal stole stolen
        keep kept kept
        pack
        count
        drag
        fold
        hang hung hung
        make made made
        want
        need
        send sent sent
        use
        close
        paint
        grab
        forget forgot forgotten
        choose chose chosen
        search
        return
        show showed shown
        examine
    """),
    "food": _verbs("""
        eat ate eaten
        cook
        bake
        buy bought bought
        taste
        cut cut cut
        share
        serve
        slice
        fry
        roast
        pick
        peel
        chop
        smell
        sell sold sold
        want
        bring brought brought
        finish
        grow grew grown
        order
        prepare
        enjoy
        steal stole stolen
    """),
    "drink": _verbs("""
        drink drank drunk
        pour
        spill
        want
        bring brought brought
        heat
        boil
        taste
        sip
        offer
    """),
    "person": _verbs("""
        meet met met
        see saw seen
        call
        help
        follow
        watch
        greet
        thank
        visit
        find found found
        teach taught taught
        hug
        warn
        ask
        invite
        join
        hear heard heard
        remember
        forget forgot forgotten
        admire
        trust
        blame
        save
        rescue
        wake woke woken
        answer
        pay paid paid
        miss
        know knew known
        like
        love
        praise
        obey
        hire
        comfort
        kiss
        pass
        marry
        tell told told
    """),
    "animal": _verbs("""
        feed fed fed
        see saw seen
        watch
        chase
        catch caught caught
        follow
        find found found
        hear heard heard
        ride rode ridden
        sell sold sold
        buy bought bought
        wash
        frighten
        lead led led
        train
        tie
        shoot shot shot
        brush
        count
        draw drew drawn
        photograph
        scare
        free
        lose lost lost
    """),
    "place": _verbs("""
        visit
        leave left left
        reach
        enter
        cross
        explore
        search
        clean
        paint
        build built built
        guard
        approach
        sweep swept swept
        decorate
        own
        rent
        describe
        draw drew drawn
        photograph
        repair
        remember
        destroy
        defend
        abandon
        protect
        light lit lit
    """),
    "vehicle": _verbs("""
        drive drove driven
        ride rode ridden
        board
        park
        steer
        repair
        wash
        stop
        miss
        catch caught caught
        sell sold sold
        buy bought bought
        borrow
        paint
        push
        load
        unload
        rent
        sink sank sunk
    """),
    "nature": _verbs("""
        see saw seen
        watch
        admire
        draw drew drawn
        photograph
        notice
        paint
        study
        love
        describe
    """),
}

#: Intransitive activity verbs of a person subject (take a place phrase or adverb).
ACTIVITIES = _verbs("""
    sleep slept slept
    wait
    sit sat sat
    stand stood stood
    rest
    work
    play
    sing sang sung
    dance
    read read read
    write wrote written
    laugh
    smile
    cry
    shout
    whisper
    pray
    stay
    live
    study
    listen
    talk
    speak spoke spoken
    dream
    cough
    yawn
    shiver
    kneel knelt knelt
    arrive
    appear
    disappear
    vanish
    hide hid hidden
    fall fell fallen
    eat ate eaten
    cook
    paint
    sweat
    knock
    complain
    argue
    practice
    relax
    pause
""")

#: Motion verbs: a person or an animal moving along a direction phrase.
MOTIONS = _verbs("""
    walk
    run ran run
    go went gone
    come came come
    return
    hurry
    travel
    climb
    sail
    swim swam swum
    fly flew flown
    jump
    move
    march
    wander
    crawl
    rush
    race
    ride rode ridden
    drive drove driven
    escape
    stroll
    limp
    slip
    creep crept crept
    hop
    dash
    jog
    step
""")

#: Intransitive verbs of an animal subject.
ANIMAL_ACTIONS = _verbs("""
    sleep slept slept
    run ran run
    jump
    rest
    hide hid hidden
    wait
    play
    eat ate eaten
    bark
    howl
    growl
    sing sang sung
    fly flew flown
    swim swam swum
    hunt
    graze
    purr
    squeak
    buzz
    hiss
    roar
    crawl
    die
    escape
    appear
    disappear
    dig dug dug
""")

#: Ditransitive verbs: person gives a person an object.
DITRANSITIVE = _verbs("""
    give gave given
    show showed shown
    hand
    send sent sent
    bring brought brought
    offer
    sell sold sold
    lend lent lent
    throw threw thrown
    pass
    promise
    owe
""")

# --- adverbs and phrases -------------------------------------------------------

MANNER_ADVERBS = _words("""
    slowly quickly quietly carefully loudly again suddenly happily together alone
    gently sadly softly silently eagerly patiently nervously proudly calmly bravely
    angrily politely secretly easily badly well early late twice once fast hard
    forever outside inside upstairs downstairs away home
""")

FREQUENCY_ADVERBS = _words("often always never sometimes usually rarely seldom")

#: Time phrases by the tense family they fit.
TIME_PHRASES = {
    "past": (
        "yesterday", "last night", "this morning", "at dawn", "after dinner", "before noon",
        "last week", "last winter", "in the evening", "long ago", "on monday", "on sunday",
        "at midnight", "that night", "last summer", "years ago",
    ),
    "present": (
        "every morning", "every day", "on sundays", "at night", "each evening", "in winter",
        "every week", "on weekends", "after school", "in the afternoon",
    ),
    "future": (
        "tomorrow", "next week", "tonight", "soon", "on friday", "after lunch",
        "next summer", "in the morning", "next year", "on saturday",
    ),
}

LOCATIVE_PREPOSITIONS = _words("in near at behind beside inside outside by under above below beyond")
DIRECTION_PREPOSITIONS = _words("to into toward across along through from past around over")

# --- function words ------------------------------------------------------------

#: (subject, object, person key) for pronoun subjects and objects.
PRONOUNS = (
    ("i", "me", "1s"), ("you", "you", "2"), ("he", "him", "3s"), ("she", "her", "3s"),
    ("we", "us", "p"), ("they", "them", "p"),
)
POSSESSIVES = _words("my your his her our their")
NUMERALS = _words("two three four five six seven eight nine ten twelve twenty")
PLURAL_QUANTIFIERS = _words("some many few several all both these those")
MODALS = _words("could would should must might can")

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


NOUNS = {
    "person": PERSONS, "animal": ANIMALS, "object": OBJECTS, "food": FOODS,
    "drink": DRINKS, "place": PLACES, "vehicle": VEHICLES, "nature": NATURE,
}


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
