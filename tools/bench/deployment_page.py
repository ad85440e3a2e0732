"""How long the deployment page takes at N stored alerts (issue 19), SQLite and PostgreSQL.

``python -m tools.bench.deployment_page --alerts 10000 --db sqlite|postgresql``

Fills a fresh store with N signed alerts (sealed ~4 KB probe crops, as devices send them),
three in four adjudicated, spread over three cameras and a week, and a day of status
snapshots from each camera; then times, median of ``--repeat`` runs:

- ``collect`` (the one computation behind the page, pilot.md and the downloads),
- the whole page as ``lfr-alerts serve`` sends it: an HTTP GET of /deployment (and of
  /deployment.csv) with an officer's session, against the real server process on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import io
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from PIL import Image

from central.pilot import collect
from central.store import AlertStore, SessionRow
from protocol import hpke
from protocol.event import MatchEvent, new_event_id, seal_probe, sign_event
from protocol.status import DeviceStatus, EventsReport, FramesReport, Report, State
from protocol.status import WatchlistReport as Wl
from tools.postgres import create_database, drop_database

BIN = Path(sys.executable).parent
CAMERAS = ("cam-01", "cam-02", "cam-03")


def _probe_jpeg() -> bytes:
    out = io.BytesIO()
    image = Image.linear_gradient("L").resize((112, 112)).convert("RGB")
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def fill(url: str, alerts: int, now: datetime) -> None:
    store = AlertStore(url)
    device = ed25519.Ed25519PrivateKey.generate()
    adjudication = x25519.X25519PrivateKey.generate()
    jpeg = _probe_jpeg() * 2  # about the size of a real 112 px crop
    outcomes = ("confirmed", "false_alert", "no_action", None)
    for n in range(alerts):
        camera = CAMERAS[n % 3]
        event_id = new_event_id()
        received = now - timedelta(seconds=n * 7 * 24 * 3600 // max(1, alerts))  # a week
        event = MatchEvent(
            event_id=event_id, device_id=camera, site="kx", deployment_id="kx-bench",
            watchlist_version=3, subject_ref=f"WL-{n % 500:04d}", category="wanted",
            score=0.71, threshold=0.6, margin=0.2, observed_at=received, track_id=n,
            embedder_sha256="0" * 64, probe_suite=hpke.DEFAULT_SUITE,
            probe=seal_probe(jpeg, adjudication.public_key(), event_id=event_id,
                             device_id=camera),
        )  # fmt: skip
        store.add(event, sign_event(event, device), received)
        outcome = outcomes[n % 4]
        if outcome is not None:
            store.adjudicate(event_id, outcome, "PC 1 Smith", received + timedelta(seconds=90))
    for camera in CAMERAS:
        for minute in range(0, 24 * 60, 5):  # a day of status every 5 minutes
            frames = FramesReport(0, minute * 30, 0, {}, 0, 0, 0, 0, tracks_started=minute * 3)
            report = Report(
                "0.1.0", "0" * 64, {}, minute * 60, 10.0, 0.0,
                Wl(3, "kx-bench", None, "installed", 3, 1, None), frames,
                EventsReport(0, 0, 0, 0, 10_000), (), now - timedelta(minutes=minute),
            )  # fmt: skip
            status = DeviceStatus(State.ONLINE, camera, "kx", report)
            store.add_status(status.to_json())
    store.close()
    del adjudication  # the page never opens a probe


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _key_file(directory: Path) -> Path:
    key = directory / "adjudication.key"
    key.write_bytes(
        x25519.X25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
    )
    key.chmod(0o600)
    return key


def time_pages(url: str, repeat: int, tmp: Path) -> dict[str, float]:
    store = AlertStore(url)
    started = time.perf_counter()
    collect(store)
    timings = {"collect_first_s": time.perf_counter() - started}
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        collect(store)
        runs.append(time.perf_counter() - started)
    timings["collect_s"] = statistics.median(runs)
    token = secrets.token_urlsafe(32)
    store.add_officer("PC 1 Smith", "unused")
    now = int(time.time())
    store.add_session(
        hashlib.sha256(token.encode()).hexdigest(),
        SessionRow("PC 1 Smith", secrets.token_urlsafe(32), "127.0.0.1", now, now),
        keep_per_officer=5,
    )
    store.close()
    port = _free_port()
    server = subprocess.Popen(
        [str(BIN / "lfr-alerts"), "serve", "--db", url, "--adjudication-key",
         str(_key_file(tmp)), "--port", str(port), "--insecure-localhost"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        for path in ("/deployment", "/deployment.csv", "/fleet"):
            runs, size = [], 0
            for _ in range(repeat):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                started = time.perf_counter()
                conn.request("GET", path, headers={"Cookie": f"lfr_session={token}"})
                response = conn.getresponse()
                body = response.read()
                runs.append(time.perf_counter() - started)
                conn.close()
                if response.status != 200:
                    raise SystemExit(f"{path}: HTTP {response.status}")
                size = len(body)
            timings[f"GET {path} s"] = statistics.median(runs)
            timings[f"GET {path} bytes"] = size
    finally:
        server.terminate()
        server.wait(timeout=10)
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lfr-deploy-bench-") as tmp:
        url = f"sqlite:///{tmp}/alerts.db" if args.db == "sqlite" else create_database("lfr_bench")
        try:
            started = time.perf_counter()
            fill(url, args.alerts, datetime.now(UTC).replace(microsecond=0))
            print(f"filled {args.alerts} alerts in {time.perf_counter() - started:.1f} s")
            for name, value in time_pages(url, args.repeat, Path(tmp)).items():
                print(f"{args.db} {args.alerts} alerts: {name} = {value:.3f}")
        finally:
            if args.db == "postgresql":
                drop_database(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
