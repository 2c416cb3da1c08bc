"""Hostile and careless input (issue 20): each case is a counted skip naming the file or a one-line error.

Commands run in-process through :func:`silentspeech.cli.main` (stderr and the
return code are checked: non-zero where the command cannot do its job, and
never a traceback); the kill and FIFO cases run a subprocess so that a hang
or a stray process cannot take the test run with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from silentspeech.cli import main
from silentspeech.data.emg_files import read_emg_file, read_emg_files
from silentspeech.data.gaddy import read_corpus
from silentspeech.preprocessing import EMGError, amplitude_warning, preprocess_emg

sys.path.insert(0, str(Path(__file__).parent))
from test_gaddy import write_corpus, write_utterance  # noqa: E402 (tests/ is on sys.path under pytest)

REPO = Path(__file__).resolve().parents[1]
VOICED = "voiced_parallel_data/5-4"


@pytest.fixture
def corpus_root(tmp_path) -> Path:
    return write_corpus(tmp_path / "emg_data")


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """``main(args)``: return code, stdout and stderr; stderr must hold no traceback."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err, captured.err
    return code, captured.out, captured.err


def one_error_line(err: str, command: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith(f"silentspeech {command}: error: ")]
    assert len(lines) == 1, err
    return lines[0]


def prepare_and_inspect(root: Path, out: Path, capsys) -> tuple[dict, str]:
    """``prepare`` (in this process) and ``inspect``: the manifest and inspect's printout."""
    code, printed, _ = run_cli(["prepare", root, "--out", out, "--workers", "0"], capsys)
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    # The summary agrees with the manifest (it once said 35 written with 34 entries).
    written = int(printed.split(" utterances written, ")[0].rsplit(" ", 1)[-1])
    reused = int(printed.split(" utterances written, ")[1].split(" reused")[0])
    assert written + reused == len(manifest["utterances"]), printed
    code, inspected, _ = run_cli(["inspect", root], capsys)
    assert code == 0
    return manifest, inspected


# --- item 2: one bad info.json beside good utterances ----------------------------------------


def _json_list(path: Path) -> None:
    path.write_text(json.dumps([1, 2, 3]))


def _latin1(path: Path) -> None:
    path.write_bytes('{"book": "caf\xe9", "sentence_index": 3, "text": "x"}'.encode("latin-1"))


@pytest.mark.parametrize("damage, reason", [(_json_list, "expected a JSON object, got a JSON list"), (_latin1, "not UTF-8")])
def test_a_bad_info_json_is_a_named_skip_in_prepare_and_inspect(corpus_root, tmp_path, damage, reason, capsys):
    bad = corpus_root / VOICED / "3_info.json"  # utterances 2 and 4 read it as their neighbour's
    damage(bad)
    manifest, inspected = prepare_and_inspect(corpus_root, tmp_path / "cache", capsys)
    skipped = {s["path"]: s["reason"] for s in manifest["skipped"]}
    assert reason in skipped[str(bad)]
    ids = {e["id"] for e in manifest["utterances"]}
    assert f"{VOICED}/2" in ids and f"{VOICED}/4" in ids and f"{VOICED}/3" not in ids
    assert f"{bad}: " in inspected and reason in inspected
    for path in skipped:  # inspect names every file prepare skipped
        assert path in inspected


@pytest.mark.parametrize("damage, reason", [(_json_list, "expected a JSON object"), (_latin1, "not UTF-8")])
def test_a_bad_info_json_of_an_upload_is_a_clear_error(tmp_path, damage, reason):
    write_utterance(tmp_path, 3, 3, "Hello there.")
    damage(tmp_path / "3_info.json")
    for read in (lambda: read_emg_file(tmp_path / "3_emg.npy"), lambda: read_emg_files([tmp_path / "3_emg.npy", tmp_path / "3_info.json"])):
        with pytest.raises(EMGError, match=f"3_info.json: {reason}"):
            read()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=80) | st.text(max_size=80).map(str.encode) | st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(["text", "book", "x"]), children, max_size=3),
    max_leaves=6,
).map(lambda obj: json.dumps(obj).encode()))
def test_any_info_json_bytes_are_read_or_refused_with_the_file_named(tmp_path, content):
    folder = tmp_path / "upload"
    if not folder.is_dir():
        write_utterance(folder, 3, 3, "Hello there.")
    (folder / "3_info.json").write_bytes(content)
    try:
        recording = read_emg_file(folder / "3_emg.npy")
    except EMGError as err:
        assert "3_info.json: " in str(err)
    else:
        assert recording.text is None or isinstance(recording.text, str)


