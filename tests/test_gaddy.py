"""Gaddy corpus reader and phoneme labels, on hand-written corpus fixtures."""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from silentspeech.cli import main
from silentspeech.data.gaddy import (
    CorpusError,
    hash_split,
    load_utterance,
    read_corpus,
    read_emg_header,
    read_info,
    read_split_file,
)
from silentspeech.phonemes import NUM_PHONEMES, PHONEMES, SIL, TextGridError, format_textgrid, phoneme_frames, read_textgrid
from silentspeech.preprocessing import EMGPreprocessing, preprocess_emg

BOOK = "books/War_of_the_Worlds.txt"


def write_utterance(folder: Path, index: int, sentence_index: int, text: str, book: str = BOOK, seconds: float = 0.4, seed: int = 0) -> None:
    """One utterance in the corpus format: info.json, raw EMG at 1 kHz, clean audio at 16 kHz."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + 1000 * index)
    emg_samples, audio_samples = int(seconds * 1000), int(seconds * 16000)
    t = np.arange(emg_samples)[:, None] / 1000
    emg = 30 * rng.normal(size=(emg_samples, 8)) + 200 * np.sin(2 * np.pi * 60 * t)
    np.save(folder / f"{index}_emg.npy", emg)
    audio = 0.1 * np.sin(2 * np.pi * 220 * np.arange(audio_samples) / 16000) + 0.01 * rng.normal(size=audio_samples)
    sf.write(folder / f"{index}_audio_clean.flac", audio.astype(np.float32), 16000)
    half = emg_samples // 2
    chunks = [[half, audio_samples // 2, half], [emg_samples - half, audio_samples - audio_samples // 2, emg_samples - half]]
    info = {"book": book if sentence_index >= 0 else "", "sentence_index": sentence_index, "text": text, "chunks": chunks}
    (folder / f"{index}_info.json").write_text(json.dumps(info))


SENTENCES = {1: "The first sentence.", 2: "A second one!", 3: "Third, of course.", 4: "Fourth and last."}


def write_corpus(root: Path) -> Path:
    """A small corpus: 4 parallel sentences voiced and silent, nonparallel, closed vocabulary, -1 clips."""
    voiced, silent = root / "voiced_parallel_data" / "5-4", root / "silent_parallel_data" / "5-4_silent"
    write_utterance(voiced, 0, -1, "")
    write_utterance(silent, 0, -1, "")
    for i, (sentence, text) in enumerate(SENTENCES.items(), start=1):
        write_utterance(voiced, i, sentence, text)
        write_utterance(silent, i, sentence, text, seed=1)
    nonparallel = root / "nonparallel_data" / "4-24"
    write_utterance(nonparallel, 0, 2, SENTENCES[2], seed=2)  # the same sentence again, voiced only
    write_utterance(nonparallel, 1, 40, "Only voiced.", seed=2)
    write_utterance(root / "closed_vocab" / "voiced" / "5-19", 0, 497, "03:09 AM", book="datedata.txt")
    write_utterance(root / "closed_vocab" / "silent" / "5-19_silent", 0, 497, "03:09 AM", book="datedata.txt")
    return root


@pytest.fixture
def corpus_root(tmp_path) -> Path:
    return write_corpus(tmp_path / "emg_data")


def test_scan_counts_kinds_and_silence_clips(corpus_root):
    corpus = read_corpus(corpus_root)
    sessions = {(s.kind, s.name): s for s in corpus.sessions}
    assert sessions["voiced_parallel", "5-4"].utterances == 4
    assert sessions["voiced_parallel", "5-4"].silence_clips == 1
    assert sessions["silent_parallel", "5-4_silent"].silence_clips == 1
    assert sessions["nonparallel", "4-24"].utterances == 2
    assert sessions["closed_vocab_silent", "5-19_silent"].utterances == 1
    assert sessions["voiced_parallel", "5-4"].seconds == pytest.approx(1.6)
    assert corpus.skipped == []
    # Open vocabulary only; silence clips never become utterances.
    assert {u.kind for u in corpus.utterances} == {"voiced_parallel", "silent_parallel", "nonparallel"}
    assert all(u.sentence_index >= 0 for u in corpus.utterances)
    assert corpus.by_id["silent_parallel_data/5-4_silent/2"].text == "a second one"


def test_parent_folder_of_emg_data_is_accepted(corpus_root):
    assert read_corpus(corpus_root.parent).root == corpus_root


def test_not_a_corpus_is_an_error(tmp_path):
    with pytest.raises(CorpusError, match="not a Gaddy corpus"):
        read_corpus(tmp_path)


def test_silent_utterances_pair_with_voiced_twins(corpus_root):
    corpus = read_corpus(corpus_root)
    for u in corpus.utterances:
        if u.silent:
            twin = corpus.by_id[u.twin]
            assert not twin.silent and twin.sentence == u.sentence
        else:
            assert u.twin is None
    # Sentence 2 is voiced twice; the parallel folder's recording is the twin.
    assert corpus.by_id["silent_parallel_data/5-4_silent/2"].twin == "voiced_parallel_data/5-4/2"


def test_split_file_holds_out_sentences_and_their_voiced_twins(corpus_root, tmp_path):
    split_file = tmp_path / "split.json"
    split_file.write_text(json.dumps({"dev": [[BOOK, 2]], "test": [[BOOK, 3]]}))
    corpus = read_corpus(corpus_root, split_file=split_file)
    splits = {u.id: u.split for u in corpus.utterances}
    assert splits["silent_parallel_data/5-4_silent/2"] == "dev"
    assert splits["silent_parallel_data/5-4_silent/3"] == "test"
    # Every voiced recording of a dev/test sentence leaves training, not only the twin.
    assert splits["voiced_parallel_data/5-4/2"] == "excluded"
    assert splits["nonparallel_data/4-24/0"] == "excluded"
    assert splits["voiced_parallel_data/5-4/3"] == "excluded"
    train = {u.sentence for u in corpus.utterances if u.split == "train"}
    assert (BOOK, 2) not in train and (BOOK, 3) not in train
    assert {u.split for u in corpus.utterances if not u.silent} <= {"train", "excluded"}
    counts = corpus.split_counts()
    assert counts["dev"]["silent"] == 1 and counts["dev"]["voiced"] == 0


def test_bad_split_files_name_the_file(tmp_path, corpus_root):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"dev": [[BOOK, 1], [BOOK, 2]], "test": [[BOOK, 1]]}))
    assert read_split_file(bad) == ({(BOOK, 2)}, {(BOOK, 1)})  # listed in both: test wins
    bad.write_text(json.dumps({"dev": [[BOOK, "1"]], "test": []}))
    with pytest.raises(CorpusError, match="bad.json: split file needs a 'dev' list"):
        read_split_file(bad)
    with pytest.raises(CorpusError, match="nothing.json: cannot read split file"):
        read_split_file(tmp_path / "nothing.json")


def test_hash_split_is_stable_and_near_its_fractions():
    assert hash_split((BOOK, 1)) == hash_split((BOOK, 1))
    results = [hash_split((BOOK, i)) for i in range(5000)]
    assert results.count("dev") / 5000 == pytest.approx(0.1, abs=0.015)
    assert results.count("test") / 5000 == pytest.approx(0.1, abs=0.015)
    # Pinned values: a change of hash would silently move sentences between splits.
    held_out = {i: hash_split((BOOK, i)) for i in range(30) if hash_split((BOOK, i)) != "train"}
    assert held_out == {16: "test", 17: "dev", 18: "test", 24: "dev", 27: "dev"}


def test_default_split_puts_only_silent_utterances_in_dev_and_test(tmp_path):
    root = tmp_path / "c"
    for i in range(60):
        write_utterance(root / "voiced_parallel_data" / "5-4", i, i, f"sentence {i}", seconds=0.1)
        write_utterance(root / "silent_parallel_data" / "5-4_silent", i, i, f"sentence {i}", seconds=0.1)
    corpus = read_corpus(root)
    for u in corpus.utterances:
        expected = hash_split(u.sentence)
        assert u.split == (expected if u.silent or expected == "train" else "excluded")
    assert corpus.split_counts()["dev"]["silent"] > 0 and corpus.split_counts()["test"]["silent"] > 0


def test_a_split_file_in_the_corpus_root_is_used_when_none_is_given(corpus_root):
    (corpus_root / "testset.json").write_text(json.dumps({"dev": [[BOOK, 4]], "test": []}))
    corpus = read_corpus(corpus_root)
    assert corpus.split_source == f"split file {corpus_root / 'testset.json'}"
    assert corpus.by_id["silent_parallel_data/5-4_silent/4"].split == "dev"
    assert corpus.by_id["voiced_parallel_data/5-4/4"].split == "excluded"


def test_closed_vocab_subset(corpus_root):
    corpus = read_corpus(corpus_root, closed_vocab=True)
    assert {u.id for u in corpus.utterances} == {"closed_vocab/voiced/5-19/0", "closed_vocab/silent/5-19_silent/0"}
    silent = corpus.by_id["closed_vocab/silent/5-19_silent/0"]
    assert silent.twin == "closed_vocab/voiced/5-19/0" and silent.text == "0309 am"


def test_closed_vocab_with_a_book_split_file_falls_back_to_the_hash_split(tmp_path, capsys, caplog):
    """The published split files list War of the Worlds sentences only: the closed-vocabulary subset is split by hash, stated."""
    data = tmp_path / "data"
    write_corpus(data / "emg_data")
    for i in range(60):
        for folder in (data / "emg_data/closed_vocab/voiced/5-20", data / "emg_data/closed_vocab/silent/5-20_silent"):
            write_utterance(folder, i, 1000 + i, f"{i % 12 + 1:02d}:{i:02d} PM", book="datedata.txt", seconds=0.1)
    split = data / "testset_largedev.json"  # beside emg_data/, as the README's step 1 puts it
    split.write_text(json.dumps({"dev": [[BOOK, 2]], "test": [[BOOK, 3]]}))
    assert main(["inspect", str(data / "emg_data"), "--closed-vocab", "--quick"]) == 0
    printed = capsys.readouterr().out
    assert f"hash split of the closed-vocabulary prompts (split file {split} lists none of them)" in printed
    assert "lists none of the closed-vocabulary sentences" in caplog.text
    corpus = read_corpus(data / "emg_data", closed_vocab=True)
    for u in corpus.utterances:
        assert u.split == (hash_split(u.sentence) if u.silent or hash_split(u.sentence) == "train" else "excluded")
    counts = corpus.split_counts()
    assert counts["dev"]["silent"] > 0 and counts["test"]["silent"] > 0 and corpus.split_file is None
    # the open-vocabulary subset keeps the split file
    open_vocab = read_corpus(data / "emg_data")
    assert open_vocab.split_file == split and open_vocab.by_id["silent_parallel_data/5-4_silent/3"].split == "test"


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-200])


def _non_numeric(path: Path) -> None:
    np.save(path, np.array([["a"] * 8] * 400))


def _nan(path: Path) -> None:
    emg = np.load(path)
    emg[10, 3] = np.nan
    np.save(path, emg)


def _six_channels(path: Path) -> None:
    np.save(path, np.load(path)[:, :6])


def _shorter(path: Path) -> None:
    np.save(path, np.load(path)[:300])


def _garbage(path: Path) -> None:
    path.write_bytes(b"fLaC" + b"\x00" * 50)


def _empty_text(path: Path) -> None:
    info = json.loads(path.read_text())
    path.write_text(json.dumps({**info, "text": " ?! "}))


def _bad_json(path: Path) -> None:
    path.write_text('{"book": "x", ')


@pytest.mark.parametrize(
    "file_name, damage, reported, reason",
    [
        ("3_emg.npy", _truncate, "3_emg.npy", "truncated or damaged"),
        ("3_emg.npy", _non_numeric, "3_emg.npy", "EMG is not numeric"),
        ("3_emg.npy", _six_channels, "3_emg.npy", r"expected EMG of shape \(samples, 8\), got \(400, 6\)"),
        ("3_emg.npy", _shorter, "3_info.json", "chunks sum to 400 EMG samples but 3_emg.npy holds 300"),
        ("3_audio_clean.flac", _garbage, "3_audio_clean.flac", "unreadable audio"),
        ("3_info.json", _empty_text, "3_info.json", "empty text"),
        ("3_info.json", _bad_json, "3_info.json", "not valid JSON"),
        ("3_emg.npy", Path.unlink, "3_emg.npy", "missing"),
    ],
)
def test_bad_utterances_are_skipped_counted_and_reported(corpus_root, file_name, damage, reported, reason, capsys):
    folder = corpus_root / "voiced_parallel_data" / "5-4"
    damage(folder / file_name)
    corpus = read_corpus(corpus_root)
    ids = {u.id for u in corpus.utterances}
    assert "voiced_parallel_data/5-4/3" not in ids
    # Its silent twin has no voiced recording left: a second, counted skip.
    assert "silent_parallel_data/5-4_silent/3" not in ids
    skipped = {s.path: s.reason for s in corpus.skipped}
    assert len(skipped) == 2, skipped
    assert re.search(reason, skipped[str(folder / reported)]), skipped
    twin_info = corpus_root / "silent_parallel_data" / "5-4_silent" / "3_info.json"
    assert skipped[str(twin_info)] == f"no voiced twin of {(BOOK, 3)} in any voiced folder"
    assert main(["inspect", str(corpus_root), "--quick"]) == 0
    printed = capsys.readouterr().out
    assert "problems: 2 utterances skipped" in printed and str(folder / reported) in printed


def test_nan_emg_is_found_by_the_value_check_and_by_the_loader(corpus_root):
    path = corpus_root / "silent_parallel_data" / "5-4_silent" / "2_emg.npy"
    _nan(path)
    assert "silent_parallel_data/5-4_silent/2" in read_corpus(corpus_root).by_id  # headers look fine
    corpus = read_corpus(corpus_root, check_values=True)
    assert "silent_parallel_data/5-4_silent/2" not in corpus.by_id
    assert [(s.path, s.reason) for s in corpus.skipped] == [(str(path), "EMG holds 1 NaN or infinite values")]
    utterance = read_corpus(corpus_root).by_id["silent_parallel_data/5-4_silent/2"]
    with pytest.raises(CorpusError, match="2_emg.npy: EMG holds 1 NaN or infinite values"):
        load_utterance(utterance)


def test_single_file_readers_raise_naming_the_file(tmp_path):
    with pytest.raises(CorpusError, match="7_info.json: missing"):
        read_info(tmp_path / "7_info.json")
    (tmp_path / "7_info.json").write_text(json.dumps({"book": BOOK, "sentence_index": "3", "text": "x"}))
    with pytest.raises(CorpusError, match="7_info.json: field 'sentence_index' missing or not a int"):
        read_info(tmp_path / "7_info.json")
    np.save(tmp_path / "7_emg.npy", np.zeros((0, 8)))
    with pytest.raises(CorpusError, match="7_emg.npy: EMG holds no samples"):
        read_emg_header(tmp_path / "7_emg.npy")
    (tmp_path / "8_emg.npy").write_text("1,2,3\n")
    with pytest.raises(CorpusError, match="8_emg.npy: not a .npy file: it starts with text"):
        read_emg_header(tmp_path / "8_emg.npy")


def test_unreadable_flac_raises_in_the_loader(corpus_root):
    utterance = read_corpus(corpus_root).by_id["voiced_parallel_data/5-4/1"]
    _garbage(utterance.audio_path)
    with pytest.raises(CorpusError, match="1_audio_clean.flac: unreadable audio"):
        load_utterance(utterance)


def test_load_utterance_aligns_emg_to_frames_and_uses_neighbours(corpus_root):
    corpus = read_corpus(corpus_root)
    utterance = corpus.by_id["voiced_parallel_data/5-4/2"]
    arrays = load_utterance(utterance, n_mfcc=26)
    n_frames = arrays.features.shape[0]
    assert n_frames == 8820 // 256  # 0.4 s at 22050 Hz; the EMG has 276 samples at 689.06 Hz
    assert arrays.emg.shape == (8 * n_frames, 8) and arrays.emg.dtype == np.float32
    assert arrays.features.shape == (n_frames, 26) and arrays.features.dtype == np.float32
    assert arrays.phonemes is None
    folder = corpus_root / "voiced_parallel_data" / "5-4"
    expected = preprocess_emg(np.load(folder / "2_emg.npy"), before=np.load(folder / "1_emg.npy"), after=np.load(folder / "3_emg.npy"))
    np.testing.assert_allclose(arrays.emg, expected[: 8 * n_frames], atol=1e-5)
    alone = preprocess_emg(np.load(folder / "2_emg.npy"))
    assert np.abs(arrays.emg - alone[: 8 * n_frames]).max() > 1e-3  # the neighbours do change the edges


def test_mains_frequency_is_configurable(corpus_root):
    utterance = read_corpus(corpus_root).by_id["voiced_parallel_data/5-4/2"]
    emg_60 = load_utterance(utterance).emg
    emg_50 = load_utterance(utterance, EMGPreprocessing(mains=50.0)).emg
    assert emg_60.shape == emg_50.shape and not np.allclose(emg_60, emg_50)


LONG_TEXTGRID = '''File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 0.4
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = 0.4
        intervals: size = 1
        intervals [1]:
            xmin = 0
            xmax = 0.4
            text = "the"
    item [2]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = 0.4
        intervals: size = 4
        intervals [1]:
            xmin = 0
            xmax = 0.1
            text = ""
        intervals [2]:
            xmin = 0.1
            xmax = 0.2
            text = "DH"
        intervals [3]:
            xmin = 0.2
            xmax = 0.3
            text = "AH0"
        intervals [4]:
            xmin = 0.3
            xmax = 0.4
            text = "sp"
'''

SHORT_TEXTGRID = '''File type = "ooTextFile"
Object class = "TextGrid"

0
0.3
<exists>
1
"IntervalTier"
"phones"
0
0.3
2
0
0.15
"K"
0.15
0.3
"IY1"
'''


def test_phoneme_inventory():
    assert NUM_PHONEMES == 48 and len(set(PHONEMES)) == 48
    assert PHONEMES[SIL] == "sil" and SIL == 47


def test_read_textgrid_long_and_short_formats(tmp_path):
    (tmp_path / "long.TextGrid").write_text(LONG_TEXTGRID)
    assert read_textgrid(tmp_path / "long.TextGrid") == [(0, 0.1, ""), (0.1, 0.2, "DH"), (0.2, 0.3, "AH0"), (0.3, 0.4, "sp")]
    (tmp_path / "short.TextGrid").write_text(SHORT_TEXTGRID, encoding="utf-16")
    assert read_textgrid(tmp_path / "short.TextGrid") == [(0, 0.15, "K"), (0.15, 0.3, "IY1")]


def test_phoneme_frames_map_stress_and_pauses():
    intervals = [(0, 0.1, ""), (0.1, 0.2, "DH"), (0.2, 0.3, "AH0"), (0.3, 0.4, "sp")]
    labels = phoneme_frames(intervals, 40, 100.0)
    assert labels.dtype == np.int64 and labels.shape == (40,)
    assert (labels[:10] == SIL).all() and (labels[10:20] == PHONEMES.index("dh")).all()
    assert (labels[20:30] == PHONEMES.index("ah")).all() and (labels[30:] == SIL).all()
    with pytest.raises(TextGridError, match="x.TextGrid: phone 'QQ1' is not one of the 48"):
        phoneme_frames([(0, 0.1, "QQ1")], 5, 100.0, source="x.TextGrid")


def test_bad_textgrids_name_the_file(tmp_path):
    path = tmp_path / "cut.TextGrid"
    path.write_text(LONG_TEXTGRID[:600])
    with pytest.raises(TextGridError, match="cut.TextGrid: TextGrid ends early"):
        read_textgrid(path)
    path.write_text("hello")
    with pytest.raises(TextGridError, match="cut.TextGrid: "):
        read_textgrid(path)


#: The layout MFA 2 writes (through praatio): trailing spaces, full-precision times, empty word gaps.
MFA_TEXTGRID = (Path(__file__).parent / "data" / "mfa_words_phones.TextGrid").read_text()


def test_read_textgrid_mfa_layout_and_byte_orders(tmp_path):
    phones = [(0.0, 0.21000000000000002, ""), (0.21000000000000002, 0.35, "K"), (0.35, 0.52, "IY1"), (0.52, 0.63, "spn")]
    for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
        path = tmp_path / f"{encoding}.TextGrid"
        path.write_bytes(("\ufeff" if encoding != "utf-8" else "").encode(encoding) + MFA_TEXTGRID.encode(encoding))
        assert read_textgrid(path) == phones
        assert read_textgrid(path, tier="words") == [(0.0, 0.21000000000000002, ""), (0.21000000000000002, 0.52, "key"), (0.52, 0.63, "")]
    labels = phoneme_frames(phones, 63, 100.0)
    assert labels[:21].tolist() == [SIL] * 21 and labels[21:35].tolist() == [PHONEMES.index("k")] * 14
    assert labels[35:52].tolist() == [PHONEMES.index("iy")] * 17 and labels[52:].tolist() == [SIL] * 11


def test_format_textgrid_round_trips_times_exactly(tmp_path):
    intervals = [(0.0, 0.1 + 0.2, "sil"), (0.1 + 0.2, 1 / 3, 'say "k"'), (1 / 3, 2.0, "")]
    path = tmp_path / "x.TextGrid"
    path.write_text(format_textgrid(intervals, tier="Phones"))
    assert read_textgrid(path) == intervals
    assert 'name = "Phones"' in path.read_text()


class _Seconds(float):
    """A float whose repr is not a number, as a NumPy 2 scalar's ("np.float64(0.3)") is."""

    def __repr__(self) -> str:
        return f"np.float64({float(self)})"


