"""Streaming recognition and `silentspeech stream`: tiny untrained models, scripted CTC posteriors, synthetic EMG."""

from __future__ import annotations

import io
import math
import time

import numpy as np
import pytest
import torch

from silentspeech.atomic import atomic_save_safetensors, atomic_write_text
from silentspeech.cli import main
from silentspeech.config import config_to_yaml
from silentspeech.data.emg_files import EMGRecording
from silentspeech.decoding.ngram import estimate_kneser_ney, write_arpa
from silentspeech.features import FRAME_RATE
from silentspeech.inference.pipeline import SilentSpeechPipeline
from silentspeech.inference.streaming import FILTER_CONTEXT_S, StreamingRecognizer, read_float32_chunks, replay_recording
from silentspeech.models.speech import SpeechModel, SpeechModelConfig
from silentspeech.models.tinymyo import TinyMyoConfig
from silentspeech.preprocessing import EMG_PER_FRAME, EMG_RATE, EMGError, EMGPreprocessing, preprocess_emg
from silentspeech.tasks.recognition import RecognitionConfig
from silentspeech.text import BLANK, LABELS

RATE = 1000.0


def tiny_recognizer() -> SpeechModel:
    torch.manual_seed(0)
    encoder = TinyMyoConfig(dim=16, depth=1, heads=1, mlp_dim=32, dropout=0.0, drop_path=0.0, position="rope")
    return SpeechModel(SpeechModelConfig(width=16, encoder=encoder, outputs=["ctc"])).eval()


def raw_emg(seconds: float, channels: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 20, (int(seconds * RATE), channels))


@pytest.fixture(scope="module")
def pipeline() -> SilentSpeechPipeline:
    return SilentSpeechPipeline(recognizer=tiny_recognizer(), beam=4, device="cpu")


def stream(recognizer: StreamingRecognizer, emg: np.ndarray, chunk_ms: float = 200.0):
    recording = EMGRecording(emg=emg, rate=recognizer.rate, source="test")
    *events, final = recognizer.events(replay_recording(recording, chunk_ms, realtime=False))
    return events, final


class ScriptedCTC:
    """Stands in for the recogniser's graph: spells ``words`` at fixed stream times, whatever the EMG.

    Word ``i`` starts at ``start_s + i * gap_s``; each character holds one
    frame, blanks between, a space frame after the word. ``segment_start`` gives
    the current segment's first raw sample, so times stay put across segments.
    """

    def __init__(self, words, segment_start, start_s: float = 0.3, gap_s: float = 0.5):
        self.words, self.segment_start, self.start_s, self.gap_s = words, segment_start, start_s, gap_s

    def __call__(self, emg: torch.Tensor) -> dict[str, torch.Tensor]:
        frames = math.ceil(emg.shape[2] / EMG_PER_FRAME)
        offset = round(self.segment_start() / RATE * FRAME_RATE)
        logits = torch.zeros(1, frames, len(LABELS))
        logits[0, :, BLANK] = 10.0
        for i, word in enumerate(self.words):
            first = round((self.start_s + i * self.gap_s) * FRAME_RATE) - offset
            for j, label in enumerate(word + " "):
                if 0 <= first + 2 * j < frames:
                    logits[0, first + 2 * j, LABELS.index(label)] = 20.0
        return {"ctc_logits": logits}

    def end_s(self, i: int) -> float:
        """Stream time at which word ``i``'s last character is spelled."""
        return self.start_s + i * self.gap_s + 2 * (len(self.words[i]) - 1) / FRAME_RATE


def test_final_greedy_text_is_the_pipeline_s_on_the_whole_recording(pipeline):
    emg = raw_emg(2.3)
    events, final = stream(StreamingRecognizer(pipeline, RATE), emg)
    offline = pipeline.run(emg, rate=RATE)
    assert final.final and final.tentative == "" and final.time_s == pytest.approx(2.3)
    assert final.greedy == offline.greedy_text and final.greedy
    assert len(events) == 12 and all(e.latency_ms >= 0 for e in events)


