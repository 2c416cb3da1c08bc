"""Parity of the inference pipeline (each raw file alone, as the demo and ``voice`` run it) with the training cache.

The cache filters each utterance joined with the previous and next
recordings of its session; the pipeline has only the file and primes its
filters with the file's own baseline (:func:`~silentspeech.inference.pipeline.primed_neighbours`).
Beyond the filters' settling time the two must agree closely; within it the
cache holds the junction with its neighbours' unrelated EMG, which no lone
file can know: on these utterances swapping the cache's neighbours for
others moves its first and last 50 ms by about 0.7 of its RMS, so there the
pipeline is held to that scale, and to less than filtering without priming
reaches (0.84 in the first and last 50 ms, 0.34 from 50 to 200 ms).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import prepared_synthetic_cache

from silentspeech.config import load_recipe
from silentspeech.data.cache import CachedUtterances, read_manifest
from silentspeech.data.emg_files import read_emg_file
from silentspeech.data.gaddy import read_corpus
from silentspeech.decoding.beam import greedy_decode
from silentspeech.evaluation.recognition import split_posteriors
from silentspeech.inference.pipeline import SilentSpeechPipeline
from silentspeech.metrics import error_rates
from silentspeech.preprocessing import EMG_RATE
from silentspeech.tasks import get_task

REPO = Path(__file__).resolve().parents[1]
#: Model EMG samples in 50 ms, 200 ms and 500 ms.
EDGE, NEAR, SETTLED = (round(seconds * EMG_RATE) for seconds in (0.05, 0.2, 0.5))
#: Model frames (86.13 Hz) in 0.5 s: beyond them the filters have settled.
SETTLED_FRAMES = SETTLED // 8


#: A recogniser with no Transformer blocks: its frames see only the convolutional downsampler's
#: receptive field (well under 0.5 s), so differences at a recording's edges stay there.
TINY = [
    "model.width=32",
    "model.encoder.dim=32",
    "model.encoder.depth=0",
    "model.encoder.heads=2",
    "model.encoder.mlp_dim=64",
    "data.max_total_samples=24000",
    "data.max_shift=0",
    # CTC alone, as these bounds were measured with: parity is the preprocessing's, not the loss's.
    "loss.auxiliary_weight=0",
    "model.outputs=[ctc]",
    "optim.lr=5e-3",
    "optim.warmup_steps=10",
    "trainer.progress_bar=false",
    "trainer.val_every_steps=100000",
    "trainer.test=false",
    "trainer.cpu_threads=1",
]


def _tiny_config(cache: Path, out: Path, *overrides: str):
    task = get_task("recognition")
    return load_recipe(task.schema, REPO / "recipes/synthetic/recognition.yaml", [f"data.cache={cache}", f"out={out}", *TINY, *overrides])


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """The shared prepared 20-utterance synthetic corpus."""
    return prepared_synthetic_cache(tmp_path_factory, utterances=20)


def _raw_files(cache: Path) -> dict:
    """``{utterance id: Utterance}`` of the corpus the cache was prepared from."""
    manifest = read_manifest(cache)
    root = Path(manifest["root"])
    return {u.id: u for u in read_corpus(root, split_file=root / "testset.json").utterances}


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def test_pipeline_emg_matches_the_cache_inside_and_near_the_edges(cache):
    """Pipeline EMG of each raw file alone against its cache entry, per region, as RMS difference / the entry's RMS.

    Utterances whose session holds both neighbours (the cache is unprimed at
    a session's first or last recording, as the pipeline was before priming).
    Tolerances, between what priming and no priming give on this corpus of
    generator 5 (its motion artefact below 15 Hz makes the edges depend more
    on the neighbours than generator 4's did): worst 0.03 beyond 0.5 s of
    either end (primed 0.026, unprimed 0.034); on average over the
    utterances 0.44 from 50 to 200 ms (primed 0.39, unprimed 0.48) and 1.15
    in the first and last 50 ms (primed 1.05, unprimed 1.26), no utterance
    above 1.85 there (primed 1.66, unprimed 2.04).
    """
    model = get_task("recognition").build_model(_tiny_config(cache, cache))  # untrained: only its preprocessing is used
    pipeline = SilentSpeechPipeline(recognizer=model, beam=0, fast=False, device="cpu")
    utterances = _raw_files(cache)
    edges, near, inner = [], [], []
    for split in ("train", "dev", "test"):
        for entry in CachedUtterances(cache, split).entries:
            u = utterances[entry["id"]]
            if not all((u.folder / f"{u.index + step}_emg.npy").exists() for step in (-1, 1)):
                continue
            with np.load(cache / entry["file"]) as arrays:
                cached = arrays["emg"].astype(np.float64)
            recording = read_emg_file(u.emg_path)
            ours = pipeline.preprocess(recording.emg, recording.rate, recording.source)[: len(cached)].astype(np.float64)
            assert ours.shape == cached.shape  # the cache only trims the end to whole frames
            scale, diff = _rms(cached), ours - cached
            edges.append(_rms(np.concatenate([diff[:EDGE], diff[-EDGE:]])) / scale)
            near.append(_rms(np.concatenate([diff[EDGE:NEAR], diff[-NEAR:-EDGE]])) / scale)
            inner.append(_rms(diff[SETTLED:-SETTLED]) / scale)
    assert len(edges) >= 8, "too few utterances with both neighbours to judge"
    assert max(inner) < 0.03, f"beyond 0.5 s: {np.round(inner, 4)}"
    assert np.mean(near) < 0.44, f"50 to 200 ms: mean {np.mean(near):.3f} {np.round(near, 3)}"
    assert np.mean(edges) < 1.15 and max(edges) < 1.85, f"first and last 50 ms: mean {np.mean(edges):.3f} {np.round(edges, 3)}"


@pytest.fixture(scope="module")
def recogniser(cache, tmp_path_factory) -> Path:
    """The tiny recogniser of :data:`TINY` trained for 250 steps on the cache (about 20 s on one core): its checkpoint."""
    out = tmp_path_factory.mktemp("parity_recognition")
    get_task("recognition").train(_tiny_config(cache, out, "trainer.max_steps=250"))
    return out / "last.safetensors"


@pytest.mark.slow
def test_recogniser_reads_the_same_from_each_file_alone_as_from_the_cache(cache, recogniser):
    """Frame log-posteriors and greedy text of every cached utterance, from the cache (as evaluation reads it) and from its raw file through the pipeline.

    The recogniser reads the EMG: from the cache it transcribes its training
    utterances (greedy CER under 10 %), and its log-posteriors move with the
    EMG (a 5 % gain error moves them by 0.2 to 0.5 on average, a 3 Hz
    high-pass by 0.6 to 1.5). A model this small gets there by memorising
    the utterances, their edges included, where the cache holds the junction
    with its neighbours' EMG: whole-utterance greedy CER from the files alone
    is far higher, primed or not (0 % against about 45 % after 300 steps), so
    the issue's whole-utterance CER parity within 1 point (measured on the
    quickstart's recogniser, which generalises: 18.56 % from the cache, 18.28 %
    from the files alone) cannot be checked with a model trained within a
    test's budget. What can: beyond 0.5 s of either end (the filters have
    settled; this model's frames see only its convolutional front end) the
    largest log-posterior difference of a frame averages under 0.1 over the
    utterances and under 0.3 in each (generator 5's motion artefact leaves
    the interior of a lone file a little further from the cache than
    generator 4's EMG did: one utterance reached 0.19) and the greedy texts of those frames are nearly the same
    (CER under 2 %: on generator 5 one letter at a cut came out on one side
    only). The edges are held by the EMG test above.
    """
    pipeline = SilentSpeechPipeline(recognizer=recogniser, beam=0, fast=False, device="cpu")
    utterances = _raw_files(cache)
    references, transcripts, compared = [], [], 0
    middles_cached, middles_ours, differences = [], [], []
    for split in ("train", "dev", "test"):
        posteriors = split_posteriors(pipeline.recognizer, cache, split, batch_size=1, device="cpu")
        for utterance_id, text, cached in zip(posteriors.ids, posteriors.texts, posteriors.log_probs):
            result = pipeline.run(read_emg_file(utterances[utterance_id].emg_path))
            ours = result.log_probs[: len(cached)]
            assert ours.shape == cached.shape, utterance_id  # the cache only trims the end to whole frames
            inside = slice(SETTLED_FRAMES, len(cached) - SETTLED_FRAMES)
            difference = np.abs(ours[inside] - cached[inside]).max(axis=1).mean()
            differences.append(difference)
            assert difference < 0.3, f"{utterance_id}: log-posteriors beyond 0.5 s of the ends differ by {difference:.3f} on average"
            middles_ours += greedy_decode(ours[inside][None])
            middles_cached += greedy_decode(cached[inside][None])
            compared += 1
            if split == "train":
                references.append(text)
                transcripts.append(greedy_decode(cached[None])[0])
    assert compared >= 15
    assert np.mean(differences) < 0.1, np.round(differences, 3)
    # A letter whose CTC spike sits at the cut may fall on either side of it: nearly the same texts.
    assert error_rates(middles_cached, middles_ours).cer < 0.02, [(a, b) for a, b in zip(middles_cached, middles_ours) if a != b]
    assert error_rates(references, transcripts).cer < 0.1, list(zip(references, transcripts))
