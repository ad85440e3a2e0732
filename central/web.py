"""``lfr-alerts serve``: the officers' page. Server-rendered HTML, no JavaScript, no CDN.

Lists alerts (newest first) with site, device, time, subject reference and score against
threshold; one alert's page shows the probe crop (decrypted in memory for that response only,
never written or cached) beside the control room's own reference image for the subject, and
three buttons: confirmed, false alert, no action, stored with the officer's name and time.
Binds to 127.0.0.1 by default; forms carry a CSRF token; responses forbid caching and framing.
"""

from __future__ import annotations

import html
import logging
import re
import secrets
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote

from central.store import OUTCOMES, AlertStore, StoredAlert
from protocol.errors import RejectedInput
from protocol.event import open_probe, parse_stored_event
from protocol.keys import HpkePrivateKey

log = logging.getLogger(__name__)
_EVENT = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_LABELS = {"confirmed": "Confirm", "false_alert": "False alert", "no_action": "No action"}
_STYLE = """body{font-family:system-ui,sans-serif;margin:1.5rem;color:#111}
table{border-collapse:collapse}td,th{padding:.35rem .7rem;border-bottom:1px solid #ccc;
text-align:left}.over{color:#a00;font-weight:600}.faces{display:flex;gap:2rem}
.faces figure{margin:0}.faces img{max-width:320px;max-height:320px;border:1px solid #999}
button{font-size:1rem;padding:.5rem 1rem;margin-right:.5rem}.pending{color:#a60}
.stats span{margin-right:1.5rem}"""
_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline';"
    " form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _page(title: str, body: str, refresh: bool = False) -> bytes:
    meta = '<meta http-equiv="refresh" content="5">' if refresh else ""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{meta}'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>{body}"
        "</body></html>"
    ).encode()


class OfficerApp:
    def __init__(
        self, store: AlertStore, adjudication_key: HpkePrivateKey, references: Path | None = None
    ) -> None:
        self.store, self.key, self.references = store, adjudication_key, references
        self.csrf = secrets.token_urlsafe(32)

    def _outcome(self, alert: StoredAlert) -> str:
        if alert.outcome is None:
            return '<span class="pending">awaiting adjudication</span>'
        return f"{_e(_LABELS[alert.outcome])} by {_e(alert.officer)} at {_e(alert.decided_at)}"

    def index(self) -> bytes:
        alerts = self.store.recent(200)
        decided = [a for a in alerts if a.outcome]
        stats = (
            f'<p class="stats"><span>alerts: {len(alerts)}</span>'
            f"<span>awaiting: {len(alerts) - len(decided)}</span>"
            + "".join(
                f"<span>{_e(_LABELS[o])}: {sum(a.outcome == o for a in decided)}</span>"
                for o in OUTCOMES
            )
            + "</p>"
        )
        rows = "".join(
            f'<tr><td><a href="/alerts/{_e(a.event_id)}">{_e(a.observed_at)}</a></td>'
            f"<td>{_e(a.site)}</td><td>{_e(a.device_id)}</td><td>{_e(a.subject_ref)}</td>"
            f'<td>{_e(a.category)}</td><td class="over">{a.score:.3f}</td>'
            f"<td>{a.threshold:.3f}</td><td>{self._outcome(a)}</td></tr>"
            for a in alerts
        )
        table = (
            (
                "<table><tr><th>Observed</th><th>Site</th><th>Device</th><th>Subject</th>"
                "<th>Category</th><th>Score</th><th>Threshold</th><th>Outcome</th></tr>"
                f"{rows}</table>"
            )
            if alerts
            else "<p>No alerts.</p>"
        )
        return _page("LFR alerts", f"<h1>Alerts</h1>{stats}{table}", refresh=True)

    def _reference(self, subject_ref: str) -> str:
        if self.references is not None:
            for suffix in (".jpg", ".jpeg", ".png"):
                if (self.references / f"{subject_ref}{suffix}").is_file():
                    return (
                        f'<img alt="reference image of {_e(subject_ref)}" '
                        f'src="/references/{quote(subject_ref)}{suffix}">'
                    )
        return "<p>No reference image held for this subject.</p>"

    def detail(self, alert: StoredAlert, officer: str) -> bytes:
        buttons = "".join(
            f'<button name="outcome" value="{o}">{_e(_LABELS[o])}</button>' for o in OUTCOMES
        )
        body = (
            f'<p><a href="/">&larr; all alerts</a></p><h1>Alert {_e(alert.subject_ref)}</h1>'
            f"<p>{_e(alert.site)} / {_e(alert.device_id)}, observed {_e(alert.observed_at)}, "
            f"received {_e(alert.received_at)}. Score <b>{alert.score:.3f}</b> against "
            f"threshold {alert.threshold:.3f}; deployment {_e(alert.deployment_id)}.</p>"
            '<div class="faces"><figure><img alt="face seen by the camera" '
            f'src="/alerts/{_e(alert.event_id)}/probe.jpg"><figcaption>Seen by the camera'
            f"</figcaption></figure><figure>{self._reference(alert.subject_ref)}<figcaption>"
            f"Watchlist reference {_e(alert.subject_ref)}</figcaption></figure></div>"
            f"<p>Outcome: {self._outcome(alert)}</p>"
            f'<form method="post" action="/alerts/{_e(alert.event_id)}/adjudicate">'
            f'<input type="hidden" name="csrf" value="{_e(self.csrf)}">'
            f'<label>Officer <input name="officer" required maxlength="100" '
            f'value="{_e(officer)}"></label><p>{buttons}</p></form>'
        )
        return _page(f"Alert {alert.subject_ref}", body)

    def probe(self, alert: StoredAlert) -> bytes:
        return open_probe(parse_stored_event(alert.token), self.key)