def test_without_firming_the_final_text_is_the_offline_beam_search(pipeline):
    emg = raw_emg(1.6, seed=1)
    _, final = stream(StreamingRecognizer(pipeline, RATE, settle_s=100.0, max_segment_s=1000.0), emg)
    assert final.firm == pipeline.run(emg, rate=RATE).beam_text


def test_words_firm_up_in_order_once_settled(pipeline, monkeypatch):
    words = ["alpha", "beta", "gamma", "delta"]
    recognizer = StreamingRecognizer(pipeline, RATE, settle_s=0.3, agreement=2)
    monkeypatch.setattr(pipeline, "recognizer_graph", ScriptedCTC(words, lambda: recognizer.segment.start))
    events, final = stream(recognizer, raw_emg(2.6), chunk_ms=100.0)
    firm = [e.firm for e in events]
    assert all(later.startswith(earlier) for earlier, later in zip(firm, firm[1:]))
    assert final.firm == "alpha beta gamma delta"
    script = recognizer.pipeline.recognizer_graph
    for i, word in enumerate(words[:3]):
        first_firm = next(e for e in events if len(e.firm.split()) > i)
        assert first_firm.time_s >= script.end_s(i) + 0.3 - 1.5 / FRAME_RATE, word  # settled before firming
    assert events[-1].firm == "alpha beta gamma"  # the last word waits for the end (no successor yet)
    assert events[-1].tentative == "delta"


def test_segments_stay_bounded_and_lose_no_words(pipeline, monkeypatch):
    words = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    recognizer = StreamingRecognizer(pipeline, RATE, settle_s=0.25, agreement=2, max_segment_s=1.5, context_s=0.5)
    monkeypatch.setattr(pipeline, "recognizer_graph", ScriptedCTC(words, lambda: recognizer.segment.start, gap_s=0.45))
    recording = EMGRecording(emg=raw_emg(4.6), rate=RATE, source="test")
    longest = 0
    for chunk, arrival in replay_recording(recording, 100.0, realtime=False):
        recognizer.push(chunk, arrival)
        longest = max(longest, recognizer.segment.samples)
    assert recognizer.segment.start > 0
    assert longest <= 1.5 * RATE + 100
    assert recognizer.finish().firm == " ".join(words)


def test_decode_words_spells_the_beam_search_text_with_frame_spans(pipeline):
    script = ScriptedCTC(["over", "the", "hill"], lambda: 0)
    log_probs = torch.log_softmax(script(torch.zeros(1, 8, 8 * 160))["ctc_logits"], dim=-1)[0].numpy()
    log_probs = log_probs + np.random.default_rng(0).normal(0, 0.5, log_probs.shape).astype(np.float32)
    words = pipeline.beam_decoder.decode_words(log_probs)
    assert " ".join(word for word, _, _ in words) == pipeline.beam_decoder.decode(log_probs) == "over the hill"
    assert [first for _, first, _ in words] == [round((0.3 + i * 0.5) * FRAME_RATE) for i in range(3)]
    assert all(first < end <= len(log_probs) for _, first, end in words)


def test_a_new_segment_sees_the_offline_input_beyond_its_context():
    """What a segment restart relies on: primed by FILTER_CONTEXT_S of raw EMG before it, the
    segment's preprocessed EMG equals the whole recording's once the network's left context is past."""
    raw = raw_emg(6.0)
    config = EMGPreprocessing(rate=RATE, channels=8)
    whole = preprocess_emg(raw, config)
    start = 5 * 640  # on the 689.0625 Hz grid: 3200 * 689.0625 / 1000 = 2205 samples
    segment = preprocess_emg(raw[start:], config, before=raw[start - int(FILTER_CONTEXT_S * RATE) : start])
    aligned = whole[2205:]
    assert segment.shape == aligned.shape
    context = round(1.5 * EMG_RATE)  # StreamingRecognizer's default context_s
    np.testing.assert_allclose(segment[context:], aligned[context:], atol=1e-5)
    assert np.abs(segment[:10] - aligned[:10]).max() > 1e-3  # the start itself differs (resampler edge): hence the context


