"""The officers' page's TLS certificate, issued by the fleet authority (``page-cert``).

The control room's browsers trust the fleet CA (``ca.crt``), so the page needs no public
CA and no internet. The certificate names exactly the hosts officers type (its
subjectAltName); ``lfr-alerts serve`` answers only to those names unless told otherwise.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from pathlib import Path

from cryptography import x509

from lfrkit import tls
from lfrkit.console import UsageError
from lfrkit.files import atomic_write, ensure_private_dir
from provisioning import ca
from provisioning.authority import Authority

_DNS = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def check_host(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    if not _DNS.match(name):
        raise UsageError(f"{name!r} is neither a DNS name nor an IP address")
    return name.lower()


def issue_page_cert(
    authority_dir: Path, hosts: list[str], out: Path, now: datetime
) -> x509.Certificate:
    """Write ``out/page.crt``, ``out/page.key`` (0600) and ``out/ca.crt``; a new key each time."""
    if not hosts:
        raise UsageError("name at least one host (--host) officers use to reach the page")
    names = list(dict.fromkeys(check_host(h) for h in hosts))
    authority = Authority.load(authority_dir)
    key = tls.new_tls_key()
    cert = ca.issue_server_cert(
        authority.ca_key(), authority.ca_cert(), key.public_key(), hosts=names, now=now
    )
    out = ensure_private_dir(Path(out))
    atomic_write(out / "page.key", tls.tls_key_pem(key), 0o600)
    atomic_write(out / "page.crt", ca.cert_pem(cert), 0o644)
    atomic_write(out / "ca.crt", ca.cert_pem(authority.ca_cert()), 0o644)
    return cert
