"""One officer of the console load test in a real browser (Playwright driving Debian's
Chromium, headless, 1366x768): log in, load the queue every ``poll`` s, open the newest
undecided alert (page, probe and reference images), decide with the page's own button.

Times are the browser's: a navigation until its ``load`` event (every image loaded), and a
decision from the click until the page it lands on has loaded. Like the HTTP officers it takes
alerts from the shared :class:`Desk`; the console's own database lock shows as a refused
decision. ``PENDING_LINKS`` and ``BUTTON`` are the console markup it relies on.
"""

from __future__ import annotations

import contextlib
import logging
import random
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from tools.bench.console_officers import OUTCOME_MIX, Desk
from tools.bench.console_ui import Timing

log = logging.getLogger(__name__)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PENDING_LINKS = "tr:has(span.pending) a[href^='/alerts/']"
BUTTON = "button[name=outcome][value={outcome}]"


def available() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return Path(CHROMIUM).exists()


@contextlib.contextmanager
def _timed(timings: list[Timing], kind: str) -> Iterator[None]:
    started, clock = time.time(), time.perf_counter()
    yield
    timings.append(Timing(kind, started, time.perf_counter() - clock, 200))


def browser_officer(
    base: str,
    name: str,
    password: str,
    desk: Desk,
    stop: threading.Event,
    *,
    timings: list[Timing],
    poll: float = 1.0,
    think: float = 2.0,
    seed: int = 0,
) -> None:
    """One officer's shift in Chromium until ``stop``; errors go to the desk, not up."""
    from playwright.sync_api import Error, sync_playwright

    rng = random.Random(seed)  # noqa: S311 - a reproducible mix of decisions, not secrets
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        try:
            # The bench's page certificate is from its own throw-away authority.
            context = browser.new_context(
                ignore_https_errors=True, viewport={"width": 1366, "height": 768}
            )
            tab = context.new_page()
            tab.goto(f"{base}/login")
            tab.fill('input[name="name"]', name)
            tab.fill('input[name="password"]', password)
            with _timed(timings, "browser login"):
                tab.click("text=Log in")
                tab.wait_for_url(f"{base}/")
            while not stop.is_set():
                started = time.monotonic()
                try:
                    with _timed(timings, "browser queue"):
                        tab.goto(f"{base}/")  # returns at the load event
                    links = tab.eval_on_selector_all(
                        PENDING_LINKS, "as => as.map(a => a.getAttribute('href'))"
                    )
                    event_id = desk.take([str(h).rsplit("/", 1)[-1] for h in links])
                    if event_id is not None:
                        with _timed(timings, "browser alert"):
                            tab.goto(f"{base}/alerts/{event_id}")  # with its images
                        stop.wait(think * rng.uniform(0.5, 1.5))
                        outcome = rng.choices(
                            [o for o, _ in OUTCOME_MIX], [w for _, w in OUTCOME_MIX]
                        )[0]
                        with _timed(timings, "browser decide"), tab.expect_navigation():
                            tab.click(BUTTON.format(outcome=outcome))
                        with desk.lock:
                            if f"by {name}" in tab.inner_text("body"):
                                desk.decided[event_id] = name
                            else:
                                desk.refused += 1
                        continue
                except Error as exc:
                    desk.error(name, exc)
                stop.wait(max(0.0, poll - (time.monotonic() - started)))
        except Error as exc:
            desk.error(name, exc)
        finally:
            browser.close()
