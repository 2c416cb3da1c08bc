"""``make quickstart``: the main job on the embedded synthetic corpus.

Stages run in order and each reuses its output when a previous run finished
it, so a second run only does what is missing:

1. ``corpus``: a synthetic corpus in the Gaddy layout (:mod:`silentspeech.data.synthetic`);
2. ``cache``: EMG preprocessing and acoustic features (:mod:`silentspeech.data.cache`);
3. ``lm``: a 4-gram language model of the training prompts plus 20,000 more
   sentences of the corpus grammar (the synthetic stand-in for the books the
   real prompts come from), dev/test prompts excluded (:mod:`silentspeech.lm`);
4. ``recognition``: EMG -> text training with ``recipes/synthetic/recognition.yaml``;
5. ``production``: EMG -> MFCC training with ``recipes/synthetic/production.yaml``;
6. ``evaluate``: greedy and LM beam-search WER/CER of the recogniser on the
   test split (:mod:`silentspeech.evaluation`), ``recognition/eval_test/``;
7. ``vocoder``: the small HiFi-GAN (``vocoder/small.yaml``) trained for
   :data:`VOCODER_MINUTES` on the voiced training audio, then compared with
   Griffin-Lim on the test audio from true features (``vocoder/compare/``);
8. ``report``: ``report.md`` with figures and audio (:mod:`silentspeech.report`).

A training stage is finished when its run wrote its final file
(``test_metrics.json``; the vocoder's ``history.json``); a killed one
resumes from ``last.ckpt``. The evaluation and the report are redone when a
stage they read from did work in this run. Each stage's wall time is kept
in ``stage_times.json`` (from the run that did the work) for the report.
The run ends by printing where everything is and how to start the demo.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

log = logging.getLogger(__name__)

#: Checkout root (the package is installed editable from it): recipes/ and vocoder/ configs.
REPO = Path(__file__).resolve().parents[1]
#: Default output folder, where ``silentspeech demo`` looks for the models.
DEFAULT_OUT = Path("runs/quickstart")
#: Grammar sentences added to the training prompts for the language model.
GRAMMAR_SENTENCES = 20_000
#: Vocoder training budget: with the other stages (about 11 minutes on 2 busy
#: CPU cores) the quickstart takes about 15 minutes.
VOCODER_MINUTES = 3.0
STAGES = ("corpus", "cache", "lm", "recognition", "production", "evaluate", "vocoder", "report")
#: Stage -> wall time (s) of the run that did its work.
STAGE_TIMES = "stage_times.json"


@dataclass(frozen=True)
class QuickstartLayout:
    """Where each quickstart output lives under ``out`` (the demo reads the same paths)."""

    out: Path

    @property
    def corpus(self) -> Path:
        return self.out / "corpus"

    @property
    def cache(self) -> Path:
        return self.out / "cache"

    @property
    def lm(self) -> Path:
        return self.out / "lm" / "synthetic_4gram.arpa"

    @property
    def recognition(self) -> Path:
        return self.out / "recognition"

    @property
    def production(self) -> Path:
        return self.out / "production"

    @property
    def evaluation(self) -> Path:
        """The recogniser's test-split evaluation (``summary.json``, ``results.csv``, ``report.md``)."""
        return self.recognition / "eval_test"

    @property
    def vocoder(self) -> Path:
        """Vocoder run folder: ``generator.safetensors`` (what ``load_vocoder`` reads), ``config.yaml``, ..."""
        return self.out / "vocoder"

    @property
    def vocoder_comparison(self) -> Path:
        """Vocoder vs Griffin-Lim on the test audio: ``resynthesis.json``, ``resynthesis.png``, example WAVs."""
        return self.vocoder / "compare"

    @property
    def report(self) -> Path:
        return self.out / "report.md"

    @property
    def audio(self) -> Path:
        """WAVs of test utterances synthesised from EMG, linked from the report."""
        return self.out / "audio"


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
        ("audio", f"{layout.audio}/  (EMG -> production model -> vocoder, and Griffin-Lim)"),
        ("recognition", f"{layout.recognition}  (EMG -> text; test evaluation in {layout.evaluation})"),
        ("production", f"{layout.production}  (EMG -> 80 MFCC per frame)"),
        ("vocoder", f"{layout.vocoder}/generator.safetensors  (MFCC -> 22050 Hz audio; vs Griffin-Lim in {layout.vocoder_comparison})"),
        ("language model", f"{layout.lm}"),
        ("corpus", f"{layout.corpus}  (synthetic, Gaddy layout; preprocessed in {layout.cache})"),
    ]
    lines = ["", "Everything is in place:"]
    lines += [f"  {name:<15} {where}" for name, where in rows]
    if stage_seconds:
        total = sum(stage_seconds.values())
        lines += ["", f"Wall time of the stages when they did their work: {total:.0f} s ({total / 60:.1f} min; {layout.out / STAGE_TIMES})"]
    lines += ["", f"Start the demo: {demo_command(layout)}"]
    return "\n".join(lines)


