"""Voice through text: the recogniser's transcript spoken by espeak-ng.

The direct path (EMG -> production model -> predicted features -> vocoder)
is the system's speech; this one is its intelligible fallback: silent EMG ->
recogniser -> beam-search text -> espeak-ng, the engine that voices the
synthetic corpus (:func:`silentspeech.data.synthetic.espeak.speak`, libespeak-ng
through ctypes, bundled by the ``espeakng-loader`` wheel). What it says is
exactly the recogniser's text, in a voice that is not the speaker's; every
output that carries it is labelled :data:`TEXT_VOICE_LABEL`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from silentspeech.data.synthetic.espeak import ESPEAK_RATE, EspeakError, Voice, speak
from silentspeech.runtime import installed_version

#: How tables, file names' readers and the demo name this rendering.
TEXT_VOICE_LABEL = "text -> espeak-ng"
#: espeak-ng's default English voice and speaking rate (words per minute).
DEFAULT_ESPEAK_VOICE = "en-us"
DEFAULT_ESPEAK_RATE = 175
#: Speaking rates espeak-ng accepts, words per minute.
ESPEAK_RATES = (80, 450)


@dataclass(frozen=True)
class TextVoice:
    """espeak-ng speaking text: ``voice`` (a language, or ``language+variant`` such as ``en-us+m3``) at ``rate`` words per minute.

    Raises ``ValueError`` for a rate outside :data:`ESPEAK_RATES`; an unknown
    voice is refused when it first speaks (``ValueError`` naming it).
    """

    voice: str = DEFAULT_ESPEAK_VOICE
    rate: int = DEFAULT_ESPEAK_RATE
    #: Sampling rate of the audio it speaks, Hz: espeak-ng's 22050, the vocoders' rate.
    audio_rate: ClassVar[int] = ESPEAK_RATE

    def __post_init__(self) -> None:
        if not ESPEAK_RATES[0] <= self.rate <= ESPEAK_RATES[1]:
            raise ValueError(f"espeak-ng speaking rate {self.rate} words per minute: give {ESPEAK_RATES[0]} to {ESPEAK_RATES[1]}")

    @property
    def description(self) -> str:
        """E.g. ``"espeak-ng en-us, 175 words/min (espeakng-loader 0.2.4)"``."""
        return f"espeak-ng {self.voice}, {self.rate} words/min (espeakng-loader {installed_version('espeakng-loader')})"

    def speak(self, text: str | None) -> tuple[np.ndarray, str | None]:
        """``(audio, warning)``: ``text`` spoken, float32 ``(samples,)`` at :attr:`audio_rate` Hz.

        Empty text (the recogniser heard no words) gives empty audio and a
        warning saying so, not an error. Raises ``ValueError`` when espeak-ng
        cannot speak it (unknown voice, library missing).
        """
        if not text or not text.strip():
            return np.zeros(0, dtype=np.float32), "the recogniser's text is empty: the voice through text is silent"
        try:
            return speak(text, Voice(name=self.voice, rate=self.rate)).audio, None
        except EspeakError as err:
            raise ValueError(str(err)) from None

