"""The console's own CSS and scripts (``central/console/static/``, package data): no CDN, no
build step, read once at start. Served without a login (nothing secret in them) so the login
page is styled."""

from __future__ import annotations

from functools import cache
from importlib import resources

from central.console.context import Request, Response
from central.console.layout import refuse

_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


@cache
def assets() -> dict[str, tuple[bytes, str]]:
    found: dict[str, tuple[bytes, str]] = {}
    for entry in resources.files("central.console").joinpath("static").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in _TYPES:
            found[entry.name] = (entry.read_bytes(), _TYPES[suffix])
    return found


def static(request: Request) -> Response:
    found = assets().get(request.params["asset"])
    if found is None:
        return refuse(404, "Not found.")
    return Response(200, found[0], found[1])
