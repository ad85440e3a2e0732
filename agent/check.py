"""``lfr-agent check``: the technician's preflight. Every check runs; each prints one row.

Exit 0 only when nothing failed. Checks cover what this build has: config, identity and key
modes, certificate chain and expiry, the clock, the broker over TLS, and the watchlist state.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from agent.config import AgentConfig, ConfigError, load_config
from agent.io.credentials import KeySource
from agent.io.identity import load_identity
from agent.node_checks import Row, node_rows
from lfrkit.files import InsecureKeyFile, read_bounded, read_private
from lfrkit.layout import DeviceLayout
from lfrkit.mqtt import MqttError, MqttLink
from lfrkit.tls import load_tls_key
from protocol.encoding import format_time
from protocol.errors import RejectedInput
from protocol.watchlist import read_signed

RENEW_BEFORE = timedelta(days=14)


class CheckFailed(Exception):
    pass


def _keys(config: AgentConfig, credentials: Path | None) -> str:
    """Key modes, and whether the keys are sealed (systemd credentials) or plain files."""
    layout = DeviceLayout(config.state_dir)
    source = KeySource(layout, credentials)
    present = source.present()
    if not present and layout.sealed_marker.exists():
        raise CheckFailed(
            f"keys are sealed ({layout.sealed_marker}) and no systemd credentials were "
            "given: only the service sees them (its ExecStartPre runs this check)"
        )
    if not present:
        raise CheckFailed(f"no keys in {layout.keys_dir}")
    for path in present:
        read_private(source.path(path))
    unsealed = source.unsealed()
    if unsealed:
        mode = stat.S_IMODE(os.stat(layout.keys_dir).st_mode)
        if mode & 0o077:
            raise CheckFailed(f"{layout.keys_dir} has mode {mode:04o}; chmod 700 it")
    if not unsealed:
        return f"sealed: {len(present)} keys from systemd credentials in {credentials}"
    names = ", ".join(p.name for p in unsealed)
    sealed = len(present) - len(unsealed)
    return (
        f"UNSEALED: {names} plain (0600) in {layout.keys_dir}"
        + (f", {sealed} sealed" if sealed else "")
        + "; a copied card yields them (seal: lfr-provision seal-keys)"
    )


def _identity(config: AgentConfig, credentials: Path | None) -> str:
    identity = load_identity(config.state_dir, credentials)
    if (identity.device_id, identity.site) != (config.device.id, config.device.site):
        raise CheckFailed(
            f"state holds {identity.device_id}@{identity.site}, config says "
            f"{config.device.id}@{config.device.site}"
        )
    policy = identity.trust.policy
    return (
        f"{identity.device_id}@{identity.site}; {len(policy.ops_keys)} pinned ops keys, "
        f"threshold {policy.threshold}"
    )


def _certificate(config: AgentConfig, now: datetime, tls_key: Path) -> str:
    cert = x509.load_pem_x509_certificate(read_bounded(config.client_cert, 65536, "cert"))
    ca_cert = x509.load_pem_x509_certificate(read_bounded(config.ca_cert, 65536, "CA cert"))
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        raise CheckFailed(f"{config.client_cert} is not issued by {config.ca_cert}") from None
    if cert.public_key() != load_tls_key(read_private(tls_key)).public_key():
        raise CheckFailed(f"{config.client_cert} does not belong to {tls_key}")
    left = cert.not_valid_after_utc - now
    if left <= timedelta(0):
        raise CheckFailed(f"expired at {format_time(cert.not_valid_after_utc)}: ask ops to renew")
    if left < RENEW_BEFORE:
        raise CheckFailed(
            f"expires in {left.days} days ({format_time(cert.not_valid_after_utc)})"
            ": ask ops to renew"
        )
    return f"valid until {format_time(cert.not_valid_after_utc)} ({left.days} days)"


def _clock(config: AgentConfig, now: datetime) -> str:
    ca_cert = x509.load_pem_x509_certificate(read_bounded(config.ca_cert, 65536, "CA cert"))
    if now < ca_cert.not_valid_before_utc:
        raise CheckFailed(
            f"system clock {format_time(now)} is before the CA was created: "
            "set the time (NTP) or watchlists will not verify"
        )
    return f"{format_time(now.replace(microsecond=0))} (after CA creation)"


def _broker(config: AgentConfig, tls_key: Path) -> str:
    link = MqttLink(replace(config.mqtt_settings(), key=tls_key))
    try:
        link.connect(timeout=10)
    except MqttError as exc:
        raise CheckFailed(str(exc)) from None
    link.close()
    return f"TLS + client certificate accepted by {config.broker.host}:{config.broker.port}"


def _watchlist(config: AgentConfig, now: datetime, credentials: Path | None) -> str:
    identity = load_identity(config.state_dir, credentials)
    path = identity.layout.watchlist
    if not path.exists():
        return "none installed (the camera runs; nothing is matched until ops push one)"
    signed = read_signed(read_bounded(path, 128 * 1024 * 1024, "watchlist"), identity.trust.policy)
    header = signed.header
    if (header.device_id, header.site) != (identity.device_id, identity.site):
        raise CheckFailed(f"stored watchlist is for {header.device_id}@{header.site}")
    if header.is_expired(now):
        return (
            f"version {header.version} expired at {format_time(header.expires_at)}; "
            "the agent wipes it"
        )
    return (
        f"version {header.version}, deployment {header.deployment_id}, expires "
        f"{format_time(header.expires_at)}, signed by {len(signed.signed_by)} ops key(s)"
    )


def _detector(config: AgentConfig) -> str:
    """Which face detector the node runs; with ``auto``, for the frames the source delivers (a
    clip is opened for its first frame; a live camera is not opened, the daemon may hold it)."""
    from agent.detector_choice import AUTO, AUTO_YUNET_MIN_HEIGHT, resolve
    from agent.io.sources import ImageSequenceSource, OpenCvSource, open_source

    v = config.vision
    if v.backend == "synthetic":
        return "synthetic backend (coloured test squares, no face models)"
    scale = f"min_face_px {v.min_face_px:g}" if v.detector != "blazeface" else f"tiles {v.tiles}"
    if v.detector != AUTO:
        return f"{v.detector} (vision.detector), {scale}"
    rule = f"auto: yunet at >= {AUTO_YUNET_MIN_HEIGHT} rows, blazeface below"
    source = open_source(
        config.camera.source, loop=False, width=config.camera.width, height=config.camera.height
    )
    if isinstance(source, ImageSequenceSource) or (
        isinstance(source, OpenCvSource) and not source.live
    ):
        source.open()
        try:
            frame = source.read()
        finally:
            source.close()
        if frame is None:
            raise CheckFailed(f"{config.camera.source} has no frames")
        h, w = frame.image.shape[:2]
        return f"{resolve(AUTO, h)} for {w}x{h} frames ({rule}), {scale}"
    if config.camera.source.startswith(("picamera2", "gst:")):  # both deliver exactly w x h
        h, w = config.camera.height, config.camera.width
        return f"{resolve(AUTO, h)} for {w}x{h} (camera.width/height; {rule}), {scale}"
    return f"chosen at the first frame ({rule}; the log names it), {scale}"


def run_checks(
    config_path: Path,
    now: datetime | None = None,
    broker: bool = True,
    credentials: Path | None = None,
    *,
    camera: bool = True,
    source: str | None = None,
) -> list[Row]:
    """``credentials``: the systemd ``$CREDENTIALS_DIRECTORY`` (sealed keys), if any;
    ``camera``: open the camera and read a frame (else only its software is checked);
    ``source``: instead of camera.source."""
    from agent.camera_check import CameraCheckFailed, check_camera

    now = now or datetime.now(UTC)
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        return [Row("config", False, str(exc))]
    rows = [Row("config", True, f"{config_path}: device {config.device.id}@{config.device.site}")]
    tls_key = KeySource(DeviceLayout(config.state_dir), credentials).path(config.client_key)
    checks: list[tuple[str, Callable[[], str]]] = [
        ("identity", lambda: _identity(config, credentials)),
        ("keys", lambda: _keys(config, credentials)),
        ("certificate", lambda: _certificate(config, now, tls_key)),
        ("clock", lambda: _clock(config, now)),
        ("watchlist", lambda: _watchlist(config, now, credentials)),
        ("detector", lambda: _detector(config)),
        ("camera", lambda: check_camera(config, source, camera)),
    ]
    if broker:
        checks.append(("broker", lambda: _broker(config, tls_key)))
    for name, check in checks:
        try:
            rows.append(Row(name, True, check()))
        except (CheckFailed, CameraCheckFailed, RejectedInput, InsecureKeyFile, ValueError) as exc:
            rows.append(Row(name, False, str(exc)))
        except FileNotFoundError as exc:
            rows.append(Row(name, False, f"missing file {exc.filename}"))
        except Exception as exc:  # noqa: BLE001 - a preflight reports every failure as a row
            rows.append(Row(name, False, f"{type(exc).__name__}: {exc}"))
    rows += node_rows(config, online=broker)  # disk, clock-sync, models (agent/node_checks.py)
    return rows


def render(rows: list[Row]) -> str:
    width = max(len(r.name) for r in rows)
    return "\n".join(
        f"{r.name.ljust(width)}  {('warn' if r.warn else 'ok  ') if r.ok else 'FAIL'}  {r.detail}"
        for r in rows
    )
