"""The broker's files, written from the authority: TLS server key and certificate, CRL, ACL.

``broker-config`` writes everything a Mosquitto 2 broker needs in one directory and records
it in the authority's broker.json, so ``refresh`` (after approve, issue-client, revoke) can
regenerate the ACL and CRL there. The policy itself is ``provisioning.policy``; its Mosquitto
syntax is ``provisioning.brokers.mosquitto``. TLS only, a client certificate from our CA
required, its CN the MQTT username *and* the client id, no anonymous access, and a revoked
identity's certificate serial in the CRL.
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
from provisioning import ca
from provisioning.authority import Authority
from provisioning.broker_info import BrokerInfo, write_broker_info
from provisioning.brokers.mosquitto import render_acl, render_conf
from provisioning.fleet import write_crl
from provisioning.policy import access_policy


@dataclass(frozen=True)
class BrokerFiles:
    config: Path
    acl: Path
    crl: Path
    host: str
    port: int


def refresh(authority: Authority, now: datetime) -> Path | None:
    """Regenerate ACL and CRL where broker-config last wrote them (after a revocation)."""
    out = authority.broker_dir()
    if out is None or not (out / "mosquitto.conf").exists():
        return None
    write_crl(authority, out / "crl.pem", now)
    atomic_write(out / "acl", render_acl(access_policy(authority.registry())).encode(), 0o644)
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
) -> BrokerFiles:
    """Write (or refresh) everything the broker needs in ``out``; idempotent.

    The server key and certificate are created once and kept; ACL and CRL are regenerated
    from the registry every time, so this is also how a revocation reaches the broker.
    """
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
    atomic_write(out / "acl", render_acl(access_policy(authority.registry())).encode(), 0o644)
    atomic_write(out / "mosquitto.conf", render_conf(out, port, bind, user).encode(), 0o644)
    write_broker_info(authority.broker_path, BrokerInfo(host, port, out))
    return BrokerFiles(out / "mosquitto.conf", out / "acl", out / "crl.pem", host, port)


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
