"""Where each quickstart output lives: one place for the paths the stages, the report and the demo share."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from silentspeech.runs import GENERATOR_FILE

#: Default output folder, where ``silentspeech demo`` looks for the models.
DEFAULT_OUT = Path("runs/quickstart")
#: Spoken utterances of the quickstart corpus. At the same number of training steps more sentences
#: generalise better: the recogniser memorises fewer of them (docs/measurements.md, *Corpus size* and
#: *How learnable the corpus is*). Rendering them in parallel keeps the whole quickstart under 20 minutes.
QUICKSTART_UTTERANCES = 1200
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
    def pretrain(self) -> Path:
        """Speech pretraining run (masked reconstruction of the corpus's EMG) that recognition and production start from."""
        return self.out / "pretrain"

    @property
    def scratch(self) -> Path:
        """Recognition and production trained again from scratch, at the same budget, for the comparison in the report."""
        return self.out / "scratch"

    @property
    def scratch_evaluation(self) -> Path:
        """The from-scratch recogniser's greedy test-split evaluation (``results.csv``), for the report's paired comparison."""
        return self.scratch / "recognition" / "eval_test"

    @property
    def seeds(self) -> Path:
        """``bench/pretraining.py``'s repeats of the pretrained-vs-scratch comparison with other seeds (``seed<N>/``), shown by the report."""
        return self.out / "seeds"

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
        """The pretrained universal V1 fine-tuned on the production model's predictions: ``generator.safetensors``, ``config.yaml``, ..."""
        return self.out / "vocoder"

    @property
    def listening(self) -> Path:
        """Whisper's transcripts of the test split in five renderings: ``listening.json`` and one folder per vocoder."""
        return self.out / "listening"

    @property
    def vocoder_generator(self) -> Path:
        return self.vocoder / GENERATOR_FILE

    @property
    def stage_times(self) -> Path:
        return self.out / STAGE_TIMES

    def read_stage_times(self) -> dict[str, float]:
        """Stage -> wall time (s) of the run that did its work, from :attr:`stage_times`; empty before any stage ran."""
        return json.loads(self.stage_times.read_text()) if self.stage_times.is_file() else {}

    @property
    def report(self) -> Path:
        return self.out / "report.md"

    @property
    def audio(self) -> Path:
        """WAVs of test utterances synthesised from EMG, linked from the report."""
        return self.out / "audio"
