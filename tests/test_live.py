"""`silentspeech live`: BrainFlow's playback board and an LSL outlet on loopback feed the streaming recogniser and voice.

Tiny untrained models (tests/test_pipeline.py's) and a tiny untrained HiFi-GAN generator
(tests/test_vocoder_inference.py's): a real vocoder path, cheaper than Griffin-Lim's iterations.
"""

from __future__ import annotations

import re
import threading
import time
import uuid

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import synthetic_corpus
from test_demo import free_port  # noqa: E402 (tests/ is on sys.path under pytest)
from conftest import save_run
from test_pipeline import save_production_run, tiny_speech_model  # noqa: E402
from test_vocoder_inference import TINY, tiny_generator  # noqa: E402

from silentspeech.acquisition.sources import open_source, write_playback_file
from silentspeech.cli import main
from silentspeech.data.gaddy import read_corpus
from silentspeech.decoding.ngram import estimate_kneser_ney, write_arpa
from silentspeech.features import AUDIO_RATE
from silentspeech.inference.live import rechunk
from silentspeech.inference.pipeline import SilentSpeechPipeline
from silentspeech.vocoder.generator import save_generator

@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny untrained recognition and production runs, a tiny vocoder and a tiny LM, in one folder.

    The recogniser's CTC head is scaled up: an untrained model's near-flat posteriors keep every
    beam alive and make beam search with an LM take seconds per chunk; peaked ones decode at once.
    """
    root = tmp_path_factory.mktemp("runs")
    recognizer = tiny_speech_model(["ctc"])
    with torch.no_grad():
        recognizer.heads["ctc"].weight.mul_(30.0)
        recognizer.heads["ctc"].bias.mul_(30.0)
    save_run(root / "recognition", recognizer, "recognition")
    save_production_run(root / "production")
    save_generator(root / "vocoder.safetensors", tiny_generator(), TINY, step=0)
    write_arpa(estimate_kneser_ney(["the man saw the house", "a dog saw the man"], 3), root / "lm.arpa")
    return root


def fast(runs) -> list[str]:
    """Options every `live` and `stream` call here shares: a narrow beam (an untrained model's flat posteriors make a wide one slow)."""
    return ["--lm", str(runs / "lm.arpa"), "--beam", "4", "--device", "cpu"]


def greedy_line(out: str) -> str:
    return re.search(r"^greedy: (.*)$", out, re.M).group(1)


def test_live_on_the_playback_board_gives_the_final_greedy_text_of_stream_on_the_file(runs, tmp_path_factory, tmp_path, capsys):
    corpus = read_corpus(synthetic_corpus(tmp_path_factory, 10))
    utterance = next(u for u in corpus.utterances if u.silent and u.emg_samples <= 3000)
    emg = np.load(utterance.emg_path)
    write_playback_file(tmp_path / "take.csv", emg)  # Cyton WiFi layout, 1000 Hz

    assert main(["stream", str(runs / "recognition"), str(utterance.emg_path), "--no-realtime", *fast(runs)]) == 0
    streamed = greedy_line(capsys.readouterr().out)
    assert main([
        "live", str(runs / "recognition"), "--producer", str(runs / "production"), "--vocoder", str(runs / "vocoder.safetensors"),
        "--board", f"playback:{tmp_path / 'take.csv'}", "--out", str(tmp_path / "speech.wav"), *fast(runs),
    ]) == 0
    out = capsys.readouterr().out
    assert streamed and greedy_line(out) == streamed
    assert "playback of" in out and "1000 Hz" in out and "dropped samples: 0" in out
    assert "latency chunk -> text over" in out and "latency chunk -> voice: " in out and "end -> last speech" in out
    audio, rate = sf.read(tmp_path / "speech.wav")
    assert rate == AUDIO_RATE and len(audio) / rate == pytest.approx(len(emg) / 1000, abs=0.1)
    assert not (tmp_path / "speech.wav.partial").exists()


def test_an_lsl_outlet_on_loopback_feeds_live(runs, capsys):
    import pylsl

    name = f"silentspeech-test-{uuid.uuid4().hex[:8]}"  # concurrent test runs on one network must not meet
    emg = np.random.default_rng(3).normal(0, 20, (1500, 8)).astype(np.float32)
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "EMG", 8, 1000.0, pylsl.cf_float32, name))

    def play() -> None:  # at recording speed, once `live` listens
        outlet.wait_for_consumers(20.0)
        for start in range(0, len(emg), 100):
            outlet.push_chunk(emg[start : start + 100])
            time.sleep(0.1)

    threading.Thread(target=play, daemon=True).start()
    assert main(["live", str(runs / "recognition"), "--board", f"lsl:{name}", "--seconds", "1.5", "--timeout", "10", *fast(runs)]) == 0
    out = capsys.readouterr().out
    offline = SilentSpeechPipeline(recognizer=runs / "recognition", lm=runs / "lm.arpa", beam=4, device="cpu").run(emg.astype(np.float64), rate=1000.0)
    assert f"LSL stream '{name}': 1000 Hz" in out and "(1.50 s of EMG)" in out
    assert greedy_line(out) == offline.greedy_text


