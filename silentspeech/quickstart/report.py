"""The quickstart report: one markdown page of what a finished quickstart made.

:func:`write_quickstart_report` reads what the earlier stages wrote (the
recogniser's test evaluation, the production model's test metrics, the
pretrained-vs-scratch runs, the listening test, the wall time per stage)
and makes what only the report shows, for a few silent test utterances run
end to end from their raw EMG files through
:class:`~silentspeech.inference.pipeline.SilentSpeechPipeline`:

- ``emg.png``: raw and filtered EMG of the first one;
- ``spectrogram.png``: the production model's prediction vs the features of
  the utterance's voiced twin (a silent utterance has no audio of its own);
- ``alignment.png``: the DTW path between those two (the pairing the
  production loss and its distance metric use, :mod:`silentspeech.alignment`);
- ``audio/``: 22050 Hz WAVs of each, voiced by the pretrained V1, the
  Griffin-Lim fallback (and the fine-tuned V1 when the optional vocoder
  stage ran), the recogniser's beam text spoken by espeak-ng, beside the
  twin's recording.

Everything is written atomically; the figures and ``audio/`` lie beside
``report.md`` and are linked from it by relative paths.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch
from tqdm import tqdm

from silentspeech.alignment import alignment_costs, dtw_path
from silentspeech.atomic import atomic_write_text
from silentspeech.data.cache import CachedUtterances, read_manifest
from silentspeech.data.emg_files import read_emg_file
from silentspeech.data.gaddy import SPLITS
from silentspeech.evaluation.production import BOOTSTRAP_RESAMPLES
from silentspeech.evaluation.recognition import RESULTS_CSV, read_results
from silentspeech.features import AUDIO_RATE, load_audio, write_wav
from silentspeech.figures import dtw_path_figure, emg_figure, save_figure, spectrogram_figure
from silentspeech.inference.pipeline import SilentSpeechPipeline
from silentspeech.inference.text_voice import TEXT_VOICE_LABEL, TextVoice
from silentspeech.metrics import paired_bootstrap_difference
from silentspeech.quickstart.layout import QuickstartLayout
from silentspeech.quickstart.listening import LISTENING_JSON, listening_markdown
from silentspeech.quickstart.seeds import METRICS, finished_seeds, seed_table
from silentspeech.runs import TEST_METRICS
from silentspeech.tables import markdown_table
from silentspeech.vocoder import GRIFFIN_LIM
from silentspeech.vocoder.synthesis import load_vocoder

#: Test utterances synthesised into audio for the report.
EXAMPLES = 4


def _required(path: Path, stage: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing; run the quickstart's {stage} stage first (silentspeech quickstart --stages {stage})")
    return path


def _read_json(path: Path, stage: str) -> dict:
    try:
        return json.loads(_required(path, stage).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err}); run the quickstart's {stage} stage again") from None


def _link(target: Path, base: Path, text: str) -> str:
    """A markdown link to ``target``, relative to the folder ``base`` (both under the same output folder)."""
    return f"[{text}]({target.relative_to(base).as_posix()})"


def _recognition_section(summary: dict, evaluation: Path, base: Path) -> list[str]:
    lm = summary["lm"]
    lines = [
        "## Recognition: EMG -> text (test split)",
        "",
        f"Greedy CTC decoding and beam search with the language model `{Path(lm['lm']).name}` "
        f"(alpha {lm['alpha']}, beta {lm['beta']}, beam {lm['beam_width']})."
        if lm
        else "Greedy CTC decoding only (no language model).",
        "",
        "| utterances | n | greedy WER % | greedy CER % | beam WER % | beam CER % |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    beam = summary.get("beam") or {}
    for group, greedy in summary["greedy"].items():
        searched = beam.get(group)
        beam_cells = f"{100 * searched['wer']:.2f} | {100 * searched['cer']:.2f}" if searched else "- | -"
        lines.append(f"| {group} | {greedy['utterances']} | {100 * greedy['wer']:.2f} | {100 * greedy['cer']:.2f} | {beam_cells} |")
    lines += [
        "",
        f"Per utterance: {_link(evaluation / 'results.csv', base, 'results.csv')}; "
        f"substitutions, deletions and insertions: {_link(evaluation / 'report.md', base, 'the evaluation report')}.",
        "",
    ]
    return lines


def _pretraining_section(layout: QuickstartLayout) -> list[str]:
    """Pretrained against scratch at the same fine-tuning budget, when the scratch runs exist."""
    pairs = {
        "recognition: test greedy CER %": ("test/cer", 100.0, layout.recognition, layout.scratch / "recognition"),
        "recognition: test greedy WER %": ("test/wer", 100.0, layout.recognition, layout.scratch / "recognition"),
        "production: test DTW distance": ("test/distance", 1.0, layout.production, layout.scratch / "production"),
    }
    rows = []
    for label, (key, scale, pretrained, scratch) in pairs.items():
        if not (pretrained / TEST_METRICS).is_file() or not (scratch / TEST_METRICS).is_file():
            return []
        values = [json.loads((run / TEST_METRICS).read_text()).get(key) for run in (pretrained, scratch)]
        rows.append([label, *(f"{scale * v:.2f}" if v is not None else "-" for v in values)])
    return [
        "## Pretrained against scratch (test split, same recipes and budget)",
        "",
        f"Recognition and production start from the trunk pretrained by masked reconstruction of the corpus's EMG "
        f"(`{layout.pretrain.name}/`, no labels) and are compared with the same recipes trained from scratch "
        f"(`{layout.scratch.name}/`). Lower is better. One run each: at this budget the recogniser's CER moves by "
        f"several points with the seed, so `bench/pretraining.py` repeats this comparison over several seeds "
        f"(below when it has run; figures in docs/measurements.md, *How learnable the corpus is*).",
        "",
        markdown_table(["metric", "pretrained", "scratch"], rows, align="lrr"),
        "",
        *_paired_cer_lines(layout),
        *_seeds_lines(layout),
    ]


def _seeds_lines(layout: QuickstartLayout) -> list[str]:
    """The comparison over every seed ``bench/pretraining.py`` finished in ``layout.seeds``, per task, when there is more than seed 0."""
    lines = []
    for task in METRICS:
        pairs = finished_seeds(layout, task)
        if len(pairs) < 2:
            continue
        headers, rows, verdict = seed_table(pairs, task)
        lines += [
            f"{task.capitalize()} over {len(pairs)} seeds (`bench/pretraining.py --task {task}`: pretraining and both "
            f"fine-tunes with each seed; seed 0 is the run above, the others are in `{layout.seeds.name}/`):",
            "",
            markdown_table(headers, rows, align="lrrr"),
            "",
            verdict,
            "",
        ]
    return lines


def _paired_cer_lines(layout: QuickstartLayout) -> list[str]:
    """The test greedy CER difference, pretrained minus scratch, with a bootstrap interval over the utterances both decoded."""
    tables = [layout.evaluation / RESULTS_CSV, layout.scratch_evaluation / RESULTS_CSV]
    if not all(table.is_file() for table in tables):
        return []
    pretrained, scratch = ({row["id"]: row for row in csv.DictReader(table.open(newline=""))} for table in tables)
    ids = sorted(set(pretrained) & set(scratch))
    if not ids:
        return []
    resamples, level = 2000, 0.95
    difference, low, high = paired_bootstrap_difference(
        [int(pretrained[i]["greedy_char_errors"]) for i in ids],
        [int(scratch[i]["greedy_char_errors"]) for i in ids],
        [int(pretrained[i]["reference_chars"]) for i in ids],
        resamples=resamples,
        level=level,
    )
    verdict = "the run cannot tell them apart" if low <= 0 <= high else ("pretrained is better" if high < 0 else "pretrained is worse")
    return [
        f"Test greedy CER, pretrained minus scratch: {100 * difference:+.2f} points; {100 * level:.0f} % bootstrap interval "
        f"{100 * low:+.2f} to {100 * high:+.2f} over the {len(ids)} utterances (resampled {resamples} times): {verdict}.",
        "",
    ]


#: Said in the report when the quickstart ran without its optional vocoder stage.
FINE_TUNE_LEFT_OUT = (
    "The fine-tune is left out of the default stages: at the quickstart's budget it made V1 worse, see docs/measurements.md "
    "(run it with `silentspeech quickstart --stages vocoder,listen,report`)."
)


def _listening_section(layout: QuickstartLayout, base: Path) -> list[str]:
    listening = _read_json(layout.listening / LISTENING_JSON, "listen")
    resamples = listening.get("resamples", BOOTSTRAP_RESAMPLES)
    lines = [
        "## Is it speech? Whisper listens (silent test split)",
        "",
        f"Every silent test utterance rendered each way and transcribed by **{listening['judge']}**, a recogniser "
        "that never heard this corpus; WER and CER against the prompt (corpus level, normalised text). The voiced "
        "twin's recording is the ceiling; *true features -> V1* is what the vocoder alone loses; the EMG rows are "
        f"the system: silent EMG -> production model -> predicted MFCC -> vocoder. *{TEXT_VOICE_LABEL}* is the "
        "recogniser's beam-search text of the same EMG spoken by espeak-ng: voice through text, the intelligible "
        "fallback, not the direct path.",
        "",
        f"The interval beside each WER is a 95 % bootstrap interval over utterances ({resamples} resamples of the utterances, "
        "the corpus-level WER recomputed on each); the next column is each EMG rendering's WER minus Griffin-Lim's on the "
        "same utterances with its paired bootstrap interval: an interval wholly below zero means the rendering beats "
        "Griffin-Lim here, one that holds zero means these utterances cannot tell them apart (docs/design.md, *Text, "
        "decoding and scoring*).",
        "",
        listening_markdown(listening["rows"]),
        "",
        f"Per utterance: the folders under {_link(layout.listening, base, layout.listening.name + '/')} "
        "(`results.csv`, `report.md` for each EMG rendering).",
        "",
    ]
    if not layout.vocoder_generator.is_file():
        lines += [FINE_TUNE_LEFT_OUT, ""]
    return lines


def _times_section(stage_seconds: Mapping[str, float]) -> list[str]:
    lines = ["## Wall time per stage", "", "| stage | seconds |", "| --- | --- |"]
    lines += [f"| {stage} | {seconds:.0f} |" for stage, seconds in stage_seconds.items()]
    lines += [
        f"| **total** | **{sum(stage_seconds.values()):.0f}** ({sum(stage_seconds.values()) / 60:.1f} min) |",
        "",
        "Each stage's time is that of the run that did its work (a later run reuses it); the report's own time is "
        "counted once it has been written.",
        "",
    ]
    return lines


@dataclass
class ExampleAudio:
    """One silent test utterance run end to end, with the WAVs made of it."""

    entry: dict
    decoded: dict[str, str]
    files: dict[str, Path]


def _example_audio(layout: QuickstartLayout, test: CachedUtterances, chosen: list[int], transcripts: dict) -> tuple[list[ExampleAudio], dict]:
    """WAVs of the ``chosen`` test utterances by each vocoder, and the first one's figures (written beside the report)."""
    out = layout.out
    corpus_root = Path(read_manifest(layout.cache)["root"])
    pipeline = SilentSpeechPipeline(producer=layout.production, beam=0)
    text_voice = TextVoice()
    others = {"griffin-lim": load_vocoder(GRIFFIN_LIM, n_mfcc=pipeline.vocoder.n_mfcc)}
    if layout.vocoder_generator.is_file():
        others = {"fine-tuned V1": load_vocoder(layout.vocoder, n_mfcc=pipeline.vocoder.n_mfcc), **others}
    examples, figure = [], {}
    for position, index in enumerate(tqdm(chosen, desc="report audio", unit="utt")):
        entry = test.entries[index]
        recording = read_emg_file(corpus_root / f"{entry['id']}_emg.npy")
        result = pipeline.run(recording)
        stem = f"test{position + 1}"
        files = {"V1": write_wav(layout.audio / f"{stem}.v1-universal.wav", result.audio)}
        for name, vocoder in others.items():
            files[name] = write_wav(layout.audio / f"{stem}.{name.replace(' ', '-').lower()}.wav", vocoder.synthesize(result.features))
        decoded = transcripts.get(entry["id"], {})
        spoken, _ = text_voice.speak(decoded.get("beam") or decoded.get("greedy"))  # empty text: a silent file
        files[TEXT_VOICE_LABEL] = write_wav(layout.audio / f"{stem}.text-espeak-ng.wav", spoken, text_voice.audio_rate)
        twin_audio = load_audio(test.by_id[entry["twin"]]["audio_path"], AUDIO_RATE)
        files["voiced twin"] = write_wav(layout.audio / f"{stem}.voiced-twin.wav", twin_audio)
        examples.append(ExampleAudio(entry, decoded, files))
        if position == 0:
            title = f"{entry['id']}: \"{entry['text']}\""
            save_figure(emg_figure(recording.emg, recording.rate, result.emg, title=title), out / "emg.png")
            true = test[index]["target_features"].numpy()  # the voiced twin's MFCC
            save_figure(spectrogram_figure(result.features, true, title=f"{title}\npredicted from silent EMG vs its voiced twin"), out / "spectrogram.png")
            costs = alignment_costs(torch.from_numpy(result.features), torch.from_numpy(true)).numpy()
            path_rows, path_cols = dtw_path(costs)
            save_figure(
                dtw_path_figure(costs, path_rows, path_cols, "predicted (silent EMG)", "voiced twin", title=f"{entry['id']}: DTW path"),
                out / "alignment.png",
            )
            figure = {"id": entry["id"], "text": entry["text"], "distance": float(costs[path_rows, path_cols].mean())}
    return examples, figure