# --- item 3: NaN audio, and inspect finds what prepare finds ----------------------------------


def _nan_audio(path: Path) -> None:
    # A float WAV under the .flac name: libsndfile reads by content, and a float WAV can hold NaN.
    audio, rate = sf.read(path, dtype="float32")
    audio[100:110] = np.nan
    sf.write(path, audio, rate, format="WAV", subtype="FLOAT")


def _short_emg(folder: Path) -> None:
    write_utterance(folder, 2, 2, "A second one!", seconds=0.05)  # 50 samples: too short to filter


def _bad_textgrid(root: Path) -> None:
    grids = root / "text_alignments" / "5-4"
    grids.mkdir(parents=True)
    (grids / "5-4_4_audio.TextGrid").write_text("not a TextGrid\n")


def test_inspect_finds_what_prepare_finds(corpus_root, tmp_path, capsys):
    voiced = corpus_root / VOICED
    _nan_audio(voiced / "1_audio_clean.flac")
    _short_emg(voiced)
    _bad_textgrid(corpus_root)
    np.save(voiced / "3_emg.npy", np.load(voiced / "3_emg.npy") * np.nan)
    manifest, inspected = prepare_and_inspect(corpus_root, tmp_path / "cache", capsys)
    prepared = {s["path"] for s in manifest["skipped"]}
    inspection = read_corpus(corpus_root, check_values=True)
    found = {s.path for s in inspection.skipped}
    expected_files = {
        str((voiced / "1_audio_clean.flac").resolve()),
        str(voiced / "2_emg.npy"),
        str(voiced / "3_emg.npy"),
        str(corpus_root / "text_alignments" / "5-4" / "5-4_4_audio.TextGrid"),
    }
    assert expected_files <= prepared, prepared
    assert expected_files <= found, found
    reasons = {s.path: s.reason for s in inspection.skipped}
    assert "NaN or infinite samples" in reasons[str((voiced / "1_audio_clean.flac").resolve())]
    assert "too short to filter" in reasons[str(voiced / "2_emg.npy")]
    # The same utterances are left out either way (the silent twins of skipped voiced ones too).
    assert {e["id"] for e in manifest["utterances"]} == {u.id for u in inspection.utterances}
    assert f"problems: {len(inspection.skipped)} utterances skipped" in inspected


# --- item 4: no stray processes after kill -9 ------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's bookkeeping is left


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_prepare_killed_with_9_leaves_no_worker_behind(tmp_path):
    root = tmp_path / "emg_data"
    for i in range(1, 41):
        write_utterance(root / VOICED, i, i, f"sentence number {i}", seconds=3.0)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "silentspeech", "prepare", str(root), "--out", str(tmp_path / "cache"), "--workers", "2"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        workers: list[int] = []
        while len(workers) < 2 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
            workers = _children(process.pid)
        assert len(workers) >= 2, "the pool did not start"
        process.send_signal(signal.SIGKILL)
        process.wait()
        deadline = time.monotonic() + 5
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [w for w in workers if _alive(w)], "workers outlived prepare"
    finally:
        if process.poll() is None:
            process.kill()
        for worker in _children(process.pid):
            os.kill(worker, signal.SIGKILL)


# --- item 6: tracebacks become one-line errors -----------------------------------------------


def test_malformed_yaml_is_one_line(tmp_path, capsys):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("task: recognition\nmodel: [unclosed\n")
    code, _, err = run_cli(["train", recipe], capsys)
    assert code == 2 and "bad.yaml: not valid YAML" in one_error_line(err, "train")


def test_out_that_is_a_file_is_one_line(corpus_root, tmp_path, capsys):
    out = tmp_path / "cache"
    out.write_text("a file")
    code, _, err = run_cli(["prepare", corpus_root, "--out", out, "--workers", "0"], capsys)
    assert code == 2 and "cache" in one_error_line(err, "prepare")


