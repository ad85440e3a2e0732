"""Clock jumps forward and backward under a running agent: expiry and anti-replay hold.

The real agent (``build_agent``: config, keys, broker link, store, loop) runs in this process
with its clock injected, against the real broker; the watchlists and commands arrive over MQTT
as ops send them. A jump forward past expiry wipes the list; a jump back never brings it back, never
lets an older version or command in, and a bundle "from the future" waits for a sane clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.app import build_agent
from agent.config import load_config
from protocol.command import Action, Command, sign_command
from protocol.status import Rejection
from provisioning.authority import load_ops_signer
from tests.reliability.conftest import Recorder
from tests.reliability.procs import crowd_clip, set_section
from tools.broker import publish_retained
from tools.processes import Rig, wait_until


class JumpClock:
    """Wall time plus an offset the test moves; the agent reads nothing else."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
def rig(tmp_path: Path, artefacts: Path) -> Iterator[Rig]:
    rig = Rig.create(tmp_path / "fleet", devices=1, logs=artefacts / "clock")
    yield rig
    rig.close()


def command(rig: Rig, device: str, action: Action, counter: int) -> bytes:
    now = datetime.now(UTC).replace(microsecond=0)
    return sign_command(
        Command(
            device, rig.device(device)["site"], action, counter, now, now + timedelta(minutes=30)
        ),
        [load_ops_signer(Path(k)) for k in rig.index["ops_keys"]],
    )


def test_clock_jumps(rig: Rig, tmp_path: Path, record: Recorder) -> None:
    device = rig.device_ids[0]
    config_path = Path(rig.device(device)["config"])
    set_section(config_path, "matching", window_seconds=0.2, cooldown_seconds=0.1)
    clock = JumpClock()
    agent = build_agent(
        load_config(config_path),
        source=str(crowd_clip(tmp_path / "crowd.gif", people=3)),
        clock=clock,
    )
    runner = threading.Thread(target=agent.run, name="agent", daemon=True)
    wl_topic, cmd_topic = rig.topic(device, "watchlist"), rig.topic(device, "command")
    control = agent.control
    seen: list[Rejection] = []

    def rejected(reason: str) -> bool:
        got = control.state.last_rejection
        if got is not None and got.reason == reason and got not in seen:
            seen.append(got)
            return True
        return False

    def matches() -> int:
        return agent.frames.status().report.matches

    v1 = rig.push_watchlist(device, [0, 1, 2], 1, timedelta(hours=1))
    runner.start()
    try:
        wait_until(lambda: control.watchlist is not None, 30, "watchlist v1 installed")
        wait_until(lambda: matches() > 0, 30, "matches under v1")

        # Forward past expiry: wiped from memory and disk, and nothing matches any more.
        clock.offset = timedelta(hours=2)
        wait_until(lambda: control.watchlist is None, 10, "expiry wipe after a forward jump")
        assert control.note == "expired and wiped"
        assert not control.store.path.exists()
        before = matches()
        time.sleep(2)
        assert matches() == before

        # Back a day: the wiped list does not come back, and re-sending it is a rollback.
        clock.offset = -timedelta(days=1)
        time.sleep(1)
        assert control.watchlist is None and not control.store.path.exists()
        publish_retained(rig.index, wl_topic, v1)
        wait_until(lambda: rejected("rollback"), 10, "v1 refused as a rollback")

        # A new list issued by ops "now" is in this device's future: refused until the clock
        # is sane again, then accepted when ops send it again.
        v2 = rig.push_watchlist(device, [0, 1, 2], 2, timedelta(hours=1))
        wait_until(lambda: rejected("not_yet_valid"), 10, "v2 refused as not yet valid")
        clock.offset = timedelta(0)
        publish_retained(rig.index, wl_topic, v2)
        wait_until(
            lambda: control.header is not None and control.header.version == 2,
            10,
            "v2 installed once the clock is back",
        )

        # Commands: counters, not clocks, stop replays, whichever way the clock jumped.
        pause = command(rig, device, Action.PAUSE, 1)
        publish_retained(rig.index, cmd_topic, pause)
        wait_until(lambda: control.paused, 10, "pause accepted")
        publish_retained(rig.index, cmd_topic, command(rig, device, Action.RESUME, 2))
        wait_until(lambda: not control.paused, 10, "resume accepted")
        for offset in (timedelta(minutes=10), -timedelta(days=1)):
            clock.offset = offset
            publish_retained(
                rig.index, cmd_topic, pause
            )  # an attacker replaying the captured pause
            wait_until(
                lambda: (
                    control.state.last_rejection is not None
                    and control.state.last_rejection.what == "command"
                    and control.state.last_rejection not in seen
                ),
                10,
                "the replay refused",
            )
            assert control.state.last_rejection is not None
            seen.append(control.state.last_rejection)
            time.sleep(0.5)
            assert not control.paused, f"a replayed pause took effect at offset {offset}"
        assert control.floors.command_counter == 2
        assert control.store.floors().command_counter == 2
    finally:
        agent.stop()
        runner.join(15)
    assert not runner.is_alive(), "the agent did not stop"
    for item in seen:
        record("clock-rejections", str(item.to_json()))
    record(
        "figures",
        "clock jumps: +2h wiped the expired list (no match after); -1 day: wiped list not "
        "restored, v1 refused (rollback), v2 refused (not_yet_valid) until the clock was back; "
        "replayed pause refused at +10 min and -1 day ("
        + ", ".join(i.reason for i in seen[-2:])
        + "); command floor stayed 2",
    )
