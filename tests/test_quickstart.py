import pytest

from silentspeech import quickstart
from silentspeech.quickstart import run_quickstart


def test_data_stages_run_then_are_reused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(quickstart, "GRAMMAR_SENTENCES", 200)
    stages = ("corpus", "cache", "lm")
    first = run_quickstart(tmp_path, utterances=20, stages=stages, workers=0)
    assert set(first.paths) == set(stages)
    assert (tmp_path / "cache" / "manifest.json").is_file()
    assert "\\data\\" in (tmp_path / "lm" / "synthetic_4gram.arpa").read_text()
    capsys.readouterr()
    run_quickstart(tmp_path, utterances=20, stages=stages, workers=0)
    out = capsys.readouterr().out
    assert "0 utterances written" in out and "reusing" in out


def test_unknown_stage_is_named():
    with pytest.raises(ValueError, match="unknown quickstart stage"):
        run_quickstart("unused", stages=("corpus", "vocoderz"))
