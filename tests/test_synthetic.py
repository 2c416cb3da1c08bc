"""The synthetic corpus: layout, formats, pairing, split file, determinism, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import soundfile as sf

from silentspeech.cli import main
from silentspeech.data.gaddy import read_corpus
from silentspeech.data.synthetic import language
from silentspeech.data.synthetic import speech as synthetic
from silentspeech.preprocessing import preprocess_emg
from silentspeech.text import CHARACTERS, normalize_text

FOLDERS = (
    "voiced_parallel_data/5-4",
    "voiced_parallel_data/5-5",
    "silent_parallel_data/5-4_silent",
    "silent_parallel_data/5-5_silent",
    "nonparallel_data/4-24",
    "closed_vocab/voiced/5-19",
    "closed_vocab/silent/5-19_silent",
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, synthetic.CorpusSummary]:
    root = tmp_path_factory.mktemp("synthetic") / "corpus"
    return root, synthetic.generate_corpus(root, utterances=30, seed=3, sessions=2, progress=False)


def _infos(root: Path) -> list[tuple[Path, dict]]:
    return [(p, json.loads(p.read_text())) for p in sorted(root.glob("**/*_info.json"))]


def test_layout_and_file_formats(corpus):
    root, summary = corpus
    for folder in FOLDERS:
        assert (root / folder).is_dir(), folder
    infos = _infos(root)
    assert len(infos) == summary.utterances + summary.silence_clips == 30 + 2 * len(FOLDERS)
    for info_path, info in infos:
        stem = str(info_path)[: -len("_info.json")]
        assert set(info) == {"book", "sentence_index", "text", "chunks"}
        chunks = np.array(info["chunks"])
        emg = np.load(stem + "_emg.npy")
        assert emg.ndim == 2 and emg.shape[1] == 8 and np.issubdtype(emg.dtype, np.floating)
        assert np.isfinite(emg).all()
        assert chunks[:, 0].sum() == emg.shape[0]
        button = np.load(stem + "_button.npy")
        assert button.dtype == bool and chunks[:, 2].sum() == button.shape[0]
        for name in ("_audio.flac", "_audio_clean.flac"):
            audio_info = sf.info(stem + name)
            assert (audio_info.samplerate, audio_info.channels, audio_info.format) == (16000, 1, "FLAC")
            assert audio_info.frames == chunks[:, 1].sum() == 16 * emg.shape[0]


def test_gaddy_reader_reads_it_without_skips(corpus):
    root, summary = corpus
    read = read_corpus(root)
    assert read.skipped == []
    assert read.split_source.endswith("testset.json") or "testset.json" in read.split_source
    silent = [u for u in read.utterances if u.silent]
    assert silent and all(u.twin is not None for u in silent)
    assert {u.split for u in silent} >= {"train", "dev", "test"}


def test_silence_clips_start_every_folder(corpus):
    root, _ = corpus
    for folder in FOLDERS:
        info = json.loads((root / folder / "0_info.json").read_text())
        assert info["sentence_index"] == -1 and info["text"] == "" and info["book"] == ""


def test_silent_twins_pair_with_voiced_and_are_time_warped(corpus):
    root, _ = corpus
    voiced, silent = {}, {}
    for path, info in _infos(root):
        if info["sentence_index"] == -1:
            continue
        key = (info["book"], info["sentence_index"])
        target = silent if "silent" in path.parent.name else voiced
        assert key not in target, f"duplicate sentence {key}"
        target[key] = (info["text"], sum(c[0] for c in info["chunks"]), path)
    assert silent
    for key, (text, samples, path) in silent.items():
        assert key in voiced, f"{path}: no voiced twin"
        assert voiced[key][0] == text
    lengths_differ = sum(samples != voiced[key][1] for key, (_, samples, _) in silent.items())
    assert lengths_differ >= len(silent) - 1
    # A silent twin's clean audio holds no speech.
    for key, (_, _, path) in list(silent.items())[:3]:
        quiet, _ = sf.read(str(path).replace("_info.json", "_audio_clean.flac"))
        loud, _ = sf.read(str(voiced[key][2]).replace("_info.json", "_audio_clean.flac"))
        assert np.sqrt(np.mean(quiet**2)) < 0.1 * np.sqrt(np.mean(loud**2))


def test_split_file_format(corpus):
    root, summary = corpus
    split = json.loads((root / "testset.json").read_text())
    assert set(split) == {"dev", "test"} and split["dev"] and split["test"]
    silent_sentences = {
        (info["book"], info["sentence_index"]) for path, info in _infos(root) if path.parts[-3] == "silent_parallel_data"
    }
    dev = {tuple(x) for x in split["dev"]}
    test = {tuple(x) for x in split["test"]}
    assert not dev & test
    for book, index in dev | test:
        assert isinstance(book, str) and isinstance(index, int)
        assert (book, index) in silent_sentences
    assert (len(dev), len(test)) == (summary.dev_sentences, summary.test_sentences)


def test_mains_hum_in_raw_emg_and_scale_after_preprocessing(corpus):
    root, _ = corpus
    emg = np.load(root / "voiced_parallel_data/5-4/3_emg.npy")
    freqs, power = scipy.signal.welch(emg, fs=1000.0, nperseg=1000, axis=0)
    at = lambda hz: power[np.argmin(np.abs(freqs - hz))].mean()  # noqa: E731
    assert at(60) > 50 * at(53) and at(60) > 50 * at(67)
    assert at(120) > 5 * at(113)
    processed = preprocess_emg(emg)
    assert 0.2 < processed.std() < 5.0
    assert np.mean(np.abs(processed) > 25) < 1e-3


def test_same_seed_same_files_other_seed_other_corpus(tmp_path):
    first = synthetic.generate_corpus(tmp_path / "a", utterances=10, seed=7, sessions=1, silence_clips=1, progress=False)
    synthetic.generate_corpus(tmp_path / "b", utterances=10, seed=7, sessions=1, silence_clips=1, progress=False)
    synthetic.generate_corpus(tmp_path / "c", utterances=10, seed=8, sessions=1, silence_clips=1, progress=False)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 5 * (first.utterances + first.silence_clips) + 2
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    texts = lambda root: sorted(json.loads(p.read_text())["text"] for p in root.rglob("*_info.json"))  # noqa: E731
    assert texts(tmp_path / "a") != texts(tmp_path / "c")


def test_rerun_completes_missing_files_and_refuses_other_settings(tmp_path):
    root = tmp_path / "corpus"
    synthetic.generate_corpus(root, utterances=10, seed=1, sessions=1, silence_clips=1, progress=False)
    emg_file = root / "voiced_parallel_data/5-4/2_emg.npy"
    original = emg_file.read_bytes()
    emg_file.unlink()
    (root / "nonparallel_data/4-24/1_info.json").unlink()
    summary = synthetic.generate_corpus(root, utterances=10, seed=1, sessions=1, silence_clips=1, progress=False)
    assert summary.written == 2 and summary.skipped == summary.utterances + summary.silence_clips - 2
    assert emg_file.read_bytes() == original
    with pytest.raises(synthetic.CorpusExistsError, match="seed"):
        synthetic.generate_corpus(root, utterances=10, seed=2, sessions=1, silence_clips=1, progress=False)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(synthetic.CorpusExistsError, match="not empty"):
        synthetic.generate_corpus(other, utterances=10, seed=1, progress=False)


def test_too_few_utterances_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="at least 10"):
        synthetic.generate_corpus(tmp_path / "x", utterances=3, progress=False)


def test_vocabulary_and_grammar():
    words = language.open_vocabulary()
    assert len(words) >= 1000
    rng = np.random.default_rng(0)
    for _ in range(300):
        text = normalize_text(language.open_sentence(rng))
        tokens = text.split()
        assert language.MIN_WORDS <= len(tokens) <= language.MAX_WORDS, text
        assert set(tokens) <= words, text
    for _ in range(100):
        text = normalize_text(language.closed_vocab_sentence(rng))
        assert text and set(text) <= set(CHARACTERS), text
    assert language.sentences(5, seed=4) == language.sentences(5, seed=4)


def test_every_character_has_a_distinct_articulatory_target():
    targets = synthetic.symbol_targets()
    assert targets.shape == (len(CHARACTERS) + 1, len(synthetic.ARTICULATORS))
    distances = np.linalg.norm(targets[:, None] - targets[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    assert distances.min() > 0.3


def test_cli_writes_a_corpus_and_has_help(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["synth-corpus", "--help"])
    assert exit_info.value.code == 0
    assert "--utterances" in capsys.readouterr().out
    assert main(["synth-corpus", str(tmp_path / "c"), "--utterances", "10", "--seed", "2", "--sessions", "1"]) == 0
    out = capsys.readouterr().out
    assert "testset.json" in out and (tmp_path / "c" / "testset.json").is_file()


def test_second_rendition_keeps_the_speech_and_redraws_the_noise(corpus, tmp_path):
    root, _ = corpus
    path = root / "voiced_parallel_data/5-4/2_audio_clean.flac"
    recorded, rate = sf.read(path, dtype="float32")
    again = synthetic.second_rendition(path, noise_seed=1)
    assert rate == synthetic.AUDIO_RATE and again.dtype == np.float32 and again.shape == recorded.shape
    assert np.abs(again - recorded).max() > 0.01  # new breath and frication noise ...
    assert np.corrcoef(again, recorded)[0, 1] > 0.8  # ... on the same glottal pulses and formants
    assert np.array_equal(again, synthetic.second_rendition(path, noise_seed=1))  # a function of the seed
    # Without a noise seed the corpus's own file comes out again (up to its 16-bit samples).
    item = next(it for it in synthetic.plan_corpus(30, 3, sessions=2)[0] if it.folder == "voiced_parallel_data/5-4" and it.index == 2)
    assert np.abs(synthetic.render_utterance(item, 3)["audio_clean"] - recorded).max() < 1e-4
    outside = tmp_path / "0_audio_clean.flac"
    sf.write(outside, recorded, rate)
    with pytest.raises(ValueError, match="not in a synthetic corpus"):
        synthetic.second_rendition(outside)
