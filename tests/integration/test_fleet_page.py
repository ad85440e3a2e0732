"""The fleet view and the deployment page in the real browser (issue 19).

The whole chain runs: three real agents (synthetic vision, status every second) on the TLS
broker, ``lfr-alerts listen`` verifying and storing their signed statuses, ``lfr-alerts
serve --registry`` rendering them, Debian's Chromium reading the page. A device stops (its
signed offline status) and comes back; another is paused by a two-person signed command; a
third's certificate, as the registry records it, has ten days left. With
``LFR_DOCS_SCREENSHOTS=1`` the run writes the operator guide's screenshots (docs/img/fleet-view.png,
docs/img/deployment-page.png); otherwise it writes them to a temporary folder, so that a test run
leaves the checkout as it was.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from central.pilot import collect
from central.store import AlertStore
from protocol.command import Action, Command, sign_command
from protocol.entries import dump_entries_file
from protocol.event import sign_event
from protocol.keys import load_signing_private
from provisioning.authority import load_ops_signer
from provisioning.fleet import renew
from provisioning.quickstart import quickstart
from tests.conftest import Fleet
from tests.integration.test_officer_page import (
    BIN,
    CHROMIUM,
    OFFICER,
    PASSWORD,
    _browser,
    _free_port,
    _run,
)
from tests.unit.test_event import make_event
from tools.broker import Broker, client
from tools.processes import wait_until
from tools.synthetic import Appearance, make_clip, synthetic_entries, use_synthetic

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="Debian chromium is not installed (make install-system does it)",
    ),
]
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


def shot(name: str) -> str:
    if os.environ.get("LFR_DOCS_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        return str(DOCS_IMG / name)
    return str(Path(tempfile.gettempdir()) / f"lfr-{os.getpid()}-{name}")


STATUS_INTERVAL = "2s"  # the agents report every second; stale after 5 s without one


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fleetview")
    quickstart(root, devices=3, now=datetime.now(UTC))
    # cam-03's certificate renewed 80 days ago (device certificates last 90): ten days left,
    # as the registry records it; the agent keeps the one it has, which the broker accepts.
    renew(root / "authority", "cam-03", root / "renewed", datetime.now(UTC) - timedelta(days=80))
    return root


@dataclass
class Console:
    index: dict[str, Any]
    base: str
    db: str
    tmp: Path
    logs: Path
    clip: Path
    agents: dict[str, subprocess.Popen[bytes]]

    def start_agent(self, device_id: str) -> None:
        device = next(d for d in self.index["devices"] if d["id"] == device_id)
        log = (self.logs / f"{device_id}.log").open("ab")
        self.agents[device_id] = subprocess.Popen(
            [str(BIN / "lfr-agent"), "run", "--config", device["config"],
             "--source", str(self.clip)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def stop_agent(self, device_id: str) -> None:
        process = self.agents.pop(device_id)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0, (self.logs / f"{device_id}.log").read_text()


def _serve(index: dict[str, Any], db: str, tmp: Path, logs: Path) -> tuple[int, Any]:
    made = _run(
        "lfr-provision", "page-cert", "--authority", index["authority_dir"], "--host",
        "localhost", "--out", str(tmp / "page"),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    port = _free_port()
    process = subprocess.Popen(
        [
            str(BIN / "lfr-alerts"), "serve", "--db", db, "--adjudication-key",
            str(Path(index["authority_dir"]) / "adjudication.key"), "--registry",
            index["registry"], "--status-interval", STATUS_INTERVAL, "--port", str(port),
            "--tls-cert", str(tmp / "page" / "page.crt"),
        ],
        stdout=(logs / "serve.log").open("ab"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert process.poll() is None, (logs / "serve.log").read_text()
            time.sleep(0.1)
    return port, process


def _publish_watchlist(index: dict[str, Any], tmp: Path) -> None:
    """A signed watchlist for the site (nobody in the clip is on it), valid for 1 h: the
    devices then track faces, and the fleet view has a version and an expiry to show."""
    entries = tmp / "entries.json"
    entries.write_bytes(dump_entries_file(synthetic_entries([5])))
    args = [
        "publish", str(entries), "--site", "demo", "--authority", index["authority_dir"],
        "--client-cert", index["clients"]["ops"]["cert"], "--expires", "1h", "--deployment",
        "fleet-view-test", "--threshold", "0.9",
    ]  # fmt: skip
    for key in index["ops_keys"]:
        args += ["--sign-with", key]
    published = subprocess.run(
        [str(BIN / "lfr-watchlist"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert published.returncode == 0, published.stdout + published.stderr


@pytest.fixture(scope="module")
def console(
    index: dict[str, Any], broker: Broker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Console]:
    tmp = tmp_path_factory.mktemp("console")
    logs = tmp / "logs"
    logs.mkdir()
    db = f"sqlite:///{tmp}/alerts.db"
    AlertStore(db).close()  # migrated before two processes open it
    added = _run("lfr-alerts", "officers", "add", "--db", db, OFFICER, "--password-stdin",
                 stdin=PASSWORD + "\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    listener = subprocess.Popen(
        [str(BIN / "lfr-alerts"), "listen", "--registry", index["registry"], "--broker",
         f"{index['broker']['host']}:{index['broker']['port']}", "--client-cert",
         index["clients"]["alerts"]["cert"], "--db", db],
        stdout=(logs / "listen.log").open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    port, server = _serve(index, db, tmp, logs)
    clip = make_clip(tmp / "c.gif", 30, [Appearance(1, 0, 12), Appearance(2, 10, 25, 1)])
    for device in index["devices"]:
        use_synthetic(Path(device["config"]), loop=True)
        config = Path(device["config"])
        config.write_text(config.read_text() + "\n[status]\ninterval_seconds = 1\n")
    running = Console(index, f"https://localhost:{port}", db, tmp, logs, clip, {})
    for device in index["devices"]:
        running.start_agent(device["id"])
    _publish_watchlist(index, tmp)
    yield running
    for device_id in list(running.agents):
        running.stop_agent(device_id)
    for process in (server, listener):
        process.terminate()
        process.wait(timeout=10)
    for name in ("serve.log", "listen.log"):
        assert "Traceback" not in (logs / name).read_text(), name


def _login(console: Console, pw: Any) -> tuple[Any, Any]:
    browser = _browser(pw)
    # The test's CA is not in the browser's store (test_officer_page checks the chain).
    context = browser.new_context(
        ignore_https_errors=True, accept_downloads=True, viewport={"width": 1366, "height": 768}
    )
    tab = context.new_page()
    tab.goto(f"{console.base}/fleet")
    assert tab.url == f"{console.base}/login"
    tab.fill('input[name="name"]', OFFICER)
    tab.fill('input[name="password"]', PASSWORD)
    tab.click("text=Log in")
    tab.wait_for_url(f"{console.base}/")
    return browser, tab


def _row(tab: Any, device_id: str) -> str:
    return str(tab.locator(f'tr[data-device="{device_id}"]').inner_text())


def _until_row(tab: Any, console: Console, device_id: str, text: str, timeout: float = 30) -> str:
    """Reload /fleet until the device's row says ``text`` (the page refreshes itself too)."""

    def shown() -> bool:
        tab.goto(f"{console.base}/fleet")
        return text in _row(tab, device_id)

    wait_until(shown, timeout, f"{device_id}: {text!r} on the fleet view", step=0.5)
    return _row(tab, device_id)


