"""The end-to-end of make test-arm64: the packaged agent in the arm64 root against this host.

The fleet (quickstart, on the host) lives in a directory bind-mounted at the same path inside
the root, so every path in it means the same on both sides. On the host: the TLS Mosquitto of
the fleet, ``lfr-alerts listen`` and the ops' enrolment and seal (x86, as on the ops
workstation). In the root, as the ``lfr-agent`` user, through the package's ``/usr/bin``
wrapper: ``lfr-agent run --until-end`` on a short clip of LFW photos not enrolled: a listed
person, then a stranger. Passes when the control room stored exactly one alert, for the
listed person.

    python tools/arm64/e2e.py --root ROOT --fleet FLEET --lfw LFW
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from central.store import AlertStore
from central.watchlist_cli import main as watchlist_main
from tools.broker import Broker, publish_retained
from tools.demo import recommended_threshold

LISTED = ("Colin_Powell", (1, 2, 3), 4)  # enrolled from photos 1-3; photo 4 walks past
STRANGER = ("Tony_Blair", 1)
# 0.1 s a frame; a 2.5 s gap ends the track (a shorter one joins the stranger to the listed
# person's track, which, having alerted, is not embedded again: the stranger never tested).
FACE_FRAMES, GAP_FRAMES = 8, 25
STOPPED = re.compile(r"stopped: frames=(\d+) faces_detected=(\d+) faces_embedded=(\d+)")


def lfw(root: Path, name: str, number: int) -> Path:
    return root / name / f"{name}_{number:04d}.jpg"


def in_root(root: Path, *argv: str) -> list[str]:
    """``argv`` run inside the root as the service user, with a clean environment."""
    env = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/var/lib/lfr-agent", "LANG=C.UTF-8"]
    runuser = ["runuser", "-u", "lfr-agent", "--"]
    return ["chroot", str(root), "/usr/bin/env", "-i", *env, *runuser, *argv]


def make_clip(lfw_root: Path, frames: Path) -> int:
    frames.mkdir(parents=True)
    blank = np.full((250, 250, 3), 30, np.uint8)
    listed = lfw(lfw_root, LISTED[0], LISTED[2])
    stranger = lfw(lfw_root, *STRANGER)
    count = 0
    for item in (None, listed, None, stranger, None):
        picture = blank if item is None else np.asarray(Image.open(item).convert("RGB"))
        for _ in range(GAP_FRAMES if item is None else FACE_FRAMES):
            Image.fromarray(picture).save(frames / f"{count:05d}.png")
            count += 1
    frames.chmod(0o755)
    return count


def seal_watchlist(
    index: dict[str, Any], device: dict[str, Any], lfw_root: Path, work: Path
) -> None:
    """Ops on x86: enrol the listed person with the node's profile, seal, push (retained)."""
    photos = work / "enrol" / "WL-0001"
    photos.mkdir(parents=True)
    for number in LISTED[1]:
        source = lfw(lfw_root, LISTED[0], number)
        (photos / source.name).write_bytes(source.read_bytes())
    entries = work / "entries.json"
    profile = "accurate"  # the agent's default (agent/config.py), which quickstart keeps
    args = ["enrol", "--images", str(photos.parent), "--out", str(entries), "--profile", profile]
    assert watchlist_main(args) == 0, "lfr-watchlist enrol failed"
    bundle = work / "wl1.jws"
    seal = ["seal", str(entries), "--device", device["id"], "--registry", index["registry"]]
    seal += ["--authority", index["authority_dir"], "--version", "1", "--expires", "1h"]
    seal += ["--deployment", "arm64-e2e", "--out", str(bundle)]
    for key in index["ops_keys"]:
        seal += ["--sign-with", key]
    assert watchlist_main(seal) == 0, "lfr-watchlist seal failed"
    topic = f"lfr/v1/{device['site']}/{device['id']}/watchlist"
    publish_retained(index, topic, bundle.read_bytes())


def listener(index: dict[str, Any], db: str) -> subprocess.Popen[str]:
    broker = f"{index['broker']['host']}:{index['broker']['port']}"
    argv = [str(Path(sys.executable).parent / "lfr-alerts"), "listen", "--registry"]
    argv += [index["registry"], "--broker", broker, "--client-cert"]
    argv += [index["clients"]["alerts"]["cert"], "--db", db]  # the control room's group
    return subprocess.Popen(  # noqa: S603 - our own console script
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--fleet", type=Path, required=True)
    parser.add_argument("--lfw", type=Path, required=True)
    args = parser.parse_args(argv)
    index: dict[str, Any] = json.loads((args.fleet / "quickstart.json").read_text())
    device: dict[str, Any] = index["devices"][0]
    if recommended_threshold() is None:  # the profile's own threshold when MANIFEST has one
        config = Path(device["config"])
        config.write_text(config.read_text() + "\n[matching]\nthreshold = 0.35\n")
    broker = Broker(
        Path(index["broker"]["config"]), index["broker"]["host"], index["broker"]["port"]
    )
    broker.start()
    db = f"sqlite:///{args.fleet / 'alerts.db'}"
    listening = listener(index, db)
    try:
        seal_watchlist(index, device, args.lfw, args.fleet / "ops")
        frames = make_clip(args.lfw, args.fleet / "clip")
        time.sleep(1)  # the listener subscribed
        t0 = time.monotonic()
        run = subprocess.run(  # noqa: S603 - chroot into our own test root
            in_root(
                args.root,
                "lfr-agent",
                "-v",
                "run",
                "--config",
                device["config"],
                "--source",
                str(args.fleet / "clip"),
                "--until-end",
                # Under emulation, verifying and opening the watchlist takes seconds: replay
                # only once it is in force.
                "--watchlist-wait",
                "120",
            ),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        run_s = time.monotonic() - t0
        (args.fleet / "agent-run.log").write_text(run.stdout + run.stderr)
        if run.returncode != 0:
            print(f"e2e: lfr-agent run exited {run.returncode}:\n{run.stderr[-2000:]}")
            return 1
        deadline = time.monotonic() + 20
        refs: list[str] = []
        while time.monotonic() < deadline:
            refs = [a.subject_ref for a in AlertStore(db).recent(10)]
            if refs:
                break
            time.sleep(0.5)
        time.sleep(2)  # a second (wrong) alert would arrive about now
        refs = [a.subject_ref for a in AlertStore(db).recent(10)]
    finally:
        listening.send_signal(signal.SIGTERM)
        heard = listening.communicate(timeout=10)[0]
        broker.stop()
    (args.fleet / "listener.log").write_text(heard)
    counts = STOPPED.search(run.stderr + run.stdout)
    embedded = int(counts.group(3)) if counts else 0
    # The listed person's track embeds at most its template (3 faces) before it alerts: more
    # means the stranger's own track was embedded and matched nobody.
    ok = refs == ["WL-0001"] and embedded > 3
    print(
        f"e2e: lfr-agent run --until-end in the arm64 root: {frames} frames in {run_s:.1f} s, "
        f"{counts.group(0) if counts else 'no stop line'}; alerts stored on the host by "
        f"lfr-alerts listen: {refs} (expected ['WL-0001'] and > 3 faces embedded: the listed "
        f"person once, the stranger embedded and not alerted): {'ok' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
