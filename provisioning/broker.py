"""The broker's files, written from the authority: TLS server key and certificate, CRL and the
dynamic-security policy.

``broker-config`` writes everything a Mosquitto 2 broker needs in one directory and records
it (with the control room's share group) in the authority's broker.json, so ``refresh``
(after approve, issue-client, revoke) can regenerate the policy and CRL there; the running
broker gets the change over ``$CONTROL`` (``provisioning.broker_admin``). The policy itself
is ``provisioning.policy``; its Mosquitto form ``provisioning.brokers.mosquitto_dynsec``. TLS
only, a client certificate from our CA required, its CN the MQTT username *and* the client
id, no anonymous access, and a revoked identity's certificate serial in the CRL.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509

from lfrkit import tls
from lfrkit.console import UsageError
from lfrkit.files import atomic_write, ensure_private_dir, read_bounded
from protocol.encoding import format_time
from protocol.names import check_name
from protocol.topics import DEFAULT_SHARE_GROUP
from provisioning import ca
from provisioning.authority import Authority
from provisioning.broker_admin import ensure_admin, share_group
from provisioning.broker_info import BrokerInfo, write_broker_info
from provisioning.brokers.mosquitto import DYNSEC_JSON, render_conf
from provisioning.brokers.mosquitto_dynsec import render_dynsec
from provisioning.fleet import write_crl
from provisioning.policy import access_policy

PLUGIN = "mosquitto_dynamic_security.so"
# Where Debian and most builds put the plugin (the multiarch folder differs on a Pi).
PLUGIN_DIRS = ("/usr/lib/*-linux-gnu*", "/usr/lib", "/usr/local/lib", "/usr/lib/mosquitto")


@dataclass(frozen=True)
class BrokerFiles:
    config: Path
    policy: Path  # the dynamic-security plugin's JSON
    crl: Path
    host: str
    port: int
    share_group: str


def find_plugin() -> Path:
    """The dynamic-security plugin on this host, or a one-line error saying what to pass."""
    for folder in PLUGIN_DIRS:
        for candidate in sorted(Path("/").glob(f"{folder.lstrip('/')}/{PLUGIN}")):
            return candidate
    raise UsageError(
        f"{PLUGIN} not found under {', '.join(PLUGIN_DIRS)}: install mosquitto (2.0 or "
        "later) or pass --plugin PATH as it is on the broker host"
    )


def write_policy(authority: Authority, out: Path) -> Path:
    """The dynamic-security JSON from the registry. The broker reads it at start only; the
    plugin rewrites it after each live change (so the broker's user must be able to)."""
    policy = access_policy(authority.registry(), share_group(authority))
    atomic_write(out / DYNSEC_JSON, render_dynsec(policy).encode(), 0o644)
    return out / DYNSEC_JSON


def refresh(authority: Authority, now: datetime) -> Path | None:
    """Regenerate the policy and CRL where broker-config last wrote them (after approve,
    issue-client, revoke); ``broker_admin.sync`` then applies the change live."""
    out = authority.broker_dir()
    if out is None or not (out / "mosquitto.conf").exists():
        return None
    write_crl(authority, out / "crl.pem", now)
    write_policy(authority, out)
    return out


def broker_config(
    authority_dir: Path,
    out: Path,
    *,
    host: str,
    port: int,
    bind: str,
    now: datetime,
    user: str | None = None,
    extra_hosts: tuple[str, ...] = (),
    group: str = DEFAULT_SHARE_GROUP,
    plugin: Path | None = None,
) -> BrokerFiles:
    """Write (or refresh) everything the broker needs in ``out``; idempotent.

    The server key and certificate are created once and kept, and so is the broker-admin
    client (its certificate in the authority); the policy and CRL are regenerated from the
    registry every time. A changed share group takes effect when the broker restarts.
    """
    check_name(group, "--share-group")
    plugin = plugin or find_plugin()
    ensure_admin(Path(authority_dir), now)
    authority = Authority.load(authority_dir)
    out = ensure_private_dir(Path(out).resolve())
    ensure_private_dir(out / "data")
    atomic_write(out / "ca.crt", ca.cert_pem(authority.ca_cert()), 0o644)
    if not (out / "server.key").exists():
        key = tls.new_tls_key()
        hosts = list(
            dict.fromkeys([host, *extra_hosts, "localhost", "127.0.0.1", socket.gethostname()])
        )
        cert = ca.issue_server_cert(
            authority.ca_key(), authority.ca_cert(), key.public_key(), hosts=hosts, now=now
        )
        atomic_write(out / "server.crt", ca.cert_pem(cert), 0o644)
        atomic_write(out / "server.key", tls.tls_key_pem(key), 0o600)
    write_crl(authority, out / "crl.pem", now)
    write_broker_info(authority.broker_path, BrokerInfo(host, port, out, group))
    policy = write_policy(authority, out)
    conf = render_conf(out, port, bind, user, plugin)
    atomic_write(out / "mosquitto.conf", conf.encode(), 0o644)
    return BrokerFiles(out / "mosquitto.conf", policy, out / "crl.pem", host, port, group)


# The CRL lives CRL_LIFETIME (30 days); the daily timer re-issues it this long before it
# expires, so a missed week still leaves time. An expired CRL locks every client out.
CRL_RENEW_BEFORE = timedelta(days=10)


@dataclass(frozen=True)
class CrlRenewal:
    path: Path
    next_update: datetime
    renewed: bool
    reason: str


def renew_crl(
    authority: Authority, now: datetime, before: timedelta = CRL_RENEW_BEFORE
) -> CrlRenewal:
    """Re-issue the broker's CRL when it is due: within ``before`` of its next update, or
    missing a revocation the registry holds. Nothing happens when it is current."""
    out = authority.broker_dir()
    if out is None:
        raise UsageError("no broker config on record: run lfr-provision broker-config first")
    path = out / "crl.pem"
    revoked = {int(serial, 16) for serial, _ in authority.registry().revoked_serials()}
    reason = ""
    if not path.exists():
        reason = "no CRL yet"
    else:
        try:
            crl = x509.load_pem_x509_crl(read_bounded(path, 16 << 20, "CRL"))
        except ValueError:
            crl = None
            reason = "the CRL is not a readable PEM CRL"
        if crl is not None:
            next_update = crl.next_update_utc
            listed = {entry.serial_number for entry in crl}
            if next_update is None or next_update - now <= before:
                reason = f"it expires {format_time(next_update) if next_update else '(never)'}"
            elif not revoked <= listed:
                reason = f"{len(revoked - listed)} revocation(s) missing from it"
            else:
                return CrlRenewal(path, next_update, False, "current")
    if not (authority.root / "ca.key").exists():
        raise UsageError(
            f"the CRL must be re-issued ({reason}) but {authority.root / 'ca.key'} is not "
            "on this host: run crl-renew where the CA key is, then copy crl.pem to the broker"
        )
    write_crl(authority, path, now)
    return CrlRenewal(path, now + ca.CRL_LIFETIME, True, reason)
