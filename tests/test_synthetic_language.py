"""The synthetic corpus's prompt grammar: pinned sentences, so a change to the word lists or the grammar shows.

Every synthetic corpus, LM text and benchmark draws its prompts from
:mod:`silentspeech.data.synthetic.language`; the sentences of a seed are part
of what a run reproduces. The pins below were written by the grammar before
its word lists moved to ``grammar_words.yaml``.
"""

from __future__ import annotations

from silentspeech.data.synthetic import language


def test_seed_zero_gives_the_pinned_open_sentences():
    assert language.sentences(6, seed=0) == [
        "Last week you escaped along each field angrily.",
        "We would reach few houses.",
        "The black deer is resting.",
        "A tall brother was sleeping.",
        "Your plumber holds this bag and pushes it.",
        "This man did not owe the pilot the squirrels.",
    ]


def test_seed_zero_gives_the_pinned_closed_vocabulary_prompts():
    assert language.sentences(4, seed=0, closed_vocab=True) == [
        "November twentieth at seven fifteen AM",
        "Eleven thirty five in the evening",
        "April 25 at 9:20 AM",
        "Monday the twenty sixth of September",
    ]


def test_word_lists_keep_their_size_and_inflections():
    assert len(language.open_vocabulary()) == 1983
    assert [language.plural(n) for n in ("wolf", "box", "baby", "sheep", "child")] == ["wolves", "boxes", "babies", "sheep", "children"]
    eat = language.TRANSITIVE["food"][0]
    assert (eat.base, eat.third, eat.past, eat.participle, eat.ing) == ("eat", "eats", "ate", "eaten", "eating")
    (jog,) = [v for v in language.MOTIONS if v.base == "jog"]
    assert (jog.past, jog.ing) == ("jogged", "jogging")  # a doubling verb
