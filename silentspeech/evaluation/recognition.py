"""Recognition evaluation: a trained CTC model on one split of a cache, greedy and LM beam search.

:func:`evaluate_recognition` runs the model once over the split, decodes
greedily and (with a language model) by beam search, and writes
``results.csv`` (one row per utterance), ``summary.json`` (corpus WER/CER
with substitutions, deletions and insertions, per decoder, for silent,
voiced and all utterances) and ``report.md``. :func:`tune_lm` grid-searches
the LM weight alpha and word bonus beta on dev, computing the model's log
posteriors once and re-decoding them for every pair, and saves the best pair
as ``lm_params.json`` beside the checkpoint, where evaluation finds it.
Scoring follows the Gaddy reference code's protocol (github.com/dgaddy/silent_speech;
docs/design.md, *Text, decoding and scoring*) (:func:`silentspeech.metrics.error_rates`:
normalised text, corpus-level rates, jiwer alignment); a decoding lexicon
comes from the LM (which must hold out the split) or the training text, never
from the evaluated transcripts.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from silentspeech.atomic import atomic_write_json, atomic_write_text
from silentspeech.data.cache import CachedUtterances, collate_utterances, read_manifest
from silentspeech.decoding import LEXICONS
from silentspeech.decoding.beam import DEFAULT_TUNING_UNK_OFFSETS, DEFAULT_UNK_OFFSET, BeamSearchDecoder, greedy_decode, lm_unigrams, training_unigrams
from silentspeech.decoding.provenance import check_lm_excludes
from silentspeech.decoding.settings import LMSettings, resolve_lm_settings, save_lm_settings
from silentspeech.metrics import ErrorRates, error_rates, utterance_errors
from silentspeech.runs import run_directory, run_path
from silentspeech.runtime import pick_device
from silentspeech.tables import markdown_table, text_table

#: Per-utterance table an evaluation writes into its ``out`` folder (ids, transcripts, error counts).
RESULTS_CSV = "results.csv"

#: Default tuning grid: around TinyMyo's (0.5, 1.5) and Gaddy's (1.5, 1.85) settings.
DEFAULT_ALPHAS = (0.25, 0.5, 1.0, 1.5)
DEFAULT_BETAS = (0.0, 1.0, 1.85, 3.0)
#: Beam width for tuning: Gaddy's 100 keeps a grid affordable on a CPU.
DEFAULT_TUNING_BEAM = 100


@dataclass
class SplitPosteriors:
    """The model's CTC output on the utterances of one split, in cache order."""

    ids: list[str]
    texts: list[str]  #: normalised reference text
    silent: list[bool]
    log_probs: list[np.ndarray]  #: per utterance (frames, 38) float32 natural-log posteriors at 86.13 frames/s


def evaluation_folder(checkpoint: str | os.PathLike, split: str) -> Path:
    """Where :func:`evaluate_recognition` writes by default: ``<run dir>/eval_<split>/``."""
    return run_directory(checkpoint) / f"eval_{split}"


def check_split(cache: str | os.PathLike, split: str) -> None:
    """Raise ``ValueError`` listing the splits the cache holds when ``split`` is not among them."""
    present = sorted({entry["split"] for entry in read_manifest(cache)["utterances"]})
    if split not in present:
        raise ValueError(f"{cache}: no split {split!r} in this cache; valid splits: {', '.join(present)}")


def check_lm_for_split(lm: str | os.PathLike, cache: str | os.PathLike, split: str, allow_lm_leak: bool = False) -> None:
    """Check that the texts of ``split`` in ``cache`` were held out of ``lm`` (:func:`~silentspeech.decoding.provenance.check_lm_excludes`).

    Raises :class:`~silentspeech.decoding.provenance.LMProvenanceError` when
    the LM's provenance shows some were not, unless ``allow_lm_leak`` (then a
    warning); warns when the LM has no provenance to check.
    """
    check_split(cache, split)
    texts = [entry["text"] for entry in read_manifest(cache)["utterances"] if entry["split"] == split]
    check_lm_excludes(lm, texts, f"{split} split of {cache}", allow=allow_lm_leak)


def split_posteriors(
    model: torch.nn.Module,
    cache: str | os.PathLike,
    split: str,
    batch_size: int = 8,
    device: str | torch.device | None = "auto",
) -> SplitPosteriors:
    """Run a recognition ``model`` over every utterance (silent and voiced) of ``split`` in ``cache`` on ``device`` (:func:`~silentspeech.runtime.pick_device`)."""
    from silentspeech.tasks.recognition import ctc_log_probs

    check_split(cache, split)
    dataset = CachedUtterances(cache, split)
    device = pick_device(device)
    model = model.to(device).eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate_utterances)
    result = SplitPosteriors([], [], [], [])
    with torch.no_grad():
        for batch in tqdm(loader, desc=f"model on {split}", unit="batch"):
            inputs = {**batch, "emg": batch["emg"].to(device), "emg_lengths": batch["emg_lengths"].to(device)}
            log_probs, frames = ctc_log_probs(model, inputs)
            log_probs, frames = log_probs.cpu().numpy(), frames.cpu().numpy()
            result.ids += batch["ids"]
            result.texts += batch["texts"]
            result.silent += batch["silent"].tolist()
            result.log_probs += [log_probs[i, : frames[i]] for i in range(len(frames))]
    return result


