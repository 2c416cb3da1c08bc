"""Training engine: learning, exact resume, DDP, checkpoints and bad input (tiny models, tiny corpus)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from conftest import prepared_synthetic_cache
from safetensors.torch import load_file

from silentspeech.config import RecipeError, load_recipe
from silentspeech.data.cache import LengthBucketBatchSampler
from silentspeech.tasks import get_task, load_checkpoint, train_recipe
from silentspeech.tasks.engine import BatchStream, OptimConfig, TrainerConfig, lr_factor, training_loader
from silentspeech.tasks.speech_data import check_emg_batch, shift_emg

REPO = Path(__file__).resolve().parents[1]

#: A model small enough for a step in a few tens of milliseconds on one core.
TINY = [
    "model.width=32",
    "model.encoder.dim=32",
    "model.encoder.depth=1",
    "model.encoder.heads=2",
    "model.encoder.mlp_dim=64",
    "model.encoder.dropout=0.0",
    "data.max_total_samples=24000",
    "trainer.progress_bar=false",
    "trainer.log_every_steps=5",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """A prepared synthetic corpus of 60 utterances."""
    return prepared_synthetic_cache(tmp_path_factory, utterances=60)


def _config(task: str, cache: Path, out: Path, *overrides: str):
    schema = get_task(task).schema
    return load_recipe(schema, REPO / f"recipes/synthetic/{task}.yaml", [f"data.cache={cache}", f"out={out}", *TINY, *overrides])


def _csv_column(run: Path, column: str) -> list[float]:
    import csv

    values = []
    for path in sorted((run / "csv").glob("version_*/metrics.csv")):
        with open(path) as handle:
            values += [float(row[column]) for row in csv.DictReader(handle) if row.get(column)]
    return values


# --- pieces -----------------------------------------------------------------------


def test_lr_schedule_warms_up_then_decays():
    optim = OptimConfig(lr=1.0, warmup_steps=10, schedule="cosine", final_lr_ratio=0.1)
    factors = [lr_factor(step, optim, total_steps=110) for step in range(111)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[60] == pytest.approx(0.55)  # half-way down the cosine
    assert factors[110] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(factors[9:], factors[10:]))
    linear = OptimConfig(lr=1.0, warmup_steps=0, schedule="linear", final_lr_ratio=0.0)
    assert lr_factor(50, linear, total_steps=100) == pytest.approx(0.5)


def test_batch_stream_starts_anywhere():
    lengths = np.random.default_rng(0).integers(100, 1000, size=50)
    stream = BatchStream(LengthBucketBatchSampler(lengths, 3000, seed=1), epochs=3)
    everything = list(stream)
    assert len(everything) == len(stream) == sum(stream.epoch_sizes)
    assert everything[: stream.epoch_sizes[0]] != everything[stream.epoch_sizes[0] : 2 * stream.epoch_sizes[0]]
    for start in (0, 5, stream.epoch_sizes[0], len(stream) - 1):
        stream.start = start
        assert list(stream) == everything[start:]


@pytest.mark.parametrize("workers", [0, 1])
def test_training_loader_resumes_mid_stream_from_its_state(workers):
    lengths = np.random.default_rng(0).integers(100, 1000, size=50)
    items = list(range(50))

    def loader():
        sampler = LengthBucketBatchSampler(lengths, 3000, seed=1)
        return training_loader(items, sampler, TrainerConfig(max_epochs=3), collate_fn=list, workers=workers)

    straight = list(loader())
    first = loader()
    batches = iter(first)
    consumed = [next(batches) for _ in range(len(straight) // 3 + 2)]  # into the second epoch
    state = first.state_dict()
    del batches
    resumed = loader()
    resumed.load_state_dict(state)
    assert consumed + list(resumed) == straight
    older = loader()  # the state a last.ckpt held before the loader was torchdata's
    older.load_state_dict({"position": len(consumed)})
    assert consumed + list(older) == straight


def test_shift_emg_keeps_lengths_and_zero_fills():
    emg = torch.arange(1, 21, dtype=torch.float32).repeat(2, 1, 1)  # (2, 1, 20)
    lengths = torch.tensor([20, 12])
    torch.manual_seed(0)
    shifted = shift_emg(emg, lengths, max_shift=7)
    for row, length in enumerate(lengths.tolist()):
        shift = int(shifted[row, 0, 0].item()) - 1
        assert 0 <= shift <= 7
        torch.testing.assert_close(shifted[row, 0, : length - shift], emg[row, 0, shift:length])
        assert shifted[row, 0, length - shift :].abs().sum() == 0


def test_recognition_auxiliary_loss_needs_its_heads(cache, tmp_path):
    from silentspeech.tasks.recognition import RecognitionTask

    config = _config("recognition", cache, tmp_path / "run", "loss.auxiliary_weight=0.1", "model.outputs=[ctc]")
    with pytest.raises(ValueError, match=r"auxiliary_weight=0.1 needs model.outputs.*'acoustic' and 'phoneme'"):
        RecognitionTask(get_task("recognition").build_model(config), config)


def test_recognition_auxiliary_loss_trains_every_head(cache, tmp_path):
    """CTC plus the production loss: a few steps move the acoustic and phoneme heads too, and the run saves all three."""
    out = tmp_path / "run"
    config = _config(
        "recognition", cache, out, "loss.auxiliary_weight=0.1", "model.outputs=[ctc,acoustic,phoneme]",
        "trainer.max_steps=4", "trainer.max_epochs=1", "trainer.val_every_steps=0", "trainer.log_every_steps=1",
    )
    run = get_task("recognition").train(config)
    weights = load_file(str(Path(run) / "best.safetensors"))
    assert {"heads.ctc.weight", "heads.acoustic.weight", "heads.phoneme.weight"} <= set(weights)
    auxiliary = _csv_column(Path(run), "train/auxiliary_loss")
    assert auxiliary and all(np.isfinite(auxiliary))


def test_wrong_channel_count_is_a_clear_error():
    batch = {"emg": torch.zeros(2, 6, 80), "ids": ["a/1", "a/2"]}
    with pytest.raises(ValueError, match=r"utterances a/1, a/2.*8 channels"):
        check_emg_batch(batch, channels=8)


def test_unknown_recipe_key_lists_valid_keys(tmp_path):
    with pytest.raises(RecipeError, match=r"(?s)unknown key.*max_epoch.*trainer\.max_epochs"):
        train_recipe(REPO / "recipes/synthetic/recognition.yaml", ["trainer.max_epoch=3", f"out={tmp_path}"])
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("task: recognition\noptim:\n  learning_rate: 0.1\n")
    with pytest.raises(RecipeError, match=r"(?s)learning_rate.*optim\.lr"):
        train_recipe(recipe)
    recipe.write_text("task: translation\n")
    with pytest.raises(RecipeError, match="unknown task 'translation'"):
        train_recipe(recipe)
    # A glob is YAML's alias syntax: the error names the override and says to quote it.
    with pytest.raises(RecipeError, match=r"override 'data\.root=\*\*/x'.*not valid YAML.*quote it"):
        train_recipe(REPO / "recipes/synthetic/recognition.yaml", ["data.root=**/x", f"out={tmp_path}"])


# --- training -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def recognition_run(cache, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("recognition")
    config = _config(
        "recognition", cache, out, "trainer.max_epochs=24", "optim.lr=3e-3", "optim.warmup_steps=10", "data.max_shift=0"
    )
    get_task("recognition").train(config)
    return out


class _Snapshots(pl.Callback):
    """Copies of the model's weights by optimiser step: before training (step 0) and after each step."""

    def __init__(self) -> None:
        self.weights: dict[int, dict[str, torch.Tensor]] = {}

    def _take(self, trainer, module) -> None:
        self.weights[trainer.global_step] = {k: v.detach().clone() for k, v in module.model.state_dict().items()}

    def on_train_start(self, trainer, module) -> None:
        self._take(trainer, module)

    def on_train_batch_end(self, trainer, module, *args) -> None:
        self._take(trainer, module)


