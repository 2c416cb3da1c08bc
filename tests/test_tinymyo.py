"""TinyMyo encoder: size, released-checkpoint import/export, position modes, padding."""

from __future__ import annotations

import dataclasses
import logging
import math

import pytest
import torch
from conftest import tinymyo_released_layout, tinymyo_released_state
from safetensors.torch import load_file, save_file

from silentspeech.models.tinymyo import (
    TinyMyoConfig,
    TinyMyoEncoder,
    TinyMyoPretrainer,
    load_tinymyo,
    patches,
    released_name,
    save_tinymyo,
    tinymyo_state_dict,
)

TINY = TinyMyoConfig(channels=3, patch_len=4, dim=16, depth=2, heads=2, mlp_dim=32)


def test_default_config_has_3_56_m_encoder_parameters():
    # Counted as in the paper: patch embedding, the 8 blocks and the final norm
    # (no mask token or decoder: those belong to pretraining; "none" position
    # mode has no position table).
    encoder = TinyMyoEncoder(TinyMyoConfig())
    count = sum(p.numel() for p in encoder.parameters())
    print(f"TinyMyo encoder parameters: {count:,} ({count / 1e6:.2f} M)")
    assert round(count / 1e6, 2) == 3.56


def test_forward_shape_is_channel_major_tokens():
    encoder = TinyMyoEncoder(TINY)
    assert encoder(torch.randn(2, 3, 40)).shape == (2, 3 * 10, 16)


def test_importer_maps_exactly_the_released_checkpoint_keys(tmp_path):
    """Every key of the released checkpoint (tests/data/tinymyo_released_keys.txt, derived from the upstream
    model definition) is loaded into the named weight or reported unused; none is missing, none is invented."""
    layout = tinymyo_released_layout()
    generator = torch.Generator().manual_seed(0)
    state = {key: torch.randn(shape, generator=generator) for key, shape in layout.items()}
    path = tmp_path / "released.safetensors"
    save_file(state, str(path))

    encoder, report = load_tinymyo(path)
    assert report.missing == [] and report.config == TinyMyoConfig()
    unused = {entry.split(" [")[0] for entry in report.unused}
    assert unused == {"mask_token", "model_head.decoder_pred.weight", "model_head.decoder_pred.bias"}
    loaded = {f"model.{released_name(name)}": value for name, value in encoder.state_dict().items()}
    assert loaded.keys() | {f"model.{key}" for key in unused} == layout.keys()
    for key, value in loaded.items():
        assert torch.equal(value, state[key]), key

    pretrainer, report = load_tinymyo(path, pretrainer=True)
    assert report.missing == [] and report.unused == []
    for key, value in tinymyo_state_dict(pretrainer).items():
        assert torch.equal(value, state[key]), key
    # Written back, the pretraining model has exactly the released keys and shapes.
    assert {key: tuple(value.shape) for key, value in tinymyo_state_dict(pretrainer).items()} == layout


def test_released_keys_load_with_nothing_missing_and_extras_reported(tmp_path):
    config = TinyMyoConfig(dropout=0.0, drop_path=0.0)
    state = tinymyo_released_state(config)
    state["model.channel_embed"] = torch.zeros(1, 16, 1, 192)
    state["model.model_head.classifier.weight"] = torch.zeros(53, 16 * 192)
    path = tmp_path / "tinymyo.safetensors"
    save_file(state, str(path))

    encoder, report = load_tinymyo(path)
    assert report.missing == []
    assert sorted(report.unused) == [
        "channel_embed [1, 16, 1, 192]",
        "mask_token [1, 1, 192]",
        "model_head.classifier.weight [53, 3072]",
        "model_head.decoder_pred.bias [20]",
        "model_head.decoder_pred.weight [20, 192]",
    ]
    assert report.config == TinyMyoConfig()
    assert torch.equal(encoder.blocks[7].mlp.fc2.weight, state["model.blocks.7.mlp.fc2.weight"])

    pretrainer, report = load_tinymyo(path, pretrainer=True)
    assert isinstance(pretrainer, TinyMyoPretrainer) and report.missing == []
    assert torch.equal(pretrainer.mask_token, state["model.mask_token"])
    assert torch.equal(pretrainer.decoder_pred.weight, state["model.model_head.decoder_pred.weight"])


def _layer_norm(x, weight, bias):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + 1e-5) * weight + bias


