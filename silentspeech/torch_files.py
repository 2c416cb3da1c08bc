"""Reading ``torch.save`` files as data only.

Every ``.ckpt``/``.pt`` file a user hands us (``last.ckpt`` of ``--resume``,
a bare TinyMyo encoder, an original HiFi-GAN generator) goes through
:func:`load_torch_file`: ``torch.load(weights_only=True)`` whatever torch or
Lightning default to, so a crafted file that needs any class beyond tensors
and plain containers is refused instead of running its pickled code. torch's
own refusal spans a dozen lines of advice; the error here is one line naming
the file.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

import torch


def load_torch_file(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; :class:`ValueError` naming the file when it is refused or unreadable."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        detail = next((line.strip() for line in str(err).splitlines() if "Unsupported global" in line), first)
        raise ValueError(
            f"{path}: refused to load: it holds Python objects beyond tensors and plain containers, which could run "
            f"code ({detail[:200]})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:  # truncated, not a torch file, unreadable
        raise ValueError(f"{path}: not a readable torch checkpoint ({' '.join(str(err).split())[:200]})") from None
