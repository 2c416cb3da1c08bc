"""Recognition evaluation and LM tuning: files written, summary layout, tuned settings reused, bad splits (tiny untrained model)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import prepared_synthetic_cache, synthetic_corpus
from test_decoding import spelled_with_pauses

from silentspeech.atomic import atomic_save_safetensors, atomic_write_text
from silentspeech.cli import main
from silentspeech.config import config_to_yaml, load_recipe
from silentspeech.data.cache import read_manifest
from silentspeech.decoding.beam import DEFAULT_ALPHA, DEFAULT_UNK_OFFSET, lm_unigrams, training_unigrams
from silentspeech.decoding.ngram import estimate_kneser_ney, read_arpa, write_arpa
from silentspeech.decoding.settings import resolve_lm_settings
from silentspeech.evaluation import recognition
from silentspeech.evaluation.recognition import evaluate_recognition, grouped_rates, tune_lm
from silentspeech.runs import LM_PARAMS
from silentspeech.tasks import get_task

REPO = Path(__file__).resolve().parents[1]
TINY = ["model.width=16", "model.encoder.dim=16", "model.encoder.depth=1", "model.encoder.heads=2", "model.encoder.mlp_dim=32"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """A prepared synthetic corpus of 20 utterances (one silent dev and one silent test utterance)."""
    return prepared_synthetic_cache(tmp_path_factory, utterances=20)


@pytest.fixture(scope="module")
def lm(cache, tmp_path_factory) -> Path:
    """A trigram LM on the cache's training text only."""
    path = tmp_path_factory.mktemp("lm") / "train.arpa"
    texts = [e["text"] for e in read_manifest(cache)["utterances"] if e["split"] == "train"]
    write_arpa(estimate_kneser_ney(texts, 3), path)
    return path


@pytest.fixture()
def run(cache, tmp_path) -> Path:
    """A run directory holding an untrained tiny recognition model, as training would leave it."""
    task = get_task("recognition")
    config = load_recipe(task.schema, REPO / "recipes/synthetic/recognition.yaml", [f"data.cache={cache}", f"out={tmp_path}", *TINY])
    model = task.build_model(config)
    atomic_write_text(tmp_path / "config.yaml", config_to_yaml(config))
    atomic_save_safetensors(tmp_path / "best.safetensors", model.state_dict(), {"model": type(model).__name__})
    return tmp_path


def test_evaluate_writes_csv_summary_and_report(run, lm):
    summary = evaluate_recognition(run, split="test", lm=lm, alpha=0.5, beta=1.0, beam_width=4)
    out = run / "eval_test"
    assert json.loads((out / "summary.json").read_text()) == summary
    assert summary["lm"] == {"lm": str(lm), "alpha": 0.5, "beta": 1.0, "beam_width": 4, "unk_offset": DEFAULT_UNK_OFFSET, "lexicon": None}
    for decoder in ("greedy", "beam"):
        assert set(summary[decoder]) == {"all", "silent"}  # the test split is silent only
        rates = summary[decoder]["all"]
        assert {"wer", "cer", "substitutions", "deletions", "insertions", "reference_words"} <= set(rates)
        assert rates["wer"] == pytest.approx((rates["substitutions"] + rates["deletions"] + rates["insertions"]) / rates["reference_words"])
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == summary["utterances"] >= 1
    assert rows[0]["kind"] == "silent" and rows[0]["reference"]
    assert sum(int(r["greedy_word_errors"]) for r in rows) == sum(summary["greedy"]["all"][k] for k in ("substitutions", "deletions", "insertions"))
    report = (out / "report.md").read_text()
    assert "| decoder |" in report and "| beam | all |" in report


def test_without_lm_only_greedy_is_scored(run, tmp_path):
    summary = evaluate_recognition(run, split="dev", out=tmp_path / "dev")
    assert summary["lm"] is None and summary["beam"] is None
    with open(tmp_path / "dev" / "results.csv", newline="") as handle:
        assert all(row["beam"] == "" for row in csv.DictReader(handle))


def test_unknown_split_lists_the_valid_ones(run):
    with pytest.raises(ValueError, match=r"no split 'validation'.*valid splits: dev, excluded, test, train"):
        evaluate_recognition(run, split="validation")
    assert main(["evaluate", str(run), "--split", "validation"]) == 2


