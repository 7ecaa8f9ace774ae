"""``python -m benchmarks``: run every benchmark (see :mod:`benchmarks.suite`)."""

import sys

from benchmarks.suite import main

sys.exit(main())
