"""``python -m tools.load``: :func:`tools.load.cli.main`."""

import sys

from tools.load.cli import main

sys.exit(main())