def test_live_refuses_a_board_with_another_channel_count_and_releases_it(runs, capsys):
    assert main(["live", str(runs / "recognition"), "--board", "synthetic", *fast(runs)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["silentspeech live: error: board synthetic: delivers 16 EMG channels but 8 are needed; "
                   "choose 8 with --channels (e.g. --channels 1-8)"]
    with open_source("synthetic") as source:  # released: it opens again
        assert source.channels == 16


def test_rechunk_joins_blocks_into_chunks_and_hands_a_late_consumer_the_backlog_at_once():
    sizes = [3, 4, 1, 12, 2]
    blocks = [(np.full((n, 2), float(i)), 10.0 * (i + 1)) for i, n in enumerate(sizes)]
    chunks = list(rechunk(blocks, 5, rate=100.0))
    assert [len(c) for c, _ in chunks] == [5, 15, 2]  # 3 held + 12 at once: three whole chunks joined; the rest at the end
    np.testing.assert_array_equal(np.concatenate([c for c, _ in chunks]), np.concatenate([b for b, _ in blocks]))
    assert chunks[0][1] == 20.0 - 2 / 100  # its 5th sample came 2 samples (at 100 Hz) before block 1's newest
    assert chunks[1][1] == 40.0 - 10 / 100  # the oldest joined chunk's arrival: 15 held, it ends at the 5th
    assert [len(c) for c, _ in rechunk(blocks, 5, 100.0, max_samples=7)] == [5, 2]


def test_streaming_voice_speaks_every_stretch_once_and_does_not_wait_for_firm_words(runs):
    """Random EMG firms no words for long: the lag rule still voices it while streaming, and the pieces add up to the stream."""
    from silentspeech.inference.live import MAX_VOICE_LAG_S, LiveSession, StreamingVoice
    from silentspeech.inference.streaming import StreamingRecognizer

    pipeline = SilentSpeechPipeline(runs / "recognition", runs / "production", vocoder=runs / "vocoder.safetensors", lm=runs / "lm.arpa", beam=4, device="cpu")
    emg = np.random.default_rng(5).normal(0, 20, (3400, 8))
    session = LiveSession(StreamingRecognizer(pipeline, 1000.0, "probe"), StreamingVoice(pipeline, 1000.0, "probe"))
    updates = list(session.updates((emg[i : i + 200], time.perf_counter()) for i in range(0, 3400, 200)))
    pieces = [piece for u in updates for piece in u.pieces]
    assert len(pieces) >= 2 and pieces[0].asked_s <= MAX_VOICE_LAG_S + 0.8 + 0.2 + 1e-9  # asked for before the end
    assert not pieces[0].final and pieces[-1].final and sorted(p.asked_s for p in pieces) == [p.asked_s for p in pieces]
    assert updates[-1].event.final and updates[-1].pieces  # the end waits for the rest
    assert sum(len(p.audio) for p in pieces) / AUDIO_RATE == pytest.approx(3.4, abs=0.1)
    assert all(p.latency_ms >= 0 for p in pieces)
    assert session._thread is None  # the voicing thread has ended


def test_a_failure_on_the_voicing_thread_is_raised_on_the_recogniser_s_and_stops_it(runs):
    from silentspeech.inference.live import LiveSession, StreamingVoice
    from silentspeech.inference.streaming import StreamingRecognizer

    pipeline = SilentSpeechPipeline(runs / "recognition", runs / "production", vocoder=runs / "vocoder.safetensors", lm=runs / "lm.arpa", beam=4, device="cpu")
    voice = StreamingVoice(pipeline, 1000.0, "probe")

    def broken(stretch):
        raise RuntimeError("probe: vocoder failed")

    voice.synthesize = broken
    session = LiveSession(StreamingRecognizer(pipeline, 1000.0, "probe"), voice)
    emg = np.random.default_rng(5).normal(0, 20, (3400, 8))
    with pytest.raises(RuntimeError, match="probe: vocoder failed"):
        list(session.updates((emg[i : i + 200], time.perf_counter()) for i in range(0, 3400, 200)))
    assert session._thread is None


def test_the_demo_s_live_tab_runs_a_board_and_names_a_bad_one(runs, tmp_path, capsys):
    from silentspeech.demo import build_demo, live_outputs
    from silentspeech.inference.live import LiveRunner

    write_playback_file(tmp_path / "take.csv", np.random.default_rng(0).normal(0, 20, (1200, 8)))
    pipeline = SilentSpeechPipeline(runs / "recognition", runs / "production", vocoder=runs / "vocoder.safetensors", lm=runs / "lm.arpa", beam=4, device="cpu")
    runner = LiveRunner(pipeline, lambda: open_source(f"playback:{tmp_path / 'take.csv'}"))
    demo = build_demo(pipeline, {}, runner, "playback")
    assert {"live_start", "live_stop", "live_poll", "run"} <= {fn.api_name for fn in demo.fns.values()}
    runner.start()
    runner.thread.join(30)
    status, text, speech = live_outputs(runner)
    assert status.startswith("Stopped: 1.2 s of EMG, 0 samples dropped") and text == runner.snapshot().firm
    assert sf.info(speech).duration == pytest.approx(1.2, abs=0.1)

    demo = ["demo", "--recognizer", str(runs / "recognition"), "--lm", str(runs / "lm.arpa"), "--beam", "4", "--device", "cpu"]
    assert main([*demo, "--port", str(free_port()), "--board", "lsl:absent-stream", "--timeout", "0.2"]) == 2
    assert capsys.readouterr().err.strip().endswith("LSL stream 'absent-stream': none appeared within 0.2 s (is its outlet running and on this network?)")


def test_the_speaker_plays_pieces_in_order_across_device_blocks_and_silence_after_them():
    """PortAudio is not on the test machines: a stand-in device drives the callback as PortAudio would."""
    from silentspeech.inference.live import Speaker

    class Device:
        samplerate = 10

        def __init__(self, samplerate, channels, dtype, callback):
            self.callback, self.started, self.closed = callback, False, False

        def start(self):
            self.started = True

        def stop(self):
            pass

        def close(self):
            self.closed = True

    class SoundDevice:
        OutputStream = Device

        @staticmethod
        def query_devices(kind):
            return {"name": f"probe {kind}"}

    speaker = Speaker(SoundDevice, 10)
    assert speaker.name == "probe output" and speaker.stream.started
    speaker.append(np.array([0.1, 0.2, 0.3]))
    speaker.append(np.array([2.0, -0.5]))  # clipped to [-1, 1]
    blocks = []
    for _ in range(3):
        out = np.full((2, 1), np.nan, np.float32)
        speaker.stream.callback(out, 2, None, None)
        blocks.append(out[:, 0].tolist())
    assert np.allclose(sum(blocks, []), [0.1, 0.2, 0.3, 1.0, -0.5, 0.0])  # a piece spans two blocks; silence after
    assert speaker.pending_s == 0
    speaker.close()
    assert speaker.stream.closed
