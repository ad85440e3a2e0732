"""The fleet every attack test in this package runs against, started once for the package:
the tests observe one system in sequence (the last one audits what all the others left)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol.command import Action
from protocol.event import sign_event
from tests.reliability.attacks.fleet import (
    CAM02_COLOURS,
    System,
    bundle,
    command,
    event,
    publish_as_device,
    ran,
    signing_key,
)
from tests.reliability.procs import set_section
from tests.reliability.status_watch import StatusWatch
from tools.processes import Rig, wait_until
from tools.synthetic import Appearance, make_clip


@pytest.fixture(scope="package")
def system(tmp_path_factory: pytest.TempPathFactory, artefacts: Path) -> Iterator[System]:
    root = tmp_path_factory.mktemp("attacks")
    rig = Rig.create(root, devices=3, logs=artefacts / "attacks", loop=True)
    try:
        for device in ("cam-01", "cam-02"):
            set_section(Path(rig.device(device)["config"]), "status", interval_seconds=1.0)
        watch = StatusWatch(rig.client("ops"))
        # Short (a GIF of many frames takes long to encode on a busy machine) and looping:
        # colour 0 (on cam-01's list) and colour 1 (a stranger) are always in view.
        clip = make_clip(
            root / "two.gif", 12, [Appearance(0, 0, 11, row=0), Appearance(1, 0, 11, row=1)]
        )
        db = f"sqlite:///{root / 'alerts.db'}"
        listener = rig.listener("attacks-listener", rig.index["clients"]["alerts"]["cert"], db)
        listener.start()
        system = System(rig, watch, {}, listener, db)
        # Both agents start together (start-up is the slow part on a busy machine): cam-01
        # with version 1, cam-02 with version 1 of its own list.
        v1 = bundle(rig, "cam-01", 1, system.signers())
        cam02 = bundle(rig, "cam-02", 1, system.signers(), colours=CAM02_COLOURS)
        watch.publish(rig.topic("cam-01", "watchlist"), v1, retain=True)
        watch.publish(rig.topic("cam-02", "watchlist"), cam02, retain=True)
        for device in ("cam-01", "cam-02"):
            system.agents[device] = rig.agent(device, "--source", str(clip)).start()
        # cam-01 then gets version 2 (version 1 is what a replay will resend).
        watch.wait("cam-01", lambda d: d["watchlist_version"] == 1, 120, "cam-01 on version 1")
        v2 = bundle(rig, "cam-01", 2, system.signers())
        watch.publish(rig.topic("cam-01", "watchlist"), v2, retain=True)
        system.installed["cam-01"], system.old["cam-01"] = v2, v1
        # cam-02 is paused, resumed and paused by ops.
        watch.wait("cam-02", lambda d: d["watchlist_version"] == 1, 120, "cam-02 on version 1")
        system.installed["cam-02"] = cam02
        for counter, action in ((10, Action.PAUSE), (11, Action.RESUME), (12, Action.PAUSE)):
            system.commands[counter] = command(rig, "cam-02", action, counter, system.signers())
            watch.publish(rig.topic("cam-02", "command"), system.commands[counter], retain=True)
            watch.wait("cam-02", ran(counter), 30, f"cam-02 to run command {counter}")
        watch.wait("cam-02", lambda d: d["state"] == "paused", 10, "cam-02 paused")
        watch.wait("cam-01", lambda d: d["watchlist_version"] == 2, 30, "cam-01 on version 2")
        # The listener stores one valid event from cam-03 (the baseline for event attacks).
        wait_until(lambda: "listening for events" in listener.text(), 60, "the listener")
        system.valid_event = sign_event(event(rig, "cam-03"), signing_key(rig, "cam-03"))
        publish_as_device(rig, "cam-03", system.valid_event)
        wait_until(lambda: system.stored() >= 1, 30, "the valid event to be stored")
        yield system
    finally:
        rig.close()
        if "watch" in locals():
            watch.link.close()