@pytest.fixture()
def noisy_spelling(monkeypatch):
    """Replace the untrained model's posteriors by noisy spellings of the references, so LM weights matter."""
    real = recognition.split_posteriors

    def spelled(*args, **kwargs):
        posteriors = real(*args, **kwargs)
        rng = np.random.default_rng(0)
        posteriors.log_probs = [spelled_with_pauses(text, rng, noise=4.0) for text in posteriors.texts]
        return posteriors

    monkeypatch.setattr(recognition, "split_posteriors", spelled)


def test_tune_lm_saves_the_best_pair_and_evaluate_uses_it(run, lm, noisy_spelling, capsys):
    assert main(["tune-lm", str(run), "--lm", str(lm), "--alphas", "0.5", "2", "--betas", "0", "1", "--beam", "4"]) == 0
    printed = capsys.readouterr().out
    assert "alpha\\beta" in printed and "best: alpha" in printed
    saved = json.loads((run / LM_PARAMS).read_text())
    # The saved pair is the grid's best, found again here on the same posteriors.
    again = tune_lm(run, lm, alphas=[0.5, 2.0], betas=[0.0, 1.0], beam_width=4)
    assert (saved["alpha"], saved["beta"]) == again.best
    assert saved["wer"] == pytest.approx(again.rates[again.best].wer)
    assert saved["beam_width"] == 4 and saved["split"] == "dev"
    summary = evaluate_recognition(run, split="test")
    assert summary["lm"]["alpha"] == saved["alpha"] and summary["lm"]["beta"] == saved["beta"]
    assert summary["beam"] is not None
    # Tuned values belong to their LM: another LM file falls back to the defaults.
    other = lm.parent / "other.arpa"
    other.write_bytes(lm.read_bytes())
    assert resolve_lm_settings(run, other).alpha == DEFAULT_ALPHA


def test_tune_lm_grid_result(run, lm, noisy_spelling):
    """Each grid cell is what evaluation with that pair scores on dev; the best is the lowest WER (then CER)."""
    grid = {(0.5, 0.0), (0.5, 8.0), (3.0, 0.0)}
    # One decoder besides the pairs, so the saved offset and lexicon (which evaluation reads) are the grid's.
    result = tune_lm(run, lm, alphas=[0.5, 3.0], betas=[0.0, 8.0], beam_width=2, unk_offsets=[DEFAULT_UNK_OFFSET], lexicons=["none"])
    assert set(result.rates) == grid | {(3.0, 8.0)}
    for alpha, beta in grid:
        summary = evaluate_recognition(run, split="dev", lm=lm, alpha=alpha, beta=beta, beam_width=2, out=run / f"dev_{alpha}_{beta}")
        scored = summary["beam"]["all"]
        assert (result.rates[(alpha, beta)].wer, result.rates[(alpha, beta)].cer) == pytest.approx((scored["wer"], scored["cer"]))
    assert result.best == min(result.rates, key=lambda pair: (result.rates[pair].wer, result.rates[pair].cer))
    assert len({(r.wer, r.cer) for r in result.rates.values()}) > 1  # the pairs decode differently: the check can tell them apart
    assert "*" in result.table()


def test_grouped_rates_split_silent_and_voiced():
    rates = grouped_rates(["a b", "c d", "e f"], ["a b", "c x", "e"], [True, False, True])
    assert rates["all"]["wer"] == pytest.approx(2 / 6)
    assert rates["silent"]["wer"] == pytest.approx(1 / 4) and rates["silent"]["deletions"] == 1
    assert rates["voiced"]["wer"] == pytest.approx(1 / 2) and rates["voiced"]["substitutions"] == 1


def test_decoding_settings_without_a_language_model_are_refused(run):
    with pytest.raises(ValueError, match="need a language model"):
        resolve_lm_settings(run, alpha=1.0)


