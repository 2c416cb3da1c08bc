"""Training speed: EMG seconds processed per wall-clock second for production and recognition, tiny and full sizes.

One training step = forward, the task's loss, backward, gradient clipping
(norm 1) and an AdamW step, on a batch of 8 utterances x 5 s of EMG (random
EMG and targets: the cost does not depend on the values). Sizes are the
models of the recipes: ``tiny`` = ``recipes/synthetic/*.yaml`` (what the
quickstart trains), ``full`` = ``recipes/gaddy/*.yaml`` (TinyMyo width 192, 8
blocks, dropout 0.1). The production loss is the recipe's: MSE-like distance
on voiced items and the DTW loss on silent ones (half the batch each). On a
GPU (when one is present) the step runs under bf16 autocast, as the trainer
does there.

    .venv/bin/python bench/train.py --threads 2 [--repeats 3] [--markdown]
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from silentspeech.benchmark import bench_arguments, peak_memory, print_report, set_threads, time_calls
from silentspeech.config import load_recipe
from silentspeech.models.speech import SpeechModel
from silentspeech.phonemes import NUM_PHONEMES
from silentspeech.preprocessing import EMG_PER_FRAME, EMG_RATE
from silentspeech.tasks import get_task
from silentspeech.tasks.production import production_losses
from silentspeech.tasks.recognition import ctc_log_probs, ctc_loss
from silentspeech.text import NUM_CLASSES

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
SIZES = {"tiny": RECIPES / "synthetic", "full": RECIPES / "gaddy"}
BATCH, SECONDS = 8, 5.0
#: Characters per second of speech in a target transcript.
CHARACTERS_PER_SECOND = 12


def random_batch(task: str, n_mfcc: int, device: torch.device, generator: torch.Generator) -> dict:
    """A batch of BATCH x SECONDS of random EMG with the targets ``task``'s loss reads."""
    samples = round(SECONDS * EMG_RATE)
    frames = -(-samples // EMG_PER_FRAME)
    batch = {
        "emg": torch.randn(BATCH, 8, samples, generator=generator).to(device),
        "emg_lengths": torch.full((BATCH,), samples, device=device),
    }
    if task == "recognition":
        characters = round(SECONDS * CHARACTERS_PER_SECOND)
        batch["text_ids"] = torch.randint(1, NUM_CLASSES, (BATCH, characters), generator=generator).to(device)
        batch["text_lengths"] = torch.full((BATCH,), characters, device=device)
    else:
        batch["target_features"] = torch.randn(BATCH, frames, n_mfcc, generator=generator).to(device)
        batch["target_lengths"] = torch.full((BATCH,), frames, device=device)
        batch["phonemes"] = torch.randint(0, NUM_PHONEMES, (BATCH, frames), generator=generator).to(device)
        batch["has_phonemes"] = torch.ones(BATCH, dtype=torch.bool, device=device)
        batch["silent"] = (torch.arange(BATCH) % 2 == 1).to(device)
    return batch


def training_step(model: SpeechModel, task: str, batch: dict, optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    with autocast:
        if task == "recognition":
            log_probs, frames = ctc_log_probs(model, batch)
            loss = ctc_loss(log_probs, frames, batch)
        else:
            outputs = model(batch["emg"], batch["emg_lengths"])
            loss = production_losses(outputs, model.frame_lengths(batch["emg_lengths"]), batch, phoneme_weight=0.5).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = bench_arguments(__doc__, repeats=3)
    parser.add_argument("--tasks", nargs="+", default=["recognition", "production"], help="tasks (default both)")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES), help="model sizes (default tiny full)")
    args = parser.parse_args()
    set_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])

    rows = []
    for task in args.tasks:
        for size in args.sizes:
            config = load_recipe(get_task(task).schema, SIZES[size] / f"{task}.yaml").model
            config.pretrained = None
            for device in devices:
                torch.manual_seed(0)
                model = SpeechModel(config).to(device).train()
                optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.01)
                batch = random_batch(task, config.n_mfcc, device, torch.Generator().manual_seed(0))

                def step():
                    training_step(model, task, batch, optimizer, device)

                _, memory = peak_memory(step)
                timing = time_calls({"step": step}, repeats=args.repeats)["step"]
                rows.append([
                    task,
                    size,
                    device.type,
                    f"{config.width}/{config.encoder.dim}x{config.encoder.depth}",
                    sum(p.numel() for p in model.parameters()) / 1e6,
                    timing.median_ms,
                    timing.spread,
                    timing.cpu_ms,
                    BATCH * SECONDS / (timing.median_ms / 1000),
                    None if memory is None or device.type == "cuda" else memory.increase_mb,
                ])
    headers = ["task", "size", "device", "width/dim x depth", "params M", "step ms", "step IQR", "step CPU ms", "EMG s per s", "peak +MB"]
    notes = [
        f"One step: forward, loss, backward, clip, AdamW on {BATCH} x {SECONDS:g} s of EMG (random values); "
        f"medians of {args.repeats} runs after one warm-up, IQR in ms; peak +MB = RSS high-water mark over the RSS "
        "before the first (cold) step, CPU only. step CPU ms = process CPU time per step (all threads; "
        "what the step costs when wall time is inflated by other processes' load).",
        "Target (issue 9): full-size step (batch 8 x 5 s) <= 2.2 s on 2 CPU threads.",
    ]
    print_report(f"Training speed (batch {BATCH} x {SECONDS:g} s)", headers, rows, args.threads, args.markdown, notes)


if __name__ == "__main__":
    main()
