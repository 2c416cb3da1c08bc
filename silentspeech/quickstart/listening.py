"""The quickstart's listening test: is the speech made from silent EMG English to a recogniser that never heard it?

For the silent utterances of the test split, Whisper (by default the bundled
tiny.en, :mod:`silentspeech.evaluation.asr`) transcribes each rendering and
each is scored against the prompt (corpus-level WER/CER with substitutions,
deletions and insertions):

1. ``recording``: the voiced twin's own recording (same sentence, spoken);
   the ceiling the rest can reach;
2. ``true features -> V1``: the twin's recording reduced to our MFCC and
   voiced again by the pretrained universal HiFi-GAN V1 (what the vocoder
   loses on its own);
3. ``EMG -> V1``: silent EMG -> production model -> predicted MFCC -> universal V1;
4. ``EMG -> Griffin-Lim``: the same predicted features through the fallback;
5. ``EMG -> fine-tuned V1``: the same through V1 fine-tuned on the production
   model's predictions (the quickstart's optional vocoder stage), when there is one;
6. ``text -> espeak-ng``: the recogniser's beam-search text of the same
   silent EMG spoken by espeak-ng (:mod:`silentspeech.inference.text_voice`),
   when the recogniser's transcripts are given: voice through text, the
   intelligible fallback, not the direct path.

Every row carries a bootstrap 95 % interval of its WER over utterances, and
every EMG row the paired difference of its WER against Griffin-Lim's with
its paired bootstrap interval (:class:`silentspeech.evaluation.production.WordErrors`):
an interval wholly below zero says the rendering beats the fallback on these
utterances. Rows 3-5 are :func:`silentspeech.evaluation.production.evaluate_production`
runs (their per-utterance files lie in sub-folders); the judge and V1 are loaded once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

from tqdm import tqdm

from silentspeech.atomic import atomic_write_json
from silentspeech.data.cache import CachedUtterances
from silentspeech.evaluation.asr import AudioASR, load_asr
from silentspeech.evaluation.production import BOOTSTRAP_RESAMPLES, WordErrors, evaluate_production
from silentspeech.features import AUDIO_RATE, acoustic_features, load_audio
from silentspeech.inference.text_voice import TEXT_VOICE_LABEL, TextVoice
from silentspeech.metrics import error_rates
from silentspeech.tables import markdown_table
from silentspeech.vocoder import GRIFFIN_LIM
from silentspeech.vocoder.synthesis import Vocoder, load_vocoder

#: The pretrained vocoder the table is built around.
PRETRAINED = "v1-universal"
#: File of the table's figures in the listening folder.
LISTENING_JSON = "listening.json"
#: The row every EMG rendering is compared with.
BASELINE = "EMG -> Griffin-Lim"


#: What a row of the table keeps of :class:`silentspeech.metrics.ErrorRates` (and of the production scores).
ROW_FIELDS = ("utterances", "wer", "cer", "substitutions", "deletions", "insertions", "reference_words")


def _row(condition: str, vocoder: str, scores: object, per_utterance: WordErrors) -> dict:
    """One rendering's row: its name, its vocoder, the :data:`ROW_FIELDS` of ``scores``, its WER interval and word errors per utterance."""
    low, high = per_utterance.interval()
    return {
        "condition": condition, "vocoder": vocoder, **{name: getattr(scores, name) for name in ROW_FIELDS},
        "wer_low": low, "wer_high": high,
        "per_utterance": {"ids": list(per_utterance.ids), "errors": list(per_utterance.errors), "words": list(per_utterance.words)},
    }


def _scored_row(condition: str, vocoder: str, ids: Sequence[str], texts: Sequence[str], transcripts: Sequence[str]) -> dict:
    return _row(condition, vocoder, error_rates(texts, transcripts), WordErrors.of(ids, texts, transcripts))


def _silent_entries(cache: str | os.PathLike, split: str, max_utterances: int) -> tuple[CachedUtterances, list[dict]]:
    """The split's silent utterances (the first ``max_utterances`` when > 0)."""
    data = CachedUtterances(cache, split, kinds=("silent",))
    if len(data) == 0:
        raise ValueError(f"{cache}: the {split} split holds no silent utterances")
    return data, data.entries[:max_utterances] if max_utterances > 0 else data.entries


def reference_rows(cache: str | os.PathLike, split: str, asr: AudioASR, vocoder: Vocoder, max_utterances: int = 0) -> list[dict]:
    """Rows 1 and 2: the silent utterances' voiced-twin recordings, as recorded and through ``vocoder`` (universal V1) from their MFCC.

    ``max_utterances`` > 0 keeps the split's first that many silent utterances.
    """
    data, entries = _silent_entries(cache, split, max_utterances)
    texts, recordings, resynthesised = [], [], []
    for entry in tqdm(entries, desc="voiced twins", unit="utt"):
        twin = data.by_id.get(entry.get("twin") or "")
        if twin is None:
            raise ValueError(f"{cache}: silent utterance {entry['id']} has no voiced twin in the cache")
        texts.append(entry["text"])
        recordings.append(load_audio(twin["audio_path"], asr.rate))  # as recorded where it is the judge's rate
        features = acoustic_features(load_audio(twin["audio_path"], AUDIO_RATE), vocoder.n_mfcc)
        resynthesised.append(vocoder.synthesize(features))
    ids = [entry["id"] for entry in entries]
    return [
        _scored_row("recording (voiced twin)", "-", ids, texts, asr.transcribe(recordings, asr.rate)),
        _scored_row("true features -> V1", vocoder.description, ids, texts, asr.transcribe(resynthesised)),
    ]