def test_tune_lm_tries_unknown_word_offsets_and_evaluation_uses_the_best(run, lm, noisy_spelling):
    result = tune_lm(run, lm, alphas=[0.5], betas=[1.0], beam_width=4, unk_offsets=[-10.0, 0.0, -40.0], lexicons=["none"])
    assert set(result.decoder_rates) == {("none", -10.0), ("none", 0.0), ("none", -40.0)}
    assert result.decoder_rates[("none", -10.0)] == result.rates[(0.5, 1.0)]
    rates = result.decoder_rates
    assert (result.lexicon, result.unk_offset) == min(rates, key=lambda key: (rates[key].wer, rates[key].cer))
    assert len({(r.wer, r.cer) for r in rates.values()}) > 1  # the offset changes the decoding
    saved = json.loads((run / LM_PARAMS).read_text())
    assert saved["unk_offset"] == result.unk_offset and saved["wer"] == rates[("none", result.unk_offset)].wer
    assert saved["lexicon"] is None
    summary = evaluate_recognition(run, split="dev")
    assert summary["lm"]["unk_offset"] == result.unk_offset
    assert summary["beam"]["all"]["wer"] == pytest.approx(rates[("none", result.unk_offset)].wer)
    assert "lexicon / unknown-word offset at the best pair" in result.table()


def test_tune_lm_keeps_a_winning_training_lexicon_and_every_decoder_uses_it(run, lm, cache, noisy_spelling, monkeypatch):
    """With the training words as lexicon the decoding differs; the winner is saved and evaluation decodes with it."""
    result = tune_lm(run, lm, alphas=[0.5], betas=[1.0], beam_width=4, unk_offsets=[-10.0, 0.0], lexicons=["none", "train"])
    rates = result.decoder_rates
    assert set(rates) == {(name, o) for name in ("none", "train") for o in (-10.0, 0.0)}
    assert len({(r.wer, r.cer) for r in rates.values()}) > 1
    assert (result.lexicon, result.unk_offset) == min(rates, key=lambda key: (rates[key].wer, rates[key].cer))
    # Force the training lexicon to be kept: tune with it alone, then check what evaluation decodes with.
    result = tune_lm(run, lm, alphas=[0.5], betas=[1.0], beam_width=4, unk_offsets=[0.0], lexicons=["train"])
    saved = json.loads((run / LM_PARAMS).read_text())
    train_words = training_unigrams(cache)
    assert result.lexicon == "train" and saved["lexicon"] == train_words
    settings = resolve_lm_settings(run)
    assert settings.lexicon == tuple(train_words) and settings.pipeline_keywords()["lexicon"] == tuple(train_words)
    summary = evaluate_recognition(run, split="dev")
    assert summary["lm"]["lexicon"] == len(train_words)
    assert summary["beam"]["all"]["wer"] == pytest.approx(rates[("train", 0.0)].wer)
    with pytest.raises(ValueError, match="lexicon choices are lm, none, train"):
        tune_lm(run, lm, alphas=[0.5], betas=[1.0], lexicons=["books"])
    (run / LM_PARAMS).write_text(json.dumps({**saved, "lexicon": "not a list"}))
    with pytest.raises(ValueError, match="'lexicon' must be a non-empty list of words or null"):
        resolve_lm_settings(run)


def test_tune_lm_with_the_lms_own_words_saves_them(run, lm):
    """The ``lm`` lexicon is the ARPA file's words; kept alone, it is saved and is what evaluation decodes with."""
    result = tune_lm(run, lm, alphas=[0.5], betas=[1.0], beam_width=4, unk_offsets=[-10.0], lexicons=["lm"])
    words = lm_unigrams(lm)
    assert result.lexicon == "lm" and json.loads((run / LM_PARAMS).read_text())["lexicon"] == words
    assert evaluate_recognition(run, split="dev")["lm"]["lexicon"] == len(words)


# --- the README's Gaddy steps: the LM holds no test sentence, and evaluation checks it --------


