"""Pretraining: window sources, mixture sampling, the masked objective, and a tiny run end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from silentspeech.config import load_recipe
from silentspeech.data.gestures.corpus import GestureDataError
from silentspeech.data.gestures.folder import FolderFormat
from silentspeech.data.pretraining import (
    MixtureBatchSampler,
    PretrainWindows,
    WindowSource,
    minmax_scale,
    source_recordings,
)
from silentspeech.data.synthetic.gestures import SyntheticGestures
from silentspeech.models.tinymyo import TinyMyoPretrainer, load_tinymyo
from silentspeech.preprocessing import GestureFiltering, condition_emg
from silentspeech.tasks.pretrain import PretrainConfig, random_patch_mask, reconstruction_loss, train

TINY_ENCODER = [
    "model.encoder.channels=8", "model.encoder.dim=32", "model.encoder.depth=1", "model.encoder.heads=2",
    "model.encoder.mlp_dim=64", "model.encoder.dropout=0.0", "model.encoder.drop_path=0.0",
]


def test_patch_mask_masks_exactly_the_ratio():
    mask = random_patch_mask(5, 40, 0.5, torch.Generator().manual_seed(0))
    assert mask.shape == (5, 40) and mask.sum(dim=1).tolist() == [20] * 5
    assert not torch.equal(mask[0], mask[1])


def test_reconstruction_loss_weights_masked_and_visible_and_skips_padding():
    target = torch.zeros(1, 4, 5)
    predicted = torch.tensor([[1.0], [2.0], [3.0], [9.0]]).expand(4, 5)[None].clone()
    mask = torch.tensor([[True, False, True, False]])
    valid = torch.tensor([[True, True, True, False]])  # the last patch belongs to a zero-padded channel
    loss, masked, visible = reconstruction_loss(predicted, target, mask, valid, 0.1)
    # smooth L1 of 1, 2, 3 is 0.5, 1.5, 2.5
    assert masked.item() == pytest.approx((0.5 + 2.5) / 2)
    assert visible.item() == pytest.approx(1.5)
    assert loss.item() == pytest.approx(1.5 + 0.15)


def test_minmax_scale_per_channel():
    window = np.array([[0.0, 5.0, 10.0], [3.0, 3.0, 3.0], [-2.0, 0.0, 2.0]])
    scaled = minmax_scale(window)
    assert np.allclose(scaled, [[-1, 0, 1], [0, 0, 0], [-1, 0, 1]])


def test_windows_split_wide_recordings_and_pad_narrow_ones():
    rng = np.random.default_rng(0)
    wide, narrow = rng.standard_normal((100, 12)).astype(np.float32), rng.standard_normal((60, 3)).astype(np.float32)
    windows = PretrainWindows([[wide], [narrow]], channels=8, window=40, stride=20)
    assert windows.source_sizes == [4 * 2, 2]  # 4 starts x 2 channel groups; 2 starts
    group = windows[1]  # first start, channels 8..11
    assert group["channel_mask"].tolist() == [True] * 4 + [False] * 4
    assert float(group["emg"][4:].abs().max()) == 0.0
    assert float(group["emg"][:4].max()) == pytest.approx(1.0) and float(group["emg"][:4].min()) == pytest.approx(-1.0)
    padded = windows[windows.source_sizes[0]]
    assert padded["emg"].shape == (8, 40) and padded["channel_mask"].sum() == 3


def test_mixture_sampler_follows_weights_and_resumes():
    sampler = MixtureBatchSampler([100, 1000, 0], [3.0, 1.0, 5.0], batch_size=50, batches_per_epoch=40, seed=1)
    batches = list(sampler)
    drawn = np.concatenate(batches)
    assert len(batches) == 40 and drawn.max() < 1100
    assert (drawn < 100).mean() == pytest.approx(0.75, abs=0.05)  # the empty third source gets nothing
    sampler.set_epoch(0, start_batch=15)
    assert len(sampler) == 25 and list(sampler) == batches[15:]
    sampler.set_epoch(1)
    assert list(sampler) != batches


def test_sources_arrays_and_gaddy_layout(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "arrays").mkdir()
    np.save(tmp_path / "arrays" / "a.npy", rng.standard_normal((1000, 4)))
    session = tmp_path / "gaddy" / "voiced_parallel_data" / "5-4"
    session.mkdir(parents=True)
    np.save(session / "0_emg.npy", rng.standard_normal((2000, 8)))
    (session / "0_info.json").write_text(json.dumps({"book": "b", "sentence_index": 0, "text": "hi", "chunks": [[2000, 32000, 2000]]}))
    filtering = GestureFiltering(20.0, 450.0)
    arrays = source_recordings(WindowSource(kind="arrays", root=str(tmp_path / "arrays"), rate=500.0), 250.0, filtering)
    assert [a.shape for a in arrays] == [(500, 4)]
    gaddy = source_recordings(WindowSource(kind="gaddy", root=str(tmp_path / "gaddy"), mains=60.0), 250.0, filtering)
    assert [g.shape for g in gaddy] == [(500, 8)]  # 2 s at 1 kHz -> 250 Hz
    with pytest.raises(GestureDataError, match="sampling rate"):
        source_recordings(WindowSource(kind="arrays", root=str(tmp_path / "arrays")), 250.0, filtering)
    with pytest.raises(GestureDataError, match="unknown pretraining source kind"):
        source_recordings(WindowSource(kind="emg2pose", root="x"), 250.0, filtering)


def test_array_source_is_filtered_as_condition_emg_with_the_source_mains(tmp_path):
    raw = np.random.default_rng(3).standard_normal((1200, 4)) * 30
    np.save(tmp_path / "a.npy", raw)
    source = WindowSource(kind="arrays", root=str(tmp_path), rate=1000.0, mains=60.0)
    (got,) = source_recordings(source, 2000.0, GestureFiltering(20.0, 450.0, 4, 50.0))
    np.testing.assert_array_equal(got, condition_emg(raw, 1000.0, GestureFiltering(20.0, 450.0, 4, 60.0), 2000.0))


def test_folder_source_uses_its_layout_and_ignores_labels(tmp_path):
    rng = np.random.default_rng(0)
    rows = [",".join(map(str, [*rng.integers(-128, 128, 8), label])) for label in [0] * 300 + [3] * 300]
    (tmp_path / "3.txt").write_text("\n".join(rows))
    source = WindowSource(kind="folder", root=str(tmp_path), rate=200.0, folder=FolderFormat(pattern="*.txt", label_column="-1"))
    recordings = source_recordings(source, 200.0, GestureFiltering())
    assert [r.shape for r in recordings] == [(300, 8), (300, 8)]  # one per label run, label column not a channel


def test_synthetic_gesture_source_is_filtered_and_resampled():
    source = WindowSource(kind="synthetic_gestures", gestures=SyntheticGestures(subjects=2, repetitions=1))
    recordings = source_recordings(source, 400.0, GestureFiltering(20.0, 90.0))
    assert len(recordings) == 2 and recordings[0].shape[1] == 8
    assert recordings[0].shape[0] == 2 * 6 * (400 + 100)  # 2.5 s per class at 200 Hz, doubled


def test_tiny_pretraining_run_writes_a_loadable_encoder_and_figure(tmp_path):
    overrides = [
        f"out={tmp_path / 'run'}", "data.rate=200", "data.window=100", "data.stride=50", "data.bandpass_high=90",
        "data.batch_size=8", "data.batches_per_epoch=3", "data.max_val_windows=16",
        "data.sources=[{kind: synthetic_gestures, gestures: {subjects: 2, repetitions: 1}}]",
        "trainer.max_epochs=1", "trainer.progress_bar=false", "trainer.accelerator=cpu", "optim.warmup_steps=1",
        *TINY_ENCODER,
    ]
    run = train(load_recipe(PretrainConfig, None, overrides))
    assert (run / "reconstruction.png").stat().st_size > 1000
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert np.isfinite(metrics["test/loss"])
    encoder, report = load_tinymyo(run / "tinymyo.safetensors")
    assert encoder.config.dim == 32 and not report.missing
    assert any(key.startswith("mask_token") for key in report.unused)  # pretraining parts are reported, not used
    pretrainer, _ = load_tinymyo(run / "tinymyo.safetensors", pretrainer=True)
    assert isinstance(pretrainer, TinyMyoPretrainer)
    x = torch.randn(2, 8, 100)
    assert torch.allclose(pretrainer.encoder.eval()(x), encoder.eval()(x))


def test_command_line_override_reaches_a_source_in_the_list():
    from pathlib import Path

    from silentspeech.config import RecipeError

    recipe = Path(__file__).resolve().parents[1] / "recipes/generic/mouthed_words_pretrain.yaml"
    config = load_recipe(PretrainConfig, recipe, ["data.sources.0.root=/data/words", "trainer.max_epochs=2"])
    assert config.data.sources[0].root == "/data/words" and config.data.sources[0].kind == "folder"
    assert config.data.sources[0].folder.label_column == "Label" and config.trainer.max_epochs == 2
    with pytest.raises(RecipeError, match="bogus"):
        load_recipe(PretrainConfig, recipe, ["data.sources.0.bogus=1"])
