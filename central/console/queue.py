"""The alert queue: the page officers keep open, and ``/api/queue`` that it polls every second.

``/api/queue`` is a contract (the load test polls it too)::

    {"alerts": [{"event_id": ..., "waiting_s": ..., ...}, ...], "pending": N, ...}

pending alerts newest first, at most ``QUEUE_LIMIT`` of them, ``pending`` the full count. The
page's rows are ``<tr class="pending..." data-event="ID">`` both when rendered here and when
queue.js rebuilds them, so the page works (reloading itself) without scripts too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from central.console.context import Request, Response, json_response, redirect
from central.console.http import EVENT_ID
from central.console.layout import e, page
from central.review_store import QueueRow
from central.store import OUTCOMES
from protocol.encoding import format_time

LABELS = {"confirmed": "Confirm", "false_alert": "False alert", "no_action": "No action"}
SHIFT_SECONDS = 12 * 3600  # the queue's decision counts cover a shift, not all history
DONE = {"confirmed": "Confirmed", "false_alert": "False alert", "no_action": "No action"}


def waiting_seconds(received_at: str, now: int) -> int:
    """Seconds since the alert was stored (never negative: clocks of several consoles)."""
    try:
        return max(0, now - int(datetime.fromisoformat(received_at).timestamp()))
    except ValueError:
        return 0


def waiting_text(seconds: int) -> str:
    """``45 s``, ``3 min 05 s``, ``2 h 07 min``: the same words as queue.js."""
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def clock_time(stamp: str) -> str:
    """``2026-11-28T14:03:07Z`` -> ``14:03:07`` (the day is in the title attribute)."""
    return stamp[11:19] if len(stamp) >= 19 else stamp


def queue_item(row: QueueRow, now: int, highlight_after: float) -> dict[str, Any]:
    waiting = waiting_seconds(row.received_at, now)
    return {
        "event_id": row.event_id,
        "waiting_s": waiting,
        "overdue": waiting >= highlight_after,
        "received_at": row.received_at,
        "observed_at": row.observed_at,
        "site": row.site,
        "device_id": row.device_id,
        "subject_ref": row.subject_ref,
        "category": row.category,
        "score": round(row.score, 4),
        "threshold": round(row.threshold, 4),
        "claimed_by": row.claimed_by,
    }


def api_queue(request: Request) -> Response:
    console = request.console
    now = console.now()
    rows, pending = console.review.pending(now)
    return json_response(
        {
            "alerts": [queue_item(r, now, console.highlight_after) for r in rows],
            "pending": pending,
            "highlight_after_s": console.highlight_after,
            "now": now,
        }
    )


def _status(item: dict[str, Any]) -> str:
    holder = item["claimed_by"]
    # span.pending: the load test's browser officers pick rows by it (tools/bench)
    words = (
        f"being decided by {e(holder)}"
        if holder
        else '<span class="pending">awaiting adjudication</span>'
    )
    return words + (" &middot; waiting long" if item["overdue"] else "")


def row_html(item: dict[str, Any]) -> str:
    classes = "pending" + (" overdue" if item["overdue"] else "")
    classes += " claimed" if item["claimed_by"] else ""
    return (
        f'<tr class="{classes}" data-event="{e(item["event_id"])}">'
        f'<td class="waiting">{waiting_text(item["waiting_s"])}</td>'
        f'<td title="{e(item["observed_at"])}">{e(clock_time(item["observed_at"]))}</td>'
        f'<td><a href="/alerts/{e(item["event_id"])}">{e(item["subject_ref"])}</a></td>'
        f"<td>{e(item['category'])}</td><td>{e(item['site'])}</td>"
        f"<td>{e(item['device_id'])}</td>"
        f'<td class="num">{item["score"]:.3f} / {item["threshold"]:.3f}</td>'
        f'<td class="status">{_status(item)}</td></tr>'
    )


def _decided_html(row: QueueRow) -> str:
    outcome = DONE.get(row.outcome or "", row.outcome or "")
    return (
        f'<tr data-event="{e(row.event_id)}"><td title="{e(row.observed_at)}">'
        f"{e(clock_time(row.observed_at))}</td>"
        f'<td><a href="/alerts/{e(row.event_id)}">{e(row.subject_ref)}</a></td>'
        f"<td>{e(row.site)}</td><td>{e(row.device_id)}</td>"
        f'<td class="num">{row.score:.3f}</td>'
        f"<td>{e(outcome)} by {e(row.officer)} at {e(clock_time(row.decided_at or ''))}</td></tr>"
    )


_QUEUE_HEAD = (
    '<thead><tr><th scope="col">Waiting</th><th scope="col">Seen</th>'
    '<th scope="col">Subject</th><th scope="col">Category</th><th scope="col">Site</th>'
    '<th scope="col">Camera</th><th scope="col">Score / threshold</th>'
    '<th scope="col">Status</th></tr></thead>'
)


def next_form(csrf: str, leaving: str = "") -> str:
    skip = f'<input type="hidden" name="from" value="{e(leaving)}">' if leaving else ""
    return (
        '<form method="post" action="/next" class="next" id="next-form">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">{skip}'
        '<button class="primary" id="next">Next alert <kbd>J</kbd></button></form>'
    )


def index(request: Request) -> Response:
    console, session = request.console, request.session
    assert session is not None
    now = console.now()
    rows, pending = console.review.pending(now)
    items = [queue_item(r, now, console.highlight_after) for r in rows]
    since = format_time(datetime.fromtimestamp(now - SHIFT_SECONDS, UTC))
    counts = console.review.outcome_counts(since)
    stats = "Decisions in the last 12 h: " + "".join(
        f"<span>{e(LABELS[o])}: {counts[o]}</span>" for o in OUTCOMES
    )
    empty = (
        '<p class="notice" role="status">No alert is waiting for you.</p>'
        if request.query.get("empty")
        else ""
    )
    decided = "".join(_decided_html(r) for r in console.review.recently_decided(now)) or (
        '<tr><td colspan="6">None yet.</td></tr>'
    )
    body = (
        '<div class="queue-top"><h1>Alerts</h1>'
        f'<p id="live" class="live" role="status" aria-live="polite">'
        f'<span id="pending-count">{pending}</span> awaiting adjudication</p>'
        f"{next_form(session.csrf)}"
        '<label class="toggle"><input type="checkbox" id="beep"> Sound on a new alert</label>'
        "</div>"
        f'{empty}<p id="new-alert" class="new-alert" role="alert" hidden></p>'
        f'<p class="stats">{stats} <span>highlighted after '
        f"{console.highlight_after:g} s waiting</span></p>"
        f'<table class="queue" data-highlight-after="{console.highlight_after:g}">'
        f"<caption>Awaiting adjudication, newest first</caption>{_QUEUE_HEAD}"
        f'<tbody id="queue">{"".join(row_html(i) for i in items)}</tbody></table>'
        '<h2>Recently decided</h2><table class="decided"><thead><tr><th scope="col">Seen</th>'
        '<th scope="col">Subject</th><th scope="col">Site</th><th scope="col">Camera</th>'
        '<th scope="col">Score</th><th scope="col">Outcome</th></tr></thead>'
        f"<tbody>{decided}</tbody></table>"
    )
    # Without scripts the queue still refreshes (slower): noscript in head is valid HTML.
    head = '<noscript><meta http-equiv="refresh" content="5"></noscript>'
    return Response(200, page("LFR alerts", body, session, ["queue.js"], head))


def next_alert(request: Request) -> Response:
    """The alert waiting longest that no other officer holds (leaving ``from`` to the queue)."""
    console = request.console
    leaving = request.form.get("from", "")
    if not EVENT_ID.match(leaving):
        leaving = ""
    if leaving:
        console.review.release(leaving, request.officer)
    found = console.review.next_pending(request.officer, console.now(), skip=leaving)
    return redirect(f"/alerts/{found}" if found else "/?empty=1")
