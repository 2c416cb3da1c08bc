"""``make quickstart``: the main job on the embedded synthetic corpus.

Stages run in order and each reuses its output when a previous run finished
it, so a second run only does what is missing:

1. ``corpus``: a synthetic corpus in the Gaddy layout, its prompts voiced by
   espeak-ng (:mod:`silentspeech.data.synthetic.speech`);
2. ``cache``: EMG preprocessing and acoustic features (:mod:`silentspeech.data.cache`);
3. ``lm``: a 4-gram language model of the training prompts plus 20,000 more
   sentences of the corpus grammar (the synthetic stand-in for the books the
   real prompts come from), dev/test prompts excluded (:mod:`silentspeech.decoding.ngram`);
4. ``pretrain``: masked reconstruction of the corpus's EMG by the speech
   model's trunk (``recipes/synthetic/speech_pretrain.yaml``), no labels;
5. ``recognition``: EMG -> text, fine-tuned from the pretrained trunk
   (``recipes/synthetic/recognition.yaml``), and with ``compare_scratch``
   beside it the same recipe from scratch (``scratch/recognition``) for the
   report's comparison;
6. ``production``: EMG -> MFCC, the same way (``recipes/synthetic/production.yaml``,
   ``scratch/production``);
7. ``evaluate``: greedy and LM beam-search WER/CER of the recogniser on the
   test split (:mod:`silentspeech.evaluation.recognition`), ``recognition/eval_test/``;
8. ``vocoder`` (not a default stage: :data:`DEFAULT_STAGES`): the pretrained
   universal HiFi-GAN V1 fine-tuned for :data:`VOCODER_MINUTES` on the
   production model's predicted features (``vocoder/v1_finetune.yaml``). At
   this budget (about 40 steps on 2 cores) it made V1 worse to Whisper
   (docs/measurements.md, *The quickstart's vocoder fine-tune*), so it runs
   only when asked for (``--stages vocoder``);
9. ``listen``: Whisper transcribes every silent test utterance in each
   rendering, with bootstrap intervals (:mod:`silentspeech.quickstart.listening`):
   the recordings, V1 and Griffin-Lim from predicted features, the fine-tuned
   V1 when the vocoder stage ran, and the recogniser's beam text spoken by espeak-ng;
10. ``report``: ``report.md`` with figures and audio (:mod:`silentspeech.quickstart.report`).

With ``compare_scratch`` the pretrained and the from-scratch model of a stage train at the same time,
one process each with half the CPU threads: the small models use two threads
poorly, so both together take about 1.4 times as long as one alone instead
of twice (docs/measurements.md, *Two trainings side by side*), and both
train under the same conditions.

A training stage is finished when its run wrote its final file
(``test_metrics.json``; the vocoder's ``history.json``); a killed one
resumes from ``last.ckpt``. Later stages are redone when a stage they read
from did work in this run. Each stage's wall time is kept in
``stage_times.json`` (from the run that did the work) for the report. The
run ends by printing where everything is and how to start the demo.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from silentspeech.atomic import atomic_write_json
from silentspeech.config import bundled_recipe
from silentspeech.evaluation.recognition import RESULTS_CSV
from silentspeech.quickstart.layout import DEFAULT_OUT, QUICKSTART_UTTERANCES, STAGE_TIMES, QuickstartLayout
from silentspeech.quickstart.listening import LISTENING_JSON, listening_markdown, listening_test
from silentspeech.runs import BEST_WEIGHTS, HISTORY_FILE, LAST_CHECKPOINT, TEST_METRICS
from silentspeech.workers import each_result

log = logging.getLogger(__name__)

#: Grammar sentences added to the training prompts for the language model.
GRAMMAR_SENTENCES = 20_000
#: Budget of the optional vocoder fine-tune (wall clock), when the stage is asked for.
VOCODER_MINUTES = 3.0


@dataclass
class QuickstartResult:
    """Paths the quickstart produced by stage, this run's wall time per stage (s), and the stages it reused."""

    out: Path
    paths: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    reused: set[str] = field(default_factory=set)

    def summary(self) -> str:
        lines = [f"quickstart stages in {self.out} (this run):"]
        for stage, path in self.paths.items():
            note = "reused" if stage in self.reused else "done"
            lines.append(f"  {stage:<12} {self.seconds.get(stage, 0.0):6.0f} s  {note:<6}  {path}")
        lines.append(f"  total        {sum(self.seconds.values()):6.0f} s")
        return "\n".join(lines)


