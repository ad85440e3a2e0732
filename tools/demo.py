"""``make demo``: the whole system on this machine, end to end, then everything stopped.

A local TLS Mosquitto with the generated config; ``lfr-provision quickstart`` (two ops keys,
threshold 2, one device); a watchlist enrolled from photos and published signed by both ops
keys; ``lfr-agent`` on a clip in which one enrolled person walks past among people who are
not enrolled; ``lfr-alerts listen`` storing what the control room receives. Then it prints
the verified alerts, the device's privacy counters and where the decrypted probe crops are.

Pictures come from pinned registry packages (official portraits in the ``face_recognition``
1.3.0 sdist's test images, public domain; NASA's astronaut photo in scikit-image 0.24.0),
fetched once into ``.demo/cache`` and checked against their sha256. ``DEMO_FACES=DIR``
(``DIR/<subject_ref>/*.jpg``) and ``DEMO_VIDEO=PATH`` (a video, GIF or image folder) use
your own enrolment photos and clip instead.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
from PIL import Image

from tools.broker import mosquitto_binary
from tools.demo_assets import CACHE, WORK, fetch_assets

BIN = Path(sys.executable).parent


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def fail(text: str) -> NoReturn:
    raise SystemExit(f"demo: {text}")


def run(
    tool: str, *args: str, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(BIN / tool), *args], input=stdin, capture_output=True, text=True, check=False
    )
    if check and result.returncode != 0:
        fail(f"{tool} {args[0]} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result


def mosquitto() -> str:
    found = mosquitto_binary()
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if (
        os.geteuid() != 0
        and subprocess.run(["sudo", "-n", "true"], capture_output=True, check=False).returncode != 0
    ):
        fail("Mosquitto is not installed: apt-get install mosquitto (as root), then re-run")
    print("installing mosquitto with apt-get ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(
        [*sudo, "apt-get", "install", "-y", "-qq", "mosquitto"],
        check=True,
        env=env,
        capture_output=True,
    )
    return shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def fit(path: Path, height: int) -> np.ndarray[Any, np.dtype[np.uint8]]:
    with Image.open(path) as image:
        rgb = image.convert("RGB")
        width = round(rgb.width * height / rgb.height)
        return np.asarray(rgb.resize((width, height), Image.Resampling.LANCZOS))


def build_clip(frames_dir: Path, people: list[Path]) -> int:
    """People walk past one after another, a gap between them, on a plain concourse."""
    frames_dir.mkdir(parents=True, exist_ok=True)
    width, height = 960, 540
    ramp = np.linspace(70, 120, width, dtype=np.uint8)
    background = np.repeat(np.stack([ramp, ramp, ramp + 10], axis=-1)[None], height, axis=0)
    count = 0

    def save(frame: np.ndarray[Any, np.dtype[np.uint8]]) -> None:
        nonlocal count
        Image.fromarray(frame).save(frames_dir / f"{count:05d}.png")
        count += 1

    for person in people:
        picture = fit(person, 420)
        for i in range(14):  # 1.4 s in view, moving across
            frame = background.copy()
            x = min(40 + 25 * i, width - picture.shape[1])
            frame[60:480, x : x + picture.shape[1]] = picture[:, : width - x]
            save(frame)
        for _ in range(25):  # 2.5 s of empty concourse: the track ends
            save(background)
    return count


def clean() -> None:
    for name in (
        "fleet",
        "alerts.db",
        "alerts.db-wal",
        "alerts.db-shm",
        "probes",
        "page",
        "frames",
        "enrol",
        "entries.json",
    ):
        target = WORK / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    WORK.mkdir(exist_ok=True)


def pictures() -> tuple[Path, str]:
    """(enrolment folder, clip): the user's own, or built from the pinned pictures."""
    step("1. pictures: enrolment photos and a clip")
    if os.environ.get("DEMO_FACES"):
        enrol_dir = Path(os.environ["DEMO_FACES"])
    else:
        found = fetch_assets(CACHE)
        enrol_dir = WORK / "enrol"
        (enrol_dir / "WL-0001").mkdir(parents=True)
        for name in ("obama-1.jpg", "obama-2.jpg"):
            shutil.copy(found[name], enrol_dir / "WL-0001" / name)
    if os.environ.get("DEMO_VIDEO"):
        return enrol_dir, os.environ["DEMO_VIDEO"]
    found = fetch_assets(CACHE)
    people = [found["biden.jpg"], found["astronaut.png"], found["obama-3.jpg"]]
    frames = build_clip(WORK / "frames", people)
    print(
        f"clip: {frames} frames; a stranger, another stranger, then WL-0001 (a photo not "
        "used for enrolment)"
    )
    return enrol_dir, str(WORK / "frames")


