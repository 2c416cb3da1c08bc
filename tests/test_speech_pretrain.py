"""Speech pretraining: masked reconstruction trains, and recognition/production start from its trunk."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import prepared_synthetic_cache
from safetensors.torch import load_file

from silentspeech.config import load_recipe
from silentspeech.models.speech import SpeechModel, SpeechModelConfig
from silentspeech.models.tinymyo import TinyMyoConfig
from silentspeech.tasks import get_task, train_recipe
from silentspeech.tasks.speech_pretrain import SpeechMaskConfig, emg_frames, frame_mask, reconstruction_loss

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "model.width=16", "model.encoder.dim=16", "model.encoder.depth=1", "model.encoder.heads=1", "model.encoder.mlp_dim=32",
    "data.max_total_samples=24000", "trainer.progress_bar=false", "trainer.log_every_steps=1",
    "trainer.max_steps=3", "trainer.val_every_steps=3", "trainer.test=false",
]


def _tiny_model(outputs: list[str]) -> SpeechModel:
    return SpeechModel(SpeechModelConfig(width=16, encoder=TinyMyoConfig(dim=16, depth=1, heads=1, mlp_dim=32, position="rope"), outputs=outputs))


def test_frame_mask_covers_about_the_ratio_in_spans():
    mask = frame_mask(64, 200, 0.5, 4, torch.Generator().manual_seed(0))
    share = mask.float().mean().item()
    assert 0.3 < share < 0.55  # overlapping spans cover a little less than the ratio
    # Spans: a masked frame has a masked neighbour.
    inner = mask[:, 1:-1]
    assert bool((inner <= (mask[:, :-2] | mask[:, 2:])).all())


def test_emg_frames_lays_out_each_frames_samples_channel_major():
    emg = torch.arange(2 * 3 * 16, dtype=torch.float32).reshape(2, 3, 16)
    frames = emg_frames(emg, 2)
    assert frames.shape == (2, 2, 24)
    assert torch.equal(frames[1, 1, :8], emg[1, 0, 8:16])
    assert torch.equal(frames[1, 1, 8:16], emg[1, 1, 8:16])


def test_reconstruction_loss_falls_when_the_head_predicts_the_input():
    model = _tiny_model(["reconstruction"])
    emg = torch.randn(2, 8, 160)
    batch = {"emg": emg, "emg_lengths": torch.tensor([160, 120]), "ids": ["a", "b"]}
    loss = reconstruction_loss(model, batch, SpeechMaskConfig(0.5, 4), torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    assert model.heads["reconstruction"].weight.grad.abs().sum() > 0


def test_masked_frames_are_hidden_from_the_transformer_not_zeroed_in_the_emg():
    """A masked span's inner samples (beyond the downsampler's 43-sample reach of the visible frames) change nothing."""
    model = _tiny_model(["reconstruction"]).eval()
    emg = torch.randn(1, 8, 400)
    altered = emg.clone()
    altered[:, :, 14 * 8 : 26 * 8] = torch.randn(1, 8, 12 * 8) * 5  # inside frames 10..29, > 3 frames from their edges
    token_mask = torch.zeros(1, 50, dtype=torch.bool)
    token_mask[:, 10:30] = True
    with torch.no_grad():
        hidden = model(emg, token_mask=token_mask)["reconstruction"]
        assert torch.equal(hidden, model(altered, token_mask=token_mask)["reconstruction"])
        # Unmasked, the same change reaches the outputs; the mask token is what the masked frames carry.
        assert not torch.equal(model(emg)["reconstruction"], model(altered)["reconstruction"])
    with pytest.raises(ValueError, match="token_mask must be"):
        model(emg, token_mask=token_mask[:, :40])
    with pytest.raises(ValueError, match="reconstruction"):
        _tiny_model(["ctc"])(emg, token_mask=token_mask)


def test_init_from_copies_the_trunk_and_refuses_another_size(tmp_path):
    from silentspeech.atomic import atomic_save_safetensors

    source = _tiny_model(["reconstruction"])
    atomic_save_safetensors(tmp_path / "best.safetensors", source.state_dict())
    target = _tiny_model(["ctc"])
    target.load_trunk(str(tmp_path))
    assert "mask_token" not in target.state_dict()  # pretraining's mask token stays behind
    for key, value in source.state_dict().items():
        if not key.startswith("heads.") and key != "mask_token":
            assert torch.equal(target.state_dict()[key], value), key
    wider = SpeechModel(SpeechModelConfig(width=32, encoder=TinyMyoConfig(dim=16, depth=1, heads=1, mlp_dim=32), outputs=["ctc"]))
    with pytest.raises(ValueError, match="does not fit this speech model"):
        wider.load_trunk(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="init_from"):
        target.load_trunk(str(tmp_path / "nowhere"))


@pytest.mark.slow
def test_pretrain_then_recognition_starts_from_the_trunk(tmp_path_factory, tmp_path):
    cache = prepared_synthetic_cache(tmp_path_factory, utterances=30)
    pretrained = train_recipe(REPO / "recipes/synthetic/speech_pretrain.yaml", [f"data.cache={cache}", f"out={tmp_path / 'pre'}", *TINY])
    saved = load_file(str(pretrained / "best.safetensors"))
    assert "mask_token" in saved
    trunk = {k: v for k, v in saved.items() if not k.startswith("heads.") and k != "mask_token"}
    config = load_recipe(
        get_task("recognition").schema,
        REPO / "recipes/synthetic/recognition.yaml",
        [f"data.cache={cache}", f"out={tmp_path / 'rec'}", f"model.init_from={pretrained}", *TINY],
    )
    model = get_task("recognition").build_model(config)
    for key, value in trunk.items():
        assert torch.equal(model.state_dict()[key], value), key
