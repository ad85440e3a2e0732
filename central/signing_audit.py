"""The ops side's signing audit log: one JSON line per signature ops add, and per send.

Append-only (opened ``O_APPEND``, never rewritten), each line fsync'd before the signed file
is written, so a signature that exists was recorded first. A line names what was signed
(watchlist or command, device, version or counter), who (the key id), when, and the SHA-256
of the JWS payload: the same for every signature of one bundle or command, so the lines of
the two people of a two-person rule can be matched across workstations.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from protocol.encoding import format_time

DEFAULT_PATH = Path.home() / ".local" / "state" / "lfr-watchlist" / "signing-audit.jsonl"


@dataclass(frozen=True)
class AuditRecord:
    event: str  # signed | sent
    what: str  # watchlist | command (wipe, pause, resume: in ``detail``)
    device_id: str
    number: int  # the watchlist version or command counter
    detail: str  # deployment, or the command's action
    kid: str  # who: the ops key id ("" for a send, which adds no signature)
    payload_sha256: str
    at: str = ""
    host: str = ""


def append(path: Path, record: AuditRecord, now: datetime) -> None:
    """Add one line and fsync it; an error here stops the caller (nothing unrecorded)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    line = {**asdict(record), "at": format_time(now), "host": os.uname().nodename}
    data = (json.dumps(line, sort_keys=True, separators=(",", ":")) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