def test_bad_chunks_and_rates_are_named(pipeline):
    recognizer = StreamingRecognizer(pipeline, RATE, source="probe.npy")
    with pytest.raises(EMGError, match="probe.npy at 0.00 s: expected 8 channels, got 6"):
        recognizer.push(raw_emg(0.2, channels=6))
    emg = raw_emg(0.2)
    emg[5, 2] = np.nan
    with pytest.raises(EMGError, match="probe.npy at 0.00 s: EMG holds 1 NaN"):
        recognizer.push(emg)
    with pytest.raises(EMGError, match="probe.npy: sampling rate 249 Hz is implausible for surface EMG; it must be 250 to 20000 Hz"):
        StreamingRecognizer(pipeline, 249.0, source="probe.npy")


class Trickle(io.RawIOBase):
    """A byte stream that hands out at most ``step`` bytes per read, like a pipe."""

    def __init__(self, data: bytes, step: int = 7):
        self.data, self.step = data, step

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = self.step if size < 0 else min(size, self.step)
        out, self.data = self.data[:size], self.data[size:]
        return out


def test_stdin_format_is_interleaved_little_endian_float32():
    emg = raw_emg(1.0).astype(np.float32)
    for stream in (io.BytesIO(emg.astype("<f4").tobytes()), Trickle(emg.astype("<f4").tobytes())):
        chunks = [chunk for chunk, _ in read_float32_chunks(stream, 8, 300)]
        assert [len(c) for c in chunks] == [300, 300, 300, 100]
        np.testing.assert_array_equal(np.concatenate(chunks), emg)
    truncated = io.BytesIO(emg[:10].astype("<f4").tobytes() + b"\x00" * 5)
    with pytest.raises(EMGError, match=r"stdin: the stream ended inside a sample frame: 5 bytes after sample 10.*32 bytes"):
        list(read_float32_chunks(truncated, 8, 4))
    assert list(read_float32_chunks(io.BytesIO(b""), 8, 4)) == []


def test_realtime_replay_paces_chunks_and_joins_those_that_waited():
    recording = EMGRecording(emg=raw_emg(0.5), rate=RATE, source="test")
    start = time.perf_counter()
    got = []
    for i, (chunk, arrival) in enumerate(replay_recording(recording, 100.0, realtime=True)):
        got.append((len(chunk), arrival - start))
        if i == 0:
            time.sleep(0.25)  # a slow consumer: the next chunks have arrived meanwhile
    sizes = [size for size, _ in got]
    assert sum(sizes) == 500 and sizes[0] == 100 and max(sizes) >= 200
    assert got[0][1] == pytest.approx(0.1, abs=0.02)
    assert time.perf_counter() - start == pytest.approx(0.5, abs=0.1)


@pytest.fixture(scope="module")
def recognition_run(tmp_path_factory):
    """A run directory (config.yaml + best.safetensors) of an untrained tiny recognition model."""
    run_dir = tmp_path_factory.mktemp("recognition")
    model = tiny_recognizer()
    config = RecognitionConfig(out=str(run_dir))
    config.model = model.config
    atomic_write_text(run_dir / "config.yaml", config_to_yaml(config))
    atomic_save_safetensors(run_dir / "best.safetensors", model.state_dict(), {"task": "recognition", "model": "SpeechModel"})
    return run_dir


