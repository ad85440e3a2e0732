"""``lfr-agent``: the device daemon and its maintenance commands."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from agent.config import DEFAULT_PATH as DEFAULT_CONFIG
from agent.io.credentials import credentials_from_env
from agent.io.identity import load_identity
from agent.io.watchlist_store import WatchlistStore
from lfrkit.console import EXIT_OK, UsageError, run
from lfrkit.files import read_bounded
from protocol.encoding import format_time
from protocol.errors import Expired
from protocol.limits import DEFAULT_LIMITS

PROG = "lfr-agent"
EXIT_CHECK_FAILED = 1


def _embedder(text: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise argparse.ArgumentTypeError("--embedder must be 64 lowercase hex digits")
    return text


def _profile_floor(embedder: str) -> float | None:
    """The 1:1 threshold of the shipped profile whose id is ``embedder`` (None: not shipped)."""
    from agent.vision.errors import VisionError
    from agent.vision.manifest import load_manifest

    try:
        profiles = load_manifest().raw["profiles"]
    except VisionError as exc:
        raise UsageError(f"{exc}; give --min-threshold") from None
    for profile in profiles.values():
        if profile["id"] == embedder and profile.get("recommended_threshold") is not None:
            return float(profile["recommended_threshold"])
    return None


def _store(args: argparse.Namespace) -> WatchlistStore:
    floor = args.min_threshold if args.min_threshold is not None else _profile_floor(args.embedder)
    return WatchlistStore(
        load_identity(args.state, credentials_from_env()), args.embedder, min_threshold=floor
    )


def _install(args: argparse.Namespace) -> int:
    data = read_bounded(args.bundle, DEFAULT_LIMITS.bundle_bytes, "watchlist bundle")
    watchlist = _store(args).install(data, datetime.now(UTC))
    header = watchlist.header
    print(
        f"installed watchlist version {header.version} (deployment {header.deployment_id}, "
        f"{len(watchlist.entries)} entries, expires {format_time(header.expires_at)})"
    )
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        watchlist = store.load(datetime.now(UTC), wipe_if_expired=False)
    except Expired as exc:
        print(f"watchlist: expired ({exc}); the agent wipes it")
        return EXIT_OK
    floors = store.floors()
    if store.floors_problem is not None:  # counters.json deleted or edited (issue 17)
        print(f"ALARM: {store.floors_problem}")
    if watchlist is None:
        print(f"watchlist: none installed (version floor {floors.watchlist_version})")
        return EXIT_OK
    header = watchlist.header
    embeddings = sum(len(e.embeddings) for e in watchlist.entries)
    # Counts only: entries (references, embeddings) are never printed.
    print(
        f"version:     {header.version}\n"
        f"deployment:  {header.deployment_id}\n"
        f"device:      {header.device_id}@{header.site}\n"
        f"issued:      {format_time(header.issued_at)}\n"
        f"expires:     {format_time(header.expires_at)}\n"
        f"entries:     {len(watchlist.entries)} ({embeddings} embeddings, dim {header.dim})\n"
        f"threshold:   {header.threshold.describe()}\n"
        f"suite:       {header.hpke_suite}\n"
        f"signed by:   {len(watchlist.signed_by)} ops key(s)"
    )
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from agent.check import render, run_checks

    rows = run_checks(
        args.config,
        broker=not args.offline,
        credentials=credentials_from_env(),
        camera=not args.no_camera,
        source=args.source,
    )
    print(render(rows))
    failed = [r.name for r in rows if not r.ok]
    if failed:
        print(f"check FAILED: {', '.join(failed)}")
        return EXIT_CHECK_FAILED
    warned = [r.name for r in rows if r.warn]
    print("check passed" + (f" (look at: {', '.join(warned)})" if warned else ""))
    return EXIT_OK


def _bench(args: argparse.Namespace) -> int:
    import sys

    from agent.bench import Budget, render, run_bench, to_json
    from agent.config import load_config
    from agent.io.board import cpu_temperature, read_board
    from agent.vision.errors import VisionError

    config = load_config(args.config)
    budget = Budget.quick(config) if args.quick else Budget.full()
    try:
        report = run_bench(
            config,
            budget,
            read_board(),
            cpu_temperature,
            lambda text: print(f"bench: {text}", file=sys.stderr, flush=True),
        )
    except VisionError as exc:
        raise UsageError(str(exc)) from None
    print(to_json(report) if args.json else render(report))
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from agent.app import build_agent, install_signal_handlers
    from agent.config import load_config
    from agent.io.sources import SourceError
    from agent.vision.errors import VisionError

    try:
        agent = build_agent(
            load_config(args.config),
            source=args.source,
            until_end=args.until_end,
            watchlist_wait=args.watchlist_wait,
        )
    except (SourceError, VisionError) as exc:
        raise UsageError(str(exc)) from None
    install_signal_handlers(agent)
    return agent.run()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument("-v", "--verbose", action="count", default=0)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    r = sub.add_parser("run", help="the daemon: camera to signed alerts (systemd runs this)")
    r.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="PATH")
    r.add_argument(
        "--source",
        metavar="URI",
        help="override camera.source (file path, v4l2:/dev/video0, picamera2:0, rtsp://...)",
    )
    r.add_argument(
        "--until-end",
        action="store_true",
        help="process every frame of a finite source, drain the outbox, exit 0 (tests, "
        "replays, audits); exit 3 if no consumer subscribes to the events within 30 s",
    )
    r.add_argument(
        "--watchlist-wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="with --until-end: wait this long for a watchlist before replaying",
    )
    r.set_defaults(handler=_run)
    chk = sub.add_parser(
        "check",
        help="preflight for technicians: config, keys, certificate, clock, broker, watchlist, "
        "camera (opens it and reads one frame)",
    )
    chk.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="PATH")
    chk.add_argument("--offline", action="store_true", help="skip the broker connection")
    chk.add_argument(
        "--no-camera",
        action="store_true",
        help="do not open the camera, only check its software is installed (the service's "
        "ExecStartPre: the agent itself retries a camera that is down)",
    )
    chk.add_argument("--source", metavar="URI", help="check this camera instead of camera.source")
    chk.set_defaults(handler=_check)
    b = sub.add_parser(
        "bench",
        help="about a minute: per-face time and frames/s of each profile on this board, and "
        "which profile and frame rate it sustains (docs/operator-guide.md)",
    )
    b.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="PATH")
    b.add_argument("--quick", action="store_true", help="a few seconds, configured resolution")
    b.add_argument("--json", action="store_true", help="the figures as JSON on stdout")
    b.set_defaults(handler=_bench)
    wl = sub.add_parser("watchlist", help="verify, install and inspect the watchlist")
    wl_sub = wl.add_subparsers(dest="watchlist_command", required=True, metavar="ACTION")
    for name, handler, text in (
        ("install", _install, "verify a bundle as on receipt and install it atomically"),
        ("show", _show, "version, deployment, expiry and entry count (never entries)"),
    ):
        p = wl_sub.add_parser(name, help=text)
        if name == "install":
            p.add_argument("bundle", type=Path, metavar="BUNDLE")
        p.add_argument("--state", type=Path, required=True, metavar="DIR")
        p.add_argument(
            "--embedder",
            type=_embedder,
            required=True,
            metavar="SHA256",
            help="embedding profile id this device runs (models/MANIFEST.json)",
        )
        p.add_argument(
            "--min-threshold",
            type=float,
            metavar="X",
            help="refuse a watchlist signed with a lower threshold (default: the 1:1 threshold "
            "of the MANIFEST profile whose id is --embedder)",
        )
        p.set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(PROG, lambda args: int(args.handler(args)), build_parser(), argv)
