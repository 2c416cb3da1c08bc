"""Griffin-Lim: the labelled fallback vocoder when no HiFi-GAN checkpoint is given.

Written on librosa's mel inversion and ``griffinlim`` with this project's
STFT settings (:mod:`silentspeech.features`), so that its output lines up
with the feature frames sample for sample.
"""

from __future__ import annotations

import librosa
import numpy as np

from silentspeech import features as audio_features


def griffin_lim(log_mel: np.ndarray, n_iter: int = 32) -> np.ndarray:
    """Invert log-mel frames ``(N, 80)`` to ``(256 N,)`` float32 audio at 22050 Hz.

    The mel magnitudes go back to a linear STFT magnitude by librosa's NNLS
    inversion of our Slaney filterbank (0-8000 Hz), then ``librosa.griffinlim``
    estimates phase with our STFT (n_fft 1024, hop 256, Hann, not centred);
    the 384-sample reflect padding of :func:`silentspeech.features.log_mel` is
    cut off again so the output lines up with the frames.
    """
    mel = np.exp(np.asarray(log_mel, dtype=np.float64)).T
    magnitude = librosa.feature.inverse.mel_to_stft(
        mel,
        sr=audio_features.AUDIO_RATE,
        n_fft=audio_features.N_FFT,
        power=1.0,
        fmin=audio_features.F_MIN,
        fmax=audio_features.F_MAX,
        norm="slaney",
        htk=False,
    )
    n_frames = log_mel.shape[0]
    padded = librosa.griffinlim(
        magnitude,
        n_iter=n_iter,
        hop_length=audio_features.HOP_LENGTH,
        win_length=audio_features.WIN_LENGTH,
        n_fft=audio_features.N_FFT,
        window="hann",
        center=False,
        length=n_frames * audio_features.HOP_LENGTH + 2 * audio_features.PAD,
        random_state=0,
    )
    return padded[audio_features.PAD : -audio_features.PAD].astype(np.float32)

