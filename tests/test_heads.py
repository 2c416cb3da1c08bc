"""Downstream heads, gesture/kinematics metrics, and short gesture and kinematics runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from silentspeech.config import load_recipe
from silentspeech.figures import confusion_figure, save_figure
from silentspeech.metrics import classification_scores, regression_scores
from silentspeech.models.classic import FEATURES, hudgins_features
from silentspeech.models.heads import (
    FeatureGestureClassifier,
    GestureClassifier,
    KinematicsRegressor,
    channel_concatenated,
    hudgins_frames,
)
from silentspeech.models.tinymyo import TinyMyoConfig, TinyMyoEncoder, TinyMyoPretrainer, save_tinymyo
from silentspeech.tasks import load_checkpoint
from silentspeech.tasks.gesture import GestureConfig
from silentspeech.tasks.gesture import train as train_gesture
from silentspeech.tasks.kinematics import KinematicsConfig
from silentspeech.tasks.kinematics import train as train_kinematics

REPO = Path(__file__).resolve().parents[1]
TINY = TinyMyoConfig(channels=4, patch_len=10, dim=16, depth=1, heads=2, mlp_dim=32, dropout=0.0, drop_path=0.0)
TINY_OVERRIDES = [
    "model.encoder.patch_len=20", "model.encoder.dim=32", "model.encoder.depth=2", "model.encoder.heads=2",
    "model.encoder.mlp_dim=64", "model.encoder.dropout=0.0", "model.encoder.drop_path=0.0",
]
QUICK = ["trainer.progress_bar=false", "trainer.accelerator=cpu", "optim.warmup_steps=5"]


# --- heads ----------------------------------------------------------------------------


def test_channel_concatenation_groups_each_patch_time():
    tokens = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3 * 4, 5)  # 3 channels x 4 patches
    grouped = channel_concatenated(tokens, 3)
    assert grouped.shape == (2, 4, 15)
    assert torch.equal(grouped[1, 2, 5:10], tokens[1, 4 + 2])  # patch 2 of channel 1


def test_classifier_shape_and_linear_probe_freezes_the_encoder():
    model = GestureClassifier(TinyMyoEncoder(TINY), classes=5, freeze_encoder=True)
    model.train()
    assert not model.encoder.training and model.classifier.training
    logits = model(torch.randn(3, 4, 50))
    assert logits.shape == (3, 5)
    logits.sum().backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert model.classifier.weight.grad is not None and model.classifier.in_features == 4 * 16


def test_hudgins_frames_agree_with_the_classical_features():
    torch.manual_seed(0)
    emg = torch.randn(3, 2, 100, dtype=torch.float64)
    frames = hudgins_frames(emg, frame=20, hop=10)
    assert frames.shape == (3, 9, 2 * len(FEATURES))
    # Frame 4 (samples 40-59) is a one-segment window of the classical baseline's features.
    classic = hudgins_features(emg[:, :, 40:60].numpy(), segments=1).reshape(3, 2, 5)
    ours = frames[:, 4].reshape(3, 2, 5).numpy()
    assert np.allclose(np.exp(ours[..., :3]) - 1e-3, np.exp(classic[..., :3]) - 1e-6)  # MAV, RMS, WL
    # Crossing counts: ours per adjacent pair (19 in a frame), the baseline's per sample (20).
    assert np.allclose(ours[..., 3] * 19, np.expm1(classic[..., 3]) * 20)
    assert np.allclose(ours[..., 4] * 18, np.expm1(classic[..., 4]) * 20)


def test_feature_classifier_shape_probe_and_pretrained_blocks(tmp_path):
    encoder = TinyMyoEncoder(TINY)
    model = FeatureGestureClassifier(encoder, channels=4, classes=5, frame=20, hop=10, freeze_encoder=True)
    model.train()
    logits = model(torch.randn(3, 4, 200))
    assert logits.shape == (3, 5)
    logits.sum().backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert model.input_projection[1].weight.grad is not None and model.classifier.weight.grad is not None
    # Zero padding (a short recording) gives finite features: log(1e-3), not -inf.
    assert torch.isfinite(hudgins_frames(torch.zeros(1, 4, 40), 20, 10)).all()


def test_regressor_shape_keys_and_target_units():
    model = KinematicsRegressor(TinyMyoEncoder(TINY), outputs=5, hidden=8)
    assert {"regressor.0.weight", "regressor.3.weight", "regressor.5.weight"} <= set(model.state_dict())
    x = torch.randn(2, 4, 50)
    model.eval()
    standard = model(x)
    assert standard.shape == (2, 50, 5)
    model.set_target_statistics(torch.full((5,), 10.0), torch.full((5,), 2.0))
    assert torch.allclose(model(x), standard * 2 + 10, atol=1e-5)
    assert model(x, target_length=7).shape == (2, 7, 5)


# --- metrics -----------------------------------------------------------------------------


def test_classification_scores_and_confusion_figure(tmp_path):
    scores = classification_scores([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], classes=4)
    assert scores.accuracy == pytest.approx(0.6)
    # F1: class 0 = 2*1/(2+2) = 0.5, class 1 = 2*2/(2+3) = 0.8, class 2 = 0; class 3 absent everywhere
    assert scores.macro_f1 == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert scores.confusion[0].tolist() == [1, 1, 0, 0] and scores.confusion.sum() == 5
    save_figure(confusion_figure(scores.confusion, ["a", "b", "c", "d"]), tmp_path / "cm.png")
    assert (tmp_path / "cm.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="outside"):
        classification_scores([0, 5], [0, 1], classes=3)


def test_regression_scores():
    rng = np.random.default_rng(0)
    targets = rng.standard_normal((200, 3)) * [1, 5, 10]
    perfect = regression_scores(targets, targets)
    assert perfect.mae == 0 and perfect.r2 == pytest.approx(1.0)
    mean = regression_scores(targets, np.broadcast_to(targets.mean(axis=0), targets.shape))
    assert mean.r2 == pytest.approx(0.0, abs=1e-12)
    shifted = regression_scores(targets, targets + 2.0)
    assert shifted.mae == pytest.approx(2.0) and shifted.rmse == pytest.approx(2.0)
    with pytest.raises(ValueError, match="NaN"):
        regression_scores(targets, np.full_like(targets, np.nan))


# --- tasks ----------------------------------------------------------------------------------


def test_gesture_recipe_from_pretrained_checkpoint_and_reload(tmp_path):
    pretrainer = TinyMyoPretrainer(TinyMyoConfig(channels=16, dim=32, depth=2, heads=2, mlp_dim=64, position="rope"))
    save_tinymyo(pretrainer, tmp_path / "tinymyo.safetensors")
    overrides = [
        f"out={tmp_path / 'run'}", f"model.pretrained={tmp_path}", "trainer.max_steps=6", "trainer.val_every_steps=3",
        "data.synthetic.subjects=1", "data.synthetic.repetitions=3", "batch_size=16", *QUICK,
    ]
    config = load_recipe(GestureConfig, REPO / "recipes/synthetic/gestures.yaml", overrides)
    run = train_gesture(config)
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert 0.0 <= metrics["test/accuracy"] <= 1.0 and "test/macro_f1" in metrics
    assert (run / "confusion_test.png").is_file()
    model, saved = load_checkpoint(run)
    assert isinstance(model, GestureClassifier)
    assert saved.model.encoder.channels == 8 and saved.model.encoder.dim == 32  # the checkpoint's architecture, the data's channels
    assert len(saved.model.class_names) == 6
    assert model(torch.randn(2, 8, 200)).shape == (2, 6)


def write_db8(folder: Path, seed: int = 0) -> None:
    """Three tiny DB8 acquisitions whose glove angles follow the EMG envelope of two channels."""
    rng = np.random.default_rng(seed)
    for acquisition in ("A1", "A2", "A3"):
        envelope = np.abs(np.cumsum(rng.standard_normal((3000, 2)), axis=0)) / 10 + 0.1
        emg = rng.standard_normal((3000, 16)) * np.repeat(envelope, 8, axis=1)
        glove = np.repeat(envelope, 9, axis=1) * 30.0
        scipy.io.savemat(folder / f"S1_E1_{acquisition}.mat", {"emg": emg, "glove": glove})


def test_kinematics_on_tiny_db8_files(tmp_path):
    write_db8(tmp_path)
    overrides = [
        f"out={tmp_path / 'run'}", f"data.root={tmp_path}", "data.window=200", "data.stride=100",
        "data.bandpass_high=450", "trainer.max_steps=8", "batch_size=8", "model.encoder.channels=16", "model.hidden=16",
        *TINY_OVERRIDES, *QUICK,
    ]
    config = load_recipe(KinematicsConfig, REPO / "recipes/ninapro_db8/kinematics.yaml", overrides)
    run = train_kinematics(config)
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert {"test/mae", "test/rmse", "test/r2"} <= set(metrics) and metrics["test/mae"] > 0
    model, saved = load_checkpoint(run)
    assert saved.model.target_names[0] == "thumb rotation"
    assert float(model.target_std.min()) > 1.0  # training statistics travel with the weights (degrees)


# --- real recordings: a short fine-tune beats chance on held-out data ---------------------------------


def real_run(recipe: str, root: Path, tmp_path: Path, extra: list[str]) -> dict:
    overrides = [f"out={tmp_path / 'run'}", f"data.root={root}", *TINY_OVERRIDES, *QUICK, "optim.lr=2e-3", *extra]
    config = load_recipe(GestureConfig, REPO / recipe, overrides)
    return json.loads((train_gesture(config) / "test_metrics.json").read_text())


@pytest.mark.slow
def test_real_myo_gestures_fine_tune_beats_chance(shared_data, tmp_path):
    """8 classes (rest + 7 wrist gestures); test windows come from held-out rest/gesture runs."""
    root = shared_data / "real/myo_gestures/_readings_right_hand"
    metrics = real_run("recipes/generic/myo_armband.yaml", root, tmp_path, ["trainer.max_epochs=3"])
    # Always answering "rest" scores 45 % accuracy and macro F1 0.08; 3 epochs reach 67 % and 0.49.
    assert metrics["test/accuracy"] > 0.55
    assert metrics["test/macro_f1"] > 0.3


@pytest.mark.slow
def test_real_mouthed_words_fine_tune_beats_chance(shared_data, tmp_path):
    """6 mouthed commands, 2 channels; test windows come from held-out recordings (files)."""
    root = shared_data / "real/somach_silent_words/Phase_3_Mouthing"
    metrics = real_run("recipes/generic/mouthed_words.yaml", root, tmp_path, ["trainer.max_epochs=12"])
    assert metrics["test/accuracy"] > 1.5 / 6  # chance 1/6; 48 test files, so >= 13 right (p < 0.05 by chance); seen 0.31-0.40
