"""Typed agent configuration (``/etc/lfr-agent/agent.toml``), validated at start.

Every section is a frozen dataclass; loading checks every key's type and refuses unknown keys,
with errors that name the file and the key (``agent.toml: broker.prot: unknown key``).
Relative paths are resolved against the config file's directory.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lfrkit.console import UsageError
from lfrkit.mqtt import MqttSettings

DEFAULT_PATH = Path("/etc/lfr-agent/agent.toml")
MAX_CONFIG_BYTES = 1024 * 1024


class ConfigError(UsageError):
    """The configuration is invalid; the message names the file and the key (exit 2)."""


@dataclass(frozen=True)
class DeviceSection:
    id: str
    site: str
    state_dir: Path = Path("/var/lib/lfr-agent")


@dataclass(frozen=True)
class BrokerSection:
    host: str
    port: int = 8883
    ca_cert: Path | None = None  # default: <state_dir>/ca.crt
    cert: Path | None = None  # default: <state_dir>/device.crt
    key: Path | None = None  # default: <state_dir>/keys/tls.key
    keepalive: int = 30


@dataclass(frozen=True)
class CameraSection:
    # picamera2:N, v4l2:/dev/videoN, file:PATH (GIF, image folder, video), rtsp://...
    source: str = "picamera2:0"
    width: int = 1280
    height: int = 720
    loop: bool = True  # a file source starts again at its end (ignored with --until-end)
    stall_seconds: float = 10.0  # no frame for this long: stop feeding the watchdog


@dataclass(frozen=True)
class VisionSection:
    backend: str = "tflite"  # tflite, or synthetic (coloured test squares; no models)
    profile: str = "accurate"  # embedding profile in models/MANIFEST.json (accurate, fast)
    models_dir: Path | None = None  # default: the models shipped with the package
    threads: int = 2
    tiles: int = 1  # blazeface: >1 tiles the frame for faces far away (small-face mode)
    # auto: yunet for frames of 720 rows or more, blazeface below (agent/detector_choice.py);
    # blazeface (close range: a door, a desk) or yunet (CCTV geometry: faces far away).
    detector: str = "auto"
    # yunet: the smallest face to find (box side, frame pixels); it sets the detection scale.
    min_face_px: float = 40.0


@dataclass(frozen=True)
class QualitySection:
    min_face_px: float = 40.0
    min_sharpness: float = 15.0
    max_yaw: float = 0.45
    # Sharpness is also measured on the face shrunk to this many px (0: own pixels only), so a
    # big but soft (magnified) face is not taken for a blurred one (agent/core/quality.py).
    detail_px: int = 32


@dataclass(frozen=True)
class TrackingSection:
    # Predict each track's box from its velocity (false: match against its last box).
    velocity: bool = True
    # A track seen once (no velocity yet) is searched within this many face sizes.
    search_factor: float = 2.5


@dataclass(frozen=True)
class MatchingSection:
    # A local floor: the watchlist's signed threshold is used, raised to this if it is set.
    threshold: float | None = None
    storage: str = "float32"  # float32, float16 or int8 watchlist matrix
    # Match a track's template at the signed threshold for its coherence when the watchlist
    # carries one (false: at the signed value, the strictest, whatever the template).
    coherence: bool = True
    # Add each several-photo entry's mean row when the signed threshold counts it
    # (threshold.entry_means; false: best photo only, as before).
    entry_means: bool = True
    # track: alert on a track's template (mean of its best template_faces faces) scoring at
    # or above the threshold with min_margin to the second-best entry; frame: the former rule,
    # one frame whose face matches starts an alert (best frame within window_seconds).
    decision: str = "track"
    template_faces: int = 3  # K
    min_margin: float = 0.05
    template_every: int = 2  # track rule: while a template has room, embed every N frames
    window_seconds: float = 1.0  # frame rule: best frame of a track within this window
    cooldown_seconds: float = 300.0  # the same subject alerts again only after this
    # A tracked face is embedded when its track is new, when it scores reembed_gain better
    # than the track's best embedded face, and (frame rule only) every reembed_every frames
    # (0: never); the track rule embeds instead every template_every frames until the template
    # holds template_faces faces.
    reembed_every: int = 10
    reembed_gain: float = 0.2


@dataclass(frozen=True)
class EventsSection:
    outbox_max: int = 10_000
    outbox_alarm: float = 0.8  # status alarm when the outbox is this full
    held_max: int = 256  # events kept in memory while the disk refuses writes (then dropped)
    jpeg_quality: int = 85
    probe_margin: float = 0.3  # crop = face box grown by this fraction on each side


@dataclass(frozen=True)
class StatusSection:
    interval_seconds: float = 30.0


@dataclass(frozen=True)
class AgentConfig:
    path: Path
    device: DeviceSection
    broker: BrokerSection
    camera: CameraSection = CameraSection()
    vision: VisionSection = VisionSection()
    quality: QualitySection = QualitySection()
    tracking: TrackingSection = TrackingSection()
    matching: MatchingSection = MatchingSection()
    events: EventsSection = EventsSection()
    status: StatusSection = StatusSection()

    @property
    def state_dir(self) -> Path:
        return self.device.state_dir

    @property
    def ca_cert(self) -> Path:
        return self.broker.ca_cert or self.state_dir / "ca.crt"

    @property
    def client_cert(self) -> Path:
        return self.broker.cert or self.state_dir / "device.crt"

    @property
    def client_key(self) -> Path:
        return self.broker.key or self.state_dir / "keys" / "tls.key"

    def mqtt_settings(self, will: tuple[str, bytes, int, bool] | None = None) -> MqttSettings:
        """How this device reaches the broker (its certificate's CN is its client id)."""
        return MqttSettings(
            self.broker.host,
            self.broker.port,
            self.ca_cert,
            self.client_cert,
            self.client_key,
            client_id=self.device.id,
            keepalive=self.broker.keepalive,
            will=will,
        )


_SECTIONS: dict[str, type[Any]] = {
    "device": DeviceSection,
    "broker": BrokerSection,
    "camera": CameraSection,
    "vision": VisionSection,
    "quality": QualitySection,
    "tracking": TrackingSection,
    "matching": MatchingSection,
    "events": EventsSection,
    "status": StatusSection,
}
_CHOICES = {
    "matching.storage": ("float32", "float16", "int8"),
    "matching.decision": ("track", "frame"),
    "vision.backend": ("tflite", "synthetic"),
    "vision.detector": ("auto", "blazeface", "yunet"),
}


def _coerce(value: Any, hint: Any, where: str, base: Path) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [h for h in typing.get_args(hint) if h is not type(None)]
        return _coerce(value, options[0], where, base)
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: must be a path (a non-empty string)")
        path = Path(value)
        return path if path.is_absolute() else (base / path)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: must be true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: must be an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: must be a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: must be a string")
        return value
    raise TypeError(f"unsupported config type {hint!r}")  # a bug in a section definition


def _section(cls: type[Any], raw: Any, where: str, base: Path) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in known:
            raise ConfigError(f"{where}.{key}: unknown key (known: {', '.join(known)})")
    values = {}
    for name, spec in known.items():
        if name in raw:
            values[name] = _coerce(raw[name], hints[name], f"{where}.{name}", base)
            choices = _CHOICES.get(f"{where.rsplit(' ', 1)[-1]}.{name}")
            if choices and values[name] not in choices:
                raise ConfigError(f"{where}.{name}: must be one of {', '.join(choices)}")
            if (
                isinstance(values[name], int | float)
                and not isinstance(values[name], bool)
                and values[name] < 0
            ):
                raise ConfigError(f"{where}.{name}: must not be negative")
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}.{name}: required key is missing")
    return cls(**values)


def parse_config(text: str, path: Path) -> AgentConfig:
    name = path.name
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    for key in raw:
        if key not in _SECTIONS:
            raise ConfigError(f"{path}: [{key}]: unknown section (known: {', '.join(_SECTIONS)})")
    base = path.parent.resolve()
    sections = {
        key: _section(cls, raw.get(key, {}), f"{name}: {key}", base)
        for key, cls in _SECTIONS.items()
    }
    vision = sections["vision"]
    if vision.detector == "yunet" and vision.tiles != 1:
        raise ConfigError(
            f"{name}: vision.tiles: yunet does not tile (its scale comes from vision.min_face_px)"
        )
    if vision.min_face_px <= 0:
        raise ConfigError(f"{name}: vision.min_face_px: must be positive")
    matching = sections["matching"]
    for key in ("template_faces", "template_every"):
        if getattr(matching, key) < 1:
            raise ConfigError(f"{name}: matching.{key}: must be at least 1")
    return AgentConfig(path=path, **sections)


def load_config(path: Path) -> AgentConfig:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8") from None
    return parse_config(text, path)
