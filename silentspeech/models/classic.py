"""The classical EMG baseline: Hudgins time-domain features and a scikit-learn classifier.

Per channel and per time segment of a window (``segments`` equal parts of
its valid samples) the Hudgins et al. (1993, IEEE Trans. Biomed. Eng. 40(1))
time-domain set:

- mean absolute value (MAV), root mean square (RMS), waveform length (WL:
  summed absolute first differences), all log-scaled ``log(x + 1e-6)``;
- zero crossings (ZC) and slope-sign changes (SSC) as fractions of the
  segment's samples, ``log1p``-scaled.

The windows are those the network sees: band-passed 20-90 Hz by the gesture
readers (TinyMyo's downstream filter, :class:`~silentspeech.preprocessing.GestureFiltering`).
Both band edges lie below the Nyquist frequency of every dataset here (100 Hz
for a Myo armband at 200 Hz, 125 Hz for the 250 Hz word recordings): a band
edge at or beyond Nyquist does not exist in the sampled signal, so the filter
would silently become a high-pass of a different shape, and the features would
then describe another band on each dataset. Zero padding beyond a short
recording is left out: features use only the valid samples.

The classifier is linear discriminant analysis (``lda``) or a random forest
(``forest``, 300 trees by default) from scikit-learn; no library computes
the Hudgins set on windows like ours, so the features are written here
(a few lines of numpy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLASSIFIERS = ("forest", "lda")
#: Feature names in the order of each (channel, segment) block.
FEATURES = ("mav", "rms", "wl", "zc", "ssc")


@dataclass
class ClassicConfig:
    """The ``classic:`` section of the gesture recipes: the baseline trained beside the network."""

    #: ``forest``, ``lda``, or ``none`` (no classical baseline).
    classifier: str = "forest"
    #: Equal time segments per window, each with its own features.
    segments: int = 4
    #: Trees of the random forest.
    trees: int = 300


def hudgins_features(windows: np.ndarray, lengths: np.ndarray | None = None, segments: int = 4) -> np.ndarray:
    """Log-scaled Hudgins features of ``windows`` (N, channels, samples).

    ``lengths`` (N,): valid samples per window (the rest is zero padding);
    default all. Returns float64 (N, channels * segments * 5), ordered by
    channel, then segment, then :data:`FEATURES`. Raises ``ValueError`` for a
    window with fewer valid samples than ``2 * segments``.
    """
    windows = np.asarray(windows, dtype=np.float64)
    if windows.ndim != 3:
        raise ValueError(f"windows must be (N, channels, samples), got shape {windows.shape}")
    n, channels, samples = windows.shape
    lengths = np.full(n, samples) if lengths is None else np.asarray(lengths, dtype=np.int64)
    if lengths.shape != (n,) or (lengths > samples).any() or (lengths < 2 * segments).any():
        raise ValueError(f"lengths must hold {n} valid sample counts in {2 * segments}..{samples}")
    out = np.empty((n, channels, segments, len(FEATURES)))
    for i in range(n):
        edges = np.linspace(0, lengths[i], segments + 1).round().astype(int)
        for s in range(segments):
            x = windows[i, :, edges[s] : edges[s + 1]]
            diff = np.diff(x, axis=1)
            count = x.shape[1]
            out[i, :, s, 0] = np.log(np.abs(x).mean(axis=1) + 1e-6)
            out[i, :, s, 1] = np.log(np.sqrt((x**2).mean(axis=1)) + 1e-6)
            out[i, :, s, 2] = np.log(np.abs(diff).sum(axis=1) + 1e-6)
            out[i, :, s, 3] = np.log1p((x[:, 1:] * x[:, :-1] < 0).sum(axis=1) / count)
            out[i, :, s, 4] = np.log1p((diff[:, 1:] * diff[:, :-1] < 0).sum(axis=1) / count)
    return out.reshape(n, -1)


def build_classifier(config: ClassicConfig, seed: int = 0):
    """The scikit-learn estimator ``config.classifier`` names (unfitted)."""
    if config.classifier == "forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=config.trees, random_state=seed, n_jobs=1)
    if config.classifier == "lda":
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        return LinearDiscriminantAnalysis()
    raise ValueError(f"classic.classifier must be one of {CLASSIFIERS} or 'none', got {config.classifier!r}")


class ClassicModel:
    """Hudgins features + a scikit-learn classifier, fitted on labelled windows."""

    def __init__(self, config: ClassicConfig, seed: int = 0) -> None:
        self.config = config
        self.estimator = build_classifier(config, seed)

    def fit(self, windows: np.ndarray, lengths: np.ndarray, labels: np.ndarray) -> "ClassicModel":
        """Fit on ``windows`` (N, channels, samples) with ``lengths`` (N,) valid samples and ``labels`` (N,)."""
        self.estimator.fit(hudgins_features(windows, lengths, self.config.segments), np.asarray(labels))
        return self

    def predict(self, windows: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Class indices (N,) of ``windows`` (N, channels, samples)."""
        return self.estimator.predict(hudgins_features(windows, lengths, self.config.segments))