def test_block_matches_hand_computation_from_released_weights(tmp_path):
    config = dataclasses.replace(TINY, heads=2)
    state = tinymyo_released_state(config, seed=1)
    path = tmp_path / "tiny.safetensors"
    save_file(state, str(path))
    encoder, _ = load_tinymyo(path, config)
    encoder.eval()
    w = {key.removeprefix("model.blocks.0."): value for key, value in state.items() if key.startswith("model.blocks.0.")}

    x = torch.randn(2, 5, config.dim)
    batch, n, d, heads = 2, 5, config.dim, config.heads
    h = _layer_norm(x, w["norm1.weight"], w["norm1.bias"])
    qkv = h @ w["attn.qkv.weight"].T + w["attn.qkv.bias"]  # (B, N, 3d): q | k | v, heads inside each
    q, k, v = (qkv[..., i * d : (i + 1) * d].reshape(batch, n, heads, d // heads).transpose(1, 2) for i in range(3))
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // heads), dim=-1)
    attended = (weights @ v).transpose(1, 2).reshape(batch, n, d)
    x1 = x + attended @ w["attn.proj.weight"].T + w["attn.proj.bias"]
    h = _layer_norm(x1, w["norm2.weight"], w["norm2.bias"]) @ w["mlp.fc1.weight"].T + w["mlp.fc1.bias"]
    h = 0.5 * h * (1 + torch.erf(h / math.sqrt(2)))
    expected = x1 + h @ w["mlp.fc2.weight"].T + w["mlp.fc2.bias"]

    with torch.no_grad():
        torch.testing.assert_close(encoder.blocks[0](x), expected, rtol=1e-4, atol=1e-5)

    # Patch embedding: each channel's 4-sample patches, projected, channel-major.
    emg = torch.randn(2, config.channels, 8)
    proj_w = state["model.patch_embedding.patch_embed.proj.weight"].reshape(d, config.patch_len)
    tokens = emg.reshape(2, config.channels * 2, config.patch_len) @ proj_w.T
    tokens = tokens + state["model.patch_embedding.patch_embed.proj.bias"]
    with torch.no_grad():
        torch.testing.assert_close(encoder.embed_patches(emg), tokens, rtol=1e-4, atol=1e-5)


def test_lightning_checkpoint_and_unprefixed_keys_load(tmp_path):
    state = tinymyo_released_state(TINY)
    lightning = tmp_path / "last.ckpt"
    torch.save({"state_dict": state, "epoch": 3}, lightning)
    encoder, report = load_tinymyo(lightning, TINY)
    assert report.missing == [] and torch.equal(encoder.norm.weight, state["model.norm.weight"])

    bare = tmp_path / "bare.pt"
    torch.save({key.removeprefix("model."): value for key, value in state.items()}, bare)
    encoder, report = load_tinymyo(bare, TINY)
    assert torch.equal(encoder.blocks[1].attn.qkv.bias, state["model.blocks.1.attn.qkv.bias"])


def test_our_position_table_is_reported_missing(tmp_path):
    path = tmp_path / "tiny.safetensors"
    save_file(tinymyo_released_state(TINY), str(path))
    _, report = load_tinymyo(path, dataclasses.replace(TINY, position="learned"))
    assert report.missing == ["position_embedding"]


def test_position_mode_follows_the_weights_and_a_different_one_warns(tmp_path, caplog):
    released = tmp_path / "released.safetensors"
    save_file(tinymyo_released_state(TINY), str(released))
    assert load_tinymyo(released)[1].config.position == "none"  # the released model saw no position
    with caplog.at_level(logging.WARNING, logger="silentspeech.models.tinymyo"):
        load_tinymyo(released, dataclasses.replace(TINY, position="rope"))
    assert "trained with position encoding 'none', the config asks for 'rope'" in caplog.text
    ours = tmp_path / "ours.safetensors"
    save_tinymyo(TinyMyoEncoder(dataclasses.replace(TINY, position="rope")), ours)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="silentspeech.models.tinymyo"):
        encoder, _ = load_tinymyo(ours, dataclasses.replace(TINY, position="rope"))
    assert encoder.config.position == "rope" and "position encoding" not in caplog.text


def test_shape_mismatch_names_key_and_both_shapes(tmp_path):
    path = tmp_path / "wide.safetensors"
    save_file(tinymyo_released_state(dataclasses.replace(TINY, mlp_dim=48)), str(path))
    with pytest.raises(ValueError, match=r"blocks\.0\.mlp\.fc1\.weight: checkpoint \(48, 16\), model \(32, 16\)"):
        load_tinymyo(path, TINY)


def test_other_architectures_are_refused(tmp_path):
    deep = tmp_path / "deep.safetensors"
    save_file(tinymyo_released_state(dataclasses.replace(TINY, depth=3)), str(deep))
    with pytest.raises(ValueError, match="3 Transformer blocks, the config asks for 2"):
        load_tinymyo(deep, TINY)

    other = tmp_path / "resnet.safetensors"
    save_file({"conv1.weight": torch.zeros(8, 3, 3, 3), "fc.weight": torch.zeros(10, 8)}, str(other))
    with pytest.raises(ValueError, match="not a TinyMyo checkpoint"):
        load_tinymyo(other)

    state = tinymyo_released_state(TINY)
    del state["model.blocks.1.mlp.fc2.bias"]
    partial = tmp_path / "partial.safetensors"
    save_file(state, str(partial))
    with pytest.raises(ValueError, match=r"lacks encoder weights: blocks\.1\.mlp\.fc2\.bias"):
        load_tinymyo(partial, TINY)

    with pytest.raises(FileNotFoundError, match="nowhere.safetensors"):
        load_tinymyo(tmp_path / "nowhere.safetensors")


def test_export_round_trips_in_released_layout(tmp_path):
    config = dataclasses.replace(TINY, position="learned", max_tokens=8, heads=4)
    model = TinyMyoPretrainer(config).eval()
    path = tmp_path / "pretrained.safetensors"
    save_tinymyo(model, path)

    keys = set(load_file(str(path)))
    assert set(tinymyo_released_state(config)) <= keys
    assert keys - set(tinymyo_released_state(config)) == {"model.position_embedding"}

    loaded, report = load_tinymyo(path, pretrainer=True)
    assert loaded.config == config and report.missing == [] and report.unused == []
    emg = torch.randn(2, 3, 16)
    mask = torch.rand(2, 12) < 0.5
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(emg, mask), model(emg, mask))

    with pytest.raises(ValueError, match="4 attention heads, the config asks for 2"):
        load_tinymyo(path, dataclasses.replace(config, heads=2))