def _finished_run(run_dir: Path) -> bool:
    """A training run that ended (it writes the test metrics last)."""
    from silentspeech.tasks.engine import BEST_WEIGHTS, TEST_METRICS

    return (run_dir / BEST_WEIGHTS).is_file() and (run_dir / TEST_METRICS).is_file()


def run_quickstart(
    out: str | Path = DEFAULT_OUT,
    utterances: int = 300,
    seed: int = 0,
    stages: Sequence[str] = STAGES,
    workers: int = 2,
    overrides: Mapping[str, Sequence[str]] | None = None,
) -> QuickstartResult:
    """Run the quickstart ``stages`` into ``out``; finished stages are reused.

    Args:
        out: output folder (layout: :class:`QuickstartLayout`).
        utterances: spoken utterances of the synthetic corpus.
        seed: corpus seed.
        stages: a subset of :data:`STAGES`, run in the order of :data:`STAGES`.
        workers: worker processes for preprocessing.
        overrides: extra ``key=value`` recipe overrides for the ``recognition``,
            ``production`` and ``vocoder`` stages (e.g. ``max_minutes=10``).
    """
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown quickstart stage(s) {sorted(unknown)}; stages are {', '.join(STAGES)}")
    overrides = dict(overrides or {})
    unknown = set(overrides) - {"recognition", "production", "vocoder"}
    if unknown:
        raise ValueError(f"overrides for {sorted(unknown)}: only the recognition, production and vocoder stages take recipe overrides")
    from silentspeech.atomic import atomic_write_json

    layout = QuickstartLayout(Path(out))
    result = QuickstartResult(out=layout.out)
    times_path = layout.out / STAGE_TIMES
    times: dict[str, float] = json.loads(times_path.read_text()) if times_path.is_file() else {}
    redone: set[str] = set()

    def stage(name: str, path: Path, work: Callable[[], bool]) -> None:
        """Run ``work`` (returns False when it reused earlier output) and time it."""
        if name not in stages:
            return
        start = time.perf_counter()
        print(f"== {name} -> {path}", flush=True)
        did_work = work()
        seconds = time.perf_counter() - start
        result.paths[name], result.seconds[name] = path, seconds
        if did_work:
            redone.add(name)
            times[name] = seconds
            atomic_write_json(times_path, times)
        else:
            result.reused.add(name)

    def make_corpus() -> bool:
        from silentspeech.data.gaddy import read_corpus
        from silentspeech.data.synthetic import generate_corpus

        summary = generate_corpus(layout.corpus, utterances=utterances, seed=seed)
        print(summary)
        print(read_corpus(layout.corpus).summary())
        return summary.written > 0

    def make_cache() -> bool:
        from silentspeech.data.cache import prepare_cache

        report = prepare_cache(layout.corpus, layout.cache, workers=workers)
        print(report.summary())
        return report.written > 0

    def make_lm() -> bool:
        if layout.lm.is_file():
            print(f"reusing {layout.lm}")
            return False
        from silentspeech.atomic import atomic_write_text
        from silentspeech.data.vocabulary import sentences
        from silentspeech.lm import build_lm

        # Another seed than the corpus: the text is the grammar's, not the prompts'.
        book = layout.lm.parent / "grammar_sentences.txt"
        atomic_write_text(book, "\n".join(sentences(GRAMMAR_SENTENCES, seed=seed + 1)) + "\n")
        report = build_lm([layout.corpus, book], layout.lm, order=4, one_per_line=True)
        print(f"{report.order}-gram LM of {report.sentences} sentences ({report.excluded} dev/test excluded): {report.arpa}")
        return True

    def train(task: str, run_dir: Path) -> Callable[[], bool]:
        def work() -> bool:
            if _finished_run(run_dir):
                print(f"reusing the trained model in {run_dir}")
                return False
            from silentspeech.tasks import train_recipe

            resume = (run_dir / "last.ckpt").is_file()
            train_recipe(
                REPO / "recipes" / "synthetic" / f"{task}.yaml",
                [f"out={run_dir}", f"data.cache={layout.cache}", f"data.root={layout.corpus}", *overrides.get(task, ())],
                resume=resume,
            )
            return True

        return work

    def evaluate() -> bool:
        summary_path = layout.evaluation / "summary.json"
        if summary_path.is_file() and not redone & {"cache", "lm", "recognition"}:
            print(f"reusing the evaluation in {layout.evaluation}")
            return False
        from silentspeech.evaluation import evaluate_recognition, markdown_report

        summary = evaluate_recognition(layout.recognition, split="test", cache=layout.cache, lm=layout.lm, out=layout.evaluation)
        print(markdown_report(summary))
        return True

    def vocoder() -> bool:
        comparison = layout.vocoder_comparison / "resynthesis.json"
        if comparison.is_file() and not redone & {"cache"}:
            print(f"reusing the trained vocoder in {layout.vocoder}")
            return False
        from silentspeech.vocoder import compare_resynthesis, load_vocoder_recipe, train_vocoder

        # history.json is written when a training run ends; a killed run resumes from last.ckpt.
        if not (layout.vocoder / "history.json").is_file():
            recipe = load_vocoder_recipe(
                REPO / "vocoder" / "small.yaml",
                [f"cache={layout.cache}", f"out_dir={layout.vocoder}", f"max_minutes={VOCODER_MINUTES:g}", *overrides.get("vocoder", ())],
            )
            train_vocoder(recipe, resume=(layout.vocoder / "last.ckpt").is_file())
        # The corpus is synthetic, so the same speech can be rendered again: the score a perfect vocoder would get.
        for scores in compare_resynthesis(layout.cache, layout.vocoder, split="test", out_dir=layout.vocoder_comparison, second_rendition=True):
            print(
                f"{scores.method:<16} on {scores.utterances} test utterances (true features): "
                f"LSD {scores.log_spectral_distance_db:.2f} dB, MCD {scores.mel_cepstral_distortion_db:.2f} dB"
            )
        return True

    def report() -> bool:
        if layout.report.is_file() and not redone:
            print(f"reusing {layout.report}")
            return False
        from silentspeech.report import write_quickstart_report

        write_quickstart_report(layout, times)
        return True

    stage("corpus", layout.corpus, make_corpus)
    stage("cache", layout.cache, make_cache)
    stage("lm", layout.lm, make_lm)
    stage("recognition", layout.recognition, train("recognition", layout.recognition))
    stage("production", layout.production, train("production", layout.production))
    stage("evaluate", layout.evaluation, evaluate)
    stage("vocoder", layout.vocoder, vocoder)
    stage("report", layout.report, report)
    print(result.summary())
    if "report" in stages:
        print(closing_message(layout, times))
    return result
