"""The synthetic corpus: layout, formats, pairing, split file, determinism, resume."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import soundfile as sf

from silentspeech.cli import main
from silentspeech.data.gaddy import load_utterance, read_corpus
from silentspeech.data.synthetic import articulation, espeak, language, recording
from silentspeech.data.synthetic import speech as synthetic
from silentspeech.emg_statistics import emg_statistics
from silentspeech.phonemes import NUM_PHONEMES, PHONEMES, SIL, format_textgrid, read_textgrid
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
    assert at(60) > 10 * at(53) and at(60) > 10 * at(67)  # muscle power lies around 60-120 Hz too
    assert at(120) > 5 * at(113)
    processed = preprocess_emg(emg)
    assert 0.2 < processed.std() < 5.0
    assert np.mean(np.abs(processed) > 25) < 1e-3


@pytest.mark.slow
def test_same_seed_same_files_with_any_workers_other_seed_other_corpus(tmp_path):
    first = synthetic.generate_corpus(tmp_path / "a", utterances=10, seed=7, sessions=1, silence_clips=1, progress=False)
    second = synthetic.generate_corpus(tmp_path / "b", utterances=10, seed=7, sessions=1, silence_clips=1, progress=False, workers=2)
    assert second.written == first.written and second.seconds == first.seconds
    synthetic.generate_corpus(tmp_path / "c", utterances=10, seed=8, sessions=1, silence_clips=1, progress=False)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    voiced = sum(1 for p in (tmp_path / "a").rglob("*_info.json") if "silent" not in p.parent.name and json.loads(p.read_text())["text"])
    assert len(files) == 5 * (first.utterances + first.silence_clips) + voiced + 2
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
    textgrid = next((root / "text_alignments/5-4").glob("*_audio.TextGrid"))
    grid = textgrid.read_bytes()
    textgrid.unlink()
    summary = synthetic.generate_corpus(root, utterances=10, seed=1, sessions=1, silence_clips=1, progress=False)
    assert summary.written == 3 and summary.skipped == summary.utterances + summary.silence_clips - 3
    assert emg_file.read_bytes() == original and textgrid.read_bytes() == grid
    with pytest.raises(synthetic.CorpusExistsError, match="seed"):
        synthetic.generate_corpus(root, utterances=10, seed=2, sessions=1, silence_clips=1, progress=False)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(synthetic.CorpusExistsError, match="not empty"):
        synthetic.generate_corpus(other, utterances=10, seed=1, progress=False)
    # A corpus of an older generator is refused by its version, never completed with new files.
    marker = json.loads((root / synthetic.MARKER).read_text())
    (root / synthetic.MARKER).write_text(json.dumps({**marker, "version": 4}))
    with pytest.raises(synthetic.CorpusExistsError, match="generator version 4, this is version 5"):
        synthetic.generate_corpus(root, utterances=10, seed=1, sessions=1, silence_clips=1, progress=False)


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


def test_every_phoneme_has_a_distinct_articulatory_target():
    targets = articulation.phoneme_targets()
    assert targets.shape == (NUM_PHONEMES, len(articulation.ARTICULATORS))
    distances = np.linalg.norm(targets[:, None] - targets[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    assert distances.min() > 0.1


def test_cli_writes_a_corpus_and_has_help(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["synth-corpus", "--help"])
    assert exit_info.value.code == 0
    assert "--utterances" in capsys.readouterr().out
    assert main(["synth-corpus", str(tmp_path / "c"), "--utterances", "10", "--seed", "2", "--sessions", "1"]) == 0
    out = capsys.readouterr().out
    assert "testset.json" in out and (tmp_path / "c" / "testset.json").is_file()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--generator", "gen4"], "unknown generator 'gen4'; choose one of default, independent"),
        (["--utterances", "0"], "--utterances must be a positive count (got 0)"),
        (["--utterances", "-3"], "--utterances must be a positive count (got -3)"),
        (["--hours", "0"], "--hours must be positive (got 0.0)"),
        (["--hours", "-0.5", "--generator", "independent"], "--hours must be positive (got -0.5)"),
        (["--book", "b.txt"], "--book is for --generator independent"),
    ],
)
def test_cli_bad_generator_or_size_is_a_one_line_error(tmp_path, capsys, arguments, message):
    assert main(["synth-corpus", str(tmp_path / "c"), *arguments]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "c").exists()


def test_hours_become_utterances_of_about_that_much_training_emg():
    assert synthetic.utterances_for_hours(0.659) == 1200
    assert synthetic.utterances_for_hours(1e-6) == 10
    with pytest.raises(ValueError, match="hours must be positive"):
        synthetic.utterances_for_hours(0)


def test_second_rendition_keeps_the_speech_and_redraws_the_noise_floor(corpus, tmp_path):
    root, _ = corpus
    path = root / "voiced_parallel_data/5-4/2_audio_clean.flac"
    recorded, rate = sf.read(path, dtype="float32")
    again = synthetic.second_rendition(path, noise_seed=1)
    assert rate == synthetic.AUDIO_RATE and again.dtype == np.float32 and again.shape == recorded.shape
    assert np.abs(again - recorded).max() > 1e-4  # a new noise floor ...
    assert np.corrcoef(again, recorded)[0, 1] > 0.95  # ... under the same espeak-ng speech
    assert np.array_equal(again, synthetic.second_rendition(path, noise_seed=1))  # a function of the seed
    # Without a noise seed the corpus's own file comes out again (up to its 16-bit samples).
    item = next(it for it in synthetic.plan_corpus(30, 3, sessions=2)[0] if it.folder == "voiced_parallel_data/5-4" and it.index == 2)
    assert np.abs(synthetic.render_utterance(item, 3)["audio_clean"] - recorded).max() < 1e-4
    outside = tmp_path / "0_audio_clean.flac"
    sf.write(outside, recorded, rate)
    with pytest.raises(ValueError, match="not in a synthetic corpus"):
        synthetic.second_rendition(outside)


def test_voiced_utterances_have_textgrids_the_reader_turns_into_phoneme_frames(corpus):
    root, _ = corpus
    read = read_corpus(root)
    voiced = [u for u in read.utterances if not u.silent]
    assert voiced and all(u.alignment is not None for u in voiced)
    assert all(u.alignment is None for u in read.utterances if u.silent)  # they train on their voiced twin's
    utterance = next(u for u in voiced if u.kind == "parallel") if any(u.kind == "parallel" for u in voiced) else voiced[0]
    arrays = load_utterance(utterance)
    assert arrays.phonemes is not None and arrays.phonemes.shape == (arrays.features.shape[0],)
    assert arrays.phonemes[0] == SIL and arrays.phonemes[-1] == SIL  # rests before and after
    spoken = arrays.phonemes[arrays.phonemes != SIL]
    assert len(np.unique(spoken)) >= 5
    # The TextGrid covers the whole recording: its end is the audio's length.
    intervals = read_textgrid(utterance.alignment)
    assert intervals[0][0] == 0.0 and abs(intervals[-1][1] - utterance.emg_samples / 1000.0) < 1e-6


def test_speech_is_loud_where_the_timeline_has_phonemes_and_quiet_in_the_rests(corpus):
    root, _ = corpus
    path = root / "voiced_parallel_data/5-4/2_audio_clean.flac"
    audio, rate = sf.read(path, dtype="float32")
    intervals = read_textgrid(root / "text_alignments/5-4/5-4_2_audio.TextGrid")
    lead, trail = intervals[0], intervals[-1]
    assert lead[2] == "sil" and trail[2] == "sil"
    rms = lambda a, b: float(np.sqrt(np.mean(audio[int(a * rate) : int(b * rate)] ** 2)))  # noqa: E731
    speech = rms(intervals[1][0], intervals[-2][1])
    assert speech > 0.02 and rms(*lead[:2]) < 0.05 * speech and rms(*trail[:2]) < 0.05 * speech


def test_emg_shape_statistics_lie_near_real_facial_emg(corpus):
    root, _ = corpus
    silent = sorted(root.glob("silent_parallel_data/*/*_emg.npy"))
    recordings = [np.load(p) for p in silent if json.loads(Path(str(p).replace("_emg.npy", "_info.json")).read_text())["text"]]
    stats = emg_statistics(recordings, 1000.0)
    assert 70 <= stats.median_frequency <= 120, stats
    assert stats.high_share <= 0.25, stats
    assert stats.kurtosis >= 4, stats
    assert 0.05 <= stats.channel_correlation <= 0.3, stats
    # Below 20 Hz real EMG holds only motion artefact (EMG-UKA: 0.025); generator 4's slow view of
    # the articulators put 0.24 there and made the corpus easy in a way real EMG is not.
    assert stats.slow_share <= 0.05, stats


def test_silent_twins_are_mouthed_weaker_than_voiced_without_the_larynx(corpus):
    """Silent EMG differs from voiced beyond timing: hypo-articulated, no voicing drive, weaker per channel."""
    plan, _ = synthetic.plan_corpus(30, 3, sessions=2)
    silent = next(it for it in plan if it.silent and not it.is_silence_clip and it.folder.startswith("silent_parallel"))
    voiced = next(it for it in plan if not it.silent and it.sentence_index == silent.sentence_index and it.book == silent.book)
    spoken = synthetic._spoken(voiced, 3)
    loud, quiet = synthetic._performance_of(voiced, spoken, 3), synthetic._performance_of(silent, spoken, 3)
    voicing = articulation.ARTICULATORS.index("voicing")
    assert quiet.targets[:, voicing].max() == 0.0 and loud.targets[:, voicing].max() > 0.5
    rest = articulation.phoneme_targets()[-1]
    assert np.abs(quiet.targets - rest).mean() < 0.9 * np.abs(loud.targets - rest).mean()
    session = recording.session_recording(silent.session, 3)
    assert np.all(session.silent_gain < 1.5) and session.silent_gain.std() > 0  # per channel, mostly below 1
    emg = {it.silent: synthetic.render_utterance(it, 3)["emg"] for it in (voiced, silent)}
    power = {k: preprocess_emg(v).std() for k, v in emg.items()}
    assert power[True] < power[False]


def test_sessions_move_the_electrodes():
    """Each session sees the muscles through its own channel-to-muscle mixing, not only its own gains."""
    first, second = (recording.session_mixing(recording.session_recording(name, 0)) for name in ("5-4", "5-5"))
    base = recording.electrode_model().crosstalk
    assert not np.allclose(first, base) and not np.allclose(first, second)
    assert np.abs(first - second).max() > 0.05
    # A displaced electrode still sees its own muscle most.
    assert np.all(np.argmax(first, axis=1) == np.arange(first.shape[0]))


def test_espeak_timeline_is_aligned_and_mapped_to_arpabet():
    spoken = espeak.speak("The man saw the waves under the house.", espeak.Voice("en-us", 170, 50, 55))
    assert spoken.audio.dtype == np.float32 and spoken.audio.size > espeak.ESPEAK_RATE
    assert np.all(np.diff(spoken.starts) >= 0) and 0 <= spoken.starts[0] and spoken.starts[-1] <= spoken.audio.size
    timeline = espeak.arpabet_timeline(spoken)
    assert timeline[0][0] == 0 and timeline[-1][1] == spoken.audio.size
    assert all(a[1] == b[0] for a, b in zip(timeline, timeline[1:]))
    assert {phone for _, _, phone in timeline} <= set(PHONEMES)
    assert [p for _, _, p in timeline if p != "sil"][:5] == ["dh", "ax", "m", "ae", "n"]
    espeak.speak("Another prompt, at another rate.", espeak.Voice("en-us", 150, 40, 60))
    again = espeak.speak("The man saw the waves under the house.", espeak.Voice("en-us", 170, 50, 55))
    assert again.audio.tobytes() == spoken.audio.tobytes() and np.array_equal(again.starts, spoken.starts)
    with pytest.raises(espeak.EspeakError, match="no voice"):
        espeak.speak("hello", espeak.Voice("no-such-voice"))
    with pytest.raises(espeak.EspeakError, match="empty prompt"):
        espeak.speak("  ")
    with pytest.raises(espeak.EspeakError, match="no ARPAbet class"):
        espeak.to_arpabet("Q!")


def test_textgrid_round_trip_and_bad_intervals(tmp_path):
    intervals = [(0.0, 0.2, "sil"), (0.2, 0.25, "dh"), (0.25, 0.4, "ax"), (0.4, 0.6, "sil")]
    path = tmp_path / "x.TextGrid"
    path.write_text(format_textgrid(intervals))
    assert read_textgrid(path) == intervals
    with pytest.raises(ValueError, match="does not follow"):
        format_textgrid([(0.0, 0.2, "sil"), (0.3, 0.4, "ax")])


def _speak_in_process_and_workers(tmpdir: str) -> list[str]:
    """Run a fresh Python that speaks in its main process and in two pool workers; the voice folders each used."""
    script = (
        "import json\n"
        "from silentspeech.data.synthetic import espeak\n"
        "from silentspeech.workers import each_result\n"
        "def say(text):\n"
        "    assert espeak.speak(text, espeak.Voice('en-us', 170, 50, 55)).audio.size > 0\n"
        "    return espeak._voice_folder()\n"
        "folders = [say('the first prompt'), say('the second prompt')]\n"
        "folders += each_result(say, [('in a worker',), ('in another worker',)], workers=2)\n"
        "print(json.dumps(folders))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "TMPDIR": tmpdir}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_espeak_voice_folders_are_removed_at_exit(tmp_path):
    """The main process, its per-prompt forked children and pool workers leave no voice folder behind;
    a TMPDIR too deep for espeak-ng's voice path limit (pytest's tmp_path) still speaks."""
    short = tempfile.mkdtemp(prefix="ss", dir="/tmp")
    try:
        folders = _speak_in_process_and_workers(short)
        assert all(folder.startswith(short) for folder in folders)
        assert not os.listdir(short)  # nothing left, not even by the per-prompt children
    finally:
        shutil.rmtree(short, ignore_errors=True)
    folders = _speak_in_process_and_workers(str(tmp_path))
    assert folders and not any(os.path.exists(folder) for folder in folders)