def _fits_a_tablet(tab: Any) -> None:
    """At 768 px wide the page itself does not scroll sideways (wide tables scroll in their
    own box, charts shrink); the 1366 px screenshots were taken before."""
    tab.set_viewport_size({"width": 768, "height": 1024})
    assert tab.evaluate("document.documentElement.scrollWidth") <= 768
    tab.set_viewport_size({"width": 1366, "height": 768})


def _pause(index: dict[str, Any], device_id: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    signers = [load_ops_signer(Path(k)) for k in index["ops_keys"][:2]]
    command = sign_command(
        Command(device_id, "demo", Action.PAUSE, 100, now, now + timedelta(minutes=5)), signers
    )
    ops = client(index, "ops")
    try:
        ops.wait_ack(ops.publish(f"lfr/v1/demo/{device_id}/command", command))
    finally:
        ops.close()


def test_the_fleet_view_follows_devices_offline_back_paused_and_expiring(
    console: Console,
) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser, tab = _login(console, pw)
        for device_id in ("cam-01", "cam-02", "cam-03"):
            _until_row(tab, console, device_id, "online")
        cam03 = _row(tab, "cam-03")
        assert "certificate expires in" in cam03 and ("9 days" in cam03 or "10 days" in cam03)
        assert "certificate" not in _row(tab, "cam-01")  # 90 days left: no alarm
        # quickstart's devices read their keys from plain files (no systemd credentials)
        assert "keys unsealed" in _row(tab, "cam-01")
        for device_id in ("cam-01", "cam-02", "cam-03"):
            row = _until_row(tab, console, device_id, "(installed)")
            assert "expires in 59 min" in row or "expires in 1 h" in row
        # cam-01 stops: its signed offline status arrives, "offline since" is shown
        console.stop_agent("cam-01")
        row = _until_row(tab, console, "cam-01", "offline")
        assert "since" in row
        # ... and comes back: online again, since the moment it returned
        console.start_agent("cam-01")
        row = _until_row(tab, console, "cam-01", "online")
        assert "since" in row and "s ago" in row
        # cam-02 is paused by a signed two-person command
        _pause(console.index, "cam-02")
        row = _until_row(tab, console, "cam-02", "paused")
        assert row.count("paused") >= 2  # the connection column and the paused/wiped column
        summary = tab.locator("p.stats").inner_text()
        assert "3 devices" in summary and "1 paused" in summary and "2 online" in summary
        assert tab.locator("script").count() == 0
        tab.screenshot(path=shot("fleet-view.png"), full_page=True)
        _fits_a_tablet(tab)
        # frozen (SIGSTOP: its connection stays open, so no offline status yet): shown as
        # stale once 2.5 status intervals pass without a new document
        process = console.agents.pop("cam-03")
        process.send_signal(signal.SIGSTOP)
        try:
            row = _until_row(tab, console, "cam-03", "stale", timeout=20)
            assert "no status for" in row
        finally:
            process.kill()  # the broker sees the connection drop and publishes its will
            process.wait(timeout=10)
        _until_row(tab, console, "cam-03", "offline")
        browser.close()


def _seed_alerts(console: Console, fleet: Fleet) -> None:
    """A day of alerts as the listener stores them (signed by the devices' own keys), spread
    over the cameras and hours, with officers' decisions."""
    store = AlertStore(console.db)
    now = datetime.now(UTC).replace(microsecond=0)
    outcomes = ["confirmed", "false_alert", "no_action", None]
    for n in range(48):
        device = console.index["devices"][n % 3]
        key = load_signing_private(Path(device["state_dir"], "keys", "signing.key").read_bytes())
        event = make_event(fleet, device_id=device["id"], site="demo")
        received = now - timedelta(minutes=30 * n + 5)
        store.add(event, sign_event(event, key), received)
        outcome = outcomes[n % 4]
        if outcome is not None:
            store.adjudicate(event.event_id, outcome, "PC 1 Smith", received + timedelta(
                seconds=40 + 13 * n))  # fmt: skip
    store.close()


def test_the_deployment_page_shows_the_pilot_report_and_its_downloads(
    console: Console, fleet: Fleet
) -> None:
    from playwright.sync_api import sync_playwright

    _seed_alerts(console, fleet)
    for device_id in list(console.agents):
        console.stop_agent(device_id)  # the figures hold still while the page is compared
    time.sleep(1)
    store = AlertStore(console.db)
    expected = collect(store)
    store.close()
    assert expected.total.alerts == 48 and expected.total.people > 0
    with sync_playwright() as pw:
        browser, tab = _login(console, pw)
        tab.goto(f"{console.base}/deployment")
        text = tab.inner_text("main")
        assert f"{expected.total.alerts} alerts" in text
        assert f"{expected.total.people} people seen" in text
        assert f"{expected.total.false_alerts} false alerts" in text
        assert tab.locator("svg.chart").count() == 5
        for camera in ("cam-01", "cam-02", "cam-03"):
            assert tab.locator("th", has_text=camera).count() == 1
        for svg in tab.locator("svg.chart").all():
            box = svg.bounding_box()
            assert box is not None and box["width"] > 300  # drawn, not an empty box
        tab.screenshot(path=shot("deployment-page.png"), full_page=True)
        _fits_a_tablet(tab)
        # The links, fetched with the browser's session (Chromium cancels a download from
        # a site whose certificate it does not trust, as here with the test's own CA).
        links = {a.inner_text(): a.get_attribute("href") for a in tab.locator("a[download]").all()}
        assert links == {"Markdown": "/deployment.md", "CSV": "/deployment.csv"}
        got = tab.context.request.get(f"{console.base}/deployment.csv")
        assert got.status == 200 and got.headers["content-type"] == "text/csv; charset=utf-8"
        assert got.headers["content-disposition"].endswith('.csv"')
        rows = list(csv.DictReader(io.StringIO(got.text())))
        total = next(r for r in rows if r["table"] == "total")
        assert (int(total["alerts"]), int(total["false_alerts"]), int(total["people"])) == (
            expected.total.alerts,
            expected.total.false_alerts,
            expected.total.people,
        )
        markdown = tab.context.request.get(f"{console.base}/deployment.md").text()
        assert markdown.startswith("# Pilot assessment") and "## Per camera" in markdown
        browser.close()
    # downloads need the login like every page
    tls = ssl.create_default_context(cafile=str(console.tmp / "page" / "ca.crt"))
    import http.client

    port = int(console.base.rsplit(":", 1)[1])
    for path, status in (("/deployment.csv", 401), ("/deployment.md", 401), ("/fleet", 303)):
        conn = http.client.HTTPSConnection("localhost", port, context=tls, timeout=10)
        conn.request("GET", path)
        response = conn.getresponse()
        assert response.status == status and b"cam-0" not in response.read(), path
        conn.close()
