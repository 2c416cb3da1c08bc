"""Voice through text: the recogniser's text spoken by espeak-ng (`silentspeech voice --via text`, the pipeline's text voice)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
from conftest import TOY_HELD_OUT_WORDS, toy_emg_word

from silentspeech.cli import main
from silentspeech.features import AUDIO_RATE
from silentspeech.inference.pipeline import SilentSpeechPipeline
from silentspeech.inference.text_voice import TextVoice


def test_text_voice_speaks_text_and_warns_on_empty_text():
    voice = TextVoice(rate=200)
    audio, warning = voice.speak("the old house")
    assert warning is None and audio.dtype == np.float32 and 0.4 * AUDIO_RATE < audio.size < 3 * AUDIO_RATE
    assert voice.audio_rate == AUDIO_RATE and "espeak-ng en-us, 200 words/min" in voice.description
    # Faster speech is shorter.
    assert TextVoice(rate=350).speak("the old house")[0].size < audio.size
    for empty in ("", "  ", None):
        silent, warning = voice.speak(empty)
        assert silent.size == 0 and "text is empty" in warning
    with pytest.raises(ValueError, match="no voice 'xx-nowhere'"):
        TextVoice("xx-nowhere").speak("hello")
    with pytest.raises(ValueError, match="speaking rate 5 words per minute"):
        TextVoice(rate=5)


def test_pipeline_speaks_the_beam_text_and_needs_a_recognizer(toy_recognizer, tmp_path):
    pipeline = SilentSpeechPipeline(recognizer=toy_recognizer, beam=8, device="cpu", text_voice=TextVoice())
    raw, _ = toy_emg_word(TOY_HELD_OUT_WORDS[0])
    result = pipeline.run(raw, rate=1000.0)
    assert result.beam_text and result.text_audio.size > 0 and result.text_voice.startswith("espeak-ng en-us")
    assert "speak" in result.timings and result.audio is None
    with pytest.raises(ValueError, match="give a recognizer"):
        SilentSpeechPipeline(producer=toy_recognizer, text_voice=TextVoice())


def test_voice_via_text_writes_the_spoken_text(toy_recognizer, tmp_path, capsys):
    raw, _ = toy_emg_word(TOY_HELD_OUT_WORDS[1])
    np.save(tmp_path / "word.npy", raw)
    out = tmp_path / "word.wav"
    args = ["voice", str(toy_recognizer), str(tmp_path / "word.npy"), "--rate", "1000", "--out", str(out), "--via", "text"]
    assert main([*args, "--espeak-voice", "en-us+m3", "--espeak-rate", "150", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "text -> espeak-ng en-us+m3, 150 words/min" in printed and "text: " in printed
    info = soundfile.info(str(out))
    assert info.samplerate == AUDIO_RATE and info.frames > 0.2 * AUDIO_RATE


def test_voice_via_text_bad_input_is_one_line_or_a_warning(toy_recognizer, tmp_path, capsys):
    """No recogniser: a one-line error. A recogniser that hears no words (toy EMG at rest): a warning and an empty WAV."""
    from conftest import save_run

    from silentspeech.models.speech import SpeechModel, SpeechModelConfig
    from silentspeech.models.tinymyo import TinyMyoConfig

    rest = np.random.default_rng(0).normal(0, 5, (1000, 8))
    np.save(tmp_path / "rest.npy", rest)
    out = tmp_path / "rest.wav"
    common = [str(tmp_path / "rest.npy"), "--rate", "1000", "--out", str(out), "--via", "text", "--device", "cpu"]

    encoder = TinyMyoConfig(dim=16, depth=1, heads=1, mlp_dim=32)
    producer = save_run(tmp_path / "production", SpeechModel(SpeechModelConfig(width=16, encoder=encoder, outputs=["acoustic"])), "production")
    (tmp_path / "empty").mkdir()
    for checkpoint, found in ((producer, "is a production run"), (tmp_path / "nothing", "does not exist"), (tmp_path / "empty", "is no run")):
        assert main(["voice", str(checkpoint), *common]) == 2
        error = capsys.readouterr().err.strip()
        assert "--via text speaks a recogniser's text: give a recognition run" in error and found in error
        assert len(error.splitlines()) == 1 and "Traceback" not in error
    assert not out.exists()

    assert SilentSpeechPipeline(recognizer=toy_recognizer, beam=8, device="cpu").run(rest, rate=1000.0).beam_text == ""
    assert main(["voice", str(toy_recognizer), *common]) == 0
    captured = capsys.readouterr()
    assert "warning: the recogniser's text is empty" in captured.err and "wrote" in captured.out and "0.00 s" in captured.out
    assert soundfile.info(str(out)).frames == 0
