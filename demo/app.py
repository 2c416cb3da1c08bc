"""Start the Gradio demo: ``python demo/app.py [options]`` is ``silentspeech demo [options]``.

The page itself is :mod:`silentspeech.demo` (UI code only); this file is a
launcher for people who look for the demo in ``demo/``.
"""

import sys

from silentspeech.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
