"""The independent evaluation corpus: Gaddy layout the reader accepts, realistic EMG shape, determinism, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from silentspeech.data.cache import prepare_cache
from silentspeech.data.gaddy import read_corpus
from silentspeech.data.synthetic.independent import IndependentCorpusExistsError, generate_independent_corpus
from silentspeech.data.synthetic.independent.articulation import syllables
from silentspeech.data.synthetic.independent.sentences import book_sentences
from silentspeech.emg_statistics import corpus_emg_statistics
from silentspeech.preprocessing import highpass

REAL_BOOK = Path(__file__).resolve().parents[2] / "shared" / "data" / "text" / "war_of_the_worlds_pg36.txt"

TINY_BOOK = """The Project Gutenberg EBook of Nothing Much, by Nobody

*** START OF THIS PROJECT GUTENBERG EBOOK NOTHING MUCH ***

CHAPTER ONE

The miller walked down to the river every morning.  He carried a sack of
grain on his back.  His dog followed him along the muddy path.  Mr. Brown
waved at them from the bridge.  The water was cold and very quick today.

"Where are you going so early?" asked the baker's wife.  The miller smiled
and kept on walking.  Nobody knew where the old road ended.  A heron stood
still in the reeds by the bank.  Clouds gathered slowly over the far hills.
Rain began to fall before noon.  The children ran inside and closed the door.
Ah.  It was 1898 when the mill burned down at last.

*** END OF THIS PROJECT GUTENBERG EBOOK NOTHING MUCH ***
This licence text must never become a prompt of the corpus at all.
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("independent") / "corpus"
    generate_independent_corpus(root, utterances=20, seed=0, workers=1, progress=False)
    return root


def test_tiny_corpus_is_read_and_prepared_without_problems(tiny, tmp_path):
    corpus = read_corpus(tiny, check_values=True)
    assert corpus.skipped == []
    kinds = {u.kind for u in corpus.utterances}
    assert kinds == {"voiced_parallel", "silent_parallel", "nonparallel"}
    assert len(corpus.utterances) == 20 and corpus.split_file == tiny / "testset.json"
    counts = corpus.split_counts()
    assert counts["dev"]["silent"] >= 1 and counts["test"]["silent"] >= 1
    assert all(u.twin is not None for u in corpus.utterances if u.silent)
    report = prepare_cache(tiny, tmp_path / "cache", workers=0)
    assert report.skipped == [] and report.written == 20
    marker = json.loads((tiny / "independent_corpus.json").read_text())
    assert marker["generator"] == "independent" and marker["version"] >= 1 and marker["seed"] == 0


def test_files_agree_with_their_info(tiny):
    for info_path in sorted(tiny.glob("*/*/*_info.json")):
        info = json.loads(info_path.read_text())
        stem = info_path.name[: -len("_info.json")]
        emg = np.load(info_path.parent / f"{stem}_emg.npy")
        assert emg.dtype == np.float32 and emg.ndim == 2 and emg.shape[1] == 8
        for name in ("audio", "audio_clean"):
            audio, rate = sf.read(info_path.parent / f"{stem}_{name}.flac")
            assert rate == 16000 and len(audio) == 16 * emg.shape[0]
        assert np.load(info_path.parent / f"{stem}_button.npy").shape == (emg.shape[0],)
        assert sum(c[0] for c in info["chunks"]) == emg.shape[0]
        assert (info["sentence_index"] == -1) == (info["text"] == "")


def test_emg_shape_statistics_are_near_real_emg(tiny):
    stats = corpus_emg_statistics(read_corpus(tiny).utterances)
    assert stats is not None and stats.recordings >= 8
    assert 70 <= stats.median_frequency <= 120
    assert stats.high_share <= 0.25
    assert stats.kurtosis >= 4
    assert 0.05 <= stats.channel_correlation <= 0.3
    assert stats.slow_share <= 0.05


def test_voiced_emg_is_active_where_the_audio_speaks(tiny):
    """The articulation is timed on the recording: EMG power rises with the speech envelope, so production is learnable."""
    corpus = read_corpus(tiny)
    ratios = []
    for u in (u for u in corpus.utterances if not u.silent):
        emg = highpass(np.load(u.emg_path).astype(np.float64), 1000.0, 20.0)
        audio, _ = sf.read(u.audio_path)
        loud = np.flatnonzero(np.abs(audio[: 16 * len(emg)]).reshape(len(emg), 16).max(axis=1) > 0.02)
        power = (emg**2).mean(axis=1)
        ratios.append(power[loud[0] : loud[-1]].mean() / power[: loud[0] - 150].mean())  # speech / the pause before it
    assert min(ratios) > 3.0


