"""Shared test fixtures.

``shared_data`` points at ``../shared/data`` beside the checkout (real files
for local checks); tests that use it skip where it is absent, as in a user's
fresh clone.
"""

from __future__ import annotations

import os
import shutil
import sys
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


def require_tool(found: object, what: str) -> None:
    """Skip the test when ``found`` is None (``what`` is missing), except in CI (``CI=true``), where it fails.

    ``.ci/run`` installs every tool the tests use, so a missing one there is a
    broken set-up, not a reason to pass without checking.
    """
    if found is not None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is missing in CI (.ci/run installs it): the test cannot be skipped there")
    pytest.skip(f"{what} is missing")


@pytest.fixture(scope="session")
def c_compiler() -> str:
    """The C compiler the export builds with (gcc, cc or clang on PATH)."""
    from silentspeech.export.c_codegen import find_compiler

    compiler = find_compiler()
    require_tool(compiler, "a C compiler (gcc, cc or clang on PATH)")
    return compiler


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium on PATH, which the demo's browser test drives through playwright."""
    browser = shutil.which("chromium")
    require_tool(browser, "chromium on PATH")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        require_tool(None, "the playwright package (the dev extra)")
    return browser


def _drop_unimportable_lazy_modules() -> None:
    """Remove speechbrain's lazy modules whose target cannot be imported here (its k2 integration) from ``sys.modules``.

    hypothesis scans every module in ``sys.modules`` for constants and only
    expects AttributeError from ``getattr(module, "__file__")``; such a lazy
    module raises ImportError instead and stops the whole run.
    """
    for name, module in list(sys.modules.items()):
        if name.startswith("speechbrain") and type(module).__name__.endswith(("LazyModule", "ModuleRedirect")):
            try:
                module.__file__
            except ImportError:
                del sys.modules[name]
            except AttributeError:
                pass


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items) -> None:
    _drop_unimportable_lazy_modules()


@pytest.fixture(autouse=True)
def _hypothesis_safe_modules(request):
    if getattr(request.function, "is_hypothesis_test", False):
        _drop_unimportable_lazy_modules()
    yield


@pytest.fixture(autouse=True)
def _torch_threads():
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        yield
        return
    torch.set_num_threads(1)
    yield


#: Corpora and caches made in this session, by utterance count: generating a corpus costs seconds per utterance.
_CORPORA: dict[int, Path] = {}
_PREPARED_CACHES: dict[int, Path] = {}


def synthetic_corpus(tmp_path_factory, utterances: int) -> Path:
    """A synthetic corpus of ``utterances`` (seed 0), one per count and session: read it or copy it, never write into it."""
    if utterances not in _CORPORA:
        from silentspeech.data.synthetic.speech import generate_corpus

        root = tmp_path_factory.mktemp("corpus")
        generate_corpus(root, utterances=utterances, seed=0, progress=False)
        _CORPORA[utterances] = root
    return _CORPORA[utterances]


def prepared_synthetic_cache(tmp_path_factory, utterances: int) -> Path:
    """The prepared cache of :func:`synthetic_corpus` (its own split file); returns the cache folder.

    One cache per utterance count and session, shared by the modules that ask
    for it: callers read it and never write into it.
    """
    if utterances not in _PREPARED_CACHES:
        from silentspeech.data.cache import prepare_cache

        root = synthetic_corpus(tmp_path_factory, utterances)
        out = tmp_path_factory.mktemp("cache")
        prepare_cache(root, out, split_file=root / "testset.json", workers=0)
        _PREPARED_CACHES[utterances] = out
    return _PREPARED_CACHES[utterances]


#: The released TinyMyo checkpoint's keys and shapes, derived from the upstream model definition (the file names it).
TINYMYO_RELEASED_KEYS = Path(__file__).parent / "data" / "tinymyo_released_keys.txt"


def tinymyo_released_layout() -> dict[str, tuple[int, ...]]:
    """Key -> shape of the released TinyMyo pretraining checkpoint, as listed in :data:`TINYMYO_RELEASED_KEYS`."""
    layout = {}
    for line in TINYMYO_RELEASED_KEYS.read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape = line.split()
            layout[key] = tuple(int(size) for size in shape.split(","))
    return layout


def tinymyo_released_state(config, seed: int = 0):
    """Random tensors under the released checkpoint's keys, with its shapes scaled to ``config`` (a TinyMyoConfig).

    Names come from :func:`tinymyo_released_layout` only: its block 0 repeated
    ``config.depth`` times, and each released size (192 width, 576 = 3 x 192
    qkv rows, 768 MLP width, 20-sample patches) replaced by ``config``'s.
    """
    import re

    import torch

    sizes = {192: config.dim, 576: 3 * config.dim, 768: config.mlp_dim, 20: config.patch_len, 1: 1}
    shapes = {}
    for key, shape in tinymyo_released_layout().items():
        block = re.match(r"model\.blocks\.(\d+)\.(.*)", key)
        scaled = [sizes[size] for size in shape]
        if block is None:
            shapes[key] = scaled
        elif block.group(1) == "0":
            shapes |= {f"model.blocks.{i}.{block.group(2)}": scaled for i in range(config.depth)}
    generator = torch.Generator().manual_seed(seed)
    return {key: torch.randn(shape, generator=generator) * 0.1 for key, shape in shapes.items()}