def demo_command(layout: QuickstartLayout) -> str:
    """How to start the demo on these outputs (plain ``make demo`` when they are in the default folder)."""
    if layout.out.resolve() == DEFAULT_OUT.resolve():
        return "make demo   (or: .venv/bin/silentspeech demo)"
    return f"make demo RUNS={layout.out}   (or: .venv/bin/silentspeech demo --quickstart {layout.out})"


def closing_message(layout: QuickstartLayout, stage_seconds: Mapping[str, float] | None = None) -> str:
    """Where everything is, the wall time the stages took when they did their work, and how to start the demo."""
    rows = [
        ("report", f"{layout.report}  (figures beside it)"),
        ("audio", f"{layout.audio}/  (EMG -> production model -> vocoder, Griffin-Lim, and the recogniser's text -> espeak-ng)"),
        ("recognition", f"{layout.recognition}  (EMG -> text; test evaluation in {layout.evaluation})"),
        ("production", f"{layout.production}  (EMG -> 80 MFCC per frame)"),
        ("listening", f"{layout.listening}  (Whisper's transcripts of the silent test split in each rendering)"),
        ("language model", f"{layout.lm}"),
        ("corpus", f"{layout.corpus}  (synthetic, Gaddy layout; preprocessed in {layout.cache})"),
    ]
    if layout.vocoder_generator.is_file():
        rows.insert(4, ("vocoder", f"{layout.vocoder_generator}  (universal HiFi-GAN V1 fine-tuned on the production model's predictions)"))
    lines = ["", "Everything is in place:"]
    lines += [f"  {name:<15} {where}" for name, where in rows]
    if stage_seconds:
        total = sum(stage_seconds.values())
        lines += ["", f"Wall time of the stages when they did their work: {total:.0f} s ({total / 60:.1f} min; {layout.out / STAGE_TIMES})"]
    lines += ["", f"Start the demo: {demo_command(layout)}"]
    return "\n".join(lines)


def _finished_run(run_dir: Path) -> bool:
    """A training run that ended (it writes the test metrics last)."""
    return (run_dir / BEST_WEIGHTS).is_file() and (run_dir / TEST_METRICS).is_file()


@dataclass
class StageContext:
    """What every stage reads: the layout, the run's settings, and the stages that did work in this run."""

    layout: QuickstartLayout
    utterances: int
    seed: int
    workers: int
    overrides: Mapping[str, Sequence[str]]
    #: Train recognition and production from scratch too, for the report's comparison.
    compare_scratch: bool = False
    redone: set[str] = field(default_factory=set)


def make_corpus(ctx: StageContext) -> bool:
    """Generate the synthetic corpus (reused file by file when it is there)."""
    from silentspeech.data.gaddy import read_corpus
    from silentspeech.data.synthetic.speech import generate_corpus

    summary = generate_corpus(ctx.layout.corpus, utterances=ctx.utterances, seed=ctx.seed, workers=ctx.workers)
    print(summary)
    print(read_corpus(ctx.layout.corpus).summary())
    return summary.written > 0


def make_cache(ctx: StageContext) -> bool:
    """Preprocess the corpus into the cache."""
    from silentspeech.data.cache import prepare_cache

    report = prepare_cache(ctx.layout.corpus, ctx.layout.cache, workers=ctx.workers)
    print(report.summary())
    return report.written > 0


