"""What every console script shares: one-line errors, exit codes, durations.

Exit 0 on success, 2 on bad usage or bad input with one line on stderr naming what was wrong;
the traceback of an unexpected error is kept (that is a bug to report, not bad input).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta

from lfrkit.files import InsecureKeyFile
from protocol.errors import RejectedInput

EXIT_OK = 0
EXIT_BAD_INPUT = 2
_DURATION = re.compile(r"^(\d{1,9})([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class UsageError(Exception):
    """The operator asked for something that cannot be done as asked (exit 2)."""


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``12h``, ``2d`` (argparse type)."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (use e.g. 90s, 30m, 12h, 2d)")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (argparse type)."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, not {text!r}")
    return host, int(port)


def setup_logging(verbose: int) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def run(
    prog: str,
    handler: Callable[[argparse.Namespace], int],
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
) -> int:
    args = parser.parse_args(argv)
    setup_logging(getattr(args, "verbose", 0))
    try:
        return handler(args)
    except RejectedInput as exc:
        print(f"{prog}: rejected: {exc} [{exc.reason}]", file=sys.stderr)
    except (UsageError, InsecureKeyFile) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
    except FileNotFoundError as exc:
        print(f"{prog}: error: no such file: {exc.filename}", file=sys.stderr)
    except (PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        print(f"{prog}: error: {exc.strerror}: {exc.filename}", file=sys.stderr)
    return EXIT_BAD_INPUT
