"""``lfr-provision page-cert``: the officers' page's certificate from the fleet authority."""

from __future__ import annotations

import ipaddress
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from provisioning import cli
from provisioning.authority import init_authority


def test_page_cert_names_the_hosts_and_keeps_its_key_private(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    authority = init_authority(tmp_path / "auth", 2, 2, datetime.now(UTC))
    out = tmp_path / "page"
    argv = ["page-cert", "--authority", str(authority.root), "--out", str(out)]
    assert cli.main([*argv, "--host", "Alerts.Control.example", "--host", "10.20.0.5"]) == 0
    cert = x509.load_pem_x509_certificate((out / "page.crt").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["alerts.control.example"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.20.0.5")]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.issuer == authority.ca_cert().subject
    ca_key = authority.ca_cert().public_key()
    assert isinstance(ca_key, ec.EllipticCurvePublicKey)
    cert.verify_directly_issued_by(authority.ca_cert())
    assert stat.S_IMODE((out / "page.key").stat().st_mode) == 0o600
    assert (out / "ca.crt").read_bytes() == authority.ca_cert_path.read_bytes()
    assert "alerts.control.example" in capsys.readouterr().out
    for bad in ("evil host", "-x.example", "a..b", "x" * 300):
        assert cli.main([*argv, f"--host={bad}"]) == 2
        assert "neither a DNS name nor an IP address" in capsys.readouterr().err
