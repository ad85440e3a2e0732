"""One alert: the faces side by side, why the system thinks it is this person, the decision.

Opening an undecided alert claims it for the officer (``central.review_store``: a database
lock of ``CLAIM_SECONDS``, renewed by alert.js while the page stays open); another officer gets
409 and the name of the holder. A decision is refused with 409 when the alert is decided
already or held by someone else, so each alert is decided once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus

from central.console.context import Request, Response, json_response, redirect
from central.console.http import BadRequest, text_field
from central.console.images import find_reference, read_reference, upscale_jpeg
from central.console.layout import e, page, refuse
from central.console.queue import DONE, LABELS, clock_time, next_form, waiting_seconds, waiting_text
from central.console.strength import judge
from central.review_store import MAX_NOTE, Claim, ClaimResult
from central.store import OUTCOMES, StoredAlert
from protocol.errors import RejectedInput
from protocol.event import open_probe, parse_stored_event

KEYS = {"confirmed": "C", "false_alert": "F", "no_action": "N"}
DISPLAY_PX = 320  # both faces are shown at this size


def _until(epoch: int | None) -> str:
    if epoch is None:
        return "a moment"
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S UTC")


def _locked(request: Request, result: ClaimResult, alert: StoredAlert) -> Response:
    return refuse(
        HTTPStatus.CONFLICT,
        f"{result.claimed_by} has alert {alert.subject_ref} open until "
        f"{_until(result.claim_expires)}; it returns to the queue if they leave it.",
        request.session,
    )


def _reference(request: Request, alert: StoredAlert) -> str:
    if find_reference(request.console.references, alert.subject_ref) is not None:
        return (
            f'<img alt="reference image of {e(alert.subject_ref)}" width="{DISPLAY_PX}" '
            f'height="{DISPLAY_PX}" src="/references/{e(alert.subject_ref)}">'
        )
    return '<div class="no-image">No reference image held for this subject.</div>'


def _others(request: Request, alert: StoredAlert, now: int) -> str:
    rows = request.console.review.same_subject(
        alert.deployment_id, alert.subject_ref, alert.event_id, now
    )
    if not rows:
        return "<p>No other alert for this subject in this deployment.</p>"
    body = "".join(
        f'<tr><td><a href="/alerts/{e(r.event_id)}">{e(r.observed_at)}</a></td>'
        f'<td>{e(r.site)}</td><td>{e(r.device_id)}</td><td class="num">{r.score:.3f}</td>'
        f"<td>{e(DONE.get(r.outcome or '', 'awaiting adjudication'))}"
        f"{' by ' + e(r.officer) if r.officer else ''}</td></tr>"
        for r in rows
    )
    return (
        '<table class="others"><thead><tr><th scope="col">Seen</th><th scope="col">Site</th>'
        '<th scope="col">Camera</th><th scope="col">Score</th><th scope="col">Outcome</th>'
        f"</tr></thead><tbody>{body}</tbody></table>"
    )


def _decision(request: Request, alert: StoredAlert, note: str) -> str:
    assert request.session is not None
    csrf = request.session.csrf
    if alert.outcome is not None:
        said = f'<p class="note">Note: {e(note)}</p>' if note else ""
        return (
            f'<section class="decision done" aria-labelledby="decision-h">'
            f'<h2 id="decision-h">Decision</h2><p class="outcome">{e(DONE[alert.outcome])} by '
            f"{e(alert.officer)} at {e(alert.decided_at)}</p>{said}"
            f"{next_form(csrf)}</section>"
        )
    buttons = "".join(
        f'<button name="outcome" value="{o}" class="decide {o}" data-key="{KEYS[o].lower()}">'
        f"{e(LABELS[o])} <kbd>{KEYS[o]}</kbd></button>"
        for o in OUTCOMES
    )
    return (
        '<section class="decision" aria-labelledby="decision-h">'
        f'<h2 id="decision-h">Decide as {e(request.officer)}</h2>'
        f'<form method="post" action="/alerts/{e(alert.event_id)}/adjudicate" id="decide">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        '<label for="note">Note (optional)</label>'
        f'<textarea id="note" name="note" rows="2" maxlength="{MAX_NOTE}"></textarea>'
        f'<div class="buttons">{buttons}</div></form>'
        f"{next_form(csrf, alert.event_id)}"
        '<p class="hint">Keys: C confirm, F false alert, N no action, J next '
        "(not while typing a note).</p></section>"
    )


def alert_page(request: Request) -> Response:
    console = request.console
    alert = console.store.get(request.params["event"])
    detail = console.review.detail(request.params["event"])
    if alert is None or detail is None:
        return refuse(HTTPStatus.NOT_FOUND, "No such alert.", request.session)
    now = console.now()
    claim = ""
    if alert.outcome is None:
        result = console.review.claim(alert.event_id, request.officer, now)
        if result.result is Claim.LOCKED:
            return _locked(request, result, alert)
        if result.result is Claim.OK:
            claim = f' data-claim-until="{result.claim_expires}"'
        else:  # decided between the two reads: show the decision
            alert = console.store.get(alert.event_id) or alert
    strength = judge(alert.score, alert.threshold, console.curves.get(detail.embedder_sha256))
    instructions = console.instructions.get(
        alert.category, "No instructions for this category: follow the deployment briefing."
    )
    waited = waiting_text(waiting_seconds(alert.received_at, now))
    body = (
        f'<div class="alert" data-event="{e(alert.event_id)}"{claim}>'
        f'<h1>Alert: {e(alert.subject_ref)} <span class="category">{e(alert.category)}'
        "</span></h1>"
        '<div class="faces">'
        '<figure><img alt="face seen by the camera" '
        f'width="{DISPLAY_PX}" height="{DISPLAY_PX}" '
        f'src="/alerts/{e(alert.event_id)}/probe.jpg"><figcaption>Seen by camera '
        f"{e(alert.device_id)}</figcaption></figure>"
        f"<figure>{_reference(request, alert)}<figcaption>Watchlist reference "
        f"{e(alert.subject_ref)}</figcaption></figure>"
        "</div>"
        '<div class="facts"><dl>'
        f'<dt>Match</dt><dd><span class="strength {strength.word}">{e(strength.word)}</span> '
        f"score <b>{alert.score:.3f}</b> against threshold {alert.threshold:.3f}. "
        f"{e(strength.text)}</dd>"
        f'<dt>Instructions for "{e(alert.category)}"</dt>'
        f'<dd class="instructions">{e(instructions)}</dd>'
        f"<dt>Where</dt><dd>{e(alert.site)}, camera {e(alert.device_id)}</dd>"
        f"<dt>When</dt><dd>seen {e(clock_time(alert.observed_at))} "
        f'<span class="muted">({e(alert.observed_at)})</span>, waiting {waited}</dd>'
        f"<dt>Deployment</dt><dd>{e(alert.deployment_id)}, watchlist version "
        f"{detail.watchlist_version}</dd></dl>"
        f"{_decision(request, alert, detail.note)}</div>"
        f"<h2>Other alerts for {e(alert.subject_ref)} in this deployment</h2>"
        f"{_others(request, alert, now)}</div>"
    )
    return Response(200, page(f"Alert {alert.subject_ref}", body, request.session, ["alert.js"]))


def _refusal(request: Request, result: ClaimResult, alert: StoredAlert) -> Response:
    if result.result is Claim.DECIDED:
        return refuse(HTTPStatus.CONFLICT, "This alert has been decided already.", request.session)
    return _locked(request, result, alert)


def adjudicate(request: Request) -> Response:
    console = request.console
    alert = console.store.get(request.params["event"])
    if alert is None:
        return refuse(HTTPStatus.NOT_FOUND, "No such alert.", request.session)
    outcome = request.form.get("outcome", "")
    if outcome not in OUTCOMES:
        return refuse(HTTPStatus.BAD_REQUEST, f"The outcome must be one of {OUTCOMES}.")
    try:
        note = text_field(request.form, "note", MAX_NOTE)
    except BadRequest as exc:
        return refuse(exc.status, str(exc), request.session)
    result = console.review.decide(
        alert.event_id, outcome, request.officer, console.now(), note=note
    )
    if result.result is not Claim.OK:
        return _refusal(request, result, alert)
    console.store.audit(
        request.officer, "adjudicate", request.client, event_id=alert.event_id, detail=outcome
    )
    return redirect(f"/alerts/{alert.event_id}")


def claim(request: Request) -> Response:
    """Renew (or take) the lock while the page is open: JSON for alert.js."""
    console = request.console
    result = console.review.claim(request.params["event"], request.officer, console.now())
    doc = {
        "result": result.result.value,
        "claimed_by": result.claimed_by,
        "claim_expires": result.claim_expires,
    }
    status = {Claim.OK: 200, Claim.NOT_FOUND: 404}.get(result.result, HTTPStatus.CONFLICT)
    return json_response(doc, status)


def probe(request: Request) -> Response:
    console, event_id = request.console, request.params["event"]
    alert = console.store.get(event_id)
    if alert is None:
        return refuse(HTTPStatus.NOT_FOUND, "No such alert.")
    try:
        jpeg = upscale_jpeg(open_probe(parse_stored_event(alert.token), console.key), DISPLAY_PX)
    except RejectedInput as exc:
        console.store.audit(
            request.officer, "view_probe_failed", request.client, event_id=event_id,
            detail=exc.reason,
        )  # fmt: skip
        return refuse(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            "This probe cannot be opened with the adjudication key.",
        )
    console.store.audit(request.officer, "view_probe", request.client, event_id=event_id)
    return Response(200, jpeg, "image/jpeg")


def reference(request: Request) -> Response:
    found = find_reference(request.console.references, request.params["ref"])
    if found is None:
        return refuse(HTTPStatus.NOT_FOUND, "No reference image held for this subject.")
    try:
        data, kind = read_reference(found)
    except (OSError, RejectedInput):
        return refuse(HTTPStatus.INTERNAL_SERVER_ERROR, "The reference image cannot be read.")
    return Response(200, data, kind)
