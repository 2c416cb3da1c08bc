"""Distillation: the soft-target loss by hand, MAC counting, and short teacher -> student runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import prepared_synthetic_cache
import torch
from torch import nn

from silentspeech.config import RecipeError
from silentspeech.distill import REPORT_FILE, SETTINGS_FILE, count_macs, count_parameters, distill, hidden_mse, macs_per_second, soft_target_kl
from silentspeech.evaluation.recognition import evaluate_recognition
from silentspeech.preprocessing import EMG_RATE
from silentspeech.models.heads import GestureClassifier
from silentspeech.models.tinymyo import TinyMyoConfig, TinyMyoEncoder
from silentspeech.tasks import load_checkpoint, train_recipe

REPO = Path(__file__).resolve().parents[1]

#: A few steps on one subject, three repetitions: seconds on one core.
QUICK = [
    "trainer.max_steps=4", "trainer.val_every_steps=2", "trainer.progress_bar=false", "trainer.log_every_steps=1",
    "data.synthetic.subjects=1", "data.synthetic.repetitions=3", "batch_size=16",
]


def test_soft_target_kl_matches_hand_computation():
    student = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 2.0]])
    teacher = torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    temperature = 2.0

    def softmax(row):
        e = np.exp(np.asarray(row) / temperature)
        return e / e.sum()

    expected = np.mean([
        sum(p * math.log(p / q) for p, q in zip(softmax(t), softmax(s))) for s, t in zip(student.tolist(), teacher.tolist())
    ]) * temperature**2
    assert soft_target_kl(student, teacher, temperature).item() == pytest.approx(expected, rel=1e-5)
    assert soft_target_kl(teacher, teacher, temperature).item() == pytest.approx(0.0, abs=1e-7)
    # A mask keeps only the valid positions (here: the first row).
    mask = torch.tensor([True, False])
    first = sum(p * math.log(p / q) for p, q in zip(softmax(teacher[0].tolist()), softmax(student[0].tolist()))) * 4
    assert soft_target_kl(student, teacher, temperature, mask).item() == pytest.approx(first, rel=1e-5)


def test_hidden_mse_through_projection():
    projection = nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        projection.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    student = torch.tensor([[[1.0, 2.0]]])
    teacher = torch.tensor([[[1.0, 2.0, 0.0]]])
    assert hidden_mse(projection, student, teacher).item() == pytest.approx(9.0 / 3)


def test_count_macs_linear_conv_and_attention():
    assert count_macs(nn.Linear(4, 5), torch.zeros(3, 4)) == 3 * 4 * 5
    assert count_macs(nn.Conv1d(2, 6, 3, padding=1, groups=2), torch.zeros(1, 2, 10)) == 10 * 6 * 3 * 1
    config = TinyMyoConfig(channels=2, patch_len=10, dim=8, depth=1, heads=2, mlp_dim=16, position="none")
    tokens = 2 * 4  # channels x patches of 40 samples
    patch = tokens * 8 * 10
    block = tokens * 8 * 24 + tokens * 8 * 8 + 2 * tokens * tokens * 8 + tokens * 8 * 16 * 2
    assert count_macs(TinyMyoEncoder(config).eval(), torch.zeros(1, 2, 40)) == patch + block  # eval: as macs_per_second


class _BareAttention(nn.Module):
    """Attention and a product with no module of their own: (B, heads, N, d) queries against themselves, then @ (d, 7)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.scaled_dot_product_attention(x, x, x) @ torch.ones(x.shape[-1], 7)


def test_count_macs_sees_products_outside_modules():
    # q k^T and weights @ v: 2 x B x heads x N^2 x d = 2 x 2 x 3 x 25 x 4; then (B x heads x N) rows of 4 x 7.
    assert count_macs(_BareAttention(), torch.zeros(2, 3, 5, 4)) == 2 * 2 * 3 * 25 * 4 + 2 * 3 * 5 * 4 * 7


