"""The ops pages behind the officers' login: /fleet, /deployment, /deployment.md and
/deployment.csv (issue 19). This module does the reading (store, registry, clock); the
rendering is pure (:mod:`central.fleet_view`, :mod:`central.deployment_page`,
:mod:`central.pilot_text`). :class:`OpsPages` answers a route name with a :class:`Response`
so that whichever HTTP front serves the console hooks it in one line.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from central.deployment_page import DEPLOYMENT_STYLE, render_deployment
from central.device_status import alerts_since, latest_statuses
from central.fleet_view import FLEET_STYLE, FleetRow, render_fleet
from central.pilot import collect
from central.pilot_text import csv_text, markdown
from central.store import AlertStore
from protocol.encoding import parse_time
from protocol.errors import RejectedInput
from provisioning.registry import Registry

log = logging.getLogger(__name__)
ROUTES = ("fleet", "deployment", "deployment.md", "deployment.csv")
PAGES = ("fleet", "deployment")  # HTML: an unauthenticated visit goes to the login
_STYLE = """body{font-family:system-ui,sans-serif;margin:1.5rem;color:#111}
table{border-collapse:collapse;margin-bottom:1rem}td,th{padding:.35rem .7rem;
border-bottom:1px solid #ccc;text-align:left}nav a{margin-right:1rem}
nav{display:flex;justify-content:space-between;margin-bottom:.5rem}a{color:#0645ad}"""
STYLESHEET = (_STYLE + FLEET_STYLE + DEPLOYMENT_STYLE).encode()


@dataclass(frozen=True)
class Response:
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def document(title: str, body: str, officer: str, refresh: int | None) -> bytes:
    """An ops page; its styles are :data:`STYLESHEET`, served as /ops.css (the console's
    Content-Security-Policy allows no inline style)."""
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh else ""
    nav = (
        '<nav aria-label="pages"><span><a href="/">Alerts</a><a href="/fleet">Fleet</a>'
        f'<a href="/deployment">Deployment</a></span><span>Logged in as '
        f"<b>{html.escape(officer)}</b></span></nav>"
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'{meta}<title>{html.escape(title)}</title><link rel="stylesheet" href="/ops.css">'
        f"</head><body>{nav}<main>{body}</main></body></html>"
    ).encode()


def fleet_rows(registry: Registry | None, store: AlertStore, now: datetime) -> list[FleetRow]:
    """Every registered device (revoked ones too, marked), then any device with a stored
    status the registry no longer lists; ordered by site, then device."""
    latest = latest_statuses(store)
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    alerts = alerts_since(store, today)
    rows: list[FleetRow] = []
    known = registry.devices if registry is not None else {}
    for device_id, record in known.items():
        try:
            not_after: datetime | None = parse_time(record.cert_not_after, "cert_not_after")
        except RejectedInput:
            not_after = None
        rows.append(
            FleetRow(
                device_id,
                record.site,
                record.status,
                not_after,
                latest.get(device_id),
                alerts.get(device_id, 0),
            )
        )
    for device_id, status in latest.items():
        if device_id not in known:
            registered = "active" if registry is None else "not in the registry"
            rows.append(
                FleetRow(
                    device_id,
                    status.status.site,
                    registered,
                    None,
                    status,
                    alerts.get(device_id, 0),
                )
            )
    return sorted(rows, key=lambda r: (r.site, r.device_id))


class OpsPages:
    def __init__(
        self,
        store: AlertStore,
        registry_path: Path | None,
        status_interval: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store, self.registry_path = store, registry_path
        self.status_interval, self.clock = status_interval, clock

    def _registry(self) -> Registry | None:
        if self.registry_path is None:
            return None
        try:
            return Registry.load(self.registry_path)
        except (OSError, RejectedInput) as exc:
            # The page still shows what the devices said; the header says the list is partial.
            log.error("fleet view: registry unreadable: %s", exc)
            return None

    def get(self, route: str, officer: str) -> Response | None:
        """The response for ``route`` (one of :data:`ROUTES`), or None: not an ops page."""
        now = self.clock()
        if route == "fleet":
            registry = self._registry()
            body = render_fleet(fleet_rows(registry, self.store, now), now, self.status_interval)
            if registry is None:
                body = (
                    '<p class="error" role="alert">No registry read (serve --registry REG): '
                    "devices that never sent a status are missing.</p>" + body
                )
            refresh = max(5, min(60, int(self.status_interval)))
            page = document("Fleet", body, officer, refresh)
            return Response("text/html; charset=utf-8", page)
        if route == "deployment":
            body = render_deployment(collect(self.store, now))
            page = document("Deployment", body, officer, None)
            return Response("text/html; charset=utf-8", page)
        if route in ("deployment.md", "deployment.csv"):
            report = collect(self.store, now)
            text, kind = (
                (markdown(report), "text/markdown")
                if route.endswith(".md")
                else (csv_text(report), "text/csv")
            )
            name = f"deployment-{now.strftime('%Y%m%d-%H%M%S')}{route[len('deployment') :]}"
            disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
            return Response(f"{kind}; charset=utf-8", text.encode("utf-8"), disposition)
        return None