def test_stream_cli_on_a_file_and_on_stdin(recognition_run, tmp_path, capsys, monkeypatch):
    emg = raw_emg(1.2)
    np.save(tmp_path / "emg.npy", emg)
    write_arpa(estimate_kneser_ney(["the man saw the house", "a dog saw the man"], 3), tmp_path / "lm.arpa")
    lm = ["--lm", str(tmp_path / "lm.arpa"), "--beam", "8"]  # an untrained model's flat posteriors make a wide beam slow
    assert main(["stream", str(recognition_run), str(tmp_path / "emg.npy"), "--rate", "1000", "--no-realtime", "--device", "cpu", *lm]) == 0
    out = capsys.readouterr().out
    assert "final: " in out and "greedy: " in out
    assert "latency chunk -> text over 6 chunks of 200 ms (1.20 s of EMG): median" in out

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(emg.astype("<f4").tobytes())))
    assert main(["stream", str(recognition_run), "-", "--rate", "1000", "--chunk-ms", "400", "--device", "cpu", *lm]) == 0
    assert "over 3 chunks of 400 ms (1.20 s of EMG)" in capsys.readouterr().out


@pytest.mark.parametrize("scale, warned", [(1.0, False), (1000.0, True), (1e-6, True)])
def test_stream_warns_once_of_emg_far_outside_the_trained_amplitude(scale, warned):
    recognizer = StreamingRecognizer(SilentSpeechPipeline(recognizer=tiny_recognizer(), beam=4, device="cpu"), RATE, "emg.npy")
    recording = EMGRecording(raw_emg(2.5) * scale, RATE, "emg.npy")
    warnings = [event.warning for event in recognizer.events(replay_recording(recording, 400, realtime=False)) if event.warning]
    assert len(warnings) == int(warned)
    if warned:
        assert warnings[0].startswith("emg.npy: EMG amplitude is far")


def test_stream_cli_prints_the_amplitude_warning(recognition_run, tmp_path, capsys):
    np.save(tmp_path / "loud.npy", raw_emg(1.2) * 1000)
    write_arpa(estimate_kneser_ney(["the man saw the house", "a dog saw the man"], 3), tmp_path / "lm.arpa")
    lm = ["--lm", str(tmp_path / "lm.arpa"), "--beam", "4"]  # an untrained model's flat posteriors make a wide beam slow
    assert main(["stream", str(recognition_run), str(tmp_path / "loud.npy"), "--rate", "1000", "--no-realtime", "--device", "cpu", *lm]) == 0
    err = capsys.readouterr().err
    assert err.count("silentspeech stream: warning: ") == 1 and "loud.npy: EMG amplitude is far larger" in err


def test_a_stream_shorter_than_the_amplitude_check_is_checked_at_its_end():
    recognizer = StreamingRecognizer(SilentSpeechPipeline(recognizer=tiny_recognizer(), beam=4, device="cpu"), RATE, "short.npy")
    events = list(recognizer.events([(raw_emg(0.5) * 1000, time.perf_counter())]))
    assert [event.warning is not None for event in events] == [False, True] and "short.npy" in events[-1].warning


@pytest.mark.parametrize(
    "argv, stdin, message",
    [
        (["-"], b"", "stdin: give the sampling rate with --rate"),
        (["-", "--rate", "1000"], b"\x00" * 37, "stdin: the stream ended inside a sample frame"),
        (["-", "--rate", "1000"], b"", "stdin: no EMG received"),
        (["six.npy", "--rate", "1000"], None, "six.npy: expected 8 channels, got 6"),
        (["six.npy", "--rate", "90"], None, "sampling rate 90 Hz is implausible"),
    ],
)
def test_stream_cli_names_bad_input(recognition_run, tmp_path, capsys, monkeypatch, argv, stdin, message):
    np.save(tmp_path / "six.npy", raw_emg(1.0, channels=8 if "90" in argv else 6))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin or b"")))
    assert main(["stream", str(recognition_run), *argv, "--no-realtime", "--device", "cpu"]) == 2
    assert message in capsys.readouterr().err
