"""Portable run folders (issue 20): evaluate, voice, demo and export on a trained run that was moved, from another folder.

Runs are trained through the CLI from one working folder with relative paths
(as a user would), moved, and used from another working folder; a path the
run's ``config.yaml`` stores that cannot be found is refused naming its key
and the option that gives it.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import gradio as gr
import numpy as np
import pytest

from silentspeech.cli import main
from silentspeech.data.cache import prepare_cache
from silentspeech.data.synthetic.speech import generate_corpus
from silentspeech.decoding.ngram import estimate_kneser_ney, write_arpa
from silentspeech.runs import config_file, run_path
from silentspeech.tasks import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
#: A model small enough for a step in a few tens of milliseconds on one core (as tests/test_training.py).
TINY = [
    "model.width=32", "model.encoder.dim=32", "model.encoder.depth=1", "model.encoder.heads=2", "model.encoder.mlp_dim=64",
    "model.encoder.dropout=0.0", "trainer.progress_bar=false", "trainer.max_epochs=1", "trainer.accelerator=cpu",
]


def run_cli(args: list, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err, captured.err
    return code, captured.out, captured.err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def moved(tmp_path_factory) -> dict[str, Path]:
    """Recognition, production and gesture runs trained in one folder with relative paths, then moved elsewhere."""
    workdir = tmp_path_factory.mktemp("trained_here")
    generate_corpus(workdir / "corpus", utterances=20, seed=0, progress=False)
    prepare_cache(workdir / "corpus", workdir / "cache", split_file=workdir / "corpus" / "testset.json", workers=0)
    write_arpa(estimate_kneser_ney(["the man saw the house", "a dog saw the man", "the house was old"], 3), workdir / "lm.arpa")
    trainings = {
        "recognition": ["data.cache=cache", "data.root=corpus", *TINY],
        "production": ["data.cache=cache", "data.root=corpus", *TINY],
        "gestures": [*TINY[1:5], "model.encoder.patch_len=20", "trainer.max_steps=2", "trainer.test=false", "trainer.progress_bar=false"],
    }
    elsewhere = tmp_path_factory.mktemp("moved_to")
    runs = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        for name, overrides in trainings.items():
            assert main(["train", str(REPO / f"recipes/synthetic/{name}.yaml"), f"out=runs/{name}", *overrides]) == 0
            runs[name] = Path(shutil.move(workdir / "runs" / name, elsewhere / name))
    runs.update(corpus=workdir / "corpus", lm=workdir / "lm.arpa", cache=workdir / "cache")
    return runs


@pytest.fixture
def somewhere_else(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.slow
def test_evaluate_works_on_a_moved_run_from_another_folder(moved, somewhere_else, capsys):
    code, printed, err = run_cli(["evaluate", moved["recognition"], "--out", "eval"], capsys)
    assert code == 0, err
    assert (somewhere_else / "eval" / "summary.json").is_file()


@pytest.mark.slow
def test_voice_works_on_a_moved_run_from_another_folder(moved, somewhere_else, capsys):
    np.save("emg.npy", np.random.default_rng(0).normal(0, 20, (1500, 8)))
    code, printed, err = run_cli(["voice", moved["production"], "emg.npy", "--rate", "1000", "--out", "speech.wav", "--device", "cpu", "--vocoder", "griffin-lim"], capsys)
    assert code == 0, err
    assert (somewhere_else / "speech.wav").stat().st_size > 0


@pytest.mark.slow
def test_demo_loads_moved_runs_from_another_folder(moved, somewhere_else, capsys, monkeypatch):
    launched = []
    monkeypatch.setattr(gr.Blocks, "launch", lambda blocks, **kwargs: launched.append(blocks))
    args = ["demo", "--recognizer", moved["recognition"], "--producer", moved["production"], "--lm", moved["lm"],
            "--corpus", moved["corpus"], "--device", "cpu", "--vocoder", "griffin-lim", "--beam", "8", "--port", free_port()]
    code, _, err = run_cli(args, capsys)
    assert code == 0 and len(launched) == 1, err


@pytest.mark.slow
def test_export_works_on_a_moved_run_from_another_folder(moved, somewhere_else, capsys):
    args = ["export", "gap9", moved["gestures"], "--out", "export", "--calibration-windows", "16", "--test-windows", "8", "--no-build"]
    code, printed, err = run_cli(args, capsys)
    assert code == 0, err
    assert "accuracy on 8 test windows" in printed and (somewhere_else / "export" / "report.md").is_file()


@pytest.mark.slow
def test_stored_paths_are_absolute_and_a_missing_one_names_its_key_and_option(moved, somewhere_else, capsys):
    _, config = load_checkpoint(moved["recognition"])
    assert Path(config.data.cache) == moved["cache"].resolve() and Path(config.data.root).is_absolute()
    # A cache that moved away too is refused naming the key and the option, not blamed on prepare.
    text = config_file(moved["recognition"]).read_text()
    config_file(moved["recognition"]).write_text(text.replace(str(moved["cache"].resolve()), "/nonexistent/cache"))
    try:
        code, _, err = run_cli(["evaluate", moved["recognition"]], capsys)
    finally:
        config_file(moved["recognition"]).write_text(text)
    assert code == 2 and "data.cache /nonexistent/cache does not exist; give it with --cache" in err and "prepare" not in err


def test_a_relative_path_is_found_from_the_folder_the_run_was_trained_in(tmp_path, monkeypatch):
    """Runs trained before paths were stored absolute: RUN = TRAINING_FOLDER/out locates the training folder."""
    from types import SimpleNamespace

    run = tmp_path / "project" / "runs" / "x"
    run.mkdir(parents=True)
    (tmp_path / "project" / "cache").mkdir()
    config = SimpleNamespace(out="runs/x", data=SimpleNamespace(cache="cache"))
    monkeypatch.chdir(tmp_path)
    assert run_path(run, config, "data.cache", "--cache") == tmp_path / "project" / "cache"
    moved = Path(shutil.move(run, tmp_path / "x"))
    with pytest.raises(ValueError, match=r"config.yaml: data.cache cache is relative to the folder the run was trained in .* give it with --cache"):
        run_path(moved, config, "data.cache", "--cache")
    with pytest.raises(ValueError, match="data.cache is not set; give it with --cache"):
        run_path(moved, SimpleNamespace(out="x", data=SimpleNamespace(cache="")), "data.cache", "--cache")


def test_a_tuned_lm_that_moved_asks_for_lm(tmp_path):
    from silentspeech.decoding.settings import resolve_lm_settings

    (tmp_path / "lm_params.json").write_text('{"lm": "/nonexistent/lm.arpa", "alpha": 0.5, "beta": 1.0, "beam_width": 50}')
    with pytest.raises(ValueError, match=r"lm_params.json: the tuned LM /nonexistent/lm.arpa does not exist; give the LM with --lm"):
        resolve_lm_settings(tmp_path)