def beam_decode(decoder: BeamSearchDecoder, log_probs: Sequence[np.ndarray], progress: str | None = None) -> list[str]:
    """Beam-search each ``(frames, 38)`` array; ``progress`` labels a tqdm bar (None: no bar)."""
    items = tqdm(log_probs, desc=progress, unit="utt") if progress else log_probs
    return [decoder.decode(item) for item in items]


def grouped_rates(references: Sequence[str], hypotheses: Sequence[str], silent: Sequence[bool]) -> dict[str, dict]:
    """``error_rates`` as dicts for ``all``, ``silent`` and ``voiced`` utterances (a kind absent from the split is left out)."""
    groups = {"all": [True] * len(silent), "silent": list(silent), "voiced": [not s for s in silent]}
    rates = {}
    for name, keep in groups.items():
        if any(keep):
            picked = [(r, h) for r, h, k in zip(references, hypotheses, keep) if k]
            rates[name] = asdict(error_rates([r for r, _ in picked], [h for _, h in picked]))
    return rates


#: Columns of the report's WER/CER table: decoder, utterance group, then the group's error rates and counts.
REPORT_COLUMNS = ("decoder", "utterances", "n", "WER %", "CER %", "sub", "del", "ins", "ref words")


def _rates_row(decoder: str, group: str, rates: dict) -> list[str]:
    return [
        decoder, group, str(rates["utterances"]), f"{100 * rates['wer']:.2f}", f"{100 * rates['cer']:.2f}",
        str(rates["substitutions"]), str(rates["deletions"]), str(rates["insertions"]), str(rates["reference_words"]),
    ]


def markdown_report(summary: dict) -> str:
    """A short markdown report of a ``summary.json`` dict: settings and the WER/CER table."""
    lm = summary["lm"]
    rows = [_rates_row(decoder, group, rates) for decoder in ("greedy", "beam") for group, rates in (summary.get(decoder) or {}).items()]
    lines = [
        f"# Recognition evaluation: {summary['split']} split",
        "",
        f"- checkpoint: `{summary['checkpoint']}`",
        f"- cache: `{summary['cache']}` ({summary['utterances']} utterances)",
        "- language model: "
        + (
            f"`{lm['lm']}`, alpha {lm['alpha']}, beta {lm['beta']}, beam {lm['beam_width']}, "
            f"lexicon {'none' if lm.get('lexicon') is None else str(lm['lexicon']) + ' words'}, unknown-word offset {lm.get('unk_offset')}"
            if lm
            else "none (greedy only)"
        ),
        "",
        markdown_table(REPORT_COLUMNS, rows),
    ]
    return "\n".join(lines) + "\n"


def read_results(path: str | os.PathLike) -> dict[str, dict[str, str]]:
    """Utterance id -> its row of an evaluation's ``results.csv`` (``reference``, ``greedy``, ``beam``, error counts ...)."""
    with open(path, newline="") as handle:
        return {row["id"]: row for row in csv.DictReader(handle)}


def _results_csv(posteriors: SplitPosteriors, greedy: list[str], beam: list[str] | None) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["id", "kind", "reference", "greedy", "beam", "reference_words", "reference_chars",
         "greedy_word_errors", "greedy_char_errors", "beam_word_errors", "beam_char_errors"]
    )
    for i, utterance in enumerate(posteriors.ids):
        reference = posteriors.texts[i]
        g = utterance_errors(reference, greedy[i])
        b = utterance_errors(reference, beam[i]) if beam is not None else None
        writer.writerow(
            [utterance, "silent" if posteriors.silent[i] else "voiced", reference, greedy[i], beam[i] if b else "",
             g.reference_words, g.reference_characters, g.word_errors, g.char_errors,
             b.word_errors if b else "", b.char_errors if b else ""]
        )
    return buffer.getvalue()