@pytest.mark.slow
def test_gesture_distillation_run_and_report(tmp_path):
    teacher_run = train_recipe(
        REPO / "recipes/synthetic/gestures.yaml",
        [f"out={tmp_path / 'teacher'}", "model.encoder.dim=48", "model.encoder.depth=2", "model.encoder.heads=2", "model.encoder.mlp_dim=96", *QUICK],
    )
    result = distill(teacher_run, REPO / "recipes/synthetic/distill_gestures.yaml", [f"out={tmp_path / 'student'}", *QUICK])
    run = result.run_dir
    assert (run / SETTINGS_FILE).is_file()
    report = (run / REPORT_FILE).read_text()
    assert "parameters" in report and "MMACs per second" in report and "test/accuracy" in report
    assert result.teacher_parameters > result.student_parameters
    assert result.teacher_macs_per_second > result.student_macs_per_second > 0
    assert 0.0 <= result.teacher_metrics["test/accuracy"] <= 1.0 and 0.0 <= result.student_metrics["test/accuracy"] <= 1.0
    # The run is a plain gesture run of the student: every tool reads it as such.
    student, config = load_checkpoint(run, task="gesture")
    assert isinstance(student, GestureClassifier) and config.model.encoder.dim == 32
    assert student(torch.randn(2, 8, 200)).shape == (2, 6)


@pytest.mark.slow
def test_distill_refuses_teacher_of_another_task(tmp_path):
    teacher_run = train_recipe(
        REPO / "recipes/synthetic/gestures.yaml",
        [f"out={tmp_path / 'teacher'}", "model.encoder.dim=16", "model.encoder.depth=1", "model.encoder.heads=2", "model.encoder.mlp_dim=32",
         "trainer.test=false", *QUICK],
    )
    with pytest.raises(ValueError, match="gesture checkpoint"):
        distill(teacher_run, REPO / "recipes/synthetic/recognition.yaml", [f"out={tmp_path / 'x'}"])
    with pytest.raises(RecipeError, match="distillation supports"):
        distill(teacher_run, REPO / "recipes/synthetic/gestures_pretrain.yaml", [f"out={tmp_path / 'y'}"])


# --- speech teachers ------------------------------------------------------------------------------

#: A few steps of a tiny speech model on the tiny cache.
SPEECH_QUICK = ["trainer.max_steps=3", "trainer.progress_bar=false", "trainer.log_every_steps=1", "data.max_total_samples=24000"]
SPEECH_TEACHER = ["model.width=48", "model.encoder.dim=64", "model.encoder.depth=2", "model.encoder.heads=2", "model.encoder.mlp_dim=128"]
#: The recipes' students: (model.width, model.encoder.dim).
RECIPE_STUDENTS = {"recognition": (12, 24), "production": (12, 24)}


@pytest.fixture(scope="module")
def speech_cache(tmp_path_factory) -> Path:
    return prepared_synthetic_cache(tmp_path_factory, utterances=20)


@pytest.mark.slow
@pytest.mark.parametrize("task, metric", [("recognition", "test/cer"), ("production", "test/distance")])
def test_speech_distillation_reports_true_sizes_costs_and_test_scores(task, metric, speech_cache, tmp_path):
    data = [f"data.cache={speech_cache}", *SPEECH_QUICK]
    teacher_run = train_recipe(REPO / f"recipes/synthetic/{task}.yaml", [f"out={tmp_path / 'teacher'}", *SPEECH_TEACHER, *data])
    result = distill(teacher_run, REPO / f"recipes/synthetic/distill_{task}.yaml", [f"out={tmp_path / 'student'}", *data])
    teacher, _ = load_checkpoint(teacher_run, task=task)
    student, config = load_checkpoint(result.run_dir, task=task)
    assert (config.model.width, config.model.encoder.dim) == RECIPE_STUDENTS[task]  # the recipe's student
    # Sizes and costs are the two models' own ...
    assert (result.teacher_parameters, result.student_parameters) == (count_parameters(teacher), count_parameters(student))
    assert result.teacher_parameters > 2 * result.student_parameters
    samples = round(EMG_RATE)
    assert result.student_macs_per_second == pytest.approx(macs_per_second(student, 8, EMG_RATE, samples))
    assert result.teacher_macs_per_second > 2 * result.student_macs_per_second
    # ... and the test scores are those the teacher's own run measured on the same split.
    teacher_scores = json.loads((teacher_run / "test_metrics.json").read_text())
    assert result.teacher_metrics[metric] == pytest.approx(teacher_scores[metric], rel=1e-5)
    assert result.student_metrics[metric] >= 0 and metric in result.teacher_metrics
    if task == "recognition":  # the student's CER is what evaluation of its checkpoint gives
        greedy = evaluate_recognition(result.run_dir, split="test", cache=speech_cache)["greedy"]["all"]
        assert result.student_metrics["test/cer"] == pytest.approx(greedy["cer"], rel=1e-5)
    report = (result.run_dir / REPORT_FILE).read_text()
    assert f"| parameters | {result.teacher_parameters:,} | {result.student_parameters:,} |" in report
    assert f"| {metric} | {result.teacher_metrics[metric]:.4f} | {result.student_metrics[metric]:.4f} |" in report
