"""``quickstart``: a whole fleet on one host for demos and tests, indexed in quickstart.json.

Authority (2 ops keys, threshold 2), N devices enrolled through the same steps a technician
runs, an ops and an alerts client, and the broker config. Re-running it in the same directory
keeps every identity and only refreshes what changed (more devices, broker files).
"""

from __future__ import annotations

import getpass
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

from lfrkit.files import atomic_write, ensure_private_dir, read_bounded
from lfrkit.layout import DeviceLayout
from protocol.encoding import canonical_json, parse_json_object
from provisioning.approve import approve
from provisioning.authority import init_authority
from provisioning.broker import broker_config
from provisioning.device import device_init, device_install
from provisioning.fleet import issue_client

INDEX = "quickstart.json"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _previous_port(root: Path) -> int | None:
    path = root / INDEX
    if not path.exists():
        return None
    doc = parse_json_object(read_bounded(path, 1 << 20, INDEX), str(path), 1 << 20)
    broker = doc.get("broker")
    port = broker.get("port") if isinstance(broker, dict) else None
    return port if isinstance(port, int) else None


def quickstart(
    root: Path,
    devices: int,
    now: datetime,
    *,
    port: int | None = None,
    site: str = "demo",
    host: str = "127.0.0.1",
) -> dict[str, Any]:
    root = ensure_private_dir(Path(root).resolve())
    port = port or _previous_port(root) or free_port(host)
    auth = root / "authority"
    if not (auth / "authority.json").exists():
        init_authority(auth, ops_keys=2, threshold=2, now=now)
    listed = []
    for number in range(1, devices + 1):
        device_id = f"cam-{number:02d}"
        home = root / "devices" / device_id
        state, config = home / "state", home / "agent.toml"
        request, _ = device_init(device_id, site, state, now)
        approve(request, auth, home / "bundle", now, broker=(host, port))
        device_install(home / "bundle", state, config=config, broker=(host, port), now=now)
        layout = DeviceLayout(state)
        listed.append(
            {
                "id": device_id,
                "site": site,
                "config": str(config),
                "state_dir": str(state),
                "cert": str(layout.cert),
                "key": str(layout.tls_key),
            }
        )
    clients = {}
    for role in ("ops", "alerts"):
        issue_client(auth, role, role, root / "clients", now)
        clients[role] = {
            "cert": str(root / "clients" / f"{role}.crt"),
            "key": str(root / "clients" / f"{role}.key"),
        }
    files = broker_config(
        auth, root / "broker", host=host, port=port, bind=host, now=now, user=getpass.getuser()
    )
    index = {
        "broker": {"config": str(files.config), "host": host, "port": port},
        "ca_cert": str(auth / "ca.crt"),
        "authority_dir": str(auth),
        "registry": str(auth / "registry.json"),
        "ops_keys": [str(auth / f"ops-{i}.key") for i in (1, 2)],
        "adjudication_key": str(auth / "adjudication.key"),
        "devices": listed,
        "clients": clients,
    }
    atomic_write(root / INDEX, canonical_json(index) + b"\n", 0o644)
    return index