def test_format_textgrid_writes_numpy_like_scalars_as_numbers(tmp_path):
    # The synthetic generator hands over NumPy scalars; praatio writes times with repr().
    intervals = [(_Seconds(0.0), _Seconds(0.25), "sil"), (_Seconds(0.25), _Seconds(0.5), "k")]
    path = tmp_path / "x.TextGrid"
    path.write_text(format_textgrid(intervals))
    assert "np.float64" not in path.read_text()
    assert read_textgrid(path) == [(0.0, 0.25, "sil"), (0.25, 0.5, "k")]


def test_textgrid_cut_between_intervals_is_truncated(tmp_path):
    path = tmp_path / "cut.TextGrid"
    path.write_text(MFA_TEXTGRID[: MFA_TEXTGRID.rindex("        intervals [4]:")])
    with pytest.raises(TextGridError, match=r"cut.TextGrid: TextGrid ends early \(truncated\?\): intervals stop at 0.52 s, the tier at 0.63 s"):
        read_textgrid(path)


def test_alignments_give_phonemes_and_their_absence_is_logged_once(corpus_root, caplog):
    with caplog.at_level(logging.INFO, logger="silentspeech.data.gaddy"):
        corpus = read_corpus(corpus_root)
    assert sum("no phoneme alignments" in r.message for r in caplog.records) == 1
    assert all(u.alignment is None for u in corpus.utterances)

    alignment = corpus_root / "text_alignments" / "5-4" / "5-4_2_audio.TextGrid"
    alignment.parent.mkdir(parents=True)
    alignment.write_text(LONG_TEXTGRID)
    corpus = read_corpus(corpus_root)
    assert corpus.missing_alignments == len(corpus.utterances) - 1
    arrays = load_utterance(corpus.by_id["voiced_parallel_data/5-4/2"])
    assert arrays.phonemes.shape == (arrays.features.shape[0],)
    assert PHONEMES.index("dh") in arrays.phonemes and (arrays.phonemes != SIL).sum() > 10