def text_row(
    cache: str | os.PathLike, split: str, asr: AudioASR, transcripts: Mapping[str, str], voice: TextVoice, max_utterances: int = 0
) -> dict:
    """Row 6: the recogniser's ``transcripts`` (utterance id -> beam-search text) of the split's silent utterances spoken by ``voice``.

    Raises ``ValueError`` naming an utterance without a transcript. An
    empty transcript is spoken as empty audio (its words count as deletions).
    """
    _, entries = _silent_entries(cache, split, max_utterances)
    missing = [entry["id"] for entry in entries if entry["id"] not in transcripts]
    if missing:
        raise ValueError(f"no recogniser transcript for {len(missing)} silent {split} utterance(s), e.g. {missing[0]}; evaluate the recogniser on {split} again")
    spoken = [voice.speak(transcripts[entry["id"]])[0] for entry in tqdm(entries, desc="espeak-ng", unit="utt")]
    ids, texts = [entry["id"] for entry in entries], [entry["text"] for entry in entries]
    return _scored_row(TEXT_VOICE_LABEL, voice.description, ids, texts, asr.transcribe(spoken, voice.audio_rate))


def row_word_errors(row: dict) -> WordErrors:
    """The word errors per utterance a row keeps (``row["per_utterance"]``), for paired comparisons."""
    kept = row["per_utterance"]
    return WordErrors(tuple(kept["ids"]), tuple(kept["errors"]), tuple(kept["words"]))


def rendering_row(
    condition: str,
    vocoder: str | os.PathLike | Vocoder,
    cache: str | os.PathLike,
    producer: str | os.PathLike,
    judge: AudioASR,
    out: str | os.PathLike,
    split: str = "test",
    max_utterances: int = 0,
) -> dict:
    """One EMG row: the split's utterances through ``producer`` and ``vocoder`` (a spec or a loaded one), transcribed by ``judge``.

    Its :func:`~silentspeech.evaluation.production.evaluate_production` files go to ``out``.
    """
    scores = evaluate_production(producer, judge, split=split, vocoder=vocoder, cache=cache, out=out, max_utterances=max_utterances)
    return _row(condition, scores.vocoder, scores, scores.per_utterance)


def compare_with_baseline(rows: Sequence[dict]) -> None:
    """Add to every EMG row (and the text row) ``vs_baseline``: its WER minus :data:`BASELINE`'s, with the paired bootstrap interval, fractions."""
    baseline = next((row for row in rows if row["condition"] == BASELINE), None)
    if baseline is None:
        return
    for row in rows:
        if row is not baseline and (row["condition"].startswith("EMG ->") or row["condition"] == TEXT_VOICE_LABEL):
            row["vs_baseline"] = list(row_word_errors(row).against(row_word_errors(baseline)))


def listening_test(
    cache: str | os.PathLike,
    producer: str | os.PathLike,
    out: str | os.PathLike,
    finetuned: str | os.PathLike | None = None,
    split: str = "test",
    asr: str = "whisper",
    max_utterances: int = 0,
    transcripts: Mapping[str, str] | None = None,
    text_voice: TextVoice = TextVoice(),
) -> list[dict]:
    """The table (see the module docstring) for ``split``; writes ``out/listening.json`` and returns the rows.

    ``transcripts`` (utterance id -> the recogniser's beam-search text) adds
    the ``text -> espeak-ng`` row, spoken by ``text_voice``. ``max_utterances``
    > 0 scores the split's first that many silent utterances in every row (the
    split must hold silent utterances only, as the Gaddy test and dev splits
    do, so that every row hears the same ones); 0, the default, scores all.
    """
    out = Path(out)
    judge = load_asr(asr)
    pretrained = load_vocoder(PRETRAINED)  # loaded (and exported to ONNX) once for rows 2 and 3
    rows = reference_rows(cache, split, judge, pretrained, max_utterances)
    renderings = [("EMG -> V1", pretrained), (BASELINE, GRIFFIN_LIM)]
    if finetuned is not None:
        renderings.append(("EMG -> fine-tuned V1", finetuned))
    for condition, vocoder in renderings:
        folder = out / condition.split("-> ")[1].lower().replace(" ", "_").replace("-", "_")
        rows.append(rendering_row(condition, vocoder, cache, producer, judge, folder, split, max_utterances))
    if transcripts is not None:
        rows.append(text_row(cache, split, judge, transcripts, text_voice, max_utterances))
    compare_with_baseline(rows)
    atomic_write_json(out / LISTENING_JSON, {"split": split, "judge": judge.name, "resamples": BOOTSTRAP_RESAMPLES, "rows": rows})
    return rows


def listening_markdown(rows: Sequence[dict]) -> str:
    """The table as markdown: rendering, n, WER with its 95 % interval, CER, S/D/I of N words, difference against Griffin-Lim, vocoder."""

    def points(value: float) -> str:
        return f"{100 * value:+.1f}"

    def against(row: dict) -> str:
        if "vs_baseline" not in row:
            return "-"
        difference, low, high = row["vs_baseline"]
        return f"{points(difference)} [{points(low)}, {points(high)}]"

    return markdown_table(
        ["rendering", "n", "WER % [95 % interval]", "CER %", "S / D / I of words", "WER vs Griffin-Lim, points [paired 95 %]", "voice"],
        [
            [
                r["condition"], r["utterances"], f"{100 * r['wer']:.1f} [{100 * r['wer_low']:.1f}, {100 * r['wer_high']:.1f}]",
                f"{100 * r['cer']:.1f}", f"{r['substitutions']} / {r['deletions']} / {r['insertions']} of {r['reference_words']}",
                against(r), r["vocoder"],
            ]
            for r in rows
        ],
    )
