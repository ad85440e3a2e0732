"""The officers' page in a real headless Chromium: see the alert, the face, adjudicate."""

from __future__ import annotations

import io
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from central.store import AlertStore
from lfrkit.files import atomic_write
from protocol import hpke
from protocol.event import seal_probe, sign_event
from protocol.keys import private_pem
from tests.conftest import SHARED, Fleet
from tests.unit.test_event import make_event

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def face_jpeg() -> bytes:
    lfw = SHARED / "datasets" / "lfw" / "Colin_Powell" / "Colin_Powell_0001.jpg"
    if lfw.exists():
        return lfw.read_bytes()
    rng = np.random.default_rng(1)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (160, 160, 3)).astype(np.uint8)).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def page_server(tmp_path: Path, fleet: Fleet) -> Iterator[tuple[str, str, Path]]:
    key = hpke.generate_key(hpke.DEFAULT_SUITE)
    atomic_write(tmp_path / "adjudication.key", private_pem(key), 0o600)
    db = f"sqlite:///{tmp_path}/alerts.db"
    store = AlertStore(db)
    event = make_event(fleet)
    probe = seal_probe(
        face_jpeg(), key.public_key(), event_id=event.event_id, device_id=event.device_id
    )
    event = replace(event, probe=probe)
    store.add(event, sign_event(event, fleet.device_signing))
    store.close()
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs" / f"{event.subject_ref}.jpg").write_bytes(face_jpeg())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "lfr-alerts"),
            "serve",
            "--db",
            db,
            "--adjudication-key",
            str(tmp_path / "adjudication.key"),
            "--references",
            str(tmp_path / "refs"),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(base, timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    yield base, event.event_id, tmp_path
    process.terminate()
    process.communicate(timeout=10)


@pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian chromium is not installed (make install-system does it)",
)
def test_officer_sees_the_face_and_records_a_false_alert(
    page_server: tuple[str, str, Path],
) -> None:
    from playwright.sync_api import sync_playwright

    base, event_id, tmp_path = page_server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page()
        page.goto(base)
        row = page.locator("tr", has_text="WL-0001")
        assert "0.710" in row.inner_text() and "awaiting adjudication" in row.inner_text()
        row.locator("a").click()
        page.wait_for_load_state()
        assert page.url.endswith(f"/alerts/{event_id}")
        probe = page.locator('img[alt="face seen by the camera"]')
        reference = page.locator('img[alt^="reference image"]')
        for image in (probe, reference):
            assert image.evaluate("i => i.complete && i.naturalWidth > 0")
        page.fill('input[name="officer"]', "PC 4521 Khan")
        page.click("text=False alert")
        page.wait_for_load_state()
        assert "False alert by PC 4521 Khan" in page.content()
        page.screenshot(path=str(tmp_path / "adjudicated.png"))
        page.goto(base)
        assert "False alert: 1" in page.inner_text("body")
        browser.close()
    store = AlertStore(f"sqlite:///{tmp_path}/alerts.db")
    stored = store.get(event_id)
    assert stored is not None
    assert (stored.outcome, stored.officer) == ("false_alert", "PC 4521 Khan")
    store.close()


def test_page_refuses_forged_posts_and_is_never_cached(page_server: tuple[str, str, Path]) -> None:
    base, event_id, _ = page_server
    with urllib.request.urlopen(f"{base}/alerts/{event_id}/probe.jpg") as response:
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Content-Type"] == "image/jpeg"
        assert response.read(3) == b"\xff\xd8\xff"
    forged = urllib.request.Request(
        f"{base}/alerts/{event_id}/adjudicate",
        method="POST",
        data=b"outcome=confirmed&officer=x&csrf=guess",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(forged)
    assert refused.value.code == 403
    for path in (
        "/alerts/../../etc/passwd",
        "/references/..%2F..%2Fetc%2Fpasswd",
        "/alerts/not-an-id/probe.jpg",
    ):
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(base + path)
        assert missing.value.code == 404
