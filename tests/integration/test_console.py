"""The officers' console in a real headless Chromium against the real ``lfr-alerts serve``.

Live update (an alert stored while the queue is open appears within 2 s), the lock (two
officers, one alert), keyboard decisions, the layout at 1366x768 and on a tablet, and the
``/api/queue`` contract. With ``LFR_DOCS_SCREENSHOTS=1`` the run writes the operator guide's
screenshots (docs/img/console-queue.png, docs/img/console-alert.png); otherwise it writes them
to the test's temporary folder.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.vision.manifest import load_manifest
from central.review_store import ReviewStore
from central.store import AlertStore
from protocol.event import seal_probe, sign_event
from protocol.keys import HpkePrivateKey, load_hpke_private
from provisioning.authority import init_authority
from tests.conftest import Fleet
from tests.integration.agent_helpers import wait_for_port
from tests.integration.test_officer_page import (
    BIN,
    CHROMIUM,
    PASSWORD,
    Client,
    Page,
    _browser,
    _free_port,
    _run,
    face_jpeg,
)
from tests.postgres import postgres_url  # noqa: F401 - fixture
from tests.unit.test_event import make_event

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="Debian chromium is not installed (make install-system does it)",
    ),
]
ACCURATE = load_manifest().raw["profiles"]["accurate"]["id"]
OFFICER_A, OFFICER_B = "PC 4521 Khan", "PS 118 Evans"
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
HIGHLIGHT_AFTER = 4
INSTRUCTIONS = (
    'wanted = "Keep the subject in view; stop only on a Confirm and a live warrant, '
    'radio the arrest team on channel 2."\n'
    'missing = "Approach gently: welfare first. Call the missing-persons coordinator."\n'
)


# The lowest contrast between an element's own text colour and the background behind it
# (the nearest ancestor with an opaque one), with its text: WCAG 2 relative luminance.
CONTRAST = """() => {
  const lum = (c) => {
    const [r, g, b] = c.match(/[\\d.]+/g).slice(0, 3).map(Number).map((v) => {
      v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const background = (e) => {
    for (; e; e = e.parentElement) {
      const c = getComputedStyle(e).backgroundColor;
      if (c !== "rgba(0, 0, 0, 0)" && c !== "transparent") return c;
    }
    return "rgb(255, 255, 255)";
  };
  let worst = [99, ""];
  for (const e of document.querySelectorAll("body *")) {
    const own = [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || e.offsetParent === null) continue;
    const [a, b] = [lum(getComputedStyle(e).color), lum(background(e))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < worst[0]) worst = [ratio, e.tagName + " " + e.textContent.trim().slice(0, 40)];
  }
  return worst;
}"""


@dataclass
class Console:
    page: Page
    base: str
    key: HpkePrivateKey
    fleet: Fleet

    def add_alert(self, **changes: object) -> str:
        changes.setdefault("observed_at", datetime.now(UTC) - timedelta(milliseconds=800))
        event = make_event(self.fleet, str(changes.pop("device_id", "cam-01")), **changes)
        probe = seal_probe(
            face_jpeg(),
            self.key.public_key(),
            event_id=event.event_id,
            device_id=event.device_id,
        )
        event = replace(event, probe=probe)
        store = self.page.store()
        store.add(event, sign_event(event, self.fleet.device_signing))
        store.close()
        return event.event_id


def shot(tmp: Path, name: str) -> str:
    if os.environ.get("LFR_DOCS_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(exist_ok=True)
        return str(DOCS_IMG / name)
    return str(tmp / name)


def _prepare(tmp_path: Path, db: str) -> Path:
    """Page certificate, two officers, references and instructions; the adjudication key."""
    authority = init_authority(tmp_path / "auth", 2, 2, datetime.now(UTC))
    made = _run(
        "lfr-provision", "page-cert", "--authority", str(authority.root), "--host",
        "localhost", "--out", str(tmp_path / "page"),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    AlertStore(db).close()
    for name in (OFFICER_A, OFFICER_B):
        added = _run("lfr-alerts", "officers", "add", "--db", db, name, "--password-stdin",
                     stdin=PASSWORD + "\n")  # fmt: skip
        assert added.returncode == 0, added.stderr
    # the references folder laid out as lfr-watchlist enrol's --images: one folder a subject
    (tmp_path / "refs" / "WL-0001").mkdir(parents=True)
    (tmp_path / "refs" / "WL-0001" / "custody-2024.jpg").write_bytes(face_jpeg())
    (tmp_path / "instructions.toml").write_text(INSTRUCTIONS)
    return authority.root / "adjudication.key"


def _start(tmp_path: Path, db: str, key_path: Path) -> Page:
    port = _free_port()
    process = subprocess.Popen(
        [
            str(BIN / "lfr-alerts"), "serve", "--db", db, "--adjudication-key", str(key_path),
            "--references", str(tmp_path / "refs"), "--port", str(port),
            "--tls-cert", str(tmp_path / "page" / "page.crt"),
            "--instructions", str(tmp_path / "instructions.toml"),
            "--highlight-after", str(HIGHLIGHT_AFTER),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    tls = ssl.create_default_context(cafile=str(tmp_path / "page" / "ca.crt"))
    wait_for_port(port, process)
    return Page(port, "", db, tmp_path, tls, process)


def _stop(page: Page) -> None:
    page.process.terminate()
    output = page.process.communicate(timeout=10)[0]
    assert "Traceback" not in output, output


@pytest.fixture
def console(tmp_path: Path, fleet: Fleet) -> Iterator[Console]:
    db = f"sqlite:///{tmp_path}/alerts.db"
    key_path = _prepare(tmp_path, db)
    page = _start(tmp_path, db, key_path)
    yield Console(
        page, f"https://localhost:{page.port}", load_hpke_private(key_path.read_bytes()), fleet
    )
    _stop(page)


def _log_in(browser: Any, base: str, officer: str, width: int = 1366, height: int = 768) -> Any:
    context = browser.new_context(
        ignore_https_errors=True, viewport={"width": width, "height": height}
    )
    tab = context.new_page()
    tab.goto(f"{base}/login")
    tab.fill("#name", officer)
    tab.fill("#password", PASSWORD)
    tab.click("text=Log in")
    tab.wait_for_url(f"{base}/")
    return tab


def test_the_queue_api_contract_and_its_login(console: Console) -> None:
    first = console.add_alert()
    second = console.add_alert(subject_ref="WL-0002", category="missing")
    client = Client(console.page)
    assert client.send("GET", "/api/queue").status == 401
    assert client.login(OFFICER_A).status == 303
    response = client.send("GET", "/api/queue")
    assert response.status == 200 and response.headers["Content-Type"] == "application/json"
    doc = json.loads(response.body)
    assert doc["pending"] == 2
    assert {a["event_id"] for a in doc["alerts"]} == {first, second}
    for alert in doc["alerts"]:
        assert isinstance(alert["waiting_s"], int) and alert["waiting_s"] >= 0
        assert alert["claimed_by"] is None and alert["overdue"] is False
    html = client.send("GET", "/").body.decode()
    assert f'<tr class="pending" data-event="{first}">' in html
    assert "<h1>Alerts</h1>" in html  # tools/demo.py looks for it


def test_a_new_alert_appears_within_two_seconds_and_waiting_ones_are_highlighted(
    console: Console,
) -> None:
    from playwright.sync_api import sync_playwright

    waiting = console.add_alert(device_id="cam-02", category="missing", subject_ref="WL-0107")
    with sync_playwright() as pw:
        browser = _browser(pw)
        tab = _log_in(browser, console.base, OFFICER_A)
        assert tab.locator("tr.pending").count() == 1
        assert tab.locator("#live").get_attribute("aria-live") == "polite"
        tab.check("#beep")  # the optional sound: a checkbox with its label
        time.sleep(1.5)  # the page has polled: what follows is a live update
        started = time.monotonic()
        fresh = console.add_alert(score=0.93)
        tab.wait_for_selector(f'tr[data-event="{fresh}"]', timeout=2000)
        appeared = time.monotonic() - started
        assert appeared < 2.0
        print(f"new alert on screen {appeared:.2f} s after it was stored")
        rows = tab.locator("tbody#queue tr")
        assert rows.nth(0).get_attribute("data-event") == fresh  # newest first
        assert "new" in (rows.nth(0).get_attribute("class") or "")
        banner = tab.locator("#new-alert")
        assert banner.is_visible() and "New alert: WL-0001" in banner.inner_text()
        assert banner.get_attribute("role") == "alert"
        assert tab.locator("#pending-count").inner_text() == "2"
        assert tab.title().startswith("(2)")
        # the first alert passes the highlight time: highlighted, and said in words
        waited = tab.locator(f'tr[data-event="{waiting}"]')
        tab.wait_for_function(
            "id => document.querySelector(`tr[data-event='${id}']`).classList.contains('overdue')",
            arg=waiting,
            timeout=(HIGHLIGHT_AFTER + 3) * 1000,
        )
        assert "waiting long" in waited.inner_text()
        assert "overdue" not in (rows.nth(0).get_attribute("class") or "")
        console.add_alert(device_id="cam-03", site="kx-north", score=0.77)
        tab.wait_for_function("() => document.querySelectorAll('tbody#queue tr').length === 3")
        assert tab.evaluate("document.documentElement.scrollWidth <= innerWidth")
        worst = tab.evaluate(CONTRAST)  # the highlighted row and the new-alert banner too
        print("lowest contrast on the queue:", worst)
        assert worst[0] >= 4.5, worst
        tab.screenshot(path=shot(console.page.tmp, "console-queue.png"))
        browser.close()


def test_two_officers_never_decide_one_alert_twice(console: Console) -> None:
    from playwright.sync_api import sync_playwright

    event_id = console.add_alert()
    with sync_playwright() as pw:
        browser = _browser(pw)
        khan = _log_in(browser, console.base, OFFICER_A)
        evans = _log_in(browser, console.base, OFFICER_B)
        khan.click(f'tr[data-event="{event_id}"] a')
        khan.wait_for_url(f"{console.base}/alerts/{event_id}")
        # Evans's queue shows who has it, within a poll
        evans.wait_for_function(
            "([id, who]) => document.querySelector(`tr[data-event='${id}']`)"
            ".innerText.includes('being decided by ' + who)",
            arg=[event_id, OFFICER_A],
            timeout=3000,
        )
        response = evans.goto(f"{console.base}/alerts/{event_id}")
        assert response is not None and response.status == 409
        assert f"{OFFICER_A} has alert WL-0001 open" in evans.inner_text("body")
        assert evans.locator("#decide").count() == 0
        # a decision forged by the other officer is refused too
        status = evans.evaluate(
            """async (id) => {
                const csrf = document.querySelector('input[name="csrf"]').value;
                const r = await fetch('/alerts/' + id + '/adjudicate', {method: 'POST',
                    headers: {'Content-Type': 'application/x-www-form-urlencoded'},
                    body: 'outcome=confirmed&csrf=' + encodeURIComponent(csrf)});
                return r.status;
            }""",
            event_id,
        )
        assert status == 409
        khan.keyboard.press("f")
        khan.wait_for_selector("text=False alert by")
        evans.goto(f"{console.base}/alerts/{event_id}")
        assert f"False alert by {OFFICER_A}" in evans.inner_text("body")
        assert evans.locator("#decide").count() == 0
        browser.close()
    store = console.page.store()
    alert = store.get(event_id)
    assert alert is not None and (alert.outcome, alert.officer) == ("false_alert", OFFICER_A)
    assert store.rows("SELECT COUNT(*) FROM adjudications")[0][0] == 1
    store.close()


def test_keyboard_decisions_with_a_note_and_next(console: Console) -> None:
    from playwright.sync_api import sync_playwright

    # the accurate profile's id: its 1:N calibration gives the strength in words
    oldest = console.add_alert(score=0.874, threshold=0.8301, embedder_sha256=ACCURATE)
    time.sleep(1.1)  # received_at has whole seconds: the order is certain
    other = console.add_alert(subject_ref="WL-0002", category="missing", device_id="cam-02")
    with sync_playwright() as pw:
        browser = _browser(pw)
        tab = _log_in(browser, console.base, OFFICER_A)
        errors: list[str] = []  # a CSP violation or a script error shows up here
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.keyboard.press("j")  # the alert waiting longest
        tab.wait_for_url(f"{console.base}/alerts/{oldest}")
        probe = tab.locator('img[alt="face seen by the camera"]')
        reference = tab.locator('img[alt="reference image of WL-0001"]')
        tab.wait_for_function(
            "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)"
        )
        assert probe.evaluate("i => Math.max(i.naturalWidth, i.naturalHeight)") == 320
        assert reference.evaluate("i => i.naturalWidth") > 0
        body = tab.inner_text("body")
        assert "Keep the subject in view" in body  # the instructions for "wanted"
        assert "score 0.874 against threshold 0.830" in body
        assert "times rarer than at the threshold" in body
        assert tab.locator(".strength").inner_text().lower() == "moderate"
        decide = tab.locator("button.decide").first.bounding_box()
        assert decide is not None and decide["y"] + decide["height"] <= 768  # no scrolling
        assert tab.evaluate("document.documentElement.scrollWidth <= innerWidth")
        tab.screenshot(path=shot(console.page.tmp, "console-alert.png"))
        tab.fill("#note", "Same scar on the left cheek; cjfn typed here decide nothing")
        assert tab.url.endswith(oldest)  # keys typed into the note are text, not decisions
        tab.locator("h1").click()  # leave the note
        tab.keyboard.press("c")
        tab.wait_for_selector("text=Confirmed by")
        tab.wait_for_load_state()  # the key handler (a deferred script) is in place
        tab.keyboard.press("j")
        tab.wait_for_url(f"{console.base}/alerts/{other}")
        assert "No instructions" not in tab.inner_text("body")
        assert "No reference image held for this subject" in tab.inner_text("body")
        tab.keyboard.press("n")
        tab.wait_for_selector("text=No action by")
        tab.wait_for_load_state()  # the key handler (a deferred script) is in place
        tab.keyboard.press("j")
        tab.wait_for_url(f"{console.base}/?empty=1")
        assert "No alert is waiting for you" in tab.inner_text("body")
        assert errors == []
        browser.close()
    store = console.page.store()
    first, second = store.get(oldest), store.get(other)
    assert first is not None and second is not None
    assert (first.outcome, first.officer) == ("confirmed", OFFICER_A)
    assert (second.outcome, second.officer) == ("no_action", OFFICER_A)
    detail = ReviewStore(store).detail(oldest)
    assert detail is not None and detail.note.startswith("Same scar on the left cheek")
    store.close()


def test_the_alert_view_fits_a_tablet(console: Console) -> None:
    from playwright.sync_api import sync_playwright

    event_id = console.add_alert()
    with sync_playwright() as pw:
        browser = _browser(pw)
        tab = _log_in(browser, console.base, OFFICER_A, width=768, height=1024)
        wide = tab.evaluate(
            "() => [...document.querySelectorAll('body *')].filter("
            "e => e.getBoundingClientRect().right > innerWidth).map(e => e.tagName + '.' + "
            "e.className + ' ' + Math.round(e.getBoundingClientRect().right))"
        )
        assert tab.evaluate("document.documentElement.scrollWidth <= innerWidth"), wide
        tab.goto(f"{console.base}/alerts/{event_id}")
        assert tab.evaluate("document.documentElement.scrollWidth <= innerWidth")
        labels = tab.locator("label[for=note]")
        assert labels.count() == 1 and tab.locator("#note").is_visible()
        # focus order: the note, then the three decisions, then next
        tab.focus("#note")
        order = []
        for _ in range(4):
            tab.keyboard.press("Tab")
            order.append(tab.evaluate("document.activeElement.textContent.trim()"))
        assert [o.split()[0] for o in order] == ["Confirm", "False", "No", "Next"]
        # text contrast (WCAG AA, 4.5:1) of everything on the alert page, as rendered
        worst = tab.evaluate(CONTRAST)
        print("lowest contrast on the alert page:", worst)
        assert worst[0] >= 4.5, worst
        browser.close()


def test_two_console_processes_on_one_postgresql_share_the_lock(
    tmp_path: Path, fleet: Fleet, request: pytest.FixtureRequest
) -> None:
    url = str(request.getfixturevalue("postgres_url"))
    key_path = _prepare(tmp_path, url)
    first, second = (
        _start(tmp_path, url, key_path),
        _start(tmp_path, url, key_path),
    )
    try:
        console = Console(first, "", load_hpke_private(key_path.read_bytes()), fleet)
        event_id = console.add_alert()
        khan, evans = Client(first), Client(second)
        assert khan.login(OFFICER_A).status == 303 and evans.login(OFFICER_B).status == 303
        assert khan.send("GET", f"/alerts/{event_id}").status == 200
        locked = evans.send("GET", f"/alerts/{event_id}")
        assert (
            locked.status == 409 and f"{OFFICER_A} has alert WL-0001 open" in locked.body.decode()
        )
        queue = json.loads(evans.send("GET", "/api/queue").body)
        assert [a["claimed_by"] for a in queue["alerts"]] == [OFFICER_A]
        path = f"/alerts/{event_id}/adjudicate"
        refused = evans.post(path, f"outcome=confirmed&csrf={evans.csrf('/')}".encode())
        assert refused.status == 409
        # the renewal alert.js sends: the holder renews, the other officer is refused
        claim = f"/alerts/{event_id}/claim"
        renewed = khan.post(claim, f"csrf={khan.csrf('/')}".encode())
        assert renewed.status == 200 and json.loads(renewed.body)["claimed_by"] == OFFICER_A
        other = evans.post(claim, f"csrf={evans.csrf('/')}".encode())
        assert other.status == 409 and json.loads(other.body)["result"] == "locked"
        assert evans.post(claim, b"csrf=forged").status == 403
        decided = khan.post(
            path, f"outcome=false_alert&note=not+him&csrf={khan.csrf('/')}".encode()
        )
        assert decided.status == 303
        again = evans.post(path, f"outcome=confirmed&csrf={evans.csrf('/')}".encode())
        assert again.status == 409 and "decided already" in again.body.decode()
        assert json.loads(evans.send("GET", "/api/queue").body)["pending"] == 0
    finally:
        _stop(first)
        _stop(second)
    store = AlertStore(url)
    alert = store.get(event_id)
    assert alert is not None and (alert.outcome, alert.officer) == ("false_alert", OFFICER_A)
    assert store.rows("SELECT COUNT(*) FROM adjudications")[0][0] == 1
    assert ReviewStore(store).detail(event_id).note == "not him"  # type: ignore[union-attr]
    store.close()


def test_bad_console_options_are_one_line_errors(tmp_path: Path) -> None:
    key_path = _prepare(tmp_path, f"sqlite:///{tmp_path}/alerts.db")
    cert = str(tmp_path / "page" / "page.crt")
    base = ["lfr-alerts", "serve", "--db", f"sqlite:///{tmp_path}/alerts.db",
            "--adjudication-key", str(key_path), "--tls-cert", cert]  # fmt: skip
    bad = tmp_path / "bad.toml"
    for text, words in (
        ("wanted = 3\n", "wanted must be a non-empty string"),
        ('wanted = "unterminated\n', "not UTF-8 TOML"),
    ):
        bad.write_text(text)
        refused = _run(*base, "--instructions", str(bad))
        assert refused.returncode == 2 and words in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    refused = _run(*base, "--instructions", str(tmp_path / "missing.toml"))
    assert refused.returncode == 2 and "cannot read" in refused.stderr
    refused = _run(*base, "--highlight-after", "0")
    assert refused.returncode == 2 and "--highlight-after" in refused.stderr
