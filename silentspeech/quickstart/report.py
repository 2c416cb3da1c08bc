"""The quickstart report: one markdown page of what a finished quickstart made.

:func:`write_quickstart_report` reads what the earlier stages wrote (the
recogniser's test evaluation, the production model's test metrics, the
vocoder's comparison with Griffin-Lim, the wall time per stage) and makes
what only the report shows, for a few silent test utterances run end to end
from their raw EMG files through :class:`~silentspeech.inference.pipeline.SilentSpeechPipeline`:

- ``emg.png``: raw and filtered EMG of the first one;
- ``spectrogram.png``: the production model's prediction vs the features of
  the utterance's voiced twin (a silent utterance has no audio of its own);
- ``alignment.png``: the DTW path between those two (the pairing the
  production loss and its distance metric use, :mod:`silentspeech.alignment`);
- ``audio/``: 22050 Hz WAVs of each, synthesised by the vocoder and by the
  Griffin-Lim fallback, beside the twin's recording.

Everything is written atomically; the figures and ``audio/`` lie beside
``report.md`` and are linked from it by relative paths.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Mapping

import torch
from tqdm import tqdm

from silentspeech.alignment import alignment_costs, dtw_path
from silentspeech.atomic import atomic_write_text
from silentspeech.data.cache import CachedUtterances, read_manifest
from silentspeech.data.emg_files import read_emg_file
from silentspeech.data.gaddy import SPLITS
from silentspeech.features import AUDIO_RATE, load_audio, write_wav
from silentspeech.figures import dtw_path_figure, emg_figure, save_figure, spectrogram_figure
from silentspeech.inference.pipeline import SilentSpeechPipeline
from silentspeech.quickstart.layout import QuickstartLayout
from silentspeech.vocoder.compare import SECOND_RENDITION
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


def _transcripts(results_csv: Path) -> dict[str, dict[str, str]]:
    """Utterance id -> its ``greedy`` and ``beam`` transcripts from the evaluation's ``results.csv``."""
    with open(_required(results_csv, "evaluate"), newline="") as handle:
        return {row["id"]: row for row in csv.DictReader(handle)}


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


def _vocoder_section(resynthesis: dict, vocoder_dir: Path, comparison: Path, base: Path) -> list[str]:
    scores = {entry["method"]: entry for entry in resynthesis["scores"]}
    lines = [
        "## Vocoder: features -> audio (test audio, true features)",
        "",
        f"The voiced test audio resynthesised from its own MFCC by each method ({resynthesis['split']} split); "
        "log-spectral distance and mel-cepstral distortion to the recording, lower is better.",
        "",
        "| method | utterances | LSD dB | MCD dB |",
        "| --- | --- | --- | --- |",
    ]
    for method, entry in scores.items():
        lines.append(
            f"| {method} | {entry['utterances']} | {entry['log_spectral_distance_db']:.2f} | {entry['mel_cepstral_distortion_db']:.2f} |"
        )
    lines.append("")
    if "hifigan" in scores and "griffin-lim" in scores:
        better = scores["hifigan"]["log_spectral_distance_db"] < scores["griffin-lim"]["log_spectral_distance_db"]
        lines.append(
            "The small HiFi-GAN beats Griffin-Lim on LSD."
            if better
            else "The small HiFi-GAN does not beat Griffin-Lim on LSD after this short CPU training "
            "(`vocoder/README.md` explains why); the audio above keeps both."
        )
        lines.append("")
    if SECOND_RENDITION in scores:
        lines += [
            f"`{SECOND_RENDITION}` is the same speech rendered again by the corpus generator with new noise (same "
            "articulation and pitch): what a perfect vocoder would score. Both distances reward reproducing the "
            "recording's own noise, which Griffin-Lim's smooth spectra approximate, so Griffin-Lim can score below it.",
            "",
        ]
    lines += [
        f"Vocoder run: {_link(vocoder_dir, base, vocoder_dir.name + '/')} "
        f"({_link(vocoder_dir / 'losses.png', base, 'loss curves')}); "
        f"spectrograms of one utterance by each method: {_link(comparison / 'resynthesis.png', base, 'resynthesis.png')}.",
        "",
    ]
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