def recommended_threshold(profile: str = "accurate") -> float | None:
    from agent.vision.manifest import load_manifest

    value = load_manifest().raw["profiles"][profile].get("recommended_threshold")
    return None if value is None else float(value)


def provision(broker_bin: str, clip: str, processes: list[subprocess.Popen[str]]) -> dict[str, Any]:
    step("2. provisioning: authority (2 ops keys, threshold 2), one device, TLS broker")
    fleet = WORK / "fleet"
    run(
        "lfr-provision",
        "quickstart",
        "--dir",
        str(fleet),
        "--devices",
        "1",
        "--site",
        "kings-cross",
    )
    index: dict[str, Any] = json.loads((fleet / "quickstart.json").read_text())
    config = Path(index["devices"][0]["config"])
    # Small-face mode: people are a few metres away in a wide frame, as on a concourse.
    extra = "\n[vision]\ntiles = 3\n\n[matching]\ncooldown_seconds = 60\n"
    if recommended_threshold() is None:
        extra += "threshold = 0.35\n"
    config.write_text(config.read_text() + extra)
    processes.append(
        subprocess.Popen(
            [broker_bin, "-c", index["broker"]["config"]],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            text=True,
        )
    )
    time.sleep(0.5)
    print(
        f"mosquitto (TLS, client certificates, ACL) on "
        f"{index['broker']['host']}:{index['broker']['port']}"
    )
    # The camera row reads one frame of the clip the agent will run on (no camera here).
    checked = run("lfr-agent", "check", "--config", str(config), "--source", clip)
    print(checked.stdout.rstrip())
    return index


