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

#: How ``--board`` is spelled, for help texts and errors (here, light to import, for the CLI's --help).
BOARD_SPEC_HELP = (
    "synthetic, cyton, cyton-wifi, playback:FILE (BrainFlow file, replayed with its --master board), "
    "lsl:STREAM_NAME, or any BrainFlow board id or name (e.g. 1 or ganglion)"
)
#: The reference recorder's connection defaults: the Cyton dongle's serial port, the WiFi shield's own network.
DEFAULT_SERIAL_PORT = "/dev/ttyUSB0"
DEFAULT_IP_ADDRESS, DEFAULT_IP_PORT = "192.168.4.1", 8001
#: The playback board's default master: the reference corpus's board (Cyton on the WiFi shield, 1000 Hz).
DEFAULT_PLAYBACK_MASTER = "cyton-wifi"
#: Seconds an LSL stream (or a board's answer) is waited for by default.
DEFAULT_TIMEOUT_S = 5.0
