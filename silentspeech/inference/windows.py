"""Long recordings through the speech model and the vocoder in bounded windows: memory linear in length.

The model's attention is bidirectional over all frames of its input: its
memory and time grow with the square of the length (a 119 s recording held
several GB; figures: docs/measurements.md). :func:`windowed_outputs` bounds
that, as :mod:`silentspeech.inference.streaming` bounds its segments: EMG
longer than one window (:data:`WINDOW_S`) is cut into windows of that length
that overlap by :data:`OVERLAP_S`; each runs through the model on its own,
and the frames of consecutive windows are joined at the middle of their
overlap, so every frame kept has at least half the overlap of context on
each side (the streaming recogniser keeps 1.5 s of left context). Windows
start on whole frames (multiples of 8 samples), so the downsampler sees each
window's frames on the same grid as the whole recording's. EMG of at most
one window runs whole: its outputs are exactly the unwindowed model's.

The vocoder's memory grows linearly with length but steeply (its last
stages run at 22050 Hz), so :func:`windowed_synthesis` synthesises speech of
up to 10 s whole (:data:`SYNTHESIS_WHOLE_S`: most utterances, unchanged) and
longer speech in 5 s windows (:data:`SYNTHESIS_WINDOW_S`): a long recording
then needs less vocoder memory than a 10 s one. The generator's receptive
field is a few frames, so a short overlap (:data:`SYNTHESIS_OVERLAP_S`)
suffices, and the windows' audio is cross-faded linearly over it rather than
cut, so no click marks a joint.

Why 20 s windows and 4 s overlap for the model: a window several times
longer than the utterances the models are trained on (a few seconds each)
means nearly every recording runs whole, and a window's attention (1723
frames) stays in the tens of megabytes; 2 s of context each side is more
than the streaming recogniser's left context.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from silentspeech.features import FRAME_RATE, HOP_LENGTH
from silentspeech.preprocessing import EMG_PER_FRAME

#: Longest EMG the model runs on at once, seconds (longer recordings are windowed).
WINDOW_S = 20.0
#: Overlap of consecutive windows, seconds; they are joined at its middle.
OVERLAP_S = 4.0
#: Longest speech the vocoder synthesises whole, seconds; longer speech runs in windows.
SYNTHESIS_WHOLE_S = 10.0
#: The vocoder's windows for longer speech, seconds.
SYNTHESIS_WINDOW_S = 5.0
#: Overlap of consecutive vocoder windows, seconds; their audio is cross-faded over it.
SYNTHESIS_OVERLAP_S = 0.5


def window_spans(frames: int, window: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """How ``frames`` output frames are cut into windows of ``window`` frames overlapping by ``overlap``.

    Returns ``(start, end, keep_from, keep_to)`` per window, in frames: the
    window runs on frames ``[start, end)`` and contributes ``[keep_from,
    keep_to)`` (absolute frames); the kept spans tile ``[0, frames)``. One
    window when ``frames <= window``.
    """
    if not 0 <= overlap < window:
        raise ValueError(f"the overlap ({overlap} frames) must be shorter than the window ({window} frames)")
    if frames <= window:
        return [(0, frames, 0, frames)]
    step = window - overlap
    starts = list(range(0, frames - window, step)) + [frames - window]  # the last window ends at the recording's end
    spans = []
    for index, start in enumerate(starts):
        keep_from = 0 if index == 0 else spans[-1][3]
        keep_to = frames if index == len(starts) - 1 else (starts[index + 1] + start + window) // 2
        spans.append((start, start + window, keep_from, keep_to))
    return spans


def windowed_outputs(
    model: Callable[[torch.Tensor], dict[str, torch.Tensor]],
    emg: torch.Tensor,
    key: str,
    window_s: float = WINDOW_S,
    overlap_s: float = OVERLAP_S,
) -> torch.Tensor:
    """One head's outputs for one recording, windowed when it is longer than ``window_s``.

    Args:
        model: a speech model or :class:`~silentspeech.inference.onnx.OnnxSpeechModel`
            (``model(emg (1, C, T)) -> {key: (1, frames, D)}``).
        emg: preprocessed EMG ``(1, C, T)`` at 689.06 Hz.
        key: the output to collect, e.g. ``"ctc_logits"`` or ``"acoustic"``.
        window_s, overlap_s: window length and overlap, seconds (see the module docstring).

    Returns:
        ``(1, ceil(T / 8), D)``, frame ``k`` at ``k / 86.13`` s, as the model's own output.
    """
    if emg.dim() != 3 or emg.shape[0] != 1:
        raise ValueError(f"windowed inference takes one recording of shape (1, channels, samples); got {tuple(emg.shape)}")
    samples = emg.shape[2]
    frames = -(-samples // EMG_PER_FRAME)
    spans = window_spans(frames, int(round(window_s * FRAME_RATE)), int(round(overlap_s * FRAME_RATE)))
    if len(spans) == 1:
        return model(emg)[key]
    pieces = []
    for start, end, keep_from, keep_to in spans:
        output = model(emg[:, :, start * EMG_PER_FRAME : end * EMG_PER_FRAME])[key]
        pieces.append(output[:, keep_from - start : keep_to - start])
    return torch.cat(pieces, dim=1)


def windowed_synthesis(
    synthesize: Callable[[np.ndarray], np.ndarray],
    features: np.ndarray,
    whole_s: float = SYNTHESIS_WHOLE_S,
    window_s: float = SYNTHESIS_WINDOW_S,
    overlap_s: float = SYNTHESIS_OVERLAP_S,
) -> np.ndarray:
    """Audio for ``features`` ``(frames, n_mfcc)``: whole up to ``whole_s``, else in ``window_s`` windows cross-faded over ``overlap_s``.

    ``synthesize`` is a vocoder's :meth:`~silentspeech.vocoder.synthesis.Vocoder.synthesize`
    (``(N, n_mfcc) -> (256 N,)`` float32 at 22050 Hz). Returns ``(256 frames,)``;
    features of at most ``whole_s`` are synthesised whole, unchanged.
    """
    frames = features.shape[0]
    if frames <= int(round(whole_s * FRAME_RATE)):
        return synthesize(features)
    window, overlap = int(round(window_s * FRAME_RATE)), int(round(overlap_s * FRAME_RATE))
    spans = window_spans(frames, window, overlap)
    audio = np.zeros(frames * HOP_LENGTH, dtype=np.float32)
    previous_end = 0
    for start, end, _, _ in spans:
        piece = synthesize(features[start:end])
        shared = (previous_end - start) * HOP_LENGTH  # samples this window shares with the one before
        fade_in = np.linspace(0.0, 1.0, shared + 2, dtype=np.float32)[1:-1]
        audio[start * HOP_LENGTH : previous_end * HOP_LENGTH] *= 1.0 - fade_in
        audio[start * HOP_LENGTH : previous_end * HOP_LENGTH] += fade_in * piece[:shared]
        audio[previous_end * HOP_LENGTH : end * HOP_LENGTH] = piece[shared:]
        previous_end = end
    return audio
