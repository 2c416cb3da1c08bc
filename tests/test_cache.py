"""Preprocessing cache, its Dataset, collation and the length-bucketed batch sampler."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_gaddy import BOOK, LONG_TEXTGRID, write_corpus  # noqa: E402 (tests/ is on sys.path under pytest)

from silentspeech.cli import main
from silentspeech.data.cache import (
    CachedUtterances,
    LengthBucketBatchSampler,
    cache_file_name,
    collate_utterances,
    prepare_cache,
)
from silentspeech.data.gaddy import CorpusError
from silentspeech.preprocessing import EMGPreprocessing


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> tuple[Path, Path]:
    """A fixture corpus (with one TextGrid) prepared once, with sentence 2 in dev and 3 in test."""
    base = tmp_path_factory.mktemp("cache")
    root = write_corpus(base / "emg_data")
    alignment = root / "text_alignments" / "5-4" / "5-4_2_audio.TextGrid"
    alignment.parent.mkdir(parents=True)
    alignment.write_text(LONG_TEXTGRID)
    split_file = base / "split.json"
    split_file.write_text(json.dumps({"dev": [[BOOK, 2]], "test": [[BOOK, 3]]}))
    out = base / "cache"
    report = prepare_cache(root, out, split_file=split_file, workers=0, n_mfcc=80)
    assert report.written == 10 and report.reused == 0 and report.skipped == []
    return root, out


def test_manifest_entries_follow_the_contract(prepared):
    root, out = prepared
    manifest = json.loads((out / "manifest.json").read_text())
    entries = {e["id"]: e for e in manifest["utterances"]}
    assert len(entries) == 10  # 4 voiced + 4 silent parallel + 2 nonparallel
    silent = entries["silent_parallel_data/5-4_silent/2"]
    assert silent["split"] == "dev" and silent["silent"] is True
    assert silent["twin"] == "voiced_parallel_data/5-4/2"
    assert silent["session"] == "5-4_silent" and silent["book"] == BOOK and silent["sentence_index"] == 2
    assert silent["text"] == "a second one" and silent["has_phonemes"] is False
    assert silent["audio_path"] == str((root / "silent_parallel_data/5-4_silent/2_audio_clean.flac").resolve())
    voiced = entries["voiced_parallel_data/5-4/2"]
    assert voiced["split"] == "excluded" and voiced["twin"] is None and voiced["has_phonemes"] is True
    for entry in entries.values():
        with np.load(out / "utterances" / cache_file_name(entry["id"])) as npz:
            assert npz["emg"].shape == (8 * entry["n_frames"], 8) and npz["emg"].dtype == np.float32
            assert npz["features"].shape == (entry["n_frames"], 80) and npz["features"].dtype == np.float32
            assert ("phonemes" in npz.files) == entry["has_phonemes"]
            if entry["has_phonemes"]:
                assert npz["phonemes"].shape == (entry["n_frames"],) and npz["phonemes"].dtype == np.int64


def test_dataset_items_use_the_voiced_twins_targets(prepared):
    _, out = prepared
    dev = CachedUtterances(out, split="dev")
    assert [e["id"] for e in dev.entries] == ["silent_parallel_data/5-4_silent/2"]
    item = dev[0]
    twin = CachedUtterances(out, split="excluded", kinds=("voiced",))
    twin_item = next(twin[i] for i in range(len(twin)) if twin.entries[i]["id"] == "voiced_parallel_data/5-4/2")
    assert item["silent"] is True and item["text"] == "a second one"
    assert torch.equal(item["target_features"], twin_item["features"])
    assert not torch.equal(item["features"], twin_item["features"])  # own audio differs
    assert item["phonemes"] is not None and item["phonemes"].shape[0] == item["target_features"].shape[0]
    assert item["emg"].shape == (dev.lengths[0], 8) and item["emg"].dtype == torch.float32
    assert item["text_ids"].dtype == torch.int64 and len(item["text_ids"]) == len("a second one")
    train = CachedUtterances(out, split="train")
    assert len(train) == 5 and all(e["split"] == "train" for e in train.entries)  # sentences 1, 4 twice, 40
    assert len(CachedUtterances(out, split="train", kinds=("silent",))) == 2
    with pytest.raises(ValueError, match="unknown split"):
        CachedUtterances(out, split="validation")


def test_collate_pads_and_marks_missing_phonemes(prepared):
    _, out = prepared
    dataset = CachedUtterances(out, split="excluded")
    items = [dataset[i] for i in range(len(dataset))]
    items[0]["emg"] = items[0]["emg"][:80]  # make lengths differ
    batch = collate_utterances(items)
    n, t_max = len(items), max(item["emg"].shape[0] for item in items)
    assert batch["emg"].shape == (n, 8, t_max) and batch["emg_lengths"].tolist()[0] == 80
    assert (batch["emg"][0, :, 80:] == 0).all()
    assert torch.equal(batch["emg"][1, :, : items[1]["emg"].shape[0]], items[1]["emg"].T)
    assert batch["target_features"].shape[:2] == batch["phonemes"].shape
    for row, item in enumerate(items):
        if item["phonemes"] is None:
            assert (batch["phonemes"][row] == -100).all() and not batch["has_phonemes"][row]
        else:
            length = item["phonemes"].shape[0]
            assert torch.equal(batch["phonemes"][row, :length], item["phonemes"]) and batch["has_phonemes"][row]
            assert (batch["phonemes"][row, length:] == -100).all()
    assert batch["text_ids"].dtype == torch.int64 and batch["text_lengths"].tolist() == [len(t) for t in batch["texts"]]
    assert batch["ids"] == [item["id"] for item in items]


def test_prepare_resumes_from_complete_entries(prepared, tmp_path):
    root, out = prepared
    copy = tmp_path / "cache"
    (copy / "utterances").mkdir(parents=True)
    for path in sorted((out / "utterances").glob("*.npz"))[:6]:
        (copy / "utterances" / path.name).write_bytes(path.read_bytes())
    (copy / "settings.json").write_bytes((out / "settings.json").read_bytes())
    # A temporary file of a killed write is left over; it must not count.
    (copy / "utterances" / ".x.npz.abc.tmp").write_bytes(b"partial")
    report = prepare_cache(root, copy, workers=2)
    assert (report.reused, report.written) == (6, 4)
    again = prepare_cache(root, copy, workers=0)
    assert (again.reused, again.written) == (10, 0)
    # A source file rewritten in place: that utterance and its two neighbours are made again.
    emg_path = root / "voiced_parallel_data" / "5-4" / "2_emg.npy"
    np.save(emg_path, np.load(emg_path))
    changed = prepare_cache(root, copy, workers=0)
    assert (changed.reused, changed.written) == (7, 3)
    with pytest.raises(CorpusError, match="settings.json: this cache was made with other settings"):
        prepare_cache(root, copy, workers=0, preprocessing=EMGPreprocessing(mains=50.0))


def test_prepare_skips_and_counts_bad_utterances(tmp_path):
    root = write_corpus(tmp_path / "emg_data")
    emg_path = root / "voiced_parallel_data" / "5-4" / "4_emg.npy"
    emg = np.load(emg_path)
    emg[3, 3] = np.nan
    np.save(emg_path, emg)
    report = prepare_cache(root, tmp_path / "cache", workers=0)
    reasons = {s.path: s.reason for s in report.skipped}
    assert reasons[str(emg_path)] == "EMG holds 1 NaN or infinite values"
    silent_emg = root / "silent_parallel_data" / "5-4_silent" / "4_emg.npy"
    assert reasons[str(silent_emg)] == "its voiced twin voiced_parallel_data/5-4/4 was skipped"
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    assert len(manifest["utterances"]) == 8 and len(manifest["skipped"]) == 2
    assert "2 skipped" in report.summary() and f"skipped {emg_path}: EMG holds 1 NaN" in report.summary()


def test_dataset_without_manifest_names_the_file(tmp_path):
    with pytest.raises(CorpusError, match="manifest.json: missing: run `silentspeech prepare` first"):
        CachedUtterances(tmp_path)


def test_prepare_command(tmp_path, capsys):
    root = write_corpus(tmp_path / "emg_data")
    assert main(["prepare", str(root), "--out", str(tmp_path / "cache"), "--workers", "0", "--closed-vocab", "--mains", "50"]) == 0
    assert "2 utterances written" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    assert manifest["settings"]["preprocessing"]["mains"] == 50.0
    assert {e["id"] for e in manifest["utterances"]} == {"closed_vocab/voiced/5-19/0", "closed_vocab/silent/5-19_silent/0"}
    assert main(["prepare", str(tmp_path / "nothing"), "--out", str(tmp_path / "c2")]) == 2
    assert "nothing: no such folder" in capsys.readouterr().err
    for path in (root / "closed_vocab").rglob("*_info.json"):
        path.unlink()
    assert main(["prepare", str(root), "--out", str(tmp_path / "c3"), "--closed-vocab"]) == 2
    assert "no usable closed-vocabulary utterances to prepare" in capsys.readouterr().err


# --- batch sampler -------------------------------------------------------------

LENGTHS = np.random.default_rng(0).integers(200, 3000, size=300).tolist() + [9000]


def test_batches_stay_under_the_cap_and_cover_every_item():
    sampler = LengthBucketBatchSampler(LENGTHS, max_total_samples=8000, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    assert sorted(i for b in batches for i in b) == list(range(len(LENGTHS)))
    for batch in batches:
        padded = len(batch) * max(LENGTHS[i] for i in batch)
        assert padded <= 8000 or len(batch) == 1  # the 9000-sample item alone
    assert [300] in batches


def test_order_is_a_function_of_seed_and_epoch():
    a = LengthBucketBatchSampler(LENGTHS, 8000, seed=1)
    b = LengthBucketBatchSampler(LENGTHS, 8000, seed=1)
    a.set_epoch(3)
    b.set_epoch(3)
    assert list(a) == list(b)
    b.set_epoch(4)
    assert list(a) != list(b)
    c = LengthBucketBatchSampler(LENGTHS, 8000, seed=2)
    c.set_epoch(3)
    assert list(a) != list(c)
    ordered = LengthBucketBatchSampler(LENGTHS, 8000, shuffle=False)
    flat = [LENGTHS[i] for batch in ordered for i in batch]
    assert flat == sorted(flat)


def test_set_epoch_start_batch_resumes_exactly():
    sampler = LengthBucketBatchSampler(LENGTHS, 8000, seed=5)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.set_epoch(2, start_batch=7)
    assert list(sampler) == full[7:] and len(sampler) == len(full) - 7
    sampler.set_epoch(3)
    assert len(list(sampler)) == len(sampler)


def test_ranks_get_equal_counts_and_together_cover_everything():
    world = [LengthBucketBatchSampler(LENGTHS, 8000, seed=1, rank=r, world_size=3) for r in range(3)]
    for sampler in world:
        sampler.set_epoch(1)
    shards = [list(s) for s in world]
    assert len({len(shard) for shard in shards}) == 1
    single = LengthBucketBatchSampler(LENGTHS, 8000, seed=1)
    single.set_epoch(1)
    all_batches = list(single)
    assert {tuple(b) for shard in shards for b in shard} == {tuple(b) for b in all_batches}
    with pytest.raises(ValueError, match="rank 3 is outside world_size 3"):
        LengthBucketBatchSampler(LENGTHS, 8000, rank=3, world_size=3)


def test_sampler_drives_a_dataloader(prepared):
    _, out = prepared
    dataset = CachedUtterances(out, split="train")
    sampler = LengthBucketBatchSampler(dataset.lengths, max_total_samples=3 * max(dataset.lengths))
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_utterances)
    seen = [i for batch in loader for i in batch["ids"]]
    assert sorted(seen) == sorted(e["id"] for e in dataset.entries)


def test_training_refuses_a_cache_made_with_other_preprocessing(prepared, tmp_path):
    """Every preprocessing constant is in the manifest; a recipe asking for others is refused, naming them."""
    from silentspeech.config import load_recipe
    from silentspeech.data.cache import read_manifest
    from silentspeech.tasks import get_task
    from silentspeech.tasks.speech_data import SpeechData

    root, out = prepared
    recorded = read_manifest(out)["settings"]["preprocessing"]
    assert recorded == {**vars(EMGPreprocessing()), "notch_harmonics": 7}
    recipe = Path(__file__).resolve().parents[1] / "recipes/synthetic/recognition.yaml"
    same = load_recipe(get_task("recognition").schema, recipe, [f"data.cache={out}"])
    SpeechData(same.data, same.trainer, n_mfcc=80).setup("fit")  # the defaults are what the cache holds
    other = load_recipe(get_task("recognition").schema, recipe, [f"data.cache={out}", "data.preprocessing.notch_harmonics=8"])
    assert other.data.preprocessing.notch_harmonics == 8
    with pytest.raises(ValueError, match=r"other EMG preprocessing: notch_harmonics 7 \(recipe: 8\)\. Prepare it again"):
        SpeechData(other.data, other.trainer, n_mfcc=80).setup("fit")
    # Preparing from the corpus with the recipe's constants records them.
    fresh = tmp_path / "fresh"
    config = load_recipe(get_task("recognition").schema, recipe, [f"data.cache={fresh}", f"data.root={root}", f"data.split_file={root.parent / 'split.json'}", "data.preprocessing.mains=50"])
    data = SpeechData(config.data, config.trainer, n_mfcc=80)
    data.prepare_data()
    assert read_manifest(fresh)["settings"]["preprocessing"]["mains"] == 50.0
    data.setup("fit")
