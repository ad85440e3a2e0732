"""Power cut during a watchlist install: killed at every step, the device holds the old or the
new watchlist, verified, never a torn one, and never a version floor above what it holds.

The installing process (``lfr-agent watchlist install``, the same ``WatchlistStore.install`` the
daemon runs on receipt) is SIGKILLed right before each of its file-system steps in turn, and
once halfway through each write. What a process kill cannot show is the page cache being lost;
that is what the order of the steps guarantees, and the trace is checked for it too: every
file's data is fsynced before the rename that publishes it, and the directory after.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.io.identity import load_identity
from agent.io.watchlist_store import WatchlistStore
from agent.synthetic_vision import PROFILE_ID
from provisioning.quickstart import quickstart
from tests.reliability.conftest import Recorder
from tools.synthetic import seal_for

# Runs in the child: counts every file-system step of the real code and dies at step N.
INJECT = r"""
import os, signal, sys
crash_at = int(os.environ["LFR_CRASH_AT"])
torn = os.environ.get("LFR_CRASH_TORN") == "1"
trace = os.open(os.environ["LFR_TRACE"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
real_open, real_fsync, real_chmod = os.open, os.fsync, os.chmod
real_replace, real_unlink, real_fdopen, real_write = os.replace, os.unlink, os.fdopen, os.write
names = {}
count = 0

def step(what, before_death=None):
    global count
    count += 1
    real_write(trace, f"{count} {what}\n".encode())
    if count == crash_at:
        if before_death is not None:
            before_death()
        os.kill(os.getpid(), signal.SIGKILL)

def name(p):
    return os.path.basename(os.fspath(p)) if not isinstance(p, int) else names.get(p, str(p))

def t_open(path, flags, mode=0o777, **kw):
    kind = "dir" if flags & getattr(os, "O_DIRECTORY", 0) else "file"
    if kind == "dir" or flags & os.O_CREAT:
        step(f"open-{kind} {name(path)}")
    fd = real_open(path, flags, mode, **kw)
    names[fd] = name(path)
    return fd

def t_fsync(fd):
    step(f"fsync {names.get(fd if isinstance(fd, int) else fd.fileno(), '?')}")
    real_fsync(fd)

def t_chmod(path, mode, **kw):
    step(f"chmod {name(path)}")
    real_chmod(path, mode, **kw)

def t_replace(src, dst, **kw):
    step(f"rename {name(src)} -> {name(dst)}")
    real_replace(src, dst, **kw)

def t_unlink(path, **kw):
    step(f"unlink {name(path)}")
    real_unlink(path, **kw)

class Writer:
    def __init__(self, handle, fd):
        self.handle, self.fd = handle, fd
    def write(self, data):
        half = lambda: (self.handle.write(data[: len(data) // 2]), self.handle.flush())
        step(f"write {names.get(self.fd, '?')} {len(data)}", half if torn else None)
        return self.handle.write(data)
    def __getattr__(self, attr):
        return getattr(self.handle, attr)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return self.handle.__exit__(*exc)

def t_fdopen(fd, *args, **kw):
    return Writer(real_fdopen(fd, *args, **kw), fd)

os.open, os.fsync, os.chmod, os.replace, os.unlink, os.fdopen = (
    t_open, t_fsync, t_chmod, t_replace, t_unlink, t_fdopen)
from agent.cli import main
sys.exit(main(sys.argv[1:]))
"""


def install(state: Path, bundle: Path, trace: Path, crash_at: int, torn: bool) -> int:
    env = {
        "LFR_CRASH_AT": str(crash_at),
        "LFR_TRACE": str(trace),
        "LFR_CRASH_TORN": "1" if torn else "0",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            INJECT,
            "watchlist",
            "install",
            str(bundle),
            "--state",
            str(state),
            "--embedder",
            PROFILE_ID,
        ],
        env={**__import__("os").environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode


def show(state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "lfr-agent"),
            "watchlist",
            "show",
            "--state",
            str(state),
            "--embedder",
            PROFILE_ID,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, bytes]:
    root = tmp_path_factory.mktemp("powercut")
    quickstart(root, devices=1, now=datetime.now(UTC))
    index = json.loads((root / "quickstart.json").read_text())
    state = Path(index["devices"][0]["state_dir"])
    old = seal_for(index, "cam-01", [0, 1], 1, timedelta(hours=2))
    new = seal_for(index, "cam-01", [2, 3, 4], 2, timedelta(hours=2))
    (root / "v1.jws").write_bytes(old)
    WatchlistStore(load_identity(state), PROFILE_ID).install(old, datetime.now(UTC))
    return state, old, new


def test_killed_at_every_step_of_an_install(
    template: tuple[Path, bytes, bytes], tmp_path: Path, record: Recorder
) -> None:
    state, old, new = template
    bundle = tmp_path / "v2.jws"
    bundle.write_bytes(new)

    # A clean run first: the steps, and their order, which is what survives a real power cut.
    clean = tmp_path / "clean"
    shutil.copytree(state, clean)
    trace = tmp_path / "clean.trace"
    assert install(clean, bundle, trace, 0, False) == 0
    steps = [line.split(" ", 1)[1] for line in trace.read_text().splitlines()]
    for target in ("watchlist.jws", "counters.json"):
        temp = next(s.split()[1] for s in steps if s.startswith("open-file") and target in s)
        order = [
            steps.index(
                f"write {temp} "
                + next(s.split()[2] for s in steps if s.startswith(f"write {temp}"))
            ),
            steps.index(f"fsync {temp}"),
            steps.index(f"rename {temp} -> {target}"),
        ]
        assert order == sorted(order), f"{target}: write, fsync, rename out of order: {steps}"
        renamed = order[2]
        assert any(s.startswith("fsync") and i > renamed for i, s in enumerate(steps)), (
            f"{target}: directory not fsynced after the rename"
        )
    assert steps.index(next(s for s in steps if "-> watchlist.jws" in s)) < steps.index(
        next(s for s in steps if "-> counters.json" in s)
    ), "the version floor must be raised only after the new bundle is in place"

    writes = [i + 1 for i, s in enumerate(steps) if s.startswith("write")]
    trials = [(k, False) for k in range(1, len(steps) + 1)] + [(k, True) for k in writes]
    outcomes: dict[str, int] = {"old": 0, "new": 0}
    for k, torn in trials:
        trial = tmp_path / f"trial-{k}-{int(torn)}"
        shutil.copytree(state, trial)
        code = install(trial, bundle, tmp_path / f"trial-{k}.trace", k, torn)
        assert code == -9, f"step {k} ({steps[k - 1]}): the install was not killed ({code})"
        # What a technician or the restarting daemon sees.
        shown = show(trial)
        assert shown.returncode == 0, f"step {k} torn={torn}: {shown.stdout}{shown.stderr}"
        held = (trial / "watchlist.jws").read_bytes()
        assert held in (old, new), f"step {k} torn={torn}: the watchlist file is torn"
        version = 1 if held == old else 2
        assert f"version:     {version}\n" in shown.stdout
        floors = json.loads((trial / "counters.json").read_text())
        assert floors["watchlist_version"] == version, f"step {k}: floor {floors} vs v{version}"
        loaded = WatchlistStore(load_identity(trial), PROFILE_ID).load(datetime.now(UTC))
        assert loaded is not None and loaded.header.version == version
        assert not list(trial.glob(".*.tmp-*")), f"step {k}: temp files left after restart"
        outcomes["old" if version == 1 else "new"] += 1
    assert outcomes["old"] and outcomes["new"]
    record(
        "figures",
        f"power cut in watchlist install: {len(steps)} steps ({', '.join(steps)}); "
        f"{len(trials)} kills ({len(writes)} halfway through a write): old watchlist "
        f"{outcomes['old']}x, new {outcomes['new']}x, torn 0, floor above holding 0",
    )