def make_handler(app: OfficerApp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "lfr-alerts"
        sys_version = ""

        def log_message(self, format: str, *args: object) -> None:
            log.info("%s " + format, self.address_string(), *args)

        def _send(
            self,
            status: int,
            body: bytes,
            content_type: str = "text/html; charset=utf-8",
            extra: dict[str, str] | None = None,
        ) -> None:
            self.send_response(status)
            for name, value in {**_HEADERS, **(extra or {})}.items():
                self.send_header(name, value)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _alert(self, event_id: str) -> StoredAlert | None:
            return app.store.get(event_id) if _EVENT.match(event_id) else None

        def _officer(self) -> str:
            for part in self.headers.get("Cookie", "").split(";"):
                name, _, value = part.strip().partition("=")
                if name == "officer":
                    return parse_qs(f"o={value}").get("o", [""])[0]
            return ""

        def _not_found(self) -> None:
            self._send(HTTPStatus.NOT_FOUND, _page("Not found", "<p>Not found.</p>"))

        def do_GET(self) -> None:
            parts = [p for p in self.path.split("?")[0].split("/") if p]
            if not parts:
                self._send(200, app.index())
            elif len(parts) == 2 and parts[0] == "alerts" and (a := self._alert(parts[1])):
                self._send(200, app.detail(a, self._officer()))
            elif (
                len(parts) == 3
                and parts[0] == "alerts"
                and parts[2] == "probe.jpg"
                and (a := self._alert(parts[1]))
            ):
                try:
                    self._send(200, app.probe(a), "image/jpeg")
                except RejectedInput as exc:
                    log.error("probe of %s cannot be opened: %s", parts[1], exc.reason)
                    self._send(
                        HTTPStatus.UNPROCESSABLE_ENTITY,
                        _page(
                            "Probe", "<p>This probe cannot be opened with the adjudication key.</p>"
                        ),
                    )
            elif (
                len(parts) == 2
                and parts[0] == "references"
                and app.references
                and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}\.(jpg|jpeg|png)", parts[1])
                and (app.references / parts[1]).is_file()
            ):
                kind = "image/png" if parts[1].endswith(".png") else "image/jpeg"
                self._send(200, (app.references / parts[1]).read_bytes(), kind)
            else:
                self._not_found()

        def do_POST(self) -> None:
            parts = [p for p in self.path.split("/") if p]
            if (
                len(parts) != 3
                or parts[0] != "alerts"
                or parts[2] != "adjudicate"
                or not self._alert(parts[1])
            ):
                self._not_found()
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > 4096:
                self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, _page("Too large", ""))
                return
            form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
            field = {k: v[0] for k, v in form.items()}
            if not secrets.compare_digest(field.get("csrf", ""), app.csrf):
                self._send(
                    HTTPStatus.FORBIDDEN, _page("Refused", "<p>Stale form: reload the page.</p>")
                )
                return
            officer = field.get("officer", "").strip()
            try:
                app.store.adjudicate(parts[1], field.get("outcome", ""), officer)
            except ValueError as exc:
                self._send(HTTPStatus.BAD_REQUEST, _page("Refused", f"<p>{_e(exc)}</p>"))
                return
            self._send(
                HTTPStatus.SEE_OTHER,
                b"",
                extra={
                    "Location": f"/alerts/{parts[1]}",
                    "Set-Cookie": f"officer={quote(officer)}; Path=/; HttpOnly; SameSite=Strict",
                },
            )

    return Handler


def serve(app: OfficerApp, host: str, port: int) -> ThreadingHTTPServer:
    return ThreadingHTTPServer((host, port), make_handler(app))
