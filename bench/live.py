"""Live silent speech: chunk -> text and chunk -> voice latency from BrainFlow's playback board at real time.

Test utterances of a quickstart output (default ``runs/quickstart`` or
``$SILENTSPEECH_QUICKSTART``: its corpus, recognition and production models
and 4-gram LM, with the pretrained universal HiFi-GAN V1), joined into one stream, are written in
BrainFlow's file format (Cyton WiFi layout, 1000 Hz) and replayed by
BrainFlow's playback-file board at their recording speed through
:class:`~silentspeech.inference.live.LiveSession` in 200 ms chunks: the
streaming recogniser and, for each settled stretch, the production model and
the vocoder, all in this process. Prints the latency from a chunk's arrival
to its text (median, p95, max over all chunks) and from the arrival of the
chunk after which a stretch settled to that stretch's speech (over all
pieces but the last, which the stream's end voices; voicing runs on a thread
of its own), the seconds of speech, the samples the board dropped, and the
process's average CPU use while streaming. Beam search uses the LM settings
tune-lm saved beside the recogniser, as ``silentspeech live`` does.

Without a quickstart output the models are the full TinyMyo speech model
with random weights (the network's cost does not depend on them), the
pretrained universal HiFi-GAN V1 and an LM of grammar sentences, on the EMG
of a small synthetic corpus generated on the spot; the notes say so. An
untrained recogniser's flat posteriors would make beam search pathologically
slow and firm no words, so the random network is still run on every chunk
(its cost is paid) but answers with noisy posteriors spelling each
utterance's prompt over its EMG (:class:`SpelledGraph`, as
``bench/emg_to_text.py`` decodes without a trained model).

    .venv/bin/python bench/live.py --threads 2            # about a minute
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from silentspeech.acquisition.sources import open_source, write_playback_file
from silentspeech.benchmark import QUICKSTART, bench_arguments, grammar_lm, print_report, set_threads, spelled_posteriors
from silentspeech.data.gaddy import read_corpus
from silentspeech.decoding.settings import resolve_lm_settings
from silentspeech.features import AUDIO_RATE, FRAME_RATE
from silentspeech.inference.live import LiveSession, StreamingVoice, rechunk
from silentspeech.inference.pipeline import SilentSpeechPipeline
from silentspeech.inference.streaming import StreamingRecognizer
from silentspeech.quickstart.layout import QuickstartLayout
from silentspeech.text import BLANK, normalize_text

RAW_RATE = 1000.0  # Hz: the corpus's and the playback board's (Cyton WiFi master)


class SpelledGraph:
    """A recogniser graph run for its cost, answering with ``log_probs`` (stream frames, 38) from the current segment's start on."""

    def __init__(self, graph, log_probs: np.ndarray, recognizer: StreamingRecognizer) -> None:
        self.graph, self.log_probs, self.recognizer = graph, log_probs, recognizer

    def __call__(self, emg: torch.Tensor) -> dict[str, torch.Tensor]:
        frames = self.graph(emg)["ctc_logits"].shape[1]
        first = round(self.recognizer.segment.start / RAW_RATE * FRAME_RATE)
        answer = self.log_probs[first : first + frames]
        if len(answer) < frames:  # past the spelled stream: blank
            tail = np.full((frames - len(answer), self.log_probs.shape[1]), -30.0, np.float32)
            tail[:, BLANK] = 0.0
            answer = np.concatenate([answer, tail])
        return {"ctc_logits": torch.from_numpy(answer)[None]}


def models(args, scratch: Path) -> tuple[SilentSpeechPipeline, Path, str, bool]:
    """The pipeline (recogniser, producer, vocoder, LM), the corpus to stream, a note on where they come from, and
    whether the recogniser is untrained (its answers are then spelled: :class:`SpelledGraph`)."""
    layout = QuickstartLayout(args.quickstart)
    if all(p.exists() for p in (layout.recognition, layout.production, layout.lm, layout.corpus)):
        # The pretrained V1, as the demo voices the quickstart's models (its optional fine-tune made V1 worse).
        # The LM settings tune-lm chose on dev (beam width, weights, lexicon), as `silentspeech live` decodes with them.
        settings = resolve_lm_settings(layout.recognition, layout.lm)
        pipeline = SilentSpeechPipeline(layout.recognition, layout.production, vocoder="v1-universal", device="cpu", **settings.pipeline_keywords())
        return pipeline, layout.corpus, f"models and LM of {args.quickstart} (tuned beam {settings.beam_width})", False
    from silentspeech.data.synthetic.speech import generate_corpus
    from silentspeech.models.speech import SpeechModel, SpeechModelConfig

    generate_corpus(scratch / "corpus", utterances=20, seed=0, progress=False)
    recognizer = SpeechModel(SpeechModelConfig(outputs=["ctc"])).eval()
    producer = SpeechModel(SpeechModelConfig(outputs=["acoustic"])).eval()
    pipeline = SilentSpeechPipeline(recognizer, producer, vocoder="v1-universal", lm=grammar_lm(scratch / "lm.arpa"), device="cpu")
    return pipeline, scratch / "corpus", (
        f"NO quickstart output at {args.quickstart} (run `make quickstart`): full-size TinyMyo speech models with random "
        "weights (the recogniser's answers: noisy posteriors spelling the prompts), pretrained universal HiFi-GAN V1, "
        "grammar 4-gram LM, silent utterances of a 20-utterance synthetic corpus"
    ), True


