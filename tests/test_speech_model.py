"""Speech model: shapes, heads, exact padding, errors, pretrained encoder, config."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from conftest import tinymyo_released_state
from safetensors.torch import save_file

from silentspeech.config import load_recipe
from silentspeech.models.speech import EnvelopeEmbedding, SpeechModel, SpeechModelConfig
from silentspeech.models.tinymyo import TinyMyoConfig
from silentspeech.phonemes import NUM_PHONEMES
from silentspeech.text import NUM_CLASSES

TINY_ENCODER = TinyMyoConfig(channels=3, patch_len=4, dim=16, depth=2, heads=2, mlp_dim=32, position="rope")


def tiny_config(**changes) -> SpeechModelConfig:
    return dataclasses.replace(SpeechModelConfig(width=12, encoder=TINY_ENCODER, n_mfcc=10), **changes)


def test_outputs_per_frame_for_each_head():
    model = SpeechModel(tiny_config(outputs=["acoustic", "phoneme", "ctc"]))
    out = model(torch.randn(2, 8, 100))  # 100 samples -> ceil(100 / 8) = 13 frames
    assert out["acoustic"].shape == (2, 13, 10)
    assert out["phoneme_logits"].shape == (2, 13, NUM_PHONEMES)
    assert out["ctc_logits"].shape == (2, 13, NUM_CLASSES)
    assert out["hidden"].shape == (2, 13, 16)
    assert model.frame_lengths(torch.tensor([100, 96, 1])).tolist() == [13, 12, 1]

    recognition = SpeechModel(tiny_config(outputs=["ctc"]))
    assert set(recognition(torch.randn(1, 8, 64))) == {"ctc_logits", "hidden"}


@pytest.mark.parametrize(
    "position,envelope,normalise", [("none", False, False), ("rope", False, False), ("learned", False, False), ("rope", True, False), ("rope", True, True)]
)
def test_padded_batch_equals_items_alone(position, envelope, normalise):
    encoder = dataclasses.replace(TINY_ENCODER, position=position)
    model = SpeechModel(tiny_config(encoder=encoder, envelope=envelope, envelope_normalise=normalise))
    # Train a little so BatchNorm running statistics are not the identity.
    model.train()
    model(torch.randn(4, 8, 96))
    model.eval()
    lengths = [96, 61, 40, 13]
    items = [torch.randn(1, 8, n) for n in lengths]
    batch = torch.cat([torch.nn.functional.pad(x, (0, 96 - x.shape[2])) for x in items])
    with torch.no_grad():
        batched = model(batch, torch.tensor(lengths))
        for i, item in enumerate(items):
            alone = model(item)
            frames = alone["acoustic"].shape[1]
            assert frames == model.frame_lengths(torch.tensor(lengths[i])).item()
            for key in ("acoustic", "phoneme_logits"):
                torch.testing.assert_close(batched[key][i, :frames], alone[key][0], rtol=1e-4, atol=1e-5)


def test_wrong_channel_count_is_a_clear_error():
    model = SpeechModel(tiny_config())
    with pytest.raises(ValueError, match=r"\(batch, 8 channels, samples\); got shape \(2, 6, 64\)"):
        model(torch.randn(2, 6, 64))
    with pytest.raises(ValueError, match="got shape \\(8, 64\\)"):
        model(torch.randn(8, 64))


def test_bad_lengths_are_a_clear_error():
    model = SpeechModel(tiny_config())
    with pytest.raises(ValueError, match=r"lengths must hold 2 sample counts in 1\.\.64, got \[64, 65\]"):
        model(torch.randn(2, 8, 64), torch.tensor([64, 65]))
    with pytest.raises(ValueError, match="got \\[0, 8\\]"):
        model(torch.randn(2, 8, 64), torch.tensor([0, 8]))


def test_unknown_head_is_refused():
    with pytest.raises(ValueError, match="must name some of"):
        SpeechModel(tiny_config(outputs=["acoustic", "pitch"]))


def test_pretrained_encoder_is_loaded(tmp_path):
    """A checkpoint in the released layout (keys from tests/data/tinymyo_released_keys.txt) lands in the named weights."""
    released = tinymyo_released_state(TINY_ENCODER)
    path = tmp_path / "tinymyo.safetensors"
    save_file(released, str(path))
    model = SpeechModel(tiny_config(pretrained=str(path)))
    assert model.encoder.config.position == "rope"  # the speech config decides, not the file
    encoder = model.encoder
    for i in range(TINY_ENCODER.depth):
        assert torch.equal(encoder.blocks[i].attn.qkv.weight, released[f"model.blocks.{i}.attn.qkv.weight"])
        assert torch.equal(encoder.blocks[i].mlp.fc2.bias, released[f"model.blocks.{i}.mlp.fc2.bias"])
    assert torch.equal(encoder.norm.bias, released["model.norm.bias"])
    assert torch.equal(encoder.patch_embedding.weight, released["model.patch_embedding.patch_embed.proj.weight"])


def test_envelope_embedding_follows_the_emg_power():
    """The envelope token of a frame grows with the EMG's power there, and only there (58 ms of smoothing)."""
    embedding = EnvelopeEmbedding(channels=2, dim=4).eval()
    with torch.no_grad():
        embedding.projection.weight.zero_()
        embedding.projection.weight[0, 0] = 1.0  # token unit 0 reads the log energy of channel 0
        embedding.projection.bias.zero_()
        emg = torch.full((1, 2, 80 * 8), 0.1)
        emg[0, 0, 40 * 8 : 41 * 8] = 3.0  # one loud frame on channel 0
        token = embedding(emg)[0, :, 0]
    loud = token[38:43]
    assert torch.all(loud > token[0] + 1.0)  # the window of ENVELOPE_FRAMES = 5 around frame 40
    assert torch.allclose(token[:37], token[0].expand(37)) and torch.allclose(token[44:], token[0].expand(36))
    assert torch.allclose(loud, loud[0].expand(5))  # a flat average over the window


def test_normalised_envelope_ignores_a_channel_gain():
    """A channel recorded 3x louder (contact, placement, mouthing) gives the same normalised envelope."""
    embedding = EnvelopeEmbedding(channels=2, dim=4, normalise=True).eval()
    emg = torch.randn(1, 2, 60 * 8) * torch.linspace(0.5, 2.0, 60 * 8)
    louder = emg * torch.tensor([3.0, 1.0])[None, :, None]
    with torch.no_grad():
        torch.testing.assert_close(embedding(louder), embedding(emg), rtol=0, atol=1e-2)  # up to the energy floor
        plain = EnvelopeEmbedding(channels=2, dim=4, normalise=False).eval()
        plain.load_state_dict(embedding.state_dict())
        assert (plain(louder) - plain(emg)).abs().max() > 0.1  # without it the gain shows


def test_training_step_reaches_every_used_weight():
    model = SpeechModel(tiny_config(outputs=["acoustic", "phoneme", "ctc"], envelope=True))
    out = model(torch.randn(2, 8, 64), torch.tensor([64, 50]))
    (out["acoustic"].sum() + out["phoneme_logits"].sum() + out["ctc_logits"].sum()).backward()
    for name, param in model.named_parameters():
        if name.startswith("encoder.patch_embedding."):
            assert not param.requires_grad and param.grad is None
        else:
            assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_config_is_an_omegaconf_structured_config():
    config = load_recipe(SpeechModelConfig, overrides=["encoder.depth=2", "outputs=[ctc]", "pretrained=/x.safetensors"])
    assert config.encoder.depth == 2 and config.encoder.position == "rope"
    assert config.outputs == ["ctc"] and config.pretrained == "/x.safetensors"