def _production_section(metrics: dict, figure: dict) -> list[str]:
    return [
        "## Speech production: EMG -> speech features (test split)",
        "",
        f"Mean distance between DTW-aligned predicted and true MFCC frames: {metrics['test/distance']:.2f} "
        f"({metrics['test/distance_ratio']:.2f} x the baseline that predicts the mean frame, "
        f"{metrics['test/mean_baseline']:.2f}).",
        "",
        f"Silent test utterance `{figure['id']}` (\"{figure['text']}\"): the spectrogram predicted from its silent EMG above the "
        "features of its voiced twin (spoken at another pace), and the DTW path that pairs their frames "
        f"(mean distance along it {figure['distance']:.2f}).",
        "",
        "![predicted vs true spectrogram](spectrogram.png)",
        "",
        "![DTW alignment path](alignment.png)",
        "",
        "## EMG",
        "",
        f"`{figure['id']}`: raw EMG as recorded (1000 Hz) and the model's input after mains notch, high-pass, "
        "resampling to 689.06 Hz and soft clipping.",
        "",
        "![raw and filtered EMG](emg.png)",
        "",
    ]


def _audio_section(examples: list[ExampleAudio], base: Path) -> list[str]:
    names = list(examples[0].files)
    rows = [
        [f"`{e.entry['id']}`", e.entry["text"], e.decoded.get("greedy", "-"), e.decoded.get("beam") or "-",
         *(_link(path, base, path.name) for path in e.files.values())]
        for e in examples
    ]
    return [
        "## Audio: silent EMG -> production model -> vocoder",
        "",
        "Each silent test utterance's raw EMG file alone through the pipeline, as the demo runs it: the pretrained "
        "universal HiFi-GAN V1 (the default vocoder), the Griffin-Lim fallback on the same predicted features (and the V1 "
        "fine-tuned on this production model's predictions, when the optional vocoder stage ran), the recogniser's beam "
        f"text spoken by espeak-ng ({TEXT_VOICE_LABEL}: voice through text, not the direct path), and the voiced twin's "
        "recording (what the speech should sound like). WAV, 22050 Hz. The greedy and beam columns are the test evaluation's transcripts, whose EMG was "
        "filtered together with its session neighbours as in training; the demo filters a lone file, so the first or "
        "last characters (within the filters' half-second edge transient) can differ.",
        "",
        markdown_table(["utterance", "prompt", "greedy", "beam", *names], rows),
        "",
    ]