def live_run(
    index: dict[str, Any], enrol_dir: Path, clip: str, processes: list[subprocess.Popen[str]]
) -> str:
    """Enrol, listen, run the agent, publish; returns what the listener printed."""
    device = index["devices"][0]
    broker = f"{index['broker']['host']}:{index['broker']['port']}"
    step("3. ops: enrol the watchlist with the device's models")
    entries = WORK / "entries.json"
    print(
        run(
            "lfr-watchlist", "enrol", "--images", str(enrol_dir), "--out", str(entries)
        ).stdout.rstrip()
    )
    step("4. control room: lfr-alerts listen; device: lfr-agent run on the clip")
    listener = subprocess.Popen(
        [
            str(BIN / "lfr-alerts"),
            "listen",
            "--registry",
            index["registry"],
            "--broker",
            broker,
            "--client-cert",
            index["clients"]["alerts"]["cert"],
            "--db",
            f"sqlite:///{WORK / 'alerts.db'}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    agent = subprocess.Popen(
        [
            str(BIN / "lfr-agent"),
            "run",
            "--config",
            device["config"],
            "--source",
            clip,
            "--until-end",
            "--watchlist-wait",
            "120",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    processes += [listener, agent]
    time.sleep(3)
    if agent.poll() is not None:
        fail(f"lfr-agent stopped:\n{agent.communicate()[0]}")
    step("5. ops: publish the watchlist, sealed to the device, signed by both ops keys")
    print(
        run(
            "lfr-watchlist",
            "publish",
            str(entries),
            "--devices",
            device["id"],
            "--authority",
            index["authority_dir"],
            "--client-cert",
            index["clients"]["ops"]["cert"],
            "--sign-with",
            index["ops_keys"][0],
            "--sign-with",
            index["ops_keys"][1],
            "--expires",
            "2h",
            "--deployment",
            "demo-kings-cross",
        ).stdout.rstrip()
    )
    output, _ = agent.communicate(timeout=300)
    if agent.returncode != 0:
        fail(f"lfr-agent failed:\n{output}")
    time.sleep(1.5)  # the last events reach the listener
    listener.send_signal(signal.SIGTERM)
    return listener.communicate(timeout=10)[0]


def report(index: dict[str, Any], listened: str) -> int:
    step("6. what the control room received (every event's signature verified)")
    device = index["devices"][0]
    alerts = [line for line in listened.splitlines() if line.startswith("ALERT")]
    print("\n".join(alerts) if alerts else "no alerts")
    status = json.loads(
        run(
            "lfr-watchlist",
            "status",
            "--authority",
            index["authority_dir"],
            "--client-cert",
            index["clients"]["ops"]["cert"],
            "--json",
        ).stdout
    )
    counters = status.get(device["id"], {})
    print(
        f"device counters: frames {counters.get('frames')}, faces seen "
        f"{counters.get('faces_detected')}, discarded {counters.get('faces_discarded')}, "
        f"matched {counters.get('matches')}, events published "
        f"{counters.get('events_published')}"
    )
    from central.store import AlertStore
    from lfrkit.files import atomic_write, ensure_private_dir
    from protocol.event import open_probe, parse_stored_event
    from protocol.keys import load_hpke_private

    probes = ensure_private_dir(WORK / "probes")  # faces: owner only
    key = load_hpke_private(Path(index["adjudication_key"]).read_bytes())
    store = AlertStore(f"sqlite:///{WORK / 'alerts.db'}")
    for alert in store.recent():
        atomic_write(
            probes / f"{alert.event_id}.jpg", open_probe(parse_stored_event(alert.token), key)
        )
    store.close()
    print(f"probe crops, decrypted with the adjudication key: {probes}/")
    officers_page(index)
    return len(alerts)


def log_in(port: int, cafile: Path, name: str, password: str) -> tuple[int, str]:
    """Log in to the page on ``port`` as a browser would; (status, body) of the alert list."""
    import http.client
    import re
    import ssl

    tls = ssl.create_default_context(cafile=str(cafile))
    cookies: dict[str, str] = {}

    def request(method: str, path: str, body: str = "") -> tuple[int, str]:
        for _ in range(100):
            conn = http.client.HTTPSConnection("localhost", port, context=tls, timeout=10)
            headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
            if method == "POST":
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            try:
                conn.request(method, path, body.encode() or None, headers)
                response = conn.getresponse()
                break
            except ConnectionRefusedError:
                time.sleep(0.1)  # still starting
        else:
            fail("the officers' page did not start")
        for cookie in response.headers.get_all("Set-Cookie") or []:
            cookie_name, _, rest = cookie.partition("=")
            cookies[cookie_name] = rest.split(";")[0]
        text = response.read().decode()
        conn.close()
        return response.status, text

    nonce = re.search(r'name="login_csrf" value="([^"]+)"', request("GET", "/login")[1])
    if nonce is None:
        fail("the login page has no form")
    status, _ = request(
        "POST", "/login", f"login_csrf={nonce.group(1)}&name={name}&password={password}"
    )
    if status != 303:
        return status, ""
    return request("GET", "/")


def officers_page(index: dict[str, Any]) -> None:
    """A page certificate from the authority, one officer, and a login over HTTPS."""
    import secrets
    import socket

    from lfrkit.files import atomic_write

    step("7. control room: the officers' page (HTTPS, one officer account)")
    page, db = WORK / "page", f"sqlite:///{WORK / 'alerts.db'}"
    run(
        "lfr-provision", "page-cert", "--authority", index["authority_dir"],
        "--host", "localhost", "--host", "127.0.0.1", "--out", str(page),
    )  # fmt: skip
    password = secrets.token_urlsafe(12)
    run("lfr-alerts", "officers", "add", "--db", db, "demo-officer", "--password-stdin",
        stdin=password + "\n")  # fmt: skip
    secret = page / "demo-officer.password"
    atomic_write(secret, password.encode() + b"\n", 0o600)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    serve = [
        str(BIN / "lfr-alerts"), "serve", "--db", db, "--adjudication-key",
        index["adjudication_key"], "--tls-cert", str(page / "page.crt"), "--port", str(port),
    ]  # fmt: skip
    server = subprocess.Popen(serve, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        status, listing = log_in(port, page / "ca.crt", "demo-officer", password)
    finally:
        server.terminate()
        output = server.communicate(timeout=10)[0]
    if status != 200 or "<h1>Alerts</h1>" not in listing:
        fail(f"logging in to the officers' page failed ({status}):\n{output}")
    shown = listing.count('<a href="/alerts/')
    print(f"logged in over HTTPS as demo-officer: the page lists {shown} alert(s)")
    print(
        f"officers' page: {' '.join(serve[:-2])} --port 8443\n"
        f"  then https://localhost:8443/ as demo-officer, password in {secret} "
        f"(trust {page / 'ca.crt'} in the browser)"
    )


def main() -> int:
    started = time.monotonic()
    broker_bin = mosquitto()
    clean()
    enrol_dir, clip = pictures()
    processes: list[subprocess.Popen[str]] = []
    try:
        index = provision(broker_bin, clip, processes)
        alerts = report(index, live_run(index, enrol_dir, clip, processes))
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
                process.communicate(timeout=10)
    if not os.environ.get("DEMO_VIDEO") and alerts != 1:
        fail(f"expected exactly one alert (WL-0001), got {alerts}")
    print(
        f"\ndemo finished in {time.monotonic() - started:.0f}s; nothing left running. "
        "Pictures: face_recognition 1.3.0 test images (US government portraits) and NASA's "
        "astronaut photo via scikit-image 0.24.0."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
