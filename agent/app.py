"""Composition root of ``lfr-agent run``: build the pieces from config, hand them to the loop.

Everything the loop (:mod:`agent.loop`) runs is made here: the device identity and its trusted
state (:mod:`agent.control`), the frame stage (:mod:`agent.frames`), the event sink
(:mod:`agent.delivery`), the status reporter and the exit policy. A replay (``--until-end``) is
a different source timeline and exit policy (:mod:`agent.replay`), nothing else. A caller that
drives the agent differently (the load generator) passes its own ``frames`` stage and
``policy``; everything else stays the daemon's own.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import FrameType

import numpy as np
import numpy.typing as npt

from agent.config import AgentConfig, ConfigError
from agent.control import DeviceControl, MatchingPolicy
from agent.core.quality import QualityPolicy
from agent.core.schedule import EmbedPolicy
from agent.core.tracker import Tracker
from agent.delivery import EventDelivery
from agent.events import EventSigner
from agent.frames import CameraFrames, FrameStage, MediaTimeline, WallTimeline
from agent.io.capture import Capture
from agent.io.credentials import credentials_from_env
from agent.io.identity import load_identity
from agent.io.notify import Notifier
from agent.io.outbox import Outbox
from agent.io.publisher import Publisher
from agent.io.sources import open_source
from agent.io.spool import Spool
from agent.io.watchlist_store import WatchlistStore
from agent.loop import Agent, ExitPolicy, RunUntilStopped
from agent.models import Vision, load_profile, load_synthetic
from agent.pipeline import FramePipeline, Rule
from agent.replay import UntilDrained
from agent.status import About, StatusReporter
from agent.trust_update import TrustUpdater
from lfrkit.mqtt import MqttLink
from protocol.status import signed_offline_status
from protocol.topics import DeviceTopics

U8 = npt.NDArray[np.uint8]
Clock = Callable[[], datetime]


def load_vision(config: AgentConfig) -> Vision:
    """The configured backend: the profile's TFLite models, or the synthetic test backend."""
    if config.vision.backend == "synthetic":
        return load_synthetic()
    v = config.vision
    return load_profile(
        v.profile, v.models_dir, v.threads, detector=v.detector, min_face_px=v.min_face_px
    )


def matching_policy(config: AgentConfig) -> MatchingPolicy:
    """The watchlist's signed threshold, raised to ``[matching] threshold`` if that is set."""
    m = config.matching
    return MatchingPolicy(m.threshold, m.storage, m.coherence, m.entry_means)


def frame_pipeline(config: AgentConfig, vision: Vision) -> FramePipeline:
    """Detect -> track -> quality -> embed -> decide, as ``[quality]``, ``[tracking]`` and
    ``[matching]`` say: the daemon's per-frame work (``lfr-agent bench`` times it; the
    walk-through bench's ``--diagnose`` builds the same one)."""
    m = config.matching
    tracker: Tracker[U8] = Tracker(
        window=timedelta(seconds=m.window_seconds),
        cooldown=timedelta(seconds=m.cooldown_seconds),
        faces=m.template_faces,
        velocity=config.tracking.velocity,
        search_factor=config.tracking.search_factor,
    )
    q = config.quality
    return FramePipeline(
        vision.detector,
        vision.embedder,
        QualityPolicy(q.min_face_px, q.min_sharpness, q.max_yaw, q.detail_px),
        tracker,
        probe_margin=config.events.probe_margin,
        tiles=config.vision.tiles,
        schedule=EmbedPolicy(m.reembed_every, m.reembed_gain, m.template_every),
        rule=Rule(m.decision),
        min_margin=m.min_margin,
    )


def camera_frames(
    config: AgentConfig, vision: Vision, source: str | None, *, replay: bool, started: datetime
) -> CameraFrames:
    """The camera (or clip) through the vision pipeline; a replay reads every frame once, on
    the clip's own timeline."""
    pipeline = frame_pipeline(config, vision)
    capture = Capture(
        open_source(
            source or config.camera.source,
            loop=config.camera.loop and not replay,
            width=config.camera.width,
            height=config.camera.height,
        ),
        replay=replay,
    )
    timeline = MediaTimeline(started) if replay else WallTimeline()
    return CameraFrames(capture, pipeline, pipeline.tracker, timeline, vision.detector.describe)


def build_agent(
    config: AgentConfig,
    *,
    source: str | None = None,
    until_end: bool = False,
    watchlist_wait: float = 0.0,
    vision: Vision | None = None,
    notifier: Notifier | None = None,
    clock: Clock | None = None,
    frames: FrameStage | None = None,
    policy: ExitPolicy | None = None,
) -> Agent:
    """The agent ``config`` describes. ``until_end``: a replay of a finite ``source``.
    ``frames`` and ``policy`` replace the camera stage and the exit policy."""
    if frames is not None and (source is not None or until_end):
        raise ValueError("a frame stage of your own replaces the source; give one or the other")
    clock = clock or (lambda: datetime.now(UTC))
    notifier = notifier or Notifier()
    identity = load_identity(config.state_dir, credentials_from_env())
    if (identity.device_id, identity.site) != (config.device.id, config.device.site):
        raise ConfigError(
            f"{config.path}: device {config.device.id}@{config.device.site} "
            f"but the state holds {identity.device_id}@{identity.site}"
        )
    vision = vision or load_vision(config)
    matching = matching_policy(config)
    # The profile's 1:1 threshold: a watchlist signed with a lower one is refused.
    store = WatchlistStore(identity, vision.embedder.id, min_threshold=vision.threshold)
    started = clock()
    control = DeviceControl(store.open_state(), store, matching, clock)
    topics = DeviceTopics(identity.site, identity.device_id)
    # The will is signed now, at connect time; the broker publishes it as is if we vanish.
    offline = signed_offline_status(identity.device_id, identity.site, identity.signing_key)
    will = (topics.status, offline, 1, True)
    # The TLS key too comes from the sealed credentials when systemd provided them.
    settings = config.mqtt_settings(will=will)
    link = MqttLink(replace(settings, key=identity.keys.path(config.client_key)))
    outbox = Outbox(config.state_dir / "outbox.sqlite", config.events.outbox_max)
    signer = EventSigner(
        identity.device_id,
        identity.site,
        identity.signing_key,
        identity.trust.adjudication_key,
        config.events.jpeg_quality,
    )
    delivery = EventDelivery(
        signer,
        outbox,
        Spool(outbox, config.events.held_max),
        Publisher(outbox, link),
        topics.events,
        outbox_alarm=config.events.outbox_alarm,
    )
    if frames is None:
        frames = camera_frames(config, vision, source, replay=until_end, started=started)
    if policy is None:
        policy = UntilDrained(watchlist_wait) if until_end else RunUntilStopped()
    return Agent(
        about=About(
            identity.device_id,
            identity.site,
            vision.embedder.id,
            vision.model_hashes,
            unsealed_keys=tuple(p.name for p in identity.keys.unsealed()),
        ),
        link=link,
        topics=topics,
        control=control,
        frames=frames,
        delivery=delivery,
        reporter=StatusReporter(
            link,
            topics.status,
            notifier,
            config.status.interval_seconds,
            identity.signing_key,
        ),
        notifier=notifier,
        clock=clock,
        started=started,
        policy=policy,
        stall_seconds=config.camera.stall_seconds,
        trust=TrustUpdater(identity.layout, identity.trust),
    )


def install_signal_handlers(agent: Agent) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        agent.stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
