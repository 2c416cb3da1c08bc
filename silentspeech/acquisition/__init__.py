"""Live EMG acquisition: boards and streams in, raw EMG blocks out.

:func:`~silentspeech.acquisition.sources.open_source` turns a spec such as
``synthetic``, ``cyton``, ``cyton-wifi``, ``playback:FILE``, a BrainFlow board
id or name, or ``lsl:STREAM_NAME`` into an
:class:`~silentspeech.acquisition.sources.EMGSource`: a context manager that
yields raw EMG blocks ``(samples, channels)`` at the source's rate and
releases the board on exit (Ctrl-C included).
:mod:`~silentspeech.acquisition.recorder` records a corpus in the Gaddy layout
from such a source (``silentspeech record``); :mod:`~silentspeech.acquisition.quality`
measures the signal-quality line it shows. Design facts (the reference
recorder's protocol, board rates, the package counter): docs/design.md,
*Live acquisition*.
"""
