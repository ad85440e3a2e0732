"""``lfr-agent check`` rows about the node itself: disk for the outbox, clock sync, models.

A row may warn: it passes (the check, and the service's ExecStartPre, do not fail on it) but
the technician should look. Thresholds (docs/operator-guide.md "Preflight: lfr-agent check"):

- ``disk``: a full outbox is ``events.outbox_max`` events of at most ``EVENT_BYTES`` each (an
  event with its sealed probe is ~12 KiB on the wire, docs/reliability.md; SQLite and larger
  probes take more). FAIL below the space of a full outbox, warn below twice that or below
  ``DISK_WARN_FRACTION`` of the filesystem.
- ``clock-sync``: NTP synchronised per systemd (timesyncd or chrony) or ``chronyc``. Not
  synchronised FAILs when the check goes online (the broker is reachable, so NTP should be);
  with ``--offline`` (the service's ExecStartPre, possibly before the network is up) it warns,
  because the agent must still start. Unknown (a container without systemd) warns.
- ``models``: every model of the MANIFEST found in the models folder hashes to its sha256; the
  ones the configured profile and detector load must be present.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.config import AgentConfig
from agent.io.board import Runner, clock_sync, disk, run_command

EVENT_BYTES = 32 * 1024  # room reserved per outbox event
DISK_WARN_FRACTION = 0.10
MiB = 1024 * 1024


@dataclass(frozen=True)
class Row:
    name: str
    ok: bool
    detail: str
    warn: bool = False  # passed, but worth a look (never set on a failed row)


def _size(n: float) -> str:
    return f"{n / (1024 * MiB):.1f} GiB" if n >= 1024 * MiB else f"{n / MiB:.0f} MiB"


def disk_row(config: AgentConfig, statvfs: Callable[[Path], os.statvfs_result] = os.statvfs) -> Row:
    state = config.state_dir
    space = disk(state, statvfs)
    need = config.events.outbox_max * EVENT_BYTES
    have = f"{_size(space.free_bytes)} free of {_size(space.total_bytes)} under {state}"
    full = f"a full outbox ({config.events.outbox_max:,} events) needs about {_size(need)}"
    if space.free_bytes < need:
        return Row(
            "disk",
            False,
            f"{have}; {full}: free space or lower events.outbox_max",
        )
    low_fraction = space.free_bytes < DISK_WARN_FRACTION * space.total_bytes
    if space.free_bytes < 2 * need or low_fraction:
        return Row("disk", True, f"{have} (low); {full}", warn=True)
    return Row("disk", True, f"{have}; {full}")


def clock_sync_row(*, online: bool, run: Runner = run_command) -> Row:
    sync = clock_sync(run)
    if sync.state == "yes":
        return Row("clock-sync", True, f"synchronised ({sync.source})")
    if sync.state == "no":
        text = (
            f"NOT synchronised ({sync.source}): event times and watchlist expiry follow this "
            "clock; check systemd-timesyncd or chrony and the NTP servers they reach"
        )
        return Row("clock-sync", not online, text, warn=not online)
    return Row(
        "clock-sync",
        True,
        f"unknown ({sync.source}); fine in a container, on a node check NTP",
        warn=True,
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def models_row(config: AgentConfig) -> Row:
    from agent.models import DETECTORS
    from agent.vision.errors import VisionError
    from agent.vision.manifest import load_manifest

    v = config.vision
    if v.backend == "synthetic":
        return Row("models", True, "synthetic backend: no models loaded")
    try:
        manifest = load_manifest(v.models_dir)
        spec = manifest.profile(v.profile)
    except VisionError as exc:
        return Row("models", False, str(exc))
    detectors = {"blazeface": spec.detector, **DETECTORS}
    wanted = ("blazeface", "yunet") if v.detector == "auto" else (v.detector,)
    used = {detectors[d] for d in wanted if d in detectors} | {b.model for b in spec.blocks}
    bad, missing, verified = [], [], 0
    for name, model in sorted(manifest.models.items()):
        path = manifest.models_dir / model.file
        if not path.is_file():
            if name in used:
                missing.append(name)
            continue
        if _sha256(path) != model.sha256.lower():
            bad.append(name)
        verified += 1
    if missing or bad:
        parts = [f"missing {', '.join(missing)}"] if missing else []
        parts += [f"sha256 differs from MANIFEST: {', '.join(bad)}"] if bad else []
        return Row(
            "models", False, f"{manifest.models_dir}: {'; '.join(parts)} (reinstall the package)"
        )
    return Row(
        "models",
        True,
        f"{verified} files match MANIFEST sha256 in {manifest.models_dir} "
        f"(profile {v.profile} + detector {v.detector} load {len(used)})",
    )


def node_rows(config: AgentConfig, *, online: bool, run: Runner = run_command) -> list[Row]:
    """The rows above; an unexpected error becomes that row's failure, never the check's."""
    checks: list[tuple[str, Callable[[], Row]]] = [
        ("disk", lambda: disk_row(config)),
        ("clock-sync", lambda: clock_sync_row(online=online, run=run)),
        ("models", lambda: models_row(config)),
    ]
    rows = []
    for name, check in checks:
        try:
            rows.append(check())
        except Exception as exc:  # noqa: BLE001 - a preflight reports every failure as a row
            rows.append(Row(name, False, f"{type(exc).__name__}: {exc}"))
    return rows