def main() -> None:
    parser = bench_arguments(__doc__, repeats=1)
    parser.add_argument("--quickstart", type=Path, default=QUICKSTART, help="quickstart output folder (default: %(default)s)")
    parser.add_argument("--utterances", type=int, default=6, help="test utterances joined into the stream (default 6)")
    parser.add_argument("--chunk-ms", type=float, default=200.0, help="chunk length, ms (default 200)")
    args = parser.parse_args()
    set_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        pipeline, corpus_root, source_note, spelled = models(args, Path(scratch))
        corpus = read_corpus(corpus_root)
        silent = [u for u in corpus.utterances if u.silent]
        test = ([u for u in silent if u.split == "test"] + [u for u in silent if u.split != "test"])[: args.utterances]
        emg = np.concatenate([np.load(u.emg_path) for u in test])
        rng = np.random.default_rng(0)
        log_probs = np.concatenate([spelled_posteriors(normalize_text(u.text), round(u.emg_samples / RAW_RATE * FRAME_RATE), rng) for u in test])
        graph = pipeline.recognizer_graph
        write_playback_file(Path(scratch) / "stream.csv", emg)
        text_ms, voice_ms, speech, dropped, rows = [], [], 0, 0, []
        pipeline.warm_up()  # the first calls' one-time set-up (vocoder graph, resampler) is not a live latency
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(args.repeats):
            pipeline.recognizer_graph = graph
            recognizer = StreamingRecognizer(pipeline, RAW_RATE, "playback")  # warms the real graph up
            if spelled:
                pipeline.recognizer_graph = SpelledGraph(graph, log_probs, recognizer)
            session = LiveSession(recognizer, StreamingVoice(pipeline, RAW_RATE, "playback"))
            with open_source(f"playback:{Path(scratch) / 'stream.csv'}") as source:  # streams from here on
                chunks = rechunk(source.blocks(), round(args.chunk_ms / 1000 * source.rate), source.rate)
                for update in session.updates(chunks):
                    if not update.event.final:
                        text_ms.append(update.event.latency_ms)
                    for piece in update.pieces:
                        speech += len(piece.audio)
                        if not piece.final:
                            voice_ms.append(piece.latency_ms)
                dropped += source.dropped
        cores = (time.process_time() - cpu) / (time.perf_counter() - wall)
        text = np.percentile(text_ms, [50, 95])
        voice = np.percentile(voice_ms, [50, 95]) if voice_ms else [float("nan")] * 2
        rows.append(["chunk -> text", len(text_ms), text[0], text[1], max(text_ms)])
        rows.append(["chunk -> voice", len(voice_ms), voice[0], voice[1], max(voice_ms, default=float("nan"))])
    print_report(
        "Live: playback board -> text and voice",
        ["latency", "count", "median ms", "p95 ms", "max ms"],
        rows,
        args.threads,
        args.markdown,
        notes=[
            f"{len(test)} silent utterances ({len(emg) / 1000:.1f} s of EMG) joined and replayed by BrainFlow's "
            f"playback board (Cyton WiFi master, 1000 Hz) at recording speed, {args.chunk_ms:g} ms chunks, "
            f"{args.repeats} pass(es); {source_note}; vocoder {pipeline.vocoder.description}.",
            f"Speech written: {speech / AUDIO_RATE:.1f} s; samples dropped by the board: {dropped}. "
            "chunk -> voice: from the arrival of the chunk after which a stretch settled to its speech, voiced on a "
            "thread of its own (the stream's end excluded). "
            f"Process CPU while streaming: {cores:.2f} cores on average (all threads; the rest of the machine's "
            "load shows in the load average).",
        ],
    )


if __name__ == "__main__":
    main()