def make_lm(ctx: StageContext) -> bool:
    """A 4-gram LM of the training prompts plus grammar sentences, dev/test prompts excluded."""
    layout = ctx.layout
    if layout.lm.is_file():
        print(f"reusing {layout.lm}")
        return False
    from silentspeech.atomic import atomic_write_text
    from silentspeech.data.synthetic.language import sentences
    from silentspeech.decoding.ngram import build_lm

    # Another seed than the corpus: the text is the grammar's, not the prompts'.
    book = layout.lm.parent / "grammar_sentences.txt"
    atomic_write_text(book, "\n".join(sentences(GRAMMAR_SENTENCES, seed=ctx.seed + 1)) + "\n")
    report = build_lm([layout.corpus, book], layout.lm, order=4, one_per_line=True)
    print(
        f"{report.order}-gram LM of {report.sentences} sentences ({report.held_out} dev/test prompts held out, "
        f"{report.excluded} grammar sentences dropped as held out, {report.kept_in_held_out} kept): {report.arpa}"
    )
    return True


def _fit_recipe(recipe: str, run_dir: Path, cache: Path, corpus: Path, overrides: Sequence[str]) -> None:
    """Train ``recipes/synthetic/<recipe>.yaml`` into ``run_dir`` on the quickstart's cache (a killed run resumes)."""
    from silentspeech.tasks import train_recipe

    train_recipe(
        bundled_recipe(f"recipes/synthetic/{recipe}.yaml"),
        [f"out={run_dir}", f"data.cache={cache}", f"data.root={corpus}", *overrides],
        resume=(run_dir / LAST_CHECKPOINT).is_file(),
    )


def _reused(run_dir: Path) -> bool:
    """True (and says so) when ``run_dir`` holds a finished training run."""
    if _finished_run(run_dir):
        print(f"reusing the trained model in {run_dir}")
        return True
    return False