def _assert_weights_equal(saved: dict[str, torch.Tensor], trained: dict[str, torch.Tensor], what: str) -> None:
    assert saved.keys() == trained.keys(), what
    for key in trained:
        assert torch.equal(saved[key], trained[key]), f"{what}: {key} differs from the trained weights"


def _saved_step(path: Path) -> int:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        return int(handle.metadata()["step"])


@pytest.fixture(scope="module")
def short_run(tmp_path_factory) -> tuple[Path, Path, dict[int, dict[str, torch.Tensor]]]:
    """A recognition run of two steps on the shared 20-utterance cache, that cache, and its weights by step."""
    cache = prepared_synthetic_cache(tmp_path_factory, utterances=20)
    out = tmp_path_factory.mktemp("short_recognition")
    snapshots = _Snapshots()
    get_task("recognition").train(_config("recognition", cache, out, "trainer.max_steps=2", "trainer.test=false"), callbacks=[snapshots])
    return out, cache, snapshots.weights


@pytest.mark.slow
def test_recognition_loss_falls_and_cer_beats_chance(recognition_run):
    losses = _csv_column(recognition_run, "val/loss")
    assert losses[-1] < 0.7 * losses[0]
    # An empty transcript scores CER 1 exactly and a random one more; the best weights (kept by val/cer)
    # must get some characters right. (The dev split holds two sentences: its CER swings with a few
    # insertions, so its best counts.) On generator 5's 60 utterances this tiny model reaches 0.93 in
    # 24 epochs (40 epochs: no better); generator 4's slow view of the articulators let it pass 0.9.
    assert min(_csv_column(recognition_run, "val/cer")) < 0.97
    assert {"best.safetensors", "last.safetensors", "last.ckpt", "config.yaml", "test_metrics.json"} <= {
        p.name for p in recognition_run.iterdir()
    }


