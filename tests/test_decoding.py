"""CTC decoding: greedy on hand-made posteriors, LM beam search, lexicons and bad LMs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from silentspeech.decoding.beam import BeamSearchDecoder, drop_blank_runs, greedy_decode, lm_unigrams, training_unigrams, unigrams_from_texts
from silentspeech.decoding.ngram import KENLM_BINARY_MAGIC, ArpaError, estimate_kneser_ney, write_arpa
from silentspeech.text import LABELS, NUM_CLASSES

FLOOR = 1e-4


def posteriors(text: str, ambiguous: dict[str, tuple[str, str, float]] | None = None, frames: int = 2) -> np.ndarray:
    """CTC log posteriors (frames, 38) spelling ``text``: each character for ``frames`` frames, then a blank.

    ``ambiguous[ch] = (a, b, p)`` puts probability p on ``a`` and 1 - p on ``b`` where ``ch`` is spelled.
    """
    rows = []
    for ch in text:
        row = np.full(NUM_CLASSES, FLOOR)
        if ambiguous and ch in ambiguous:
            a, b, p = ambiguous[ch]
            row[LABELS.index(a)], row[LABELS.index(b)] = p, 1 - p
        else:
            row[LABELS.index(ch)] = 1.0
        blank = np.full(NUM_CLASSES, FLOOR)
        blank[0] = 1.0
        rows += [row] * frames + [blank]
    return np.log(np.stack(rows) / np.stack(rows).sum(axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def cat_lm(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("lm") / "cats.arpa"
    write_arpa(estimate_kneser_ney(["the cat sat on the mat", "the cat sat", "a cat sat on a hat", "the dog sat on the cat"], 3), path)
    return path


def one_hot_path(labels: list[int]) -> np.ndarray:
    log_probs = np.full((len(labels), NUM_CLASSES), np.log(FLOOR), dtype=np.float32)
    log_probs[np.arange(len(labels)), labels] = 0.0
    return log_probs


def test_greedy_collapses_repeats_and_drops_blanks():
    h, e, l, o, space = (LABELS.index(c) for c in "helo ")
    # h h _ e l l _ l o  -> "hello"; repeated spaces and edge spaces vanish.
    path = [space, h, h, 0, e, l, l, 0, l, o, o, space, 0, space, LABELS.index("5"), space]
    assert greedy_decode(one_hot_path(path)[None]) == ["hello 5"]


def test_greedy_batch_with_lengths_and_tensor_input():
    first = posteriors("cat")
    second = posteriors("a")
    batch = np.stack([first, np.pad(second, ((0, len(first) - len(second)), (0, 0)), constant_values=np.log(FLOOR))])
    batch[1, len(second) :, LABELS.index("z")] = 0.0  # padding frames that must be ignored
    lengths = [len(first), len(second)]
    assert greedy_decode(batch, lengths) == ["cat", "a"]
    assert greedy_decode(torch.from_numpy(batch), torch.tensor(lengths)) == ["cat", "a"]


def test_greedy_bad_input():
    with pytest.raises(ValueError, match="shape"):
        greedy_decode(np.zeros((2, 5, 30)))
    with pytest.raises(ValueError, match="lengths"):
        greedy_decode(np.zeros((2, 5, NUM_CLASSES)), [5, 6])
    bad = np.zeros((1, 5, NUM_CLASSES))
    bad[0, 2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        greedy_decode(bad)


def test_beam_search_with_lm_fixes_a_misspelling(cat_lm):
    # The acoustics prefer "k" over "c": greedy spells "kat"; the LM knows only "cat".
    log_probs = posteriors("the cat sat", {"c": ("k", "c", 0.6)})[None]
    assert greedy_decode(log_probs) == ["the kat sat"]
    with BeamSearchDecoder(cat_lm, beam_width=50) as decoder:
        assert decoder.decode_batch(log_probs) == ["the cat sat"]
        # Tuning changes the weights without reloading: without the LM the acoustics win again.
        decoder.reset_params(alpha=0.0, beta=0.0)
        assert decoder.decode_batch(log_probs) == ["the kat sat"]
    assert BeamSearchDecoder(None, beam_width=50).decode_batch(log_probs) == ["the kat sat"]


def test_lexicon_free_by_default_keeps_confident_unknown_words(cat_lm):
    # "zebra" is not in the LM; with clear acoustics a lexicon-free decoder still spells it.
    log_probs = posteriors("the zebra sat", frames=3)[None]
    assert BeamSearchDecoder(cat_lm, beam_width=50).decode_batch(log_probs) == ["the zebra sat"]


def test_worker_processes_give_the_same_results(cat_lm):
    texts = ["the cat sat", "a cat sat on a hat", "the dog sat"]
    items = [posteriors(t, {"c": ("k", "c", 0.6)}) for t in texts]
    frames = max(len(x) for x in items)
    batch = np.stack([np.pad(x, ((0, frames - len(x)), (0, 0))) for x in items])
    lengths = [len(x) for x in items]
    with BeamSearchDecoder(cat_lm, beam_width=30) as sequential, BeamSearchDecoder(cat_lm, beam_width=30, workers=2) as parallel:
        expected = sequential.decode_batch(batch, lengths)
        assert expected == texts
        assert parallel.decode_batch(batch, lengths) == expected
        parallel.reset_params(alpha=0.0, beta=0.0)  # reaches the workers too
        assert parallel.decode_batch(batch, lengths)[0] == "the kat sat"


def test_training_unigrams_come_from_train_only(tmp_path):
    manifest = tmp_path / "manifest.json"
    entries = [
        {"id": "1", "split": "train", "text": "the cat sat"},
        {"id": "2", "split": "train", "text": "a dog"},
        {"id": "3", "split": "test", "text": "secret words"},
        {"id": "4", "split": "dev", "text": "more secrets"},
    ]
    manifest.write_text(json.dumps({"version": 1, "utterances": entries}))
    assert training_unigrams(manifest) == ["a", "cat", "dog", "sat", "the"]
    assert unigrams_from_texts(["The CAT!", "cat's"]) == ["cat", "cats", "the"]


def test_decoder_with_training_lexicon(cat_lm):
    log_probs = posteriors("the cat sat", {"c": ("k", "c", 0.6)})[None]
    decoder = BeamSearchDecoder(cat_lm, beam_width=50, unigrams=["the", "cat", "sat"])
    assert decoder.decode_batch(log_probs) == ["the cat sat"]


def test_lm_unigrams_are_the_arpa_words_without_markers(cat_lm, tmp_path):
    words = lm_unigrams(cat_lm)
    assert words == sorted(words) and "cat" in words and not {"<s>", "</s>", "<unk>"} & set(words)
    decoder = BeamSearchDecoder(cat_lm, beam_width=50, unigrams=words)
    assert decoder.decode_batch(posteriors("the cat sat", {"c": ("k", "c", 0.6)})[None]) == ["the cat sat"]
    binary = tmp_path / "lm.binary"
    binary.write_bytes(KENLM_BINARY_MAGIC + bytes(64))
    with pytest.raises(ArpaError, match="KenLM binary"):
        lm_unigrams(binary)


def test_truncated_lm_is_a_clear_error(cat_lm, tmp_path):
    truncated = tmp_path / "truncated.arpa"
    text = cat_lm.read_text()
    truncated.write_text(text[: len(text) // 2])
    with pytest.raises(ArpaError, match="truncated"):
        BeamSearchDecoder(truncated)


def test_lm_outside_charset_is_a_clear_error(tmp_path):
    raw = tmp_path / "raw.arpa"
    write_arpa(estimate_kneser_ney(["The cat sat .", "the dog ?"], 2), raw)
    with pytest.raises(ArpaError, match=r"'\.', '\?', 'The'"):
        BeamSearchDecoder(raw)


def test_lexicon_outside_charset_is_a_clear_error(cat_lm):
    with pytest.raises(ArpaError, match="'Cat'"):
        BeamSearchDecoder(cat_lm, unigrams=["the", "Cat"])


def test_missing_lm_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.arpa"):
        BeamSearchDecoder(tmp_path / "nothing.arpa")


def spelled_with_pauses(text: str, rng: np.random.Generator, noise: float) -> np.ndarray:
    """Noisy CTC log posteriors (frames, 38) spelling ``text``: 2 character frames then 1-6 blank frames each."""
    logits = []
    for ch in text:
        for label in [LABELS.index(ch)] * 2 + [0] * int(rng.integers(1, 7)):
            row = np.zeros(NUM_CLASSES)
            row[label] = 9.0
            logits.append(row)
    logits = np.stack(logits) + rng.normal(0.0, noise, (len(logits), NUM_CLASSES))
    return (logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)).astype(np.float32)


def test_drop_blank_runs_keeps_one_blank_between_characters():
    a = LABELS.index("a")
    log_probs = one_hot_path([0, 0, a, 0, 0, 0, a, a, 0, 0])
    kept = drop_blank_runs(log_probs)
    assert kept.argmax(axis=1).tolist() == [0, a, 0, a, a, 0]
    # A character above pyctcdecode's token_min_logp (-5) keeps its frame in a blank run.
    # (Its frame and the next, which starts a new run.)
    log_probs[4] = np.log(np.full(NUM_CLASSES, 0.001))
    log_probs[4, 0], log_probs[4, a] = np.log(0.944), np.log(0.02)
    assert len(drop_blank_runs(log_probs)) == len(kept) + 2
    assert drop_blank_runs(np.zeros((0, NUM_CLASSES), np.float32)).shape == (0, NUM_CLASSES)


@pytest.mark.parametrize("noise", [0.5, 1.5, 2.5])
def test_dropping_blank_runs_gives_the_same_hypotheses(cat_lm, noise):
    rng = np.random.default_rng(int(noise * 10))
    texts = ["the cat sat on the mat", "a dog sat on a hat", "the mat sat", "cats sat on the cat"]
    log_probs = [spelled_with_pauses(text, rng, noise) for text in texts]
    assert sum(len(drop_blank_runs(item)) for item in log_probs) < sum(len(item) for item in log_probs)
    for beam_width in (4, 64):
        plain = BeamSearchDecoder(cat_lm, beam_width=beam_width, drop_blank_runs=False)
        fast = BeamSearchDecoder(cat_lm, beam_width=beam_width)
        assert [fast.decode(item) for item in log_probs] == [plain.decode(item) for item in log_probs]
