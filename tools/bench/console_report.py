"""``reports/console-load.md`` from ``console-load.json`` (tools.bench.console_load), and the
short section of ``bench.md`` that links to it.

    python -m tools.bench.console_report [reports/console-load.json]
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from tools.report import REPORTS, table

QUEUE_TARGET_S, PAGE_TARGET_MS = 2.0, 300.0
KINDS = {
    "queue": "queue",
    "alert": "alert view",
    "probe": "probe image (decrypted)",
    "decide": "decision (POST)",
    "login": "login (scrypt)",
    "browser queue": "browser: queue page (to load event)",
    "browser alert": "browser: alert view with images",
    "browser decide": "browser: decision click to next page",
    "browser login": "browser: login",
}


def _n(value: float, digits: int = 0) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _verdict(ok: bool) -> str:
    return "yes" if ok else "**NO**"


def _order(kind: str) -> int:
    return list(KINDS).index(kind) if kind in KINDS else len(KINDS)


def _pages(figures: dict[str, dict[str, float]]) -> list[list[str]]:
    return [
        [
            KINDS.get(kind, kind),
            str(int(f["n"])),
            _n(f["p50"], 1),
            _n(f["p95"], 1),
            _n(f["max"], 1),
            _verdict(f["p95"] < PAGE_TARGET_MS) if "queue" in kind or "alert" in kind else "",
        ]
        for kind, f in sorted(figures.items(), key=lambda kv: _order(kv[0]))
    ]


def headline(doc: dict[str, Any]) -> list[str]:
    """The figures the issue asks for, one line each (also bench.md's section)."""
    load, lines = doc.get("load", {}), []
    if load:
        store, queue = load["device_to_store_s"], load["device_to_queue_s"]
        lines += [
            f"- stored exactly once: {load['live_distinct']} distinct of {load['produced']} "
            f"alerts produced, {load['live_rows']} rows ({load['missing']} missing; "
            f"{load['rows']} rows in all with the {load['seeded']} seeded, "
            f"{load['distinct_rows']} distinct)",
            f"- device -> store: p50 {_n(store['p50'], 2)} s, p95 {_n(store['p95'], 2)} s, "
            f"max {_n(store['max'], 2)} s",
            f"- device -> shown in the queue (polled every {doc['settings']['poll']} s): "
            f"p50 {_n(queue['p50'], 2)} s, p95 {_n(queue['p95'], 2)} s, max "
            f"{_n(queue['max'], 2)} s (target < {QUEUE_TARGET_S:.0f} s: "
            f"{_verdict(queue['max'] < QUEUE_TARGET_S)})",
        ]
        for when, figures in (("quiet", doc["quiet"]), ("under load", load["pages"])):
            parts = [
                f"{KINDS[k]} p50 {_n(figures[k]['p50'], 0)} / p95 {_n(figures[k]['p95'], 0)} ms"
                for k in ("queue", "alert", "browser queue", "browser alert")
                if k in figures
            ]
            lines.append(f"- page loads at {doc['settings']['seed_alerts']:,} stored, {when}: "
                         + ", ".join(parts))  # fmt: skip
    migration = doc.get("migration")
    if migration:
        lines.append(
            f"- migration {migration['from_version']} -> {migration['to_version']} at "
            f"{migration['alerts']:,} alerts on PostgreSQL: {migration['migrate_s']:.2f} s"
        )
    return lines


def render(doc: dict[str, Any]) -> str:
    s = doc["settings"]
    out = [
        "# The control-room console under load (issue 19)",
        "",
        f"Run {doc['started']} on {doc['machine']} by `make bench-console` "
        "(tools/bench/console_load.py). "
        f"{s['devices']} simulated devices (the load generator, tools/load, on the agent's "
        f"publishing path) at {s['rate']:g} alerts/s for {s['seconds']:g} s through one TLS "
        "Mosquitto to two `lfr-alerts listen` in one shared-subscription group, into "
        f"PostgreSQL holding {s['seed_alerts']:,} earlier alerts (seeded, all decided); "
        f"{s['instances']} `lfr-alerts serve` instances (HTTPS) on that database; "
        f"{s['officers']} officers ("
        + _who(int(doc.get("load", {}).get("browser") or 0), int(s["officers"]))
        + "; HTTP clients read the queue from "
        f"{'the queue page' if s['queue'] == 'page' else '/api/queue'}) poll the queue every "
        f"{s['poll']:g} s, open the newest undecided alert and its probe, look for about "
        f"{s['think']:g} s and decide; one more client, the queue watcher, notes when each alert "
        "first shows in the queue.",
        "",
        "## Headline",
        "",
        *headline(doc),
        "",
    ]
    load = doc.get("load")
    if load:
        step = load["step"]
        out += [
            "## Every alert stored once",
            "",
            table(
                [
                    "produced",
                    "stored (live)",
                    "distinct",
                    "missing",
                    "listeners (stored, duplicates, refused)",
                ],
                [
                    [
                        str(load["produced"]),
                        str(load["live_rows"]),
                        str(load["live_distinct"]),
                        str(load["missing"]),
                        str(load["listener_totals"]),
                    ]
                ],
            ),
            "",
            "## Latency, seconds",
            "",
            table(
                ["path", "n", "p50", "p95", "max"],
                [
                    [name, str(f["n"]), _n(f["p50"], 3), _n(f["p95"], 3), _n(f["max"], 3)]
                    for name, f in (
                        ("device -> store (polled every 20 ms)", load["device_to_store_s"]),
                        (
                            f"device -> shown in the queue (polled every {s['poll']:g} s)",
                            load["device_to_queue_s"],
                        ),
                    )
                ],
            ),
            "",
            f"Alerts never seen in the queue by the watcher: {load['not_seen_in_queue']}.",
            "",
            "## Page loads, milliseconds",
            "",
            f"Quiet (one client, {s['page_loads']} loads each, {s['seed_alerts']:,} stored):",
            "",
            table(["request", "n", "p50", "p95", "max", "p95 < 300 ms"], _pages(doc["quiet"])),
            "",
            "Under load (all officers and the watcher, from the first alert produced to the "
            "end of the run):",
            "",
            table(["request", "n", "p50", "p95", "max", "p95 < 300 ms"], _pages(load["pages"])),
            "",
            "## The officers",
            "",
            f"Decided {load['decided_by_officers']} alerts ({load['per_officer']}); decisions "
            f"refused by the console: {load['refused_decisions']}; alerts with more than one "
            f"decision: {load['decided_twice']}; client errors: {load['error_count']}"
            + (f" (first: {load['errors'][0]})" if load["errors"] else "")
            + ".",
            "",
            "## CPU, percent of one core during the load",
            "",
            table(
                ["component", "CPU %"],
                [[k, _n(v, 0)] for k, v in step["cpu"].items()]
                + [
                    [f"console {n}", _n(v, 0)]
                    for n, v in enumerate(load["console_cpu_percent"], start=1)
                ],
            ),
            "",
        ]
    migration = doc.get("migration")
    if migration:
        rows = [
            [
                name,
                _n(before["median_ms"], 1),
                _n(migration["queries_latest"][name]["median_ms"], 1),
            ]
            for name, before in migration["queries_v4"].items()
        ]
        out += [
            f"## Migration {migration['from_version']} -> {migration['to_version']} at "
            f"{migration['alerts']:,} alerts (PostgreSQL)",
            "",
            f"Seeded in {migration['seed_s']:.1f} s (COPY, 97 % decided); opening the store "
            f"migrated it in **{migration['migrate_s']:.2f} s** (version 7 builds three "
            "indexes; 5 and 6 are the console's). What a page asks, before and after "
            "(median ms; before: one run):",
            "",
            table(["query", "at version 4", "at the latest"], rows),
            "",
        ]
    out += [f"CPU time of the bench and its children: {doc['cpu_seconds']:.0f} s.", ""]
    return "\n".join(out)


def bench_section(reports: Path = REPORTS) -> list[str]:
    """bench.md's pointer to the console load report (with its headline, once it exists)."""
    found = reports / "console-load.json"
    lines = ["## The control-room console under load", ""]
    if not found.exists():
        return [*lines, "Not measured yet: `make bench-console` writes console-load.md.", ""]
    doc = json.loads(found.read_text())
    return [
        *lines,
        f"From `make bench-console` ({doc['started']}); the whole report: "
        "[console-load.md](console-load.md).",
        "",
        *headline(doc),
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    source = Path((argv or sys.argv[1:] or [str(REPORTS / "console-load.json")])[0])
    (source.parent / "console-load.md").write_text(render(json.loads(source.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())


def _who(browsers: int, officers: int) -> str:
    """Which officers worked in Chromium and which as HTTP clients."""
    chromium = "headless Chromium 1366x768 (tools/bench/console_browser.py)"
    http = "HTTP clients (tools/bench/console_ui.py)"
    if browsers >= officers:
        return f"all in {chromium}"
    if browsers == 0:
        return f"all {http}"
    return f"{browsers} in {chromium}, the others {http}"