def test_unwritable_output_folder_is_one_line(corpus_root, capsys):
    # /proc refuses new folders even to root (a chmod'ed folder does not stop root).
    code, _, err = run_cli(["prepare", corpus_root, "--out", "/proc/silentspeech-cache", "--workers", "0"], capsys)
    assert code == 2 and "/proc/silentspeech-cache" in one_error_line(err, "prepare")


def test_voice_out_that_is_a_folder_is_refused_before_loading(tmp_path, capsys):
    code, _, err = run_cli(["voice", tmp_path / "no-such-run", tmp_path / "x_emg.npy", "--out", tmp_path], capsys)
    assert code == 2 and "is a folder" in one_error_line(err, "voice")


def test_cuda_without_a_gpu_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = run_cli(["voice", tmp_path / "run", tmp_path / "x_emg.npy", "--out", tmp_path / "x.wav", "--device", "cuda"], capsys)
    assert code == 2 and "no CUDA GPU" in one_error_line(err, "voice")


@pytest.mark.parametrize("port, message", [(99999, "between 1 and 65535"), (0, "between 1 and 65535")])
def test_demo_bad_port_is_refused_before_loading_models(tmp_path, capsys, port, message):
    start = time.perf_counter()
    code, _, err = run_cli(["demo", "--quickstart", tmp_path, "--port", port], capsys)
    assert code == 2 and message in one_error_line(err, "demo")
    assert time.perf_counter() - start < 5


def test_demo_port_in_use_is_refused_before_loading_models(tmp_path, capsys):
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        code, _, err = run_cli(["demo", "--quickstart", tmp_path, "--port", port], capsys)
    assert code == 2 and f"cannot serve on 127.0.0.1:{port}" in one_error_line(err, "demo")


# --- crafted checkpoints: no loader runs code from a file ------------------------------------


class Payload:
    """Unpickling this writes a marker file: the proof that code from the file ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('code ran')",))


def crafted_checkpoint(path: Path, marker: Path) -> Path:
    """A torch checkpoint whose unpickling would run code."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {"w": torch.zeros(1)}, "payload": Payload(marker)}, path)
    return path


def test_crafted_file_carries_a_payload_that_writes_the_marker(tmp_path):
    """The payload works and is in the file (so the tests below prove something), shown without unpickling the file.

    Honouring its ``__reduce__`` (what a full unpickler does) writes the
    marker, and the checkpoint's pickle holds that call.
    """
    import zipfile

    marker = tmp_path / "marker"
    function, arguments = Payload(marker).__reduce__()
    function(*arguments)
    assert marker.read_text() == "code ran"
    marker.unlink()
    with zipfile.ZipFile(crafted_checkpoint(tmp_path / "x.ckpt", marker)) as archive:
        pickled = b"".join(archive.read(name) for name in archive.namelist() if name.endswith(".pkl"))
    assert b"exec" in pickled and str(marker).encode() in pickled
    assert not marker.exists()


def _train_resume(path: Path) -> None:
    from silentspeech.tasks.engine import AtomicCheckpointIO

    AtomicCheckpointIO().load_checkpoint(path)


def _vocoder_resume(path: Path) -> None:
    from silentspeech.config import bundled_recipe
    from silentspeech.vocoder.train import GanState, load_vocoder_recipe

    cpu = torch.device("cpu")
    GanState(load_vocoder_recipe(bundled_recipe("vocoder/small.yaml")), cpu).load(path, cpu)


def _tinymyo(path: Path) -> None:
    from silentspeech.models.tinymyo import read_checkpoint

    read_checkpoint(path)


def _original_hifigan(path: Path) -> None:
    from silentspeech.vocoder.original import load_original_hifigan

    load_original_hifigan(path)


def _vocoder_safetensors(path: Path) -> None:
    from silentspeech.vocoder.generator import load_generator_safetensors

    load_generator_safetensors(path)


