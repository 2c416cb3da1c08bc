"""``python -m silentspeech``: the command line (the same as the ``silentspeech`` script)."""

import sys

from silentspeech.cli import main

sys.exit(main())