def write_quickstart_report(layout: QuickstartLayout, stage_seconds: Mapping[str, float], examples: int = EXAMPLES) -> Path:
    """Write ``layout.report`` (``report.md``) with its figures and audio; returns its path.

    Args:
        layout: the quickstart's output folders; the corpus, cache, models,
            evaluation and vocoder must be there.
        stage_seconds: wall time (s) per stage, in stage order.
        examples: silent test utterances to synthesise into audio (the first
            one also gets the figures).
    """
    out = layout.out
    summary = _read_json(layout.evaluation / "summary.json", "evaluate")
    transcripts = _transcripts(layout.evaluation / "results.csv")
    production_metrics = _read_json(layout.production / "test_metrics.json", "production")
    resynthesis = _read_json(layout.vocoder_comparison / "resynthesis.json", "vocoder")
    _required(layout.vocoder / "generator.safetensors", "vocoder")

    cache = _required(layout.cache, "cache")
    manifest = read_manifest(cache)
    corpus_root = Path(manifest["root"])
    test = CachedUtterances(cache, "test", kinds=("silent",))
    chosen = sorted(range(len(test)), key=lambda i: test.entries[i]["id"])[:examples]
    if not chosen:
        raise ValueError(f"{cache}: the test split holds no silent utterances to show")

    pipeline = SilentSpeechPipeline(producer=layout.production, vocoder=layout.vocoder, beam=0)
    griffin_lim = load_vocoder(None, n_mfcc=pipeline.vocoder.n_mfcc)
    rows = []
    for position, index in enumerate(tqdm(chosen, desc="report audio", unit="utt")):
        entry = test.entries[index]
        recording = read_emg_file(corpus_root / f"{entry['id']}_emg.npy")
        result = pipeline.run(recording)
        stem = f"test{position + 1}"
        files = {
            pipeline.vocoder.method: write_wav(layout.audio / f"{stem}.{pipeline.vocoder.method}.wav", result.audio),
            "griffin-lim": write_wav(layout.audio / f"{stem}.griffin-lim.wav", griffin_lim.synthesize(result.features)),
            "recorded": write_wav(layout.audio / f"{stem}.voiced-twin.wav", load_audio(test.by_id[entry["twin"]]["audio_path"], AUDIO_RATE)),
        }
        rows.append((entry, transcripts.get(entry["id"], {}), files))
        if position == 0:
            title = f"{entry['id']}: \"{entry['text']}\""
            save_figure(emg_figure(recording.emg, recording.rate, result.emg, title=title), out / "emg.png")
            true = test[index]["target_features"].numpy()  # the voiced twin's MFCC
            save_figure(spectrogram_figure(result.features, true, title=f"{title}\npredicted from silent EMG vs its voiced twin"), out / "spectrogram.png")
            costs = alignment_costs(torch.from_numpy(result.features), torch.from_numpy(true)).numpy()
            path_rows, path_cols = dtw_path(costs)
            aligned_distance = float(costs[path_rows, path_cols].mean())
            save_figure(
                dtw_path_figure(costs, path_rows, path_cols, "predicted (silent EMG)", "voiced twin", title=f"{entry['id']}: DTW path"),
                out / "alignment.png",
            )
            figure_id, figure_text = entry["id"], entry["text"]

    splits = {}
    for entry in manifest["utterances"]:
        kinds = splits.setdefault(entry["split"], {"silent": 0, "voiced": 0})
        kinds["silent" if entry["silent"] else "voiced"] += 1
    split_text = ", ".join(f"{split} {splits[split]['silent']} silent + {splits[split]['voiced']} voiced" for split in SPLITS if split in splits)
    lines = [
        "# Quickstart report",
        "",
        f"Everything here is measured on the **synthetic** corpus `{layout.corpus}` ({split_text} utterances; "
        "'excluded' are the voiced twins of dev and test sentences, kept out of training), "
        "not on real EMG; the README's Results and docs/design.md give the published figures on the Gaddy corpus.",
        "",
    ]
    lines += _recognition_section(summary, layout.evaluation, out)
    lines += [
        "## Speech production: EMG -> speech features (test split)",
        "",
        f"Mean distance between DTW-aligned predicted and true MFCC frames: {production_metrics['test/distance']:.2f} "
        f"({production_metrics['test/distance_ratio']:.2f} x the baseline that predicts the mean frame, "
        f"{production_metrics['test/mean_baseline']:.2f}).",
        "",
        f"Silent test utterance `{figure_id}` (\"{figure_text}\"): the spectrogram predicted from its silent EMG above the "
        "features of its voiced twin (spoken at another pace), and the DTW path that pairs their frames "
        f"(mean distance along it {aligned_distance:.2f}).",
        "",
        "![predicted vs true spectrogram](spectrogram.png)",
        "",
        "![DTW alignment path](alignment.png)",
        "",
        "## EMG",
        "",
        f"`{figure_id}`: raw EMG as recorded (1000 Hz) and the model's input after mains notch, high-pass, "
        "resampling to 689.06 Hz and soft clipping.",
        "",
        "![raw and filtered EMG](emg.png)",
        "",
        "## Audio: silent EMG -> production model -> vocoder",
        "",
        f"Each silent test utterance's raw EMG file alone through the pipeline, as the demo runs it; "
        f"`{pipeline.vocoder.method}` is the trained small vocoder, `griffin-lim` the fallback on the same predicted "
        "features, and the voiced twin's recording is what the speech should sound like. WAV, 22050 Hz. The greedy "
        "and beam columns are the test evaluation's transcripts, whose EMG was filtered together with its session "
        "neighbours as in training; the demo filters a lone file, so the first or last characters (within the "
        "filters' half-second edge transient) can differ.",
        "",
        f"| utterance | prompt | greedy | beam | {pipeline.vocoder.method} | griffin-lim | voiced twin |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for entry, decoded, files in rows:
        links = " | ".join(_link(path, out, path.name) for path in files.values())
        lines.append(f"| `{entry['id']}` | {entry['text']} | {decoded.get('greedy', '-')} | {decoded.get('beam') or '-'} | {links} |")
    lines.append("")
    lines += _vocoder_section(resynthesis, layout.vocoder, layout.vocoder_comparison, out)
    lines += _times_section(stage_seconds)
    atomic_write_text(layout.report, "\n".join(lines))
    print(f"wrote {layout.report} (figures emg.png, spectrogram.png, alignment.png; audio in {layout.audio})")
    return layout.report