def evaluate_recognition(
    checkpoint: str | os.PathLike,
    split: str = "test",
    cache: str | os.PathLike | None = None,
    lm: str | os.PathLike | None = None,
    alpha: float | None = None,
    beta: float | None = None,
    beam_width: int | None = None,
    out: str | os.PathLike | None = None,
    batch_size: int = 8,
    allow_lm_leak: bool = False,
) -> dict:
    """Evaluate a recognition checkpoint on ``split``; returns the summary it writes.

    ``cache`` defaults to the run's ``data.cache``; ``out`` to
    ``<run dir>/eval_<split>/``. LM settings resolve as in
    :func:`silentspeech.decoding.settings.resolve_lm_settings`; without an LM only greedy decoding is scored
    (``beam`` is null in the summary). Writes ``results.csv``,
    ``summary.json`` and ``report.md`` atomically. The LM must have held
    out the split's sentences (:func:`check_lm_for_split`; ``allow_lm_leak``
    turns the refusal into a warning).
    """
    from silentspeech.tasks import load_checkpoint

    model, config = load_checkpoint(checkpoint, task="recognition")
    cache = Path(cache) if cache is not None else run_path(checkpoint, config, "data.cache", "--cache")
    settings = resolve_lm_settings(checkpoint, lm, alpha, beta, beam_width)
    out = Path(out) if out is not None else evaluation_folder(checkpoint, split)
    if settings is not None:
        check_lm_for_split(settings.lm, cache, split, allow_lm_leak)

    posteriors = split_posteriors(model, cache, split, batch_size)
    greedy = [greedy_decode(lp[None])[0] for lp in posteriors.log_probs]
    beam = None
    if settings is not None:
        decoder = BeamSearchDecoder(
            settings.lm, settings.alpha, settings.beta, settings.beam_width, unigrams=settings.lexicon, unk_offset=settings.unk_offset
        )
        beam = beam_decode(decoder, posteriors.log_probs, progress=f"beam search on {split}")
    summary = {
        "checkpoint": str(checkpoint),
        "split": split,
        "cache": str(cache),
        "utterances": len(posteriors.ids),
        "lm": None if settings is None else _settings_summary(settings),
        "greedy": grouped_rates(posteriors.texts, greedy, posteriors.silent),
        "beam": None if beam is None else grouped_rates(posteriors.texts, beam, posteriors.silent),
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / RESULTS_CSV, _results_csv(posteriors, greedy, beam))
    atomic_write_json(out / "summary.json", summary)
    atomic_write_text(out / "report.md", markdown_report(summary))
    return summary


def _settings_summary(settings: LMSettings) -> dict:
    """LM settings for a summary: the LM as a string, the lexicon as its size (None: lexicon-free)."""
    return {**asdict(settings), "lm": str(settings.lm), "lexicon": None if settings.lexicon is None else len(settings.lexicon)}


@dataclass
class TuningResult:
    """A tuning grid on dev: ``rates[(alpha, beta)]`` and the pair of lowest WER (ties: lower CER, then the first)."""

    rates: dict[tuple[float, float], ErrorRates]
    best: tuple[float, float]
    greedy: ErrorRates
    beam_width: int
    utterances: int
    #: WER/CER per decoder (lexicon choice of :data:`~silentspeech.decoding.LEXICONS`,
    #: unknown-word offset) at the best pair, and the decoder kept.
    decoder_rates: dict[tuple[str, float], ErrorRates] = field(default_factory=dict)
    lexicon: str = "none"
    unk_offset: float = DEFAULT_UNK_OFFSET

    def summary(self) -> str:
        """What tune-lm prints: the grid, the best pair, and the decoder kept with it."""
        best = self.rates[self.best]
        kept = self.decoder_rates[(self.lexicon, self.unk_offset)]
        return "\n".join([
            f"dev WER % (CER %) over {self.utterances} utterances, beam {self.beam_width}:",
            self.table(),
            f"best: alpha {self.best[0]:g}, beta {self.best[1]:g} (WER {100 * best.wer:.1f} %, CER {100 * best.cer:.1f} %)",
            f"kept: lexicon {self.lexicon}, unknown-word offset {self.unk_offset:g} "
            f"(WER {100 * kept.wer:.1f} %, CER {100 * kept.cer:.1f} %)",
        ])

    def table(self) -> str:
        """The grid as text: WER % (CER %) per alpha (rows) and beta (columns); the best pair starred."""
        alphas = sorted({a for a, _ in self.rates})
        betas = sorted({b for _, b in self.rates})
        cells = {
            key: f"{100 * r.wer:.1f} ({100 * r.cer:.1f}){'*' if key == self.best else ''}" for key, r in self.rates.items()
        }
        lines = [text_table(["alpha\\beta", *(f"{b:g}" for b in betas)], [[f"{a:g}", *(cells[(a, b)] for b in betas)] for a in alphas])]
        if len(self.decoder_rates) > 1:
            kept = (self.lexicon, self.unk_offset)
            lines.append(
                "lexicon / unknown-word offset at the best pair: "
                + ", ".join(
                    f"{lexicon} {o:g}: {100 * r.wer:.1f} ({100 * r.cer:.1f}){'*' if (lexicon, o) == kept else ''}"
                    for (lexicon, o), r in self.decoder_rates.items()
                )
            )
        lines.append(f"greedy: WER {100 * self.greedy.wer:.1f} % (CER {100 * self.greedy.cer:.1f} %)")
        return "\n".join(lines)


