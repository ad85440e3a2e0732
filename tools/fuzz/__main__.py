"""``python -m tools.fuzz``: the fuzzing campaign's command line (see tools.fuzz.cli)."""

import sys

from tools.fuzz.cli import main

sys.exit(main())
