"""Language models: Kneser-Ney estimation, ARPA checks, perplexity, corpus text and exclusions."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from silentspeech.cli import main
from silentspeech.decoding.ngram import (
    ArpaError,
    book_sentences,
    build_lm,
    check_arpa,
    check_vocabulary,
    estimate_kneser_ney,
    exclude_sentences,
    kenlm_perplexity,
    perplexity,
    read_arpa,
    split_sentences,
    write_arpa,
)

TOY = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat and a dog",
    "the cat ran",
    "the dog ran after the cat",
    "on the mat the cat sat",
]
HELD_OUT = ["the cat sat on the log", "a dog ran", "zebra sat on the cat", "the the the"]


@pytest.fixture(scope="module", params=[2, 3, 4])
def toy_arpa(request, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("lm") / f"toy{request.param}.arpa"
    write_arpa(estimate_kneser_ney(TOY, request.param), path)
    return path


def test_next_word_distributions_sum_to_one(toy_arpa):
    model = read_arpa(toy_arpa)
    predicted = [w for (w,) in model.ngrams[0] if w != "<s>"]
    # Every context up to order - 1 words over the vocabulary, an unknown word and <s>:
    # listed contexts and unseen ones (pure back-off) alike.
    words = ["<s>", "zebra"] + sorted(w for w in predicted if w != "</s>")
    for length in range(model.order):
        for context in itertools.product(words, repeat=length):
            if "<s>" in context[1:]:
                continue
            total = sum(10 ** model.log10_prob(w, context) for w in predicted)
            assert total == pytest.approx(1.0, abs=1e-4), context


def test_kenlm_reads_our_arpa_and_agrees(toy_arpa):
    import kenlm

    ours = read_arpa(toy_arpa)
    theirs = kenlm.Model(str(toy_arpa))
    assert theirs.order == ours.order
    for sentence in HELD_OUT + TOY:
        assert ours.sentence_log10(sentence) == pytest.approx(theirs.score(sentence, bos=True, eos=True), abs=1e-4)


def test_in_memory_model_equals_written_arpa(toy_arpa):
    order = int(toy_arpa.stem[-1])
    estimated, written = estimate_kneser_ney(TOY, order), read_arpa(toy_arpa)
    for sentence in HELD_OUT:
        assert estimated.sentence_log10(sentence) == pytest.approx(written.sentence_log10(sentence), abs=1e-5)


def test_perplexity_matches_direct_computation(toy_arpa):
    import kenlm

    model = read_arpa(toy_arpa)
    log10_sum, tokens = 0.0, 0
    for sentence in HELD_OUT:
        context = ["<s>"]
        for word in sentence.split() + ["</s>"]:
            log10_sum += model.log10_prob(word, context)
            context.append(word)
            tokens += 1
    direct = 10 ** (-log10_sum / tokens)
    ours = perplexity(model, HELD_OUT)
    assert ours.tokens == tokens == (6 + 3 + 5 + 3) + 4  # words plus one </s> per sentence
    assert ours.oov == 1  # "zebra"
    assert ours.perplexity == pytest.approx(direct, rel=1e-9)
    # KenLM's own per-sentence perplexities, pooled over tokens, give the same corpus figure.
    km = kenlm.Model(str(toy_arpa))
    pooled = 10 ** (-sum(km.score(s) for s in HELD_OUT) / tokens)
    assert kenlm_perplexity(toy_arpa, HELD_OUT).perplexity == pytest.approx(pooled, rel=1e-6)
    assert pooled == pytest.approx(direct, rel=1e-4)


def test_bigram_probabilities_by_hand():
    # <s> a b </s> / <s> a c </s> / <s> b c </s>. Count-of-counts too sparse: discounts 0.5, 1, 1.5.
    # Continuation counts: a 1, b 2, c 2, </s> 2 (total 7); uniform over 5 words (<unk> included);
    # unigram weight (0.5 * 1 + 1 * 3) / 7 = 0.5.
    model = estimate_kneser_ney(["a b", "a c", "b c"], order=2)
    assert model.discounts == [(0.5, 1.0, 1.5), (0.5, 1.0, 1.5)]
    p = lambda word, *context: 10 ** model.log10_prob(word, context)  # noqa: E731
    assert p("a") == pytest.approx(0.5 / 7 + 0.5 / 5)
    assert p("b") == pytest.approx(1 / 7 + 0.1)
    assert p("<unk>") == pytest.approx(0.1)
    # After "a": raw counts a b 1, a c 1; weight (0.5 + 0.5) / 2.
    assert p("b", "a") == pytest.approx(0.5 / 2 + 0.5 * (1 / 7 + 0.1))
    # After "<s>": <s> a 2, <s> b 1; weight (1 + 0.5) / 3.
    assert p("a", "<s>") == pytest.approx(1 / 3 + 0.5 * (0.5 / 7 + 0.1))
    # Unseen bigram "a </s>": back-off weight of "a" times p(</s>).
    assert p("</s>", "a") == pytest.approx(0.5 * (1 / 7 + 0.1))


def test_order_below_two_is_refused():
    with pytest.raises(ValueError, match="at least 2"):
        estimate_kneser_ney(TOY, order=1)


@pytest.mark.slow
def test_books_held_out_perplexity(shared_data, tmp_path):
    sherlock = shared_data / "text" / "sherlock_holmes_pg1661.txt"
    worlds = shared_data / "text" / "war_of_the_worlds_pg36.txt"
    report = build_lm([sherlock], tmp_path / "sherlock.arpa", order=4)
    held_out = book_sentences(worlds)
    ours = perplexity(read_arpa(report.arpa), held_out)
    theirs = kenlm_perplexity(report.arpa, held_out)
    print(
        f"\n4-gram on Sherlock Holmes ({report.sentences} sentences, {report.words} words, n-grams {report.counts}): "
        f"perplexity on War of the Worlds {ours.perplexity:.1f} (KenLM {theirs.perplexity:.1f}), "
        f"{ours.tokens} tokens, OOV {ours.oov}"
    )
    assert ours.perplexity == pytest.approx(theirs.perplexity, rel=1e-5)
    assert 100 < ours.perplexity < 2000


# --- corpus text -------------------------------------------------------------

GUTENBERG = (
    "The Project Gutenberg EBook of A Test, by Nobody\r\n\r\nRelease Date: never\r\n\r\n"
    "*** START OF THIS PROJECT GUTENBERG EBOOK A TEST ***\r\n\r\n\r\nCHAPTER I.\r\n\r\n"
    "Mr. Holmes met H. G. Wells in the street. It was late;\r\nthe lamps were lit!  \"Who are you?\" said he.\r\n"
    "\r\nNo one answered.\r\n\r\n"
    "End of the Project Gutenberg EBook of A Test, by Nobody\r\n\r\n"
    "*** END OF THIS PROJECT GUTENBERG EBOOK A TEST ***\r\n\r\nThe licence text that follows.\r\n"
)


def test_book_with_crlf_and_gutenberg_markers(tmp_path):
    book = tmp_path / "book.txt"
    book.write_bytes(GUTENBERG.encode("utf-8"))
    assert book_sentences(book) == [
        "chapter i",
        "mr holmes met h g wells in the street",
        "it was late the lamps were lit",
        "who are you said he",
        "no one answered",
    ]


def test_real_book_header_and_footer_are_stripped(shared_data):
    sentences = book_sentences(shared_data / "text" / "war_of_the_worlds_pg36.txt")
    assert sentences[0] == "the war of the worlds"
    assert not any("gutenberg" in s for s in sentences)


def test_split_sentences_keeps_lower_case_continuations():
    assert split_sentences('"Yes!" said he. Then he left.') == ['"Yes!" said he.', "Then he left."]


def test_exclude_drops_containing_sentences_and_long_fragments():
    held_out = {"the martians landed in the common"}
    sentences = [
        "and then the martians landed in the common at night",  # contains a held-out sentence
        "the martians landed in",  # four-word fragment of it
        "the martians",  # too short to count as a fragment
        "an unrelated sentence",
    ]
    kept, dropped = exclude_sentences(sentences, held_out)
    assert kept == ["the martians", "an unrelated sentence"] and dropped == 2


def _write_utterance(folder: Path, index: int, sentence_index: int, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    info = {"book": "books/Test.txt", "sentence_index": sentence_index, "text": text, "chunks": None}
    (folder / f"{index}_info.json").write_text(json.dumps(info))
    np.save(folder / f"{index}_emg.npy", np.zeros((200, 8), dtype=np.float32))
    sf.write(folder / f"{index}_audio_clean.flac", np.zeros(3200, dtype=np.float32), 16000)


@pytest.fixture
def corpus_root(tmp_path) -> Path:
    """A tiny Gaddy-layout corpus: six prompts, voiced and silent, sentence 4 dev and 5 test."""
    root = tmp_path / "corpus"
    prompts = ["the cat sat.", "The dog ran!", "a cat and a dog", "the dog sat", "Secret dev words here", "hidden test words"]
    for i, text in enumerate(prompts):
        _write_utterance(root / "voiced_parallel_data" / "5-4", i, i, text)
        _write_utterance(root / "silent_parallel_data" / "5-4_silent", i, i, text)
    (root / "testset.json").write_text(json.dumps({"dev": [["books/Test.txt", 4]], "test": [["books/Test.txt", 5]]}))
    return root


def _unigrams(path: Path) -> set[str]:
    return check_arpa(path).vocabulary


def test_corpus_root_excludes_its_dev_and_test_prompts(corpus_root, tmp_path):
    report = build_lm([corpus_root], tmp_path / "root.arpa", order=3)
    assert report.sentences == 4
    vocabulary = _unigrams(report.arpa)
    assert {"cat", "dog"} <= vocabulary
    assert not vocabulary & {"secret", "dev", "hidden", "test"}
    kept = build_lm([corpus_root], tmp_path / "all.arpa", order=3, keep_held_out=True)
    assert kept.sentences == 6 and "hidden" in _unigrams(kept.arpa)


def test_split_file_excludes_prompts_from_a_book(corpus_root, tmp_path):
    book = tmp_path / "book.txt"
    book.write_text("The cat sat. Secret dev words here. The dog ran after a cat.\n")
    split = corpus_root / "testset.json"
    report = build_lm([book], tmp_path / "book.arpa", order=2, exclude=[split], corpus_roots=[corpus_root])
    assert report.excluded == 1 and "secret" not in _unigrams(report.arpa)
    with pytest.raises(ValueError, match="corpus root"):
        build_lm([book], tmp_path / "x.arpa", order=2, exclude=[split])


def test_sentence_file_and_manifest_exclusions(tmp_path):
    book = tmp_path / "book.txt"
    book.write_text("The cat sat. The dog ran. A bird sang.\n")
    sentences = tmp_path / "test_sentences.txt"
    sentences.write_text("THE DOG RAN!\n")
    manifest = tmp_path / "manifest.json"
    entries = [{"id": "a", "split": "train", "text": "the cat sat"}, {"id": "b", "split": "test", "text": "A bird sang."}]
    manifest.write_text(json.dumps({"version": 1, "utterances": entries}))
    report = build_lm([book], tmp_path / "lm.arpa", order=2, exclude=[sentences, manifest])
    assert report.sentences == 1 and report.excluded == 2
    assert _unigrams(report.arpa) == {"<s>", "</s>", "<unk>", "the", "cat", "sat"}


def test_uses_lmplz_and_build_binary_when_on_path(tmp_path, monkeypatch):
    toy = tmp_path / "toy.arpa"
    write_arpa(estimate_kneser_ney(TOY, 2), toy)
    tools = tmp_path / "bin"
    tools.mkdir()
    # Stand-ins that record their arguments: lmplz writes a prepared ARPA, build_binary copies its input.
    (tools / "lmplz").write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/lmplz_args\nwhile [ "$1" != "--arpa" ]; do shift; done\ncp {toy} "$2"\n')
    (tools / "build_binary").write_text('#!/bin/sh\ncp "$1" "$2"\n')
    for tool in tools.iterdir():
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    book = tmp_path / "book.txt"
    book.write_text("The cat sat.\n")
    report = build_lm([book], tmp_path / "out" / "cats.arpa", order=3)
    assert report.estimator == "lmplz"
    assert "-o 3" in (tmp_path / "lmplz_args").read_text()
    assert report.binary == tmp_path / "out" / "cats.bin" and report.binary.is_file()


def test_cli_build_and_perplexity(tmp_path, capsys):
    book = tmp_path / "book.txt"
    book.write_text(" ".join(s.capitalize() + "." for s in TOY))
    held = tmp_path / "held.txt"
    held.write_text("\n".join(HELD_OUT))
    out = tmp_path / "lm" / "toy.arpa"
    assert main(["lm", "build", str(book), "--order", "3", "--out", str(out)]) == 0
    assert "6 sentences" in capsys.readouterr().out
    assert main(["lm", "perplexity", str(out), str(held), "--lines"]) == 0
    printed = capsys.readouterr().out
    ours, theirs = (float(line.split("perplexity ")[1].split()[0]) for line in printed.splitlines()[:2])
    assert ours == pytest.approx(theirs, rel=1e-3)
    assert main(["lm", "perplexity", str(tmp_path / "missing.arpa"), str(held)]) == 2


# --- bad ARPA files ----------------------------------------------------------


@pytest.fixture
def good_arpa(tmp_path) -> Path:
    path = tmp_path / "good.arpa"
    write_arpa(estimate_kneser_ney(TOY, 3), path)
    return path


def test_truncated_arpa(good_arpa):
    lines = good_arpa.read_text().splitlines()
    good_arpa.write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    with pytest.raises(ArpaError, match="truncated"):
        check_arpa(good_arpa)


def test_header_count_mismatch(good_arpa):
    text = good_arpa.read_text()
    drop = text.index("\\2-grams:")
    lines = text[drop:].splitlines()
    good_arpa.write_text(text[:drop] + "\n".join(lines[:1] + lines[2:]) + "\n")  # one bigram fewer
    with pytest.raises(ArpaError, match="2-gram section has .* entries but the header announces"):
        check_arpa(good_arpa)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda t: t.replace("\\data\\", "hello"), "expected '\\\\data\\\\'"),
        (lambda t: t.replace("\tcat\t", "\tcat\tdog\t", 1), "fields"),
        (lambda t: t.replace("-99\t<s>", "-9x9\t<s>"), "not a number"),
        (lambda t: t.replace("ngram 2=", "ngram 3="), "ngram 2=COUNT"),
        (lambda t: "", "empty"),
    ],
)
def test_malformed_arpa(good_arpa, damage, message):
    good_arpa.write_text(damage(good_arpa.read_text()))
    with pytest.raises(ArpaError, match=message):
        check_arpa(good_arpa)


def test_missing_arpa(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.arpa"):
        check_arpa(tmp_path / "missing.arpa")


def test_vocabulary_outside_charset_names_the_tokens(tmp_path):
    path = tmp_path / "raw.arpa"
    write_arpa(estimate_kneser_ney(["The cat , sat .", "the dog"], 2), path)
    with pytest.raises(ArpaError, match=r"3 words .*'\,', '\.', 'The'"):
        check_vocabulary(check_arpa(path).vocabulary, path)
    check_vocabulary(["cat", "b52", "<unk>", "</s>"], "fine")


# --- the README's Gaddy steps: split file beside emg_data/ -------------------


@pytest.fixture
def gaddy_data(tmp_path) -> Path:
    """``/data`` of the README: ``emg_data/`` (six prompts, voiced and silent) and ``testset_largedev.json`` beside it.

    Sentence 4 is dev and 5 is test; a stable hash split would put both in train.
    """
    data = tmp_path / "data"
    prompts = ["the cat sat.", "The dog ran!", "a cat and a dog", "the dog sat", "Secret dev words here", "hidden test words"]
    for i, text in enumerate(prompts):
        _write_utterance(data / "emg_data" / "voiced_parallel_data" / "5-4", i, i, text)
        _write_utterance(data / "emg_data" / "silent_parallel_data" / "5-4_silent", i, i, text)
    (data / "testset_largedev.json").write_text(json.dumps({"dev": [["books/Test.txt", 4]], "test": [["books/Test.txt", 5]]}))
    return data


def test_readme_lm_build_finds_the_split_file_beside_emg_data(gaddy_data, tmp_path, capsys, monkeypatch):
    """Step 3 as written (book + corpus root, no --exclude) keeps the dev/test prompts out of the LM, and says so."""
    from silentspeech.data.gaddy import hash_split

    assert {hash_split(("books/Test.txt", i)) for i in (4, 5)} == {"train"}  # without the split file they would be trained on
    monkeypatch.chdir(tmp_path)
    book = tmp_path / "books" / "sherlock_holmes.txt"
    book.parent.mkdir()
    book.write_text("The cat sat. Hidden test words. Secret dev words here. The dog ran after a cat.\n")
    root = str(gaddy_data / "emg_data")
    assert main(["lm", "build", "books/sherlock_holmes.txt", root, "--order", "4", "--out", "lm/gaddy_4gram.arpa"]) == 0
    printed = capsys.readouterr().out
    split = gaddy_data / "testset_largedev.json"
    assert f"held out: 1 dev + 1 test prompts of corpus {gaddy_data / 'emg_data'} (split file {split})" in printed
    assert "2 corpus sentences dropped as held out; kept sentences that are dev/test or held out: 0" in printed
    assert not _unigrams(tmp_path / "lm/gaddy_4gram.arpa") & {"secret", "dev", "hidden", "test"}
    provenance = json.loads((tmp_path / "lm/gaddy_4gram.provenance.json").read_text())
    (source,) = provenance["held_out_sources"]
    assert source["split_file"] == str(split.resolve()) and source["split_file_sha256"] == hashlib.sha256(split.read_bytes()).hexdigest()
    assert source["path"] == str((gaddy_data / "emg_data").resolve()) and (source["dev"], source["test"]) == (1, 1)
    assert provenance["held_out_sentences"] == 2 and provenance["kept_in_held_out"] == 0
    # inspect and prepare find the same file (step 2)
    assert main(["inspect", root, "--quick"]) == 0
    assert f"split file {split}" in capsys.readouterr().out


def test_lm_build_refuses_two_split_files_beside_emg_data(gaddy_data, tmp_path, capsys):
    (gaddy_data / "testset_origdev.json").write_text((gaddy_data / "testset_largedev.json").read_text())
    assert main(["lm", "build", str(gaddy_data / "emg_data"), "--out", str(tmp_path / "lm.arpa")]) == 2
    error = capsys.readouterr().err
    assert "several split files (testset_largedev.json, testset_origdev.json)" in error and str(gaddy_data) in error
    assert not (tmp_path / "lm.arpa").exists()


def test_summary_counts_kept_held_out_prompts(corpus_root, tmp_path):
    report = build_lm([corpus_root], tmp_path / "all.arpa", order=3, keep_held_out=True)
    assert report.kept_in_held_out == 2 and report.sources == []
    assert "held out: nothing" in "\n".join(report.summary())
    book = tmp_path / "book.txt"
    book.write_text("The cat sat.\n")
    assert build_lm([book], tmp_path / "book.arpa", order=2).held_out == 0
