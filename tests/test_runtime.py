"""Device choice: one convention (``silentspeech.runtime.pick_device``) for every --device and the trainer."""

from __future__ import annotations

import pytest
import torch

from silentspeech import cli
from silentspeech.runtime import DeviceError, pick_device
from silentspeech.tasks.engine import resolve_accelerator, resolve_precision


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_pick_device_auto_cpu_and_unknown(no_gpu):
    assert pick_device("auto") == pick_device(None) == pick_device("cpu") == torch.device("cpu")
    with pytest.raises(DeviceError, match="unknown device 'tpu7'"):
        pick_device("tpu7")


def test_cuda_without_a_gpu_is_a_device_error(no_gpu):
    for name in ("cuda", "cuda:1"):
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            pick_device(name)
    assert issubclass(DeviceError, ValueError)  # cli.main prints ValueErrors as one line


def test_trainer_accelerator_follows_pick_device(no_gpu, monkeypatch):
    assert resolve_accelerator("auto") == resolve_accelerator("cpu") == "cpu"
    for name in ("cuda", "gpu"):
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            resolve_accelerator(name)
    with pytest.raises(DeviceError, match="trainer.accelerator"):
        resolve_accelerator("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_accelerator("auto") == resolve_accelerator("cuda") == resolve_accelerator("gpu") == "gpu"
    assert resolve_precision("auto", "gpu") == "bf16-mixed" and resolve_precision("auto", "cpu") == "32-true"


@pytest.mark.parametrize(
    "argv",
    [
        ["voice", "run", "emg.npy", "--out", "out.wav", "--device", "cuda"],
        ["stream", "run", "emg.npy", "--device", "cuda"],
    ],
)
def test_cli_device_cuda_without_a_gpu_is_one_line(no_gpu, argv, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "no CUDA GPU" in err and "Traceback" not in err
