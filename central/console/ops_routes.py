"""The ops pages in the console's route table: /fleet, /deployment and its Markdown and CSV
downloads (:mod:`central.ops_pages` reads and renders them), and their stylesheet."""

from __future__ import annotations

from central.console.context import Request, Response
from central.console.layout import refuse
from central.ops_pages import STYLESHEET


def _ops(request: Request, name: str) -> Response:
    ops = request.console.ops
    page = ops.get(name, request.officer) if ops is not None else None
    if page is None:
        return refuse(404, "Not found.")
    return Response(200, page.body, page.content_type, headers=dict(page.headers))


def fleet(request: Request) -> Response:
    return _ops(request, "fleet")


def deployment(request: Request) -> Response:
    return _ops(request, "deployment")


def deployment_md(request: Request) -> Response:
    return _ops(request, "deployment.md")


def deployment_csv(request: Request) -> Response:
    return _ops(request, "deployment.csv")


def stylesheet(request: Request) -> Response:
    return Response(200, STYLESHEET, "text/css; charset=utf-8")
