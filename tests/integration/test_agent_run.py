"""lfr-agent run, end to end: clip -> events a control room verifies; the rest discarded."""

from __future__ import annotations

import io
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from jwcrypto import jwk, jws
from PIL import Image

from agent.synthetic_vision import PALETTE
from protocol.event import open_probe
from protocol.keys import load_hpke_private, public_pem
from protocol.status import verify_status
from protocol.topics import DEFAULT_SHARE_GROUP, shared
from provisioning.registry import Registry
from tests.integration.agent_helpers import collect, run_agent, verified
from tools.broker import Broker, client, publish_retained
from tools.synthetic import Appearance, make_clip, seal_for, use_synthetic

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def device(index: dict[str, Any]) -> dict[str, Any]:
    dev: dict[str, Any] = index["devices"][0]
    config = Path(dev["config"])
    use_synthetic(config)
    config.write_text(config.read_text() + "\n[matching]\ncooldown_seconds = 0\n")
    return dev


def test_one_event_per_appearance_and_nothing_else(
    index: dict[str, Any], broker: Broker, device: dict[str, Any], tmp_path: Path
) -> None:
    topic = f"lfr/v1/demo/{device['id']}"
    publish_retained(index, f"{topic}/watchlist", seal_for(index, device["id"], [0, 2], 1))
    clip = make_clip(
        tmp_path / "clip.gif",
        100,
        [
            Appearance(0, 0, 20, row=0),  # on the list
            Appearance(1, 5, 30, row=1),  # not on the list
            Appearance(2, 35, 55, row=2),  # on the list
            Appearance(3, 40, 90, row=1),  # not on the list
            Appearance(0, 75, 95, row=0),  # on the list, a second appearance
        ],
    )
    alerts = client(index, "alerts")
    alerts.subscribe([(shared(DEFAULT_SHARE_GROUP, "lfr/v1/+/+/events"), 1)])
    status = client(index, "ops")  # one connection per certificate: the CN is the client id
    status.subscribe([(f"{topic}/status", 1)])
    result = run_agent(device["config"], "--source", str(clip), "--until-end")
    assert result.returncode == 0, result.stdout + result.stderr
    tokens = collect(alerts, 15)
    events = verified(index, tokens)
    assert Counter(e.subject_ref for e in events) == {"WL-0000": 2, "WL-0002": 1}
    assert len({e.event_id for e in events}) == 3
    assert len({e.track_id for e in events}) == 3
    for event in events:
        assert event.device_id == device["id"] and event.watchlist_version == 1
        assert event.score >= event.threshold
    # An independent JOSE library verifies every event with the registry's key.
    key = jwk.JWK.from_pem(
        public_pem(Registry.load(Path(index["registry"])).get(device["id"]).signing_key())
    )
    for token in tokens:
        checked = jws.JWS()
        checked.deserialize(token.decode(), key=key)
    # The probe opens with the adjudication key and shows the matched "face".
    adjudication = load_hpke_private(Path(index["adjudication_key"]).read_bytes())
    for event in events:
        jpeg = open_probe(event, adjudication)
        pixels = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"), dtype=np.float32)
        h, w = pixels.shape[:2]
        centre = pixels[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3].reshape(-1, 3)
        bright = centre[centre.sum(axis=1) >= np.median(centre.sum(axis=1))]
        colour = PALETTE[int(event.subject_ref[3:])]
        assert np.allclose(bright.mean(axis=0), colour, atol=45), (bright.mean(axis=0), colour)
    # Status: privacy counters add up; the outbox is empty; nothing unmatched was kept.
    # Each one signed by the device and verified against the registry (issue 17 finding 1).
    keys = Registry.load(Path(index["registry"])).trusted_signing_keys()
    docs = [
        verify_status(p, site="demo", device_id=device["id"], device_keys=keys).to_json()
        for p in collect(status, 3)
    ]
    last = docs[-1]
    assert last["state"] == "offline"
    assert last["matches"] >= 3 and last["faces_discarded"] >= 21 + 26
    assert last["faces_detected"] == last["matches"] + last["faces_discarded"]
    # Compute per person: a track's later frames are embedded only when something improved
    # (the faces in this clip walk at a steady size), so far fewer embeddings than faces.
    assert 3 <= last["faces_embedded"] < last["faces_detected"] / 3, last
    assert set(last["stage_cpu_s"]) == {"detect", "embed", "match", "capture"}
    assert last["stage_cpu_s"]["capture"] > 0  # the clip was read and decoded
    assert last["events_queued"] == 0 and last["events_published"] == 3
    outbox = Path(device["state_dir"]) / "outbox.sqlite"
    with sqlite3.connect(outbox) as db:
        assert db.execute("SELECT COUNT(*) FROM outbox").fetchone() == (0,)
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    alerts.close()
    status.close()