def _task_checkpoint(path: Path) -> None:
    """tasks.load_checkpoint: what evaluate, voice, demo, distill (teacher and student) and export read."""
    from test_pipeline import save_production_run

    from silentspeech.tasks import load_checkpoint

    crafted = path.read_bytes()
    save_production_run(path.parent)
    path.write_bytes(crafted)
    load_checkpoint(path.parent)


@pytest.mark.parametrize(
    "load, name",
    [
        (_train_resume, "last.ckpt"),  # train --resume and distill --resume (Lightning, through this IO)
        (_vocoder_resume, "last.ckpt"),  # vocoder train --resume
        (_tinymyo, "encoder.ckpt"),  # bare TinyMyo encoders: export, pretrained=
        (_tinymyo, "encoder.safetensors"),
        (_original_hifigan, "generator_v1"),  # vocoder --init, original HiFi-GAN layout
        (_vocoder_safetensors, "generator.safetensors"),
        (_task_checkpoint, "best.safetensors"),
    ],
)
def test_no_checkpoint_loader_runs_code_from_a_crafted_file(tmp_path, load, name):
    marker = tmp_path / "marker"
    path = crafted_checkpoint(tmp_path / "run" / name, marker)
    with pytest.raises((ValueError, RuntimeError)) as caught:
        load(path)
    assert not marker.exists(), "a loader ran code from the file"
    assert len(str(caught.value).splitlines()) <= 3 and str(path.name) in str(caught.value)


# --- item 7: silent wrong results ------------------------------------------------------------


@pytest.mark.parametrize("scale, side", [(1000.0, "larger"), (1e30, "larger"), (1e-6, "smaller"), (0.0, "smaller")])
def test_emg_far_outside_the_trained_amplitude_warns(scale, side):
    raw = np.random.default_rng(0).normal(0, 20, (2000, 8))
    assert amplitude_warning(preprocess_emg(raw)) is None
    warning = amplitude_warning(preprocess_emg(raw * scale), "x.npy")
    assert warning and f"far {side}" in warning and warning.startswith("x.npy: ")


def test_pipeline_result_and_voice_carry_the_amplitude_warning(tmp_path, capsys):
    from test_pipeline import save_production_run

    from silentspeech.inference.pipeline import SilentSpeechPipeline

    save_production_run(tmp_path / "run")
    raw = np.random.default_rng(0).normal(0, 20, (1000, 8))
    # Griffin-Lim: the warning is the pipeline's, whichever vocoder voices it (loading HiFi-GAN costs seconds).
    pipeline = SilentSpeechPipeline(producer=tmp_path / "run", vocoder="griffin-lim", device="cpu")
    assert pipeline.run(raw, 1000.0).warnings == []
    assert "far larger" in pipeline.run(raw * 1000, 1000.0).warnings[0]
    np.save(tmp_path / "loud.npy", raw * 1000)
    argv = ["voice", tmp_path / "run", tmp_path / "loud.npy", "--rate", "1000", "--out", tmp_path / "x.wav", "--device", "cpu"]
    code, _, err = run_cli([*argv, "--vocoder", "griffin-lim"], capsys)
    assert code == 0 and "silentspeech voice: warning: " in err and "far larger" in err


def test_stream_of_a_1_sample_file_is_an_error(tmp_path):
    from test_streaming import tiny_recognizer

    from silentspeech.inference.pipeline import SilentSpeechPipeline
    from silentspeech.inference.streaming import StreamingRecognizer

    pipeline = SilentSpeechPipeline(recognizer=tiny_recognizer(), device="cpu")
    recognizer = StreamingRecognizer(pipeline, 1000.0, "one.npy")
    with pytest.raises(EMGError, match="one.npy: only 1 EMG samples received"):
        list(recognizer.events([(np.zeros((1, 8)), time.perf_counter())]))


def test_complex_emg_is_refused(tmp_path, corpus_root):
    np.save(tmp_path / "c.npy", np.zeros((500, 8), dtype=np.complex64))
    with pytest.raises(EMGError, match="c.npy: EMG is complex"):
        read_emg_file(tmp_path / "c.npy", rate=1000)
    path = corpus_root / VOICED / "3_emg.npy"
    np.save(path, np.load(path).astype(np.complex128))
    skipped = {s.path: s.reason for s in read_corpus(corpus_root).skipped}
    assert "EMG is complex" in skipped[str(path)]