def tune_lm(
    checkpoint: str | os.PathLike,
    lm: str | os.PathLike,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    betas: Sequence[float] = DEFAULT_BETAS,
    beam_width: int = DEFAULT_TUNING_BEAM,
    cache: str | os.PathLike | None = None,
    split: str = "dev",
    batch_size: int = 8,
    unk_offsets: Sequence[float] = DEFAULT_TUNING_UNK_OFFSETS,
    lexicons: Sequence[str] = LEXICONS,
    allow_lm_leak: bool = False,
) -> TuningResult:
    """Grid-search alpha and beta of LM beam search on ``split`` (dev); write the best pair to ``lm_params.json``.

    The model runs once; its log posteriors are re-decoded for every pair
    (the LM is loaded once and re-weighted with ``reset_params``). Tuning
    on test would make the test figure optimistic, so keep ``split`` dev.
    The pairs are decoded with the first of ``lexicons`` at the first of
    ``unk_offsets``; every lexicon choice (``lm``: the LM's own words,
    ``none``: lexicon-free, ``train``: the words of the cache's train split)
    with every offset is then
    tried at the best pair, and the decoder of lowest WER (then CER) is
    saved with it (the lexicon as its word list). The LM must have held out the split's sentences
    (:func:`check_lm_for_split`; ``allow_lm_leak`` turns the refusal into a warning).
    """
    from silentspeech.tasks import load_checkpoint

    if not alphas or not betas:
        raise ValueError("give at least one alpha and one beta")
    model, config = load_checkpoint(checkpoint, task="recognition")
    cache = Path(cache) if cache is not None else run_path(checkpoint, config, "data.cache", "--cache")
    check_lm_for_split(lm, cache, split, allow_lm_leak)
    posteriors = split_posteriors(model, cache, split, batch_size)
    if not posteriors.ids:
        raise ValueError(f"{cache}: the {split} split holds no utterances to tune on")
    greedy = error_rates(posteriors.texts, [greedy_decode(lp[None])[0] for lp in posteriors.log_probs])
    if not unk_offsets:
        raise ValueError("give at least one unknown-word offset")
    unknown = [name for name in lexicons if name not in LEXICONS]
    if not lexicons or unknown:
        raise ValueError(f"lexicon choices are {', '.join(LEXICONS)}; got {list(lexicons)}")
    word_lists = {"none": lambda: None, "train": lambda: tuple(training_unigrams(cache)), "lm": lambda: tuple(lm_unigrams(lm))}
    words = {name: word_lists[name]() for name in lexicons}
    decoders = {name: BeamSearchDecoder(lm, alphas[0], betas[0], beam_width, unigrams=words[name]) for name in lexicons}
    first = decoders[lexicons[0]]
    first.reset_params(unk_offset=unk_offsets[0])
    rates = {}
    grid = [(float(a), float(b)) for a in alphas for b in betas]
    for alpha, beta in tqdm(grid, desc="alpha/beta grid", unit="pair"):
        first.reset_params(alpha=alpha, beta=beta)
        rates[(alpha, beta)] = error_rates(posteriors.texts, beam_decode(first, posteriors.log_probs))
    best = min(grid, key=lambda key: (rates[key].wer, rates[key].cer))
    decoder_rates = {}
    for name, decoder in decoders.items():
        for offset in (float(o) for o in unk_offsets):
            if (name, offset) == (lexicons[0], float(unk_offsets[0])):
                decoder_rates[(name, offset)] = rates[best]
                continue
            decoder.reset_params(alpha=best[0], beta=best[1], unk_offset=offset)
            decoder_rates[(name, offset)] = error_rates(posteriors.texts, beam_decode(decoder, posteriors.log_probs))
    lexicon, unk_offset = min(decoder_rates, key=lambda key: (decoder_rates[key].wer, decoder_rates[key].cer))
    kept = decoder_rates[(lexicon, unk_offset)]
    save_lm_settings(
        checkpoint,
        LMSettings(Path(lm), best[0], best[1], beam_width, unk_offset, words[lexicon]),
        split=split,
        cache=str(cache),
        utterances=len(posteriors.ids),
        wer=kept.wer,
        cer=kept.cer,
        greedy_wer=greedy.wer,
    )
    return TuningResult(rates, best, greedy, beam_width, len(posteriors.ids), decoder_rates, lexicon, unk_offset)