def train_side_by_side(task: str, runs: Sequence[tuple[Path, Sequence[str]]], cache: Path, corpus: Path, workers: int = 2) -> bool:
    """Train ``recipes/synthetic/<task>.yaml`` into each ``(run_dir, overrides)`` on a quickstart's corpus and cache.

    Finished runs are reused and a killed one resumes. When two or more
    need training and ``workers`` >= 2 they train at once, one worker
    process each with an equal share of torch's threads, only the first
    with a progress bar; otherwise one after the other in this process.
    Returns whether anything was trained.
    """
    pending = [(run_dir, list(overrides)) for run_dir, overrides in runs if not _reused(run_dir)]
    if len(pending) == 1 or workers < 2:
        for run_dir, overrides in pending:
            _fit_recipe(task, run_dir, cache, corpus, overrides)
    elif pending:
        import torch

        threads = max(1, torch.get_num_threads() // len(pending))
        print(f"training {len(pending)} {task} runs side by side, {threads} thread(s) each "
              f"(progress: {pending[0][0]}; the others log to their csv/ folders)", flush=True)
        calls = [
            (task, run_dir, cache, corpus, [*overrides, f"trainer.cpu_threads={threads}", *([] if k == 0 else ["trainer.progress_bar=false"])])
            for k, (run_dir, overrides) in enumerate(pending)
        ]
        for _ in each_result(_fit_recipe, calls, workers=len(calls)):
            pass
    return bool(pending)


def pretrain(ctx: StageContext) -> bool:
    """Masked-reconstruction pretraining of the speech model's trunk on the corpus's EMG."""
    runs = [(ctx.layout.pretrain, ctx.overrides.get("pretrain", ()))]
    return train_side_by_side("speech_pretrain", runs, ctx.layout.cache, ctx.layout.corpus)


def _init_from(ctx: StageContext) -> list[str]:
    """``model.init_from=<pretrain run>`` when the pretraining stage has finished, else nothing (from scratch)."""
    return [f"model.init_from={ctx.layout.pretrain}"] if _finished_run(ctx.layout.pretrain) else []


def train_stage(task: str) -> Callable[[StageContext], bool]:
    """The stage that trains ``recipes/synthetic/<task>.yaml`` from the pretrained trunk and, beside it, from scratch.

    The first goes into the layout's folder of that name, the second into
    ``scratch/<task>`` (skipped when ``ctx.compare_scratch`` is false); both
    at once when ``ctx.workers`` >= 2 (:func:`train_side_by_side`).
    """

    def work(ctx: StageContext) -> bool:
        runs = [(getattr(ctx.layout, task), [*_init_from(ctx), *ctx.overrides.get(task, ())])]
        if ctx.compare_scratch:
            runs.append((ctx.layout.scratch / task, list(ctx.overrides.get(task, ()))))
        return train_side_by_side(task, runs, ctx.layout.cache, ctx.layout.corpus, ctx.workers)

    work.__doc__ = f"Train recipes/synthetic/{task}.yaml from the pretrained trunk and from scratch (a killed run resumes)."
    return work


def evaluate(ctx: StageContext) -> bool:
    """Tune beam search on the dev split (``tune-lm``), then greedy and beam-search WER/CER of the recogniser on test (and greedy of the scratch one)."""
    layout = ctx.layout
    if (layout.evaluation / "summary.json").is_file() and not ctx.redone & {"cache", "lm", "recognition"}:
        print(f"reusing the evaluation in {layout.evaluation}")
        return False
    from silentspeech.evaluation.recognition import evaluate_recognition, markdown_report, tune_lm

    print(tune_lm(layout.recognition, layout.lm, cache=layout.cache, split="dev").summary())
    summary = evaluate_recognition(layout.recognition, split="test", cache=layout.cache, lm=layout.lm, out=layout.evaluation)
    print(markdown_report(summary))
    scratch = layout.scratch / "recognition"
    if _finished_run(scratch):  # greedy only, utterance by utterance: the report's paired comparison
        evaluate_recognition(scratch, split="test", cache=layout.cache, out=layout.scratch_evaluation)
    return True


def vocoder(ctx: StageContext) -> bool:
    """Fine-tune the universal V1 for :data:`VOCODER_MINUTES` on the production model's predicted features."""
    layout = ctx.layout
    if (layout.vocoder / HISTORY_FILE).is_file() and not ctx.redone & {"cache", "production"}:
        print(f"reusing the fine-tuned vocoder in {layout.vocoder}")
        return False
    from silentspeech.vocoder.train import load_vocoder_recipe, train_vocoder

    if (layout.vocoder / HISTORY_FILE).is_file():  # the production model changed: start the fine-tune again
        import shutil

        shutil.rmtree(layout.vocoder)
    recipe = load_vocoder_recipe(
        bundled_recipe("vocoder/v1_finetune.yaml"),
        [
            f"cache={layout.cache}", f"finetune_on={layout.production}", f"out_dir={layout.vocoder}",
            f"max_minutes={VOCODER_MINUTES:g}", *ctx.overrides.get("vocoder", ()),
        ],
    )
    train_vocoder(recipe, resume=(layout.vocoder / LAST_CHECKPOINT).is_file())
    return True


def listen(ctx: StageContext) -> bool:
    """Whisper on every silent test utterance: recordings, true features -> V1, EMG through V1, Griffin-Lim (and the
    fine-tuned V1 when the vocoder stage ran), and the recogniser's beam text through espeak-ng."""
    layout = ctx.layout
    table = layout.listening / LISTENING_JSON
    if table.is_file() and not ctx.redone & {"cache", "production", "evaluate", "vocoder"}:
        print(f"reusing the listening test in {layout.listening}")
        return False
    finetuned = layout.vocoder if layout.vocoder_generator.is_file() else None
    rows = listening_test(layout.cache, layout.production, layout.listening, finetuned=finetuned, transcripts=recogniser_texts(layout))
    print(listening_markdown(rows))
    return True


def recogniser_texts(layout: QuickstartLayout) -> dict[str, str] | None:
    """Utterance id -> the recogniser's test transcript from the evaluate stage (beam search, else greedy); None before it ran."""
    from silentspeech.evaluation.recognition import read_results

    if not (layout.evaluation / RESULTS_CSV).is_file():
        return None
    decoder = "beam" if json.loads((layout.evaluation / "summary.json").read_text()).get("beam") else "greedy"
    return {utterance: row[decoder] for utterance, row in read_results(layout.evaluation / RESULTS_CSV).items()}


def report(ctx: StageContext) -> bool:
    """``report.md`` with figures and audio, redone when any stage did work."""
    layout = ctx.layout
    if layout.report.is_file() and not ctx.redone:
        print(f"reusing {layout.report}")
        return False
    from silentspeech.quickstart.report import write_quickstart_report

    write_quickstart_report(layout)
    return True


#: Stage name -> (the folder or file it makes, the work; False when it reused earlier output), in running order.
STAGE_WORK: dict[str, tuple[Callable[[QuickstartLayout], Path], Callable[[StageContext], bool]]] = {
    "corpus": (lambda layout: layout.corpus, make_corpus),
    "cache": (lambda layout: layout.cache, make_cache),
    "lm": (lambda layout: layout.lm, make_lm),
    "pretrain": (lambda layout: layout.pretrain, pretrain),
    "recognition": (lambda layout: layout.recognition, train_stage("recognition")),
    "production": (lambda layout: layout.production, train_stage("production")),
    "evaluate": (lambda layout: layout.evaluation, evaluate),
    "vocoder": (lambda layout: layout.vocoder, vocoder),
    "listen": (lambda layout: layout.listening, listen),
    "report": (lambda layout: layout.report, report),
}
STAGES = tuple(STAGE_WORK)
#: What ``make quickstart`` runs: every stage but the vocoder fine-tune, which at the quickstart's
#: budget made V1 worse (docs/measurements.md); ``--stages vocoder`` (or ``all``) still runs it.
DEFAULT_STAGES = tuple(stage for stage in STAGES if stage != "vocoder")

#: Stages whose recipes take ``key=value`` overrides.
OVERRIDABLE = ("pretrain", "recognition", "production", "vocoder")


def run_quickstart(
    out: str | Path = DEFAULT_OUT,
    utterances: int = QUICKSTART_UTTERANCES,
    seed: int = 0,
    stages: Sequence[str] = DEFAULT_STAGES,
    workers: int = 2,
    overrides: Mapping[str, Sequence[str]] | None = None,
    compare_scratch: bool = False,
) -> QuickstartResult:
    """Run the quickstart ``stages`` into ``out``; finished stages are reused.

    Args:
        out: output folder (layout: :class:`QuickstartLayout`).
        utterances: spoken utterances of the synthetic corpus.
        seed: corpus seed.
        stages: a subset of :data:`STAGES`, run in the order of :data:`STAGES` (default :data:`DEFAULT_STAGES`).
        workers: worker processes for preprocessing and for training the
            pretrained and the from-scratch model side by side (below 2: one
            after the other).
        overrides: extra ``key=value`` recipe overrides for the stages in
            :data:`OVERRIDABLE` (e.g. ``{"vocoder": ["max_minutes=10"]}``).
        compare_scratch: also train recognition and production from scratch
            (``scratch/``, beside the pretrained ones) for the report's
            pretrained-against-scratch table. Off by default: the pair costs
            about 3 minutes on 2 cores, which the 20-minute budget no longer
            holds, and at the quickstart's full labels it showed no difference
            (docs/measurements.md; ``bench/low_label.py`` measures where labels are few).
    """
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown quickstart stage(s) {sorted(unknown)}; stages are {', '.join(STAGES)}")
    unknown = set(overrides or {}) - set(OVERRIDABLE)
    if unknown:
        raise ValueError(f"overrides for {sorted(unknown)}: only the {', '.join(OVERRIDABLE[:-1])} and {OVERRIDABLE[-1]} stages take recipe overrides")
    layout = QuickstartLayout(Path(out))
    ctx = StageContext(layout, utterances, seed, workers, dict(overrides or {}), compare_scratch)
    result = QuickstartResult(out=layout.out)
    times = layout.read_stage_times()
    for name, (where, work) in STAGE_WORK.items():
        if name not in stages:
            continue
        path = where(layout)
        print(f"== {name} -> {path}", flush=True)
        start = time.perf_counter()
        did_work = work(ctx)
        seconds = time.perf_counter() - start
        result.paths[name], result.seconds[name] = path, seconds
        if did_work:
            ctx.redone.add(name)
            times[name] = seconds
            atomic_write_json(layout.stage_times, times)
        else:
            result.reused.add(name)
    print(result.summary())
    if "report" in stages:
        print(closing_message(layout, times))
    return result
