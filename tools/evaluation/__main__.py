"""``python -m tools.evaluation``: :func:`tools.evaluation.cli.main`."""

import sys

from tools.evaluation.cli import main

sys.exit(main())
