"""Any plausible EMG rate: 250 Hz to 20 kHz is resampled to the models' 689.06 Hz, a rate below the training rate
is warned about once per source, and the real EMG-UKA sentences (600 Hz, 6 channels) are prepared, trained on and
recognised."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import soundfile
import torch
import torch.nn.functional as F
from conftest import save_run

from silentspeech.data.cache import CachedUtterances, collate_utterances, prepare_cache, read_manifest
from silentspeech.data.emg_files import read_emg_file
from silentspeech.data.gaddy import read_corpus
from silentspeech.inference.pipeline import SilentSpeechPipeline, check_recording
from silentspeech.inference.streaming import StreamingRecognizer
from silentspeech.models.speech import SpeechModel, SpeechModelConfig
from silentspeech.models.tinymyo import TinyMyoConfig
from silentspeech.tasks.recognition import ctc_loss
from silentspeech.preprocessing import EMG_PER_FRAME, EMG_RATE, EMGError, EMGPreprocessing, preprocess_emg

#: The EMG constants of the EMG-UKA corpus (its README: 600 Hz, 6 EMG channels; recorded in Karlsruhe, 50 Hz mains).
UKA = EMGPreprocessing(rate=600.0, channels=6, mains=50.0)
#: What the pipeline, streaming and corpus reading say of a 249 Hz rate, after the source's name.
REFUSAL = ": sampling rate 249 Hz is implausible for surface EMG; it must be 250 to 20000 Hz. Check --rate"


def tiny_recognizer(channels: int = 8) -> SpeechModel:
    encoder = TinyMyoConfig(dim=16, depth=1, heads=1, mlp_dim=32, dropout=0.0, drop_path=0.0, position="rope")
    return SpeechModel(SpeechModelConfig(width=16, emg_channels=channels, encoder=encoder, outputs=["ctc"])).eval()


def noise(seconds: float, rate: float, channels: int = 8) -> np.ndarray:
    return np.random.default_rng(0).normal(0, 20, (round(seconds * rate), channels))


def rate_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "trained on" in r.getMessage()]


def test_a_250_hz_tone_is_upsampled_as_the_same_tone_at_1000_hz_is_downsampled():
    """At 250 Hz only the 60 and 120 Hz notches fit under Nyquist (the Gaddy recipe's 180-420 Hz are skipped) and the
    recording is upsampled: a 90 Hz tone comes out at 689.06 Hz as it does from 1000 Hz."""

    def tone(rate: float) -> np.ndarray:
        return 40 * np.sin(2 * np.pi * 90 * np.arange(round(4 * rate)) / rate)[:, None].repeat(8, axis=1)

    low = preprocess_emg(tone(250.0), EMGPreprocessing(rate=250.0))
    high = preprocess_emg(tone(1000.0), EMGPreprocessing(rate=1000.0))
    assert low.shape == high.shape == (round(4 * EMG_RATE), 8)
    middle = slice(round(EMG_RATE), -round(EMG_RATE))  # 1 s from the ends: past the unprimed filters' edge transients
    # Measured: 0.012 apart in the middle, of an amplitude of 2 model units (the resamplers' pass bands differ).
    np.testing.assert_allclose(low[middle], high[middle], rtol=0, atol=0.02)


def test_a_250_hz_recording_is_accepted_with_one_warning(tmp_path, caplog):
    path = tmp_path / "cyton_serial.npy"
    np.save(path, noise(4.0, 250.0))
    pipeline = SilentSpeechPipeline(recognizer=tiny_recognizer(), beam=4, device="cpu")  # a built model: trained at 1000 Hz
    recording = read_emg_file(path, rate=250.0, channels=8)
    with caplog.at_level(logging.WARNING):
        result = pipeline.run(recording)
        pipeline.run(recording)  # the same source again: no second warning
        recognizer = StreamingRecognizer(pipeline, 250.0, source="cyton stream")
        events = list(recognizer.events((chunk, None) for chunk in np.split(noise(2.0, 250.0), 10)))
    assert rate_warnings(caplog) == [
        f"{path}: EMG at 250 Hz is below the 1000 Hz the models were trained on: its band above 125 Hz is missing, "
        "so the results may be worse",
        "cyton stream: EMG at 250 Hz is below the 1000 Hz the models were trained on: its band above 125 Hz is "
        "missing, so the results may be worse",
    ]
    assert result.emg.shape == (round(4.0 * EMG_RATE), 8) and np.isfinite(result.emg).all()
    assert isinstance(result.greedy_text, str) and isinstance(result.beam_text, str)
    assert events[-1].final and isinstance(events[-1].text, str)


def test_249_hz_is_refused_naming_the_file_and_the_bounds(tmp_path):
    path = tmp_path / "too_slow.npy"
    np.save(path, noise(4.0, 249.0))
    pipeline = SilentSpeechPipeline(recognizer=tiny_recognizer(), beam=4, device="cpu")
    with pytest.raises(EMGError) as refused:
        pipeline.run(read_emg_file(path, rate=249.0, channels=8))
    assert str(refused.value) == f"{path}{REFUSAL}"
    with pytest.raises(EMGError) as refused:
        StreamingRecognizer(pipeline, 249.0, source="stdin")
    assert str(refused.value) == f"stdin{REFUSAL}"
    (tmp_path / "corpus" / "voiced_parallel_data").mkdir(parents=True)
    with pytest.raises(EMGError) as refused:
        read_corpus(tmp_path / "corpus", preprocessing=EMGPreprocessing(rate=249.0))
    assert str(refused.value) == f"{tmp_path / 'corpus'} (the EMG rate of the corpus){REFUSAL}"
    with pytest.raises(EMGError, match="20001 Hz is implausible"):
        check_recording(noise(1.0, 1000.0), 20_001.0, channels=8, source="x.npy")


# --- the real EMG-UKA silent sentences ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def uka_sentences(shared_data) -> list[dict]:
    """The 5 EMG-UKA silent sentences: ``emg`` (samples, 6) at 600 Hz, ``audio`` at 16 kHz, ``text``."""
    folder = shared_data / "real" / "emg_uka_silent"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    sentences = []
    for path in sorted(folder.glob("*.npz")):
        with np.load(path, allow_pickle=False) as arrays:
            assert int(arrays["emg_rate_hz"]) == 600 and arrays["emg"].shape[1] == 6
            sentences.append({"emg": arrays["emg"], "audio": arrays["audio"], "text": str(arrays["transcript"]).lower()})
    return sentences


def write_gaddy_layout(root, sentences: list[dict]) -> None:
    """The sentences as one voiced session of a Gaddy-layout corpus, as a user converting EMG-UKA would write it."""
    session = root / "emg_data" / "voiced_parallel_data" / "uka-002-001"
    session.mkdir(parents=True)
    for index, sentence in enumerate(sentences):
        np.save(session / f"{index}_emg.npy", sentence["emg"])
        soundfile.write(session / f"{index}_audio_clean.flac", sentence["audio"], 16000)
        info = {"book": "emg-uka", "sentence_index": index, "text": sentence["text"], "chunks": None}
        (session / f"{index}_info.json").write_text(json.dumps(info))


def test_emg_uka_sentences_are_prepared_trained_on_and_recognised(uka_sentences, tmp_path, caplog):
    """The readers take a 600 Hz 6-channel corpus, a 6-channel model takes a few steps on its cache, and the
    pipeline reads the raw sentences at their own rate through it, without a rate warning (it was trained at 600 Hz)."""
    corpus = tmp_path / "corpus"
    write_gaddy_layout(corpus, uka_sentences)
    assert not read_corpus(corpus, preprocessing=UKA).skipped
    assert read_corpus(corpus).skipped[0].reason.startswith("expected EMG of shape (samples, 8)")  # Gaddy's constants
    seconds = sum(s["emg"].shape[0] for s in uka_sentences) / 600
    assert read_corpus(corpus, preprocessing=UKA).sessions[0].seconds == pytest.approx(seconds)

    report = prepare_cache(corpus, tmp_path / "cache", workers=0, preprocessing=UKA)
    assert report.written == 5 and not report.skipped
    assert read_manifest(tmp_path / "cache")["settings"]["preprocessing"]["rate"] == 600.0
    train = CachedUtterances(tmp_path / "cache", "train")
    batch = collate_utterances([train[i] for i in range(len(train))])
    assert batch["emg"].shape[1] == 6

    torch.manual_seed(0)
    model = tiny_recognizer(channels=6).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(3):
        log_probs = F.log_softmax(model(batch["emg"], batch["emg_lengths"])["ctc_logits"], dim=-1)
        loss = ctc_loss(log_probs, batch["emg_lengths"] // EMG_PER_FRAME, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    run = save_run(tmp_path / "run", model.eval(), "recognition", UKA)

    pipeline = SilentSpeechPipeline(recognizer=run, beam=4, device="cpu")
    assert pipeline.channels == 6 and pipeline.preprocessing == UKA
    with caplog.at_level(logging.WARNING):
        for index, sentence in enumerate(uka_sentences):
            path = tmp_path / f"uka_{index}.npy"
            np.save(path, sentence["emg"])
            result = pipeline.run(read_emg_file(path, rate=600.0, channels=6))
            assert result.emg.shape == (round(sentence["emg"].shape[0] * EMG_RATE / 600), 6)
            assert isinstance(result.greedy_text, str) and isinstance(result.beam_text, str)
    assert rate_warnings(caplog) == []