def test_wrong_channel_count_or_length_is_a_clear_error():
    encoder = TinyMyoEncoder(TINY)
    with pytest.raises(ValueError, match=r"3 channels, samples\), got \(2, 5, 40\)"):
        encoder(torch.randn(2, 5, 40))
    with pytest.raises(ValueError, match="multiple of patch_len=4 samples per channel, got 41"):
        encoder(torch.randn(2, 3, 41))
    with pytest.raises(ValueError, match=r"2 sample counts in 1\.\.40, got \[0, 40\]"):
        encoder(torch.randn(2, 3, 40), lengths=torch.tensor([0, 40]))


def test_rope_encodes_relative_time_only():
    encoder = TinyMyoEncoder(dataclasses.replace(TINY, position="rope")).eval()
    tokens = torch.randn(2, 7, 16)
    with torch.no_grad():
        base = encoder.encode_tokens(tokens)
        shifted = encoder.encode_tokens(tokens, positions=torch.arange(7) + 11)
        order = torch.randperm(7)
        permuted = encoder.encode_tokens(tokens[:, order])
    torch.testing.assert_close(base, shifted, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(base[:, order], permuted, atol=1e-3), "rope output must depend on token order"

    # Without positions, attention is permutation-equivariant.
    plain = TinyMyoEncoder(TINY).eval()
    with torch.no_grad():
        torch.testing.assert_close(plain.encode_tokens(tokens)[:, order], plain.encode_tokens(tokens[:, order]))


def test_rope_rotates_by_patch_time_not_token_index():
    # All channels of one instant share a rotation, so swapping channels only swaps
    # their token blocks; a token-index rotation would change the outputs.
    encoder = TinyMyoEncoder(dataclasses.replace(TINY, position="rope")).eval()
    emg = torch.randn(1, 3, 20)
    with torch.no_grad():
        out = encoder(emg).view(1, 3, 5, 16)
        swapped = encoder(emg[:, [2, 0, 1]]).view(1, 3, 5, 16)
    torch.testing.assert_close(out[:, [2, 0, 1]], swapped, rtol=1e-4, atol=1e-5)
    assert encoder.token_positions(5).tolist() == [0, 1, 2, 3, 4] * 3


def test_learned_positions_train_and_are_bounded():
    encoder = TinyMyoEncoder(dataclasses.replace(TINY, position="learned", max_tokens=6))
    encoder(torch.randn(2, 3, 24)).sum().backward()
    assert encoder.position_embedding.grad.abs().sum() > 0
    assert encoder.position_embedding.grad[6:].numel() == 0
    with pytest.raises(ValueError, match="beyond the learned position table"):
        encoder(torch.randn(2, 3, 28))


@pytest.mark.parametrize("position", ["none", "rope", "learned"])
def test_padded_batch_matches_items_alone(position):
    encoder = TinyMyoEncoder(dataclasses.replace(TINY, position=position)).eval()
    short, long = torch.randn(1, 3, 12), torch.randn(1, 3, 24)
    batch = torch.cat([torch.nn.functional.pad(short, (0, 12)), long])
    with torch.no_grad():
        out = encoder(batch, lengths=torch.tensor([12, 24]))
        alone_short, alone_long = encoder(short), encoder(long)
    valid = out[0].view(3, 6, 16)[:, :3].reshape(9, 16)
    torch.testing.assert_close(valid, alone_short[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out[1], alone_long[0], rtol=1e-4, atol=1e-5)


def test_pretrainer_replaces_masked_patches():
    model = TinyMyoPretrainer(TINY).eval()
    emg = torch.randn(2, 3, 16)
    everything = torch.ones(2, 12, dtype=torch.bool)
    with torch.no_grad():
        reconstruction = model(emg, everything)
        # Every token is the mask token: the input cannot matter.
        torch.testing.assert_close(reconstruction, model(torch.randn(2, 3, 16), everything))
    assert reconstruction.shape == patches(emg, 4).shape == (2, 12, 4)
    assert torch.equal(patches(emg, 4)[0, 5], emg[0, 1, 4:8])
