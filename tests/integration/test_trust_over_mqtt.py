"""Trust rotation over MQTT, against the real broker and the real agent (synthetic vision).

From outside, as the review's attacker would: a rotation signed by a key the node does not
pin, published on its command topic with the ops certificate, changes nothing and the agent
keeps running. Then ops rotate properly (`rotate-trust` signed by both pinned keys,
`push-rotation`): the agent saves the new trust and exits 75 for systemd to restart it; the
restarted agent refuses a command signed by the rotated-out keys and obeys the new ones.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from agent.trust_update import EXIT_TRUST_ROTATED
from protocol.command import Action, Command, sign_command
from protocol.keys import key_id
from protocol.topics import DeviceTopics
from protocol.trust import DeviceTrust, TrustPolicy, parse_device_trust, sign_rotation
from provisioning.authority import load_ops_signer
from provisioning.cli import main as provision_main
from tests.integration.agent_helpers import start_agent
from tools.broker import Broker, client
from tools.synthetic import make_clip, use_synthetic

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def node(index: dict[str, Any]) -> dict[str, Any]:
    dev: dict[str, Any] = index["devices"][0]
    use_synthetic(Path(dev["config"]), stall_seconds=1.0, loop=True)
    return dev


def _publish(index: dict[str, Any], node: dict[str, Any], payload: bytes) -> None:
    ops = client(index, "ops")
    try:
        topic = DeviceTopics(node["site"], node["id"]).command
        assert ops.wait_ack(ops.publish(topic, payload)) in (0, 16)
    finally:
        ops.close()


class Output:
    """The agent's output, read in a thread (the agent logs every decision it makes)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for(self, text: str, send: Callable[[], None], seconds: float = 60) -> None:
        """Until ``text`` appears; ``send`` again every 2 s (a command published before the
        agent has subscribed is not delivered: commands are not retained)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            send()
            for _ in range(20):
                if any(text in line for line in self.lines):
                    return
                if self.process.poll() is not None and text not in "".join(self.lines):
                    break
                time.sleep(0.1)
        raise AssertionError(f"no {text!r} in the agent's output:\n{''.join(self.lines)}")


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        process.wait(20)


def _command(
    signers: list[tuple[ed25519.Ed25519PrivateKey, str]], node: dict[str, Any], n: int
) -> bytes:
    now = datetime.now(UTC).replace(microsecond=0)
    command = Command(node["id"], node["site"], Action.PAUSE, n, now, now + timedelta(minutes=5))
    return sign_command(command, signers)


def _push(argv: list[str]) -> None:
    assert provision_main(argv) == 0


def test_rotation_over_mqtt(
    index: dict[str, Any], broker: Broker, node: dict[str, Any], tmp_path: Path
) -> None:
    state, auth = Path(node["state_dir"]), Path(index["authority_dir"])
    pinned = (state / "trust.json").read_bytes()
    current = parse_device_trust(pinned)
    source = str(make_clip(tmp_path / "clip.gif", 20, []))
    agent = start_agent(node["config"], "--source", source)
    output = Output(agent)
    try:
        # The attack: one key of the attacker's, threshold 1, on the node's command topic.
        evil = ed25519.Ed25519PrivateKey.generate()
        forged = DeviceTrust(
            current.device_id,
            current.site,
            TrustPolicy.of([evil.public_key()], 1),
            current.adjudication_key,
            current.serial + 1,
        )
        attack = sign_rotation(forged, [(evil, key_id(evil.public_key()))])
        output.wait_for("trust rotation refused", lambda: _publish(index, node, attack))
        assert agent.poll() is None and (state / "trust.json").read_bytes() == pinned

        # The proper rotation, signed by both pinned keys and pushed by ops.
        new_keys = []
        for name in ("new-1", "new-2"):
            assert provision_main(["ops-key", "--out", str(tmp_path / f"{name}.key")]) == 0
            new_keys.append(load_ops_signer(tmp_path / f"{name}.key"))
        argv = ["rotate-trust", "--authority", str(auth), "--threshold", "2"]
        argv += ["--ops-pub", str(tmp_path / "new-1.pub"), "--ops-pub", str(tmp_path / "new-2.pub")]
        argv += ["--sign", str(auth / "ops-1.key"), "--sign", str(auth / "ops-2.key")]
        assert provision_main([*argv, "--out", str(tmp_path / "rot")]) == 0
        ops = index["clients"]["ops"]
        argv = ["push-rotation", str(tmp_path / "rot"), "--authority", str(auth)]
        argv += ["--client-cert", ops["cert"], "--client-key", ops["key"], "--devices", node["id"]]
        output.wait_for("trust rotated to serial", lambda: _push(argv))
        assert agent.wait(30) == EXIT_TRUST_ROTATED
    finally:
        _stop(agent)
    assert parse_device_trust((state / "trust.json").read_bytes()).serial == current.serial + 1

    # What systemd does on exit 75: start it again. The old keys are now refused.
    old_keys = [load_ops_signer(auth / f"ops-{i}.key") for i in (1, 2)]
    agent = start_agent(node["config"], "--source", source)
    output = Output(agent)
    try:
        old = _command(old_keys, node, 1)
        output.wait_for("command rejected (too_few_signatures)", lambda: _publish(index, node, old))
        new = _command(new_keys, node, 2)
        output.wait_for("command pause (counter 2) accepted", lambda: _publish(index, node, new))
    finally:
        _stop(agent)