def _corpus_line(layout: QuickstartLayout) -> list[str]:
    splits: dict[str, dict[str, int]] = {}
    for entry in read_manifest(layout.cache)["utterances"]:
        kinds = splits.setdefault(entry["split"], {"silent": 0, "voiced": 0})
        kinds["silent" if entry["silent"] else "voiced"] += 1
    split_text = ", ".join(f"{split} {splits[split]['silent']} silent + {splits[split]['voiced']} voiced" for split in SPLITS if split in splits)
    return [
        "# Quickstart report",
        "",
        f"Everything here is measured on the **synthetic** corpus `{layout.corpus}` ({split_text} utterances; "
        "'excluded' are the voiced twins of dev and test sentences, kept out of training), "
        "not on real EMG; the README's Results and docs/design.md give the published figures on the Gaddy corpus.",
        "",
    ]


def write_quickstart_report(layout: QuickstartLayout, stage_seconds: Mapping[str, float] | None = None, examples: int = EXAMPLES) -> Path:
    """Write ``layout.report`` (``report.md``) with its figures and audio; returns its path.

    Args:
        layout: the quickstart's output folders; the corpus, cache, models,
            evaluation and listening test must be there.
        stage_seconds: wall time (s) per stage, in stage order; default
            ``layout.stage_times`` (none when that file is absent).
        examples: silent test utterances to synthesise into audio (the first
            one also gets the figures).
    """
    if stage_seconds is None:
        stage_seconds = layout.read_stage_times()
    summary = _read_json(layout.evaluation / "summary.json", "evaluate")
    transcripts = read_results(_required(layout.evaluation / RESULTS_CSV, "evaluate"))
    production_metrics = _read_json(layout.production / TEST_METRICS, "production")
    test = CachedUtterances(_required(layout.cache, "cache"), "test", kinds=("silent",))
    chosen = sorted(range(len(test)), key=lambda i: test.entries[i]["id"])[:examples]
    if not chosen:
        raise ValueError(f"{layout.cache}: the test split holds no silent utterances to show")
    audio, figure = _example_audio(layout, test, chosen, transcripts)
    lines = _corpus_line(layout)
    lines += _recognition_section(summary, layout.evaluation, layout.out)
    lines += _pretraining_section(layout)
    lines += _listening_section(layout, layout.out)
    lines += _production_section(production_metrics, figure)
    lines += _audio_section(audio, layout.out)
    lines += _times_section(stage_seconds)
    atomic_write_text(layout.report, "\n".join(lines))
    return layout.report