def test_silent_twin_differs_from_its_voiced_recording(tiny):
    corpus = read_corpus(tiny)
    for u in (u for u in corpus.utterances if u.silent):
        twin = corpus.by_id[u.twin]
        assert twin.text == u.text and twin.emg_samples != u.emg_samples
        silent_audio, _ = sf.read(u.audio_path)
        voiced_audio, _ = sf.read(twin.audio_path)
        assert np.abs(silent_audio).max() < 0.3 * np.abs(voiced_audio).max()


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_resumed_corpus_renders_the_missing_utterance_again_identically(tiny, tmp_path):
    shutil.copytree(tiny, tmp_path / "a")
    before = _files(tmp_path / "a")
    (tmp_path / "a" / "silent_parallel_data" / "7-2_silent" / "2_emg.npy").unlink()
    again = generate_independent_corpus(tmp_path / "a", utterances=20, seed=0, workers=1, progress=False)
    assert again.written == 1 and again.skipped == again.utterances + again.silence_clips - 1
    assert _files(tmp_path / "a") == before
    with pytest.raises(IndependentCorpusExistsError, match="other settings: seed 0"):
        generate_independent_corpus(tmp_path / "a", utterances=20, seed=4, progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(IndependentCorpusExistsError, match="holds no independent corpus"):
        generate_independent_corpus(tmp_path / "other", utterances=10, progress=False)


@pytest.mark.slow
def test_same_seed_same_files_for_any_worker_count(tmp_path):
    generate_independent_corpus(tmp_path / "a", utterances=10, seed=3, workers=1, progress=False)
    generate_independent_corpus(tmp_path / "b", utterances=10, seed=3, workers=2, progress=False)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"utterances": 0}, "utterances must be at least 10"),
        ({"utterances": -5}, "utterances must be at least 10"),
        ({"hours": 0.0}, "hours must be a positive number"),
        ({"hours": -1.0}, "hours must be a positive number"),
        ({"utterances": 20, "hours": 0.1}, "not both"),
        ({"utterances": 20, "sessions": 0}, "sessions must be"),
    ],
)
def test_bad_settings_give_one_line_errors(tmp_path, settings, message):
    with pytest.raises(ValueError, match=message) as caught:
        generate_independent_corpus(tmp_path / "out", progress=False, **settings)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_bad_books_give_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match="missing.txt: book not found"):
        generate_independent_corpus(tmp_path / "out", utterances=10, book=tmp_path / "missing.txt", progress=False)
    empty = tmp_path / "empty.txt"
    empty.write_text("*** START OF THIS PROJECT GUTENBERG EBOOK X ***\n\nCHAPTER I\n\n*** END OF THIS PROJECT GUTENBERG EBOOK X ***\n")
    with pytest.raises(ValueError, match="empty.txt: book holds no usable sentence"):
        generate_independent_corpus(tmp_path / "out", utterances=10, book=empty, progress=False)
    short = tmp_path / "short.txt"
    short.write_text("One two three four. Five six seven eight.\n")
    with pytest.raises(ValueError, match="short.txt: only 2 usable sentences, too few for 10 utterances"):
        generate_independent_corpus(tmp_path / "out", utterances=10, book=short, progress=False)
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ValueError, match="binary.txt: book is not UTF-8"):
        generate_independent_corpus(tmp_path / "out", utterances=10, book=binary, progress=False)


def test_book_sentences_skip_the_gutenberg_frame_and_odd_sentences(tmp_path):
    book = tmp_path / "tiny.txt"
    book.write_text(TINY_BOOK)
    kept = book_sentences(book)
    assert kept[0] == "The miller walked down to the river every morning."
    assert "Mr. Brown waved at them from the bridge." in kept
    assert "Where are you going so early? asked the baker's wife." in kept  # no split before a lower-case word
    assert not any("Gutenberg" in s or "licence" in s or "CHAPTER" in s or s == "Ah." for s in kept)
    assert "It was 1898 when the mill burned down at last." in kept
    assert all(4 <= len(s.split()) <= 20 for s in kept)


def test_a_book_gives_the_prompts(tmp_path):
    book = tmp_path / "tiny.txt"
    book.write_text(TINY_BOOK)
    summary = generate_independent_corpus(tmp_path / "out", utterances=10, book=book, sessions=2, progress=False)
    assert summary.book == "books/tiny.txt" and summary.utterances == 10
    corpus = read_corpus(tmp_path / "out", check_values=True)
    assert corpus.skipped == []
    kept = book_sentences(book)
    for u in corpus.utterances:
        info = json.loads((u.folder / f"{u.index}_info.json").read_text())
        assert info["book"] == "books/tiny.txt" and kept[info["sentence_index"]] == info["text"]


def test_hours_set_the_training_length(tmp_path):
    summary = generate_independent_corpus(tmp_path / "out", hours=0.01, progress=False)
    assert 0.5 * 36 <= summary.training_seconds <= 1.6 * 36
    assert summary.dev_sentences >= 1 and summary.test_sentences >= 1


def test_syllables_follow_the_spelling():
    assert [[g for g, _ in s] for s in syllables("table")] == [["t", "a", "b", "l", "e_"]]
    assert [[g for g, _ in s] for s in syllables("harbour")] == [["h", "a", "r"], ["b", "ou", "r"]]
    assert [[g for g, _ in s] for s in syllables("shovel")] == [["sh", "o"], ["v", "e", "l"]]
    assert len(syllables("rhythm")) == 1


@pytest.mark.skipif(not REAL_BOOK.is_file(), reason="the shared War of the Worlds text is absent")
def test_a_real_gutenberg_book_gives_many_clean_sentences():
    kept = book_sentences(REAL_BOOK)
    assert len(kept) > 1000
    assert not any("Gutenberg" in s or "EBook" in s for s in kept)
    assert kept[0].startswith("It is possible that the infusoria")