@pytest.mark.slow
def test_production_beats_predicting_the_mean(cache, tmp_path):
    config = _config("production", cache, tmp_path, "trainer.max_epochs=10", "optim.lr=3e-3", "optim.warmup_steps=10")
    get_task("production").train(config)
    losses = _csv_column(tmp_path, "val/loss")
    assert losses[-1] < 0.9 * losses[0]
    distance, baseline = _csv_column(tmp_path, "val/distance"), _csv_column(tmp_path, "val/mean_baseline")
    assert distance[-1] < 0.9 * baseline[-1]


def test_load_checkpoint_rebuilds_the_model(short_run):
    from silentspeech.data.cache import CachedUtterances, collate_utterances

    recognition_run, cache, trained = short_run
    best = trained[_saved_step(recognition_run / "best.safetensors")]
    assert any(not torch.equal(best[key], trained[0][key]) for key in best)  # training moved the weights
    model, config = load_checkpoint(recognition_run)
    assert config.task == "recognition" and not model.training
    _assert_weights_equal(model.state_dict(), best, "load_checkpoint(run)")
    again, _ = load_checkpoint(recognition_run / "best.safetensors", task="recognition")
    _assert_weights_equal(again.state_dict(), best, "load_checkpoint(best.safetensors)")
    # The rebuilt architecture computes with them: its output is the trained model's.
    reference = type(model)(model.config).eval()
    reference.load_state_dict(best)
    batch = collate_utterances([CachedUtterances(cache, "dev", kinds=("silent",))[0]])
    with torch.no_grad():
        torch.testing.assert_close(model(batch["emg"])["ctc_logits"], reference(batch["emg"])["ctc_logits"])


def test_load_checkpoint_refuses_other_architectures(short_run, tmp_path):
    recognition_run, _, _ = short_run
    with pytest.raises(ValueError, match="is a recognition checkpoint; a production checkpoint is needed"):
        load_checkpoint(recognition_run, task="production")
    # Weights of this run beside a config describing a wider model.
    (tmp_path / "best.safetensors").write_bytes((recognition_run / "best.safetensors").read_bytes())
    config = (recognition_run / "config.yaml").read_text().replace("width: 32", "width: 48")
    (tmp_path / "config.yaml").write_text(config)
    with pytest.raises(ValueError, match=r"does not fit the architecture.*shape mismatch"):
        load_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing")


