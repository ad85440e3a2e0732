"""Running ``lfr-provision`` in-process as a technician would, for the provisioning tests."""

from __future__ import annotations

import pytest

from provisioning.cli import main


def ok(*argv: str) -> None:
    assert main(list(argv)) == 0, argv


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Exit 2 with exactly one line on stderr and no traceback; returns that line."""
    capsys.readouterr()
    assert main(list(argv)) == 2, argv
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err
