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
   test split (:mod:`silentspeech.evaluation`), ``recognition/eval_test/report.md``.

It ends by printing where everything is.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

#: Recipes folder of the checkout (the package is installed editable from it).
RECIPES = Path(__file__).resolve().parents[1] / "recipes"
#: Grammar sentences added to the training prompts for the language model.
GRAMMAR_SENTENCES = 20_000
STAGES = ("corpus", "cache", "lm", "recognition", "production", "evaluate")


@dataclass
class QuickstartResult:
    """Paths the quickstart produced, by stage, and the wall time of each stage (s)."""

    out: Path
    paths: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"quickstart outputs in {self.out}:"]
        for stage, path in self.paths.items():
            lines.append(f"  {stage:<12} {path}  ({self.seconds.get(stage, 0.0):.0f} s)")
        lines.append(f"  total {sum(self.seconds.values()):.0f} s")
        return "\n".join(lines)


def _trained(run_dir: Path) -> bool:
    return (run_dir / "best.safetensors").is_file() and (run_dir / "config.yaml").is_file()


def run_quickstart(
    out: str | Path = "runs/quickstart",
    utterances: int = 300,
    seed: int = 0,
    stages: tuple[str, ...] = STAGES,
    workers: int = 2,
) -> QuickstartResult:
    """Run the quickstart ``stages`` into ``out``; finished stages are reused.

    Args:
        out: output folder (``corpus/``, ``cache/``, ``lm/``, ``recognition/``, ``production/``).
        utterances: spoken utterances of the synthetic corpus.
        seed: corpus seed.
        stages: a subset of :data:`STAGES`, run in the order of :data:`STAGES`.
        workers: worker processes for preprocessing.
    """
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown quickstart stage(s) {sorted(unknown)}; stages are {', '.join(STAGES)}")
    out = Path(out)
    result = QuickstartResult(out=out)
    corpus, cache = out / "corpus", out / "cache"
    lm_path = out / "lm" / "synthetic_4gram.arpa"

    def stage(name: str, path: Path, work) -> None:
        if name not in stages:
            return
        start = time.perf_counter()
        print(f"== {name} -> {path}", flush=True)
        work()
        result.paths[name] = path
        result.seconds[name] = time.perf_counter() - start

    def make_corpus() -> None:
        from silentspeech.data.gaddy import read_corpus
        from silentspeech.data.synthetic import generate_corpus

        print(generate_corpus(corpus, utterances=utterances, seed=seed))
        print(read_corpus(corpus).summary())

    def make_cache() -> None:
        from silentspeech.data.cache import prepare_cache

        print(prepare_cache(corpus, cache, workers=workers).summary())

    def make_lm() -> None:
        if lm_path.is_file():
            print(f"reusing {lm_path}")
            return
        from silentspeech.atomic import atomic_write_text
        from silentspeech.data.vocabulary import sentences
        from silentspeech.lm import build_lm

        # Another seed than the corpus: the text is the grammar's, not the prompts'.
        book = out / "lm" / "grammar_sentences.txt"
        atomic_write_text(book, "\n".join(sentences(GRAMMAR_SENTENCES, seed=seed + 1)) + "\n")
        report = build_lm([corpus, book], lm_path, order=4, one_per_line=True)
        print(f"{report.order}-gram LM of {report.sentences} sentences ({report.excluded} dev/test excluded): {report.arpa}")

    def train(recipe: str, run_dir: Path):
        def work() -> None:
            if _trained(run_dir):
                print(f"reusing the trained model in {run_dir}")
                return
            from silentspeech.tasks import train_recipe

            resume = (run_dir / "last.ckpt").is_file()
            train_recipe(RECIPES / "synthetic" / recipe, [f"out={run_dir}", f"data.cache={cache}", f"data.root={corpus}"], resume=resume)

        return work

    stage("corpus", corpus, make_corpus)
    stage("cache", cache, make_cache)
    stage("lm", lm_path, make_lm)
    stage("recognition", out / "recognition", train("recognition.yaml", out / "recognition"))
    stage("production", out / "production", train("production.yaml", out / "production"))

    def evaluate() -> None:
        from silentspeech.evaluation import evaluate_recognition, markdown_report

        print(markdown_report(evaluate_recognition(out / "recognition", split="test", cache=cache, lm=lm_path)))

    stage("evaluate", out / "recognition" / "eval_test" / "report.md", evaluate)
    print(result.summary())
    return result