# --- real files of ../shared/data --------------------------------------------


def test_real_split_lists(shared_data):
    dev, test = read_split_file(shared_data / "gaddy" / "testset_largedev.json")
    # 100 test entries name 99 sentences: War of the Worlds 806 is listed twice.
    assert (len(dev), len(test)) == (200, 99)
    # The original dev list shares sentences 432 and 866 with test; they stay in test.
    orig_dev, orig_test = read_split_file(shared_data / "gaddy" / "testset_origdev.json")
    assert (len(orig_dev), orig_test) == (28, test)
    assert {book for book, _ in dev | test} == {BOOK}


def test_real_info_files_read_and_their_chunks_match_arrays(shared_data, tmp_path):
    """Rebuild the real info.json files' folders with arrays of the lengths their chunks give."""
    examples = shared_data / "gaddy" / "info_json_examples"
    root = tmp_path / "emg_data"
    for info_path in examples.rglob("*_info.json"):
        info = read_info(info_path)
        folder = root / info_path.parent.relative_to(examples)
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(info_path, folder)
        index = info_path.name.split("_")[0]
        emg_samples, audio_samples = (sum(c[k] for c in info["chunks"]) for k in (0, 1))
        np.save(folder / f"{index}_emg.npy", np.random.default_rng(0).normal(size=(emg_samples, 8)))
        sf.write(folder / f"{index}_audio_clean.flac", np.zeros(audio_samples, dtype=np.float32), 16000)
    corpus = read_corpus(root)
    assert corpus.skipped == []
    sessions = {s.name: s for s in corpus.sessions}
    assert sessions["5-4"].silence_clips == 2 and sessions["5-4"].utterances == 0
    assert sessions["5-5"].utterances == 1
    sentence = corpus.scanned[[u.session for u in corpus.scanned].index("5-5")]
    assert sentence.sentence == (BOOK, 347) and sentence.text == "all i felt was that it was something very strange"
    closed = next(u for u in corpus.scanned if u.kind == "closed_vocab_voiced")
    assert closed.book == "datedata.txt" and closed.text == "0309 am"