def test_a_split_file_matching_no_sentence_warns_naming_it(corpus_root, tmp_path, caplog):
    split = tmp_path / "other.json"
    split.write_text(json.dumps({"dev": [["another book", 1]], "test": [["another book", 2]]}))
    corpus = read_corpus(corpus_root, split_file=split)
    assert not corpus.split_counts()["test"]
    assert any(str(split) in r.getMessage() and "dev and test are empty" in r.getMessage() for r in caplog.records)


# --- item 8: misleading messages -------------------------------------------------------------


def test_a_csv_saved_as_npy_is_named_as_text(tmp_path, corpus_root):
    (tmp_path / "x.npy").write_text("1,2,3,4,5,6,7,8\n" * 100)
    with pytest.raises(EMGError, match="x.npy: not a .npy file: it starts with text"):
        read_emg_file(tmp_path / "x.npy", rate=1000)
    path = corpus_root / VOICED / "3_emg.npy"
    path.write_text("1,2,3,4,5,6,7,8\n" * 100)
    skipped = {s.path: s.reason for s in read_corpus(corpus_root).skipped}
    assert "pickled" not in skipped[str(path)] and "starts with text" in skipped[str(path)]


def test_a_missing_flac_is_called_missing(corpus_root):
    (corpus_root / VOICED / "3_audio_clean.flac").unlink()
    skipped = {s.path: s.reason for s in read_corpus(corpus_root).skipped}
    assert skipped[str(corpus_root / VOICED / "3_audio_clean.flac")] == "missing"


def test_evaluate_from_another_folder_names_the_relative_cache(tmp_path, capsys, monkeypatch):
    from test_streaming import tiny_recognizer

    from silentspeech.atomic import atomic_save_safetensors, atomic_write_text
    from silentspeech.config import config_to_yaml
    from silentspeech.tasks.recognition import RecognitionConfig

    run = tmp_path / "run"
    model = tiny_recognizer()
    config = RecognitionConfig(out=str(run))
    config.model, config.data.cache = model.config, "runs/x/cache"  # as runs trained before caches were stored absolute
    atomic_write_text(run / "config.yaml", config_to_yaml(config))
    atomic_save_safetensors(run / "best.safetensors", model.state_dict(), {"task": "recognition", "model": "SpeechModel"})
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["evaluate", run], capsys)
    line = one_error_line(err, "evaluate")
    assert code == 2 and "data.cache runs/x/cache is relative to the folder the run was trained in" in line
    assert "prepare" not in line


def test_a_binary_file_given_as_lm_is_described_not_dumped(tmp_path):
    from silentspeech.decoding.ngram import ArpaError, read_arpa

    lm = tmp_path / "lm.arpa"
    lm.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ArpaError, match="lm.arpa: line 1: .* found binary data") as caught:
        read_arpa(lm)
    assert "\\x0" not in str(caught.value) and "\x01" not in str(caught.value)


# --- item 9: a FIFO must not hang inspect or prepare -----------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_under_a_corpus_name_is_a_skip_not_a_hang(corpus_root, tmp_path, capsys):
    fifos = [corpus_root / VOICED / name for name in ("1_emg.npy", "2_info.json", "3_audio_clean.flac")]
    for path in fifos:
        path.unlink()
        os.mkfifo(path)
    for command in (["inspect", corpus_root], ["prepare", corpus_root, "--out", tmp_path / "cache", "--workers", "0"]):
        outcome: list[int] = []
        worker = threading.Thread(target=lambda: outcome.append(main([str(a) for a in command])), daemon=True)
        worker.start()
        worker.join(timeout=120)
        if worker.is_alive():  # open every FIFO for writing once, which unblocks a reader stuck on it
            for path in fifos:
                with contextlib.suppress(OSError):
                    os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            pytest.fail(f"{command[0]} blocked on a FIFO")
        assert outcome == [0]
    assert "Traceback" not in capsys.readouterr().err
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    skipped = {s["path"]: s["reason"] for s in manifest["skipped"]}
    for path in fifos:
        assert "not a regular file" in skipped[str(path)], skipped
