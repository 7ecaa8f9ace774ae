"""``python -m spillover``: the same command line as ``spillover``."""

import sys

from .cli import main

sys.exit(main())