def test_existing_run_is_not_overwritten(short_run):
    recognition_run, cache, _ = short_run
    config = _config("recognition", cache, recognition_run)
    with pytest.raises(ValueError, match="already holds a run.*--resume"):
        get_task("recognition").train(config)


class _Kill(pl.Callback):
    """Stops training with an exception after optimiser step ``step``, like a killed job."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError("simulated kill")


@pytest.mark.slow
@pytest.mark.parametrize("task", ["production", "recognition"])
def test_killed_run_resumes_to_identical_weights(task, cache, tmp_path):
    torch.use_deterministic_algorithms(True)
    try:
        settings = ["trainer.max_steps=16", "trainer.checkpoint_every_steps=5", "trainer.deterministic=true", "trainer.test=false"]
        train = get_task(task).train
        train(_config(task, cache, tmp_path / "straight", *settings))
        killed = _Snapshots()
        with pytest.raises(RuntimeError, match="simulated kill"):
            train(_config(task, cache, tmp_path / "killed", *settings), callbacks=[killed, _Kill(12)])
        assert _saved_step(tmp_path / "killed/last.safetensors") == 10
        _assert_weights_equal(load_file(tmp_path / "killed/last.safetensors"), killed.weights[10], "killed/last.safetensors")
        train(_config(task, cache, tmp_path / "killed", *settings, "resume=true"))
    finally:
        torch.use_deterministic_algorithms(False)
    for name in ("last.safetensors", "best.safetensors"):
        straight, resumed = load_file(tmp_path / "straight" / name), load_file(tmp_path / "killed" / name)
        assert straight.keys() == resumed.keys()
        for key in straight:
            assert torch.equal(straight[key], resumed[key]), f"{name}: {key} differs"


#: Trains through the engine in each DDP rank and writes, per optimiser step, the utterances the rank's batch
#: held and a hash of the rank's parameters after the step (rank<N>.json in the run directory). Parameters, not
#: buffers: batch-norm running statistics are each rank's own until DDP broadcasts rank 0's at the next forward.
_DDP_PROBE = """
import hashlib, json, sys
from pathlib import Path
import pytorch_lightning as pl
from silentspeech.config import load_recipe
from silentspeech.tasks import get_task

class Probe(pl.Callback):
    def __init__(self):
        self.steps = []
    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.ids = list(batch["ids"])
    def on_train_batch_end(self, trainer, module, *args):
        digest = hashlib.sha256()
        for value in module.model.parameters():
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        self.steps.append({"step": trainer.global_step, "ids": self.ids, "weights": digest.hexdigest()})
    def on_train_end(self, trainer, module):
        Path(out, f"rank{trainer.global_rank}.json").write_text(json.dumps(self.steps))

recipe, out, *overrides = sys.argv[1:]
task = get_task("recognition")
task.train(load_recipe(task.schema, recipe, [f"out={out}", *overrides]), callbacks=[Probe()])
"""


@pytest.mark.slow
def test_two_process_ddp_on_cpu(cache, tmp_path):
    """Two gloo ranks train on different batches and hold equal parameters after every step (gradients averaged)."""
    import json

    probe = tmp_path / "ddp_probe.py"
    probe.write_text(_DDP_PROBE)
    out = tmp_path / "run"
    command = [
        sys.executable, str(probe), str(REPO / "recipes/synthetic/recognition.yaml"), str(out),
        f"data.cache={cache}", *TINY,
        "trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp", "trainer.max_steps=4",
        "trainer.val_every_steps=2", "trainer.test=false",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "world_size: 2" in result.stderr or "distributed_backend=gloo" in result.stderr
    ranks = [json.loads((out / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [s["step"] for s in ranks[0]] == [s["step"] for s in ranks[1]] == [1, 2, 3, 4]
    for first, second in zip(*ranks):
        assert not set(first["ids"]) & set(second["ids"]), f"step {first['step']}: both ranks trained on the same utterances"
        assert first["weights"] == second["weights"], f"step {first['step']}: the ranks' parameters differ"
    assert len({s["weights"] for s in ranks[0]}) == 4  # every step changed them
    assert (out / "best.safetensors").exists() and _saved_step(out / "last.safetensors") == 4
