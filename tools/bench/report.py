"""``bench.md``: the benchmark report, rendered from ``bench.json`` (with the plots), so that a
report can be rendered again without measuring again.

    python -m tools.bench.report [reports/bench.json]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from tools.bench import runtimes
from tools.bench.concourse_fps import concourse_section
from tools.bench.console_report import bench_section
from tools.bench.detection_report import PLOT, detection_section, plot_recall_by_size
from tools.bench.plots import plot_latency, plot_matching
from tools.bench.timing import Timing
from tools.report import render_again, table

STAGE_HEADER = ["stage", "runs", "median ms", "p90 ms", "p99 ms", "Haar / this"]
NO_BROKER = (
    "mosquitto is not installed (looked for `mosquitto` on PATH and /usr/sbin/mosquitto; "
    "`make install-system` installs it): the publishing and frame-to-event rows and the "
    "agent-process measurement are skipped."
)


def render(doc: dict[str, Any], out: Path) -> None:
    """``bench.md``, ``bench_matching.png`` and (with a broker) ``bench_latency.png`` in
    ``out``."""
    m = doc["measured"]
    plot_matching(m["matching"]["series"], out / "bench_matching.png")
    if m["publishing"]:
        plot_latency(m["publishing"], out / "bench_latency.png")
    if m.get("detection") and "skipped" not in m["detection"]:
        plot_recall_by_size(m["detection"], out / PLOT)
    sections = (
        opening,
        per_stage,
        frame_to_event,
        runtime_section,
        throughput,
        clips,
        concourse_section,
        detection_section,
        lambda _: bench_section(out),  # measured apart: make bench-console
        agent,
    )
    (out / "bench.md").write_text("\n".join(line for part in sections for line in part(doc)))


def _load(doc: dict[str, Any]) -> str:
    return ", ".join(f"{x:.2f}" for x in doc["load_average"])


def opening(doc: dict[str, Any]) -> list[str]:
    m = doc["measured"]
    return [
        "# lfr-edge benchmark",
        "",
        f"Run {m['run_at']} on **{m['cpu']}** ({m['machine']}), Python {m['python']}, profile "
        f"`{m['profile']}`, TFLite runtime of the pipeline: **{m['runtimes']['pipeline']}** "
        "(the tflite-runtime comparison is below). "
        f"{'Quick (CI) sizes.' if m['quick'] else ''}",
        f"Load average at the end: {_load(doc)} "
        "(other work shares this machine: read the ratios to the Haar baseline, measured in "
        "the same run, rather than the absolute times).",
        "A Raspberry Pi 4/5 is several times slower per core than this machine; run the same "
        "bench there with `make bench` (or `.venv/bin/python -m tools.bench`).",
        "",
    ]


def per_stage(doc: dict[str, Any]) -> list[str]:
    m = doc["measured"]
    pub = m["publishing"]
    haar = Timing(**m["haar"]) if m["haar"] else None
    haar_ms = float(np.median(haar.samples)) * 1000 if haar else None
    stages = [Timing(**s) for s in m["stages"]]
    rows = [t.row(haar_ms if "detect" in t.name else None) for t in stages]
    if pub:
        rows += [
            Timing("publish: outbox put (SQLite WAL, fsync)", pub["publish"]["stored"]).row(),
            Timing("publish: put -> PUBACK -> outbox row deleted", pub["publish"]["acked"]).row(),
            Timing(
                "publish: put -> received by the control room", pub["publish"]["received"]
            ).row(),
        ]
    if haar:
        rows.append(haar.row())
    return [
        "## Per-stage latency",
        "",
        table(STAGE_HEADER, rows),
        "",
        "Stages on a 720p frame with one 160 px face; `embed` is the whole profile (three "
        "models, one run each: no flip averaging). Publishing: one signed event "
        f"({pub['facts']['event_bytes']:,} bytes with its sealed probe) at a time through the "
        "agent's Outbox, Publisher and MqttLink to Mosquitto on 127.0.0.1 (TLS, client "
        f"certificates, QoS 1); outbox on {pub['facts']['outbox']}. The bench looks for the "
        f"PUBACK every {m['poll_seconds'] * 1000:.1f} ms; the agent looks once per loop "
        "turn (after each frame), so on the device the row leaves the outbox up to one frame "
        "later; delivery to the control room does not wait for that."
        if pub
        else NO_BROKER,
        "",
    ]


def frame_to_event(doc: dict[str, Any]) -> list[str]:
    """The TCP_NODELAY diagnostic and frame to event (nothing without a broker)."""
    pub = doc["measured"]["publishing"]
    if not pub:
        return []
    nd, f2e, facts = pub["publish_nodelay"], pub["frame_to_event"], pub["facts"]
    return [
        "### Diagnostic: the same with TCP_NODELAY",
        "",
        table(
            STAGE_HEADER[:5],
            [
                Timing("put -> PUBACK -> outbox row deleted", nd["acked"]).row()[:5],
                Timing("put -> received by the control room", nd["received"]).row()[:5],
            ],
        ),
        "",
        "Not what the agent does today: here the device's socket has TCP_NODELAY and the "
        "broker runs with `set_tcp_nodelay true`. paho-mqtt does not set TCP_NODELAY and "
        "Mosquitto's default is off, so an event of tens of kB waits for Nagle's algorithm "
        "and the peer's delayed ACK (about 40 ms on Linux) once on the way to the broker "
        "and once on the way to the subscriber. Compare the rows above.",
        "",
        "## Frame to event",
        "",
        table(
            STAGE_HEADER[:5],
            [
                Timing("pipeline: detect, quality, embed, match", f2e["process"]).row()[:5],
                Timing("+ sign, seal probe, outbox put", f2e["stored"]).row()[:5],
                Timing("+ publish, all PUBACKed", f2e["acked"]).row()[:5],
                Timing("frame -> all events received", f2e["received"]).row()[:5],
            ],
        ),
        "",
        f"A 720p frame with {facts['faces']} faces (160-240 px) handed to the "
        f"FramePipeline (single pass), all {f2e['events_per_sample']} of them "
        f"on a watchlist of {facts['watchlist']:,} sealed to the device and "
        "installed through the agent's WatchlistStore; each time from the frame to the last "
        "of its events. The tracker runs with window 0 here: in the field a matched face "
        "alerts on the first frame after `matching.window_seconds` (default 1 s, which picks "
        "the best frame of the track), so add that wait to these times. Every one of the "
        f"{facts['events_verified']} events the control-room client received was "
        "verified against the registry's device keys.",
        "",
        "![latency](bench_latency.png)",
        "",
    ]


def runtime_section(doc: dict[str, Any]) -> list[str]:
    """Every model under each runtime that ran, and why any other did not."""
    result = doc["measured"]["runtimes"]
    measured, failures, runs = result["measured"], result["failures"], result["runs"]
    lines = [
        "## TFLite models alone: ai-edge-litert vs tflite-runtime, threads 1/2/4",
        "",
        f"The device pipeline above uses **{result['pipeline']}** (the first that "
        "`agent.vision.runtime.select_runtime` finds). Measured here, each in its own process:",
        "",
    ]
    lines += [
        f"- **{r}** {m['version']} (numpy {m['numpy']}, `{m['python']}`)"
        for r, m in measured.items()
    ]
    if failures:
        lines += ["", "Not measured (detected now, in a subprocess that creates an interpreter):"]
        lines += [f"- {f}" for f in failures]
    here = result["alongside"]
    if here is not None:
        lines += [
            "",
            "tflite-runtime was measured in its own venv. Its package loaded by this venv's "
            "interpreter and numpy (what installing it here would give): "
            + (f"`{here['error']}`." if "error" in here else "it works here too."),
        ]
    if "tflite-runtime" not in measured:
        lines += [
            "",
            "**So the tflite-runtime column is absent.** Its last release, tflite-runtime "
            "2.14.0 (cp311 x86_64/aarch64 wheels exist), was built against numpy 1.x: under "
            f"numpy 2 (this venv has numpy {result['numpy']}) it imports, then fails with "
            "`_ARRAY_API not found` when the first interpreter is created, so it cannot live "
            "in the project's venv beside ai-edge-litert. To fill the column, give the bench "
            "a side venv: `python3.11 -m venv /tmp/tflrt && /tmp/tflrt/bin/pip install "
            "'numpy<2' tflite-runtime` then `make bench BENCH_ARGS='--tflite-runtime-python "
            "/tmp/tflrt/bin/python'`.",  # noqa: S108 - advice to the reader
        ]
    return [
        *lines,
        "",
        runtime_table(measured, runs),
        "",
        f"invoke() only, on random inputs of each model's own shape and type, {runs} runs "
        "after 3 warm-up runs (fewer where 10 s ran out: the count is given). This machine has "
        f"{result['cpus']} CPUs, so threads=4 oversubscribes it.",
        "",
    ]


def runtime_table(measured: dict[str, dict[str, Any]], runs: int) -> str:
    names = sorted({n for m in measured.values() for n in m["models"]})
    columns = [r for r in runtimes.RUNTIMES if r in measured]
    header = ["model", "variant", "threads"] + [f"{r} median (p90) ms" for r in columns]
    if len(columns) == 2:
        header.append(f"{columns[1]} / {columns[0]}")
    rows = []
    for name in names:
        for threads in ("1", "2", "4"):
            row, medians = [], []
            for runtime in columns:
                model = measured[runtime]["models"].get(name, {})
                samples = model.get("ms", {}).get(threads)
                if samples:
                    medians.append(float(np.median(samples)))
                    short = f", {len(samples)} runs" if len(samples) < runs else ""
                    row.append(f"{medians[-1]:.2f} ({np.percentile(samples, 90):.2f}{short})")
                else:
                    row.append(model.get("error", "-"))
            spec = next(m["models"][name] for m in measured.values() if name in m["models"])
            ratio = [f"{medians[1] / medians[0]:.2f}x"] if len(medians) == 2 else []
            pad = [""] if len(columns) == 2 and not ratio else []
            rows.append([name, spec["variant"], threads, *row, *ratio, *pad])
    return table(header, rows)


def throughput(doc: dict[str, Any]) -> list[str]:
    header = [
        "frame",
        "faces",
        "tiles",
        "frames/s",
        "faces found",
        "Haar frames/s",
        "Haar found",
        "frames/s ÷ Haar",
    ]
    return [
        "## End to end: frames per second through detect, quality, embed, match, track",
        "",
        table(header, doc["measured"]["throughput"]),
        "",
        "Faces are LFW photos pasted on a grey concourse at 48-120 px. `tiles=3` is the "
        "small-face mode (the frame is also searched in a 3x3 grid of overlapping squares). "
        "The single pass (`tiles=1`, BlazeFace short-range on the whole frame scaled to "
        "128x128) does not see faces this small, so its rows measure detection only: read "
        "`faces found` next to `frames/s`. Haar is the baseline in the same run: OpenCV's "
        "cascade, detection only, no embedding.",
        "",
    ]


def clips(doc: dict[str, Any]) -> list[str]:
    m = doc["measured"]
    lines = ["## Real clips (../shared/media)", ""]
    if m["clips"] is None:
        return [*lines, f"Skipped: {m['media']} is absent (a fresh clone has no ../shared)."]
    header = [
        "clip",
        "size",
        "tiles",
        "frames/s",
        "faces found",
        "frames with a face",
        "faces embedded",
        "tracks",
        "Haar frames/s",
        "Haar found",
    ]
    return [
        *lines,
        table(header, m["clips"]),
        "",
        ("Quick run: the first 12 frames of each clip. " if m["quick"] else "")
        + "Intel IoT devkit sample videos, CC-BY 4.0 (read in place, frame by frame, with "
        "the agent's own GIF source). Every frame goes through the full pipeline against a "
        "watchlist of 1,000 random identities (so every face is embedded, matched and "
        "discarded); `faces found` counts detections over all frames, `faces embedded` "
        "those that passed the quality gate, `tracks` the people the tracker followed.",
    ]


def agent(doc: dict[str, Any]) -> list[str]:
    """Matching, the agent as a process, and what this run took."""
    m, footprint = doc["measured"], doc["agent"]
    lines = [
        "",
        "## Matching one probe against the watchlist",
        "",
        table(["storage", "entries", "ms per probe", "bytes/entry", "MiB"], m["matching"]["rows"]),
        "",
        "![matching](bench_matching.png)",
        "",
        "## The agent as a process",
        "",
    ]
    if footprint:
        lines.append(
            f"`lfr-agent run` on a looping 720p clip of {footprint['faces_in_frame']} faces "
            f"(the frame-to-event frame, the people walking across it in a 30 frames/s video) "
            f"with a watchlist of those people pushed by ops (status: "
            f"{footprint.get('watchlist')}), for "
            f"{m['agent_seconds']:.0f} s: peak RSS **{footprint['peak_rss_mb']:.0f} MiB**, CPU "
            f"**{footprint['cpu_percent']:.0f}%** (100% = one core), "
            f"**{footprint.get('frames_per_second', float('nan')):.1f} frames/s processed** "
            f"({footprint.get('dropped_per_second', float('nan')):.1f}/s dropped by the "
            f"one-frame slot), {footprint.get('faces_per_frame', float('nan')):.2f} faces and "
            f"{footprint.get('embeddings_per_frame', float('nan')):.2f} embeddings per frame "
            f"(the embedding schedule), CPU seconds by stage {footprint.get('stage_cpu_s')}, "
            f"{footprint.get('faces_detected')} faces detected, "
            f"{footprint.get('events_published')} events published (one per person per "
            "cool-down)."
        )
    else:
        lines.append(NO_BROKER)
    cpu, cpus = doc["cpu_seconds"], m["cpus"]
    return [
        *lines,
        "",
        "## This run",
        "",
        table(["section", "wall-clock s"], [[k, f"{v:.0f}"] for k, v in doc["seconds"].items()]),
        "",
        f"CPU time of the bench and its children: {cpu:.0f} s, i.e. at least "
        f"{cpu / (cpus or 1):.0f} s of wall-clock on an otherwise idle "
        f"{cpus}-CPU machine; load average at the end {_load(doc)}.",
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    return render_again(argv, "bench", render)


if __name__ == "__main__":
    sys.exit(main())