@pytest.fixture(scope="module")
def readme_steps(tmp_path_factory) -> dict[str, Path]:
    """Steps 1-3 of the README's Gaddy section through the CLI, on a synthetic corpus in the Gaddy layout.

    ``data/emg_data/`` with ``testset_largedev.json`` beside it (step 1), ``prepare`` with
    ``--split-file`` (step 2), ``lm build BOOK data/emg_data`` without ``--exclude`` (step 3);
    the book holds every prompt, as *War of the Worlds* holds the Gaddy test sentences.
    """
    from silentspeech.data.synthetic.speech import SPLIT_FILE

    data = tmp_path_factory.mktemp("data")
    shutil.copytree(synthetic_corpus(tmp_path_factory, 20), data / "emg_data")
    split = data / "testset_largedev.json"
    (data / "emg_data" / SPLIT_FILE).rename(split)
    cache = data / "cache"
    assert main(["prepare", str(data / "emg_data"), "--out", str(cache), "--split-file", str(split), "--workers", "0"]) == 0
    texts = sorted({e["text"] for e in read_manifest(cache)["utterances"]})
    book = data / "book.txt"
    book.write_text(" ".join(t.capitalize() + "." for t in texts) + "\n")
    lm = data / "lm" / "gaddy_4gram.arpa"
    assert main(["lm", "build", str(book), str(data / "emg_data"), "--order", "4", "--out", str(lm)]) == 0
    leaky = data / "lm" / "book_only.arpa"  # what the README's step 3 built before: no test sentence excluded
    assert main(["lm", "build", str(book), "--order", "4", "--out", str(leaky)]) == 0
    return {"cache": cache, "lm": lm, "leaky": leaky}


def _word_for_word(model, sentence: str) -> bool:
    """Whether ``model`` lists every n-gram of ``<s> sentence </s>`` at its full order (the sentence was in its text)."""
    tokens = ("<s>", *sentence.split(), "</s>")
    n = min(model.order, len(tokens))
    return all(tokens[i : i + n] in model.ngrams[n - 1] for i in range(len(tokens) - n + 1))


@pytest.fixture()
def readme_run(readme_steps, tmp_path) -> Path:
    task = get_task("recognition")
    config = load_recipe(
        task.schema, REPO / "recipes/synthetic/recognition.yaml", [f"data.cache={readme_steps['cache']}", f"out={tmp_path}", *TINY]
    )
    atomic_write_text(tmp_path / "config.yaml", config_to_yaml(config))
    atomic_save_safetensors(tmp_path / "best.safetensors", task.build_model(config).state_dict())
    return tmp_path


def test_readme_lm_holds_no_test_sentence_and_evaluation_accepts_it(readme_steps, readme_run, caplog):
    test_texts = [e["text"] for e in read_manifest(readme_steps["cache"])["utterances"] if e["split"] == "test"]
    assert test_texts
    for path, leaks in ((readme_steps["lm"], False), (readme_steps["leaky"], True)):
        model = read_arpa(path)
        assert any(_word_for_word(model, text) for text in test_texts) == leaks, path
    caplog.set_level("INFO")
    assert main(["evaluate", str(readme_run), "--split", "test", "--lm", str(readme_steps["lm"]), "--beam", "4"]) == 0
    assert main(["tune-lm", str(readme_run), "--lm", str(readme_steps["lm"]), "--alphas", "0.5", "--betas", "1", "--beam", "4"]) == 0
    assert "sentences were held out of this LM" in caplog.text


def test_evaluation_refuses_an_lm_that_holds_the_split(readme_steps, readme_run, capsys, caplog):
    leaky = str(readme_steps["leaky"])
    for command in (["evaluate", str(readme_run), "--split", "test"], ["tune-lm", str(readme_run), "--alphas", "0.5", "--betas", "1"]):
        assert main([*command, "--lm", leaky, "--beam", "4"]) == 2
        error = capsys.readouterr().err
        assert "sentences were not held out when this LM was built" in error and "--allow-lm-leak" in error
    assert not (readme_run / "eval_test").exists() and not (readme_run / LM_PARAMS).exists()
    assert main(["evaluate", str(readme_run), "--split", "test", "--lm", leaky, "--beam", "4", "--allow-lm-leak"]) == 0
    assert "were not held out" in caplog.text and (readme_run / "eval_test" / "summary.json").is_file()


def test_evaluation_warns_when_the_lm_has_no_provenance(run, lm, caplog):
    evaluate_recognition(run, split="test", lm=lm, beam_width=2)
    assert "has no provenance file" in caplog.text and "cannot check" in caplog.text
