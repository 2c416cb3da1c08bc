"""Shared test fixtures.

``shared_data`` points at ``../shared/data`` beside the checkout (real files
for local checks); tests that use it skip where it is absent, as in a user's
fresh clone.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests run on 2 cores beside other work: one intra-op thread keeps them predictable.
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; skips the test where it does not exist."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent (a fresh clone has no shared data)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _torch_threads():
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        yield
        return
    torch.set_num_threads(1)
    yield


def prepared_synthetic_cache(tmp_path_factory, utterances: int) -> Path:
    """Generate a synthetic corpus of ``utterances`` (seed 0) and prepare its cache; returns the cache folder."""
    from silentspeech.data.cache import prepare_cache
    from silentspeech.data.synthetic.speech import generate_corpus

    root = tmp_path_factory.mktemp("corpus")
    generate_corpus(root, utterances=utterances, seed=0, progress=False)
    out = tmp_path_factory.mktemp("cache")
    prepare_cache(root, out, split_file=root / "testset.json", workers=0)
    return out
