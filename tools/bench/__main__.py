"""``python -m tools.bench``: :func:`tools.bench.cli.main`."""

import sys

from tools.bench.cli import main

sys.exit(main())
