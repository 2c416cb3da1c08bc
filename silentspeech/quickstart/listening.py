"""The quickstart's listening test: is the speech made from silent EMG English to a recogniser that never heard it?

For the silent utterances of the test split, Whisper (by default the bundled
tiny.en, :mod:`silentspeech.evaluation.asr`) transcribes five renderings and
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
   model's predictions (the quickstart's vocoder stage), when there is one.

Rows 3-5 are :func:`silentspeech.evaluation.production.evaluate_production`
runs (their per-utterance files lie in sub-folders); the judge is loaded once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from silentspeech.atomic import atomic_write_json
from silentspeech.data.cache import CachedUtterances
from silentspeech.evaluation.asr import AudioASR, load_asr
from silentspeech.evaluation.production import evaluate_production
from silentspeech.features import AUDIO_RATE, acoustic_features, load_audio
from silentspeech.metrics import error_rates
from silentspeech.tables import markdown_table
from silentspeech.vocoder import GRIFFIN_LIM
from silentspeech.vocoder.synthesis import Vocoder, load_vocoder

#: The pretrained vocoder the table is built around.
PRETRAINED = "v1-universal"
#: File of the table's figures in the listening folder.
LISTENING_JSON = "listening.json"


#: What a row of the table keeps of :class:`silentspeech.metrics.ErrorRates` (and of the production scores).
ROW_FIELDS = ("utterances", "wer", "cer", "substitutions", "deletions", "insertions", "reference_words")


def _row(condition: str, vocoder: str, scores: object) -> dict:
    """One rendering's row: its name, its vocoder, and the :data:`ROW_FIELDS` of ``scores``."""
    return {"condition": condition, "vocoder": vocoder, **{name: getattr(scores, name) for name in ROW_FIELDS}}


def reference_rows(cache: str | os.PathLike, split: str, asr: AudioASR, vocoder: Vocoder, max_utterances: int = 0) -> list[dict]:
    """Rows 1 and 2: the silent utterances' voiced-twin recordings, as recorded and through ``vocoder`` (universal V1) from their MFCC.

    ``max_utterances`` > 0 keeps the split's first that many silent utterances.
    """
    data = CachedUtterances(cache, split, kinds=("silent",))
    if len(data) == 0:
        raise ValueError(f"{cache}: the {split} split holds no silent utterances")
    entries = data.entries[:max_utterances] if max_utterances > 0 else data.entries
    texts, recordings, resynthesised = [], [], []
    for entry in tqdm(entries, desc="voiced twins", unit="utt"):
        twin = data.by_id.get(entry.get("twin") or "")
        if twin is None:
            raise ValueError(f"{cache}: silent utterance {entry['id']} has no voiced twin in the cache")
        texts.append(entry["text"])
        recordings.append(load_audio(twin["audio_path"], asr.rate))  # as recorded where it is the judge's rate
        features = acoustic_features(load_audio(twin["audio_path"], AUDIO_RATE), vocoder.n_mfcc)
        resynthesised.append(vocoder.synthesize(features))
    return [
        _row("recording (voiced twin)", "-", error_rates(texts, asr.transcribe(recordings, asr.rate))),
        _row("true features -> V1", vocoder.description, error_rates(texts, asr.transcribe(resynthesised))),
    ]


def listening_test(
    cache: str | os.PathLike,
    producer: str | os.PathLike,
    out: str | os.PathLike,
    finetuned: str | os.PathLike | None = None,
    split: str = "test",
    asr: str = "whisper",
    max_utterances: int = 0,
) -> list[dict]:
    """The five-row table (see the module docstring) for ``split``; writes ``out/listening.json`` and returns the rows.

    ``max_utterances`` > 0 scores the split's first that many silent
    utterances in every row (the split must hold silent utterances only, as
    the Gaddy test and dev splits do, so that every row hears the same ones).
    """
    out = Path(out)
    judge = load_asr(asr)
    pretrained = load_vocoder(PRETRAINED)  # loaded (and exported to ONNX) once for rows 2 and 3
    rows = reference_rows(cache, split, judge, pretrained, max_utterances)
    renderings = [("EMG -> V1", pretrained), ("EMG -> Griffin-Lim", GRIFFIN_LIM)]
    if finetuned is not None:
        renderings.append(("EMG -> fine-tuned V1", finetuned))
    for condition, vocoder in renderings:
        folder = out / condition.split("-> ")[1].lower().replace(" ", "_").replace("-", "_")
        scores = evaluate_production(producer, judge, split=split, vocoder=vocoder, cache=cache, out=folder, max_utterances=max_utterances)
        rows.append(_row(condition, scores.vocoder, scores))
    atomic_write_json(out / LISTENING_JSON, {"split": split, "judge": judge.name, "rows": rows})
    return rows


def listening_markdown(rows: Sequence[dict]) -> str:
    """The table as markdown: condition, WER, CER, S/D/I of N words, vocoder."""
    return markdown_table(
        ["rendering", "n", "WER %", "CER %", "S / D / I of words", "vocoder"],
        [
            [
                r["condition"], r["utterances"], f"{100 * r['wer']:.1f}", f"{100 * r['cer']:.1f}",
                f"{r['substitutions']} / {r['deletions']} / {r['insertions']} of {r['reference_words']}", r["vocoder"],
            ]
            for r in rows
        ],
    )
