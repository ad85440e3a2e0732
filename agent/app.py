"""Composition root of ``lfr-agent run``: build the pieces from config, run the loop.

One thread does the work in order (frames, watchlist and commands, expiry, events, status);
capture and paho's network loop run in their own threads and only hand over data. Stops on
SIGTERM/SIGINT within seconds with the outbox intact.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType

import numpy as np
import numpy.typing as npt

from agent.config import AgentConfig, ConfigError
from agent.core.device_state import Floors
from agent.core.matcher import Matcher
from agent.core.quality import QualityPolicy
from agent.core.tracker import Alert, Tracker
from agent.events import EventSigner
from agent.io.capture import Capture
from agent.io.identity import load_identity
from agent.io.notify import Notifier
from agent.io.outbox import Outbox
from agent.io.publisher import Publisher
from agent.io.sources import open_source
from agent.io.spool import Spool
from agent.io.watchlist_store import WatchlistStore
from agent.models import Vision, load_profile, load_synthetic
from agent.pipeline import FramePipeline
from agent.status import StatusInputs, build_status, offline_status, summary_line
from lfrkit.mqtt import Message, MqttError, MqttLink
from protocol.command import Action, open_command
from protocol.encoding import canonical_json, format_time
from protocol.errors import Expired, RejectedInput
from protocol.topics import DeviceTopics
from protocol.watchlist import Watchlist

log = logging.getLogger(__name__)
U8 = npt.NDArray[np.uint8]
Clock = Callable[[], datetime]
# --until-end gives up draining after this long with no consumer subscribed to its events.
UNHEARD_GIVE_UP_SECONDS = 30.0


def load_vision(config: AgentConfig) -> Vision:
    """The configured backend: the profile's TFLite models, or the synthetic test backend."""
    if config.vision.backend == "synthetic":
        return load_synthetic()
    return load_profile(config.vision.profile, config.vision.models_dir, config.vision.threads)


@dataclass
class _LoopState:
    last_frame: float
    last_watchdog: float
    last_status: float = 0.0
    frames_at_status: int = 0
    changed_key: tuple[object, ...] = ()
    source_done: bool = False


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        *,
        source: str | None = None,
        until_end: bool = False,
        watchlist_wait: float = 0.0,
        vision: Vision | None = None,
        notifier: Notifier | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.until_end = until_end
        self.watchlist_wait = watchlist_wait
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.notifier = notifier or Notifier()
        self.identity = load_identity(config.state_dir)
        if (self.identity.device_id, self.identity.site) != (config.device.id, config.device.site):
            raise ConfigError(
                f"{config.path}: device {config.device.id}@{config.device.site} "
                f"but the state holds {self.identity.device_id}@"
                f"{self.identity.site}"
            )
        self.vision = vision or load_vision(config)
        threshold = config.matching.threshold
        if threshold is None:
            threshold = self.vision.threshold
        if threshold is None:
            raise ConfigError(
                f"{config.path}: matching.threshold is not set and profile "
                f"{config.vision.profile!r} recommends none"
            )
        self.threshold = threshold
        self.store = WatchlistStore(self.identity, self.vision.embedder.id)
        self.tracker: Tracker[U8] = Tracker(
            window=timedelta(seconds=config.matching.window_seconds),
            cooldown=timedelta(seconds=config.matching.cooldown_seconds),
        )
        q = config.quality
        self.pipeline = FramePipeline(
            self.vision.detector,
            self.vision.embedder,
            QualityPolicy(q.min_face_px, q.min_sharpness, q.max_yaw),
            self.tracker,
            probe_margin=config.events.probe_margin,
            tiles=config.vision.tiles,
        )
        self.signer = EventSigner(
            self.identity.device_id,
            self.identity.site,
            self.identity.signing_key,
            self.identity.trust.adjudication_key,
            config.events.jpeg_quality,
        )
        self.topics = DeviceTopics(self.identity.site, self.identity.device_id)
        self.outbox = Outbox(config.state_dir / "outbox.sqlite", config.events.outbox_max)
        will = (
            self.topics.status,
            offline_status(self.identity.device_id, self.identity.site),
            1,
            True,
        )
        self.link = MqttLink(config.mqtt_settings(will=will))
        self.publisher = Publisher(self.outbox, self.link)
        self.spool = Spool(self.outbox, config.events.held_max)
        loop = config.camera.loop and not until_end
        self.capture = Capture(
            open_source(
                source or config.camera.source,
                loop=loop,
                width=config.camera.width,
                height=config.camera.height,
            ),
            replay=until_end,
        )
        self.watchlist: Watchlist | None = None
        self.matcher: Matcher | None = None
        self.watchlist_note = "none"
        self.paused = False
        self.storage_error: str | None = None
        self._install_retry: tuple[bytes, float] | None = None  # (bundle, monotonic due)
        self._unheard_since: float | None = None
        self.last_rejection: dict[str, str] | None = None
        self._stop = threading.Event()
        self._started = self.clock()
        self._media_start, self._media_offset = self._started, timedelta(0)
        self._loop = _LoopState(last_frame=time.monotonic(), last_watchdog=0.0)
        self._last_status_doc: dict[str, object] | None = None

    # -- watchlist and commands ------------------------------------------------------------

    def _use(self, watchlist: Watchlist | None, note: str) -> None:
        self.watchlist = watchlist
        self.matcher = (
            Matcher(watchlist.entries, self.threshold, self.config.matching.storage)
            if watchlist is not None
            else None
        )
        self.tracker.forget_subjects()
        self.watchlist_note = note
        if (
            watchlist is not None
            and self.config.matching.threshold is None
            and self.config.vision.backend == "tflite"
        ):
            # The profile's threshold is a 1:1 one (FAR 1e-3 per pair): against N entries a
            # stranger gets N chances (make eval: 0.706 gave FPIR 0.70 with 1,680 entries).
            log.warning(
                "matching.threshold not set: using the profile's 1:1 threshold %.3f for %d "
                "entries; set [matching] threshold for the list size (operator guide)",
                self.threshold,
                len(watchlist.entries),
            )

    def _reject(self, what: str, exc: RejectedInput) -> None:
        self.last_rejection = {
            "what": what,
            "reason": exc.reason,
            "at": format_time(self.clock().replace(microsecond=0)),
        }
        log.warning("%s rejected (%s): %s", what, exc.reason, exc)

    def load_stored_watchlist(self) -> None:
        try:
            watchlist = self.store.load(self.clock())
        except Expired:
            self._use(None, "expired and wiped")
            return
        except RejectedInput as exc:
            self._reject("stored watchlist", exc)
            self.store.wipe(f"failed re-verification: {exc.reason}")
            self._use(None, "none")
            return
        self._use(watchlist, "installed" if watchlist else "none")

    def on_watchlist(self, payload: bytes) -> None:
        if not payload:
            return  # ops cleared the retained message; a wipe comes as a command
        path = self.identity.layout.watchlist
        if path.exists() and path.read_bytes() == payload:
            return  # the retained copy of what is installed, re-delivered on reconnect
        self._install_retry = None
        try:
            watchlist = self.store.install(payload, self.clock())
        except RejectedInput as exc:
            self._reject("watchlist", exc)
            return
        except OSError as exc:
            # The disk refused (full, read-only): the previous list stays in force, and the
            # verified bundle is tried again shortly, since the broker will not resend it.
            self.storage_error = f"watchlist install failed: {exc}"
            self._install_retry = (payload, time.monotonic() + 5.0)
            log.error("watchlist not installed, the previous one stays in force: %s", exc)
            return
        self.storage_error = None
        self._use(watchlist, "installed")

    def on_command(self, payload: bytes) -> None:
        if not payload:
            return
        floors = self.store.floors()
        try:
            # Commands are retained, so the last one comes back on every reconnect: accept
            # its own counter here and treat that as "already done", not as a replay.
            command = open_command(
                payload,
                trust=self.identity.trust.policy,
                device_id=self.identity.device_id,
                site=self.identity.site,
                last_counter=max(0, floors.command_counter - 1),
                now=self.clock(),
            )
        except RejectedInput as exc:
            self._reject("command", exc)
            return
        if command.counter == floors.command_counter:
            return
        try:
            self.store.save_floors(Floors(floors.watchlist_version, command.counter))
        except OSError as exc:
            # Still obeyed (a wipe or pause must not wait for disk space); the retained
            # command comes back on reconnect and is applied again, which is harmless.
            self.storage_error = f"command counter not saved: {exc}"
            log.error("command counter %d not saved: %s", command.counter, exc)
        else:
            if self._install_retry is None:
                self.storage_error = None  # the disk takes writes again
        log.warning("command %s (counter %d) accepted", command.action.value, command.counter)
        if command.action is Action.WIPE:
            self.store.wipe("wipe command")
            self._use(None, "wiped by command")
        else:
            self.paused = command.action is Action.PAUSE

    def _handle_messages(self) -> bool:
        handled = False
        for _ in range(16):
            message: Message | None = self.link.receive(0)
            if message is None:
                break
            handled = True
            if message.topic == self.topics.watchlist:
                self.on_watchlist(message.payload)
            elif message.topic == self.topics.command:
                self.on_command(message.payload)
        return handled

    def _retry_install(self) -> None:
        if self._install_retry is not None and time.monotonic() >= self._install_retry[1]:
            self.on_watchlist(self._install_retry[0])

    def _check_expiry(self, now: datetime) -> None:
        if self.watchlist is not None and self.watchlist.header.is_expired(now):
            self.store.wipe("expired")
            self._use(None, "expired and wiped")

    # -- events and status -----------------------------------------------------------------

    def _enqueue(self, alerts: list[Alert[U8]]) -> None:
        if self.watchlist is None:
            return
        for alert in alerts:
            event_id, token = self.signer.sign(alert, self.watchlist.header)
            self.spool.put(event_id, self.topics.events, token)

    def status_document(self, fps: float) -> dict[str, object]:
        floors = self.store.floors()
        state = "paused" if self.paused else "online"
        return build_status(
            StatusInputs(
                self.identity.device_id,
                self.identity.site,
                state,
                self.vision.embedder.id,
                self.vision.model_hashes,
                self.watchlist.header if self.watchlist else None,
                self.watchlist_note,
                self._started,
                self.clock(),
                fps,
                self.pipeline.counters,
                self.capture.stats,
                self.publisher.stats,
                len(self.outbox),
                self.spool.held,
                dict(self.spool.dropped),
                self.spool.disk_error,
                self.config.events.outbox_max,
                self.config.events.outbox_alarm,
                self.last_rejection,
                floors.watchlist_version,
                floors.command_counter,
                0.0 if self._loop.source_done else time.monotonic() - self._loop.last_frame,
                self.config.camera.stall_seconds,
                self.storage_error,
            )
        )

    def _publish_status(self, fps: float) -> None:
        doc = self.status_document(fps)
        if self.link.is_connected:
            self.link.publish(self.topics.status, canonical_json(doc), qos=1, retain=True)
        self.notifier.status(summary_line(doc))
        self._last_status_doc = doc

    # -- the loop --------------------------------------------------------------------------

    def _media_now(self) -> datetime:
        return self._media_start + self._media_offset

    def stop(self, *_: object) -> None:
        self._stop.set()

    def _start(self) -> None:
        self.load_stored_watchlist()
        self.link.subscribe_on_connect([(self.topics.watchlist, 1), (self.topics.command, 1)])
        self.link.start()
        if self.until_end:
            # A replay starts from what the broker holds for us (the retained watchlist), so
            # its result does not depend on how fast the connection came up.
            try:
                self.link.wait_subscribed(timeout=15)
                time.sleep(0.5)  # retained messages follow the SUBACK
                self._handle_messages()
            except MqttError as exc:
                log.warning("replay starts without the broker: %s", exc)
            self._await_watchlist()
        self.capture.start()
        self.notifier.ready(f"models, keys and watchlist loaded ({self.watchlist_note})")
        self._loop = _LoopState(last_frame=time.monotonic(), last_watchdog=time.monotonic())

    def _await_watchlist(self) -> None:
        """A replay against no watchlist matches nothing: give ops time to push one."""
        deadline = time.monotonic() + self.watchlist_wait
        if self.watchlist is None and self.watchlist_wait > 0:
            log.warning("no watchlist yet; waiting up to %.0fs for one", self.watchlist_wait)
            self._publish_status(0.0)
        while self.watchlist is None and time.monotonic() < deadline and not self._stop.is_set():
            if self._handle_messages():
                self._publish_status(0.0)
            time.sleep(0.1)

    def _take_frame(self, now: datetime) -> None:
        loop = self._loop
        frame = None if loop.source_done else self.capture.get(timeout=0.05)
        if frame is not None:
            matcher = None if self.paused else self.matcher
            if self.until_end:
                # A replay runs on the clip's own timeline, not on how fast we are.
                now = self._media_now()
                self._media_offset += timedelta(seconds=frame.duration)
            self._enqueue(self.pipeline.process(frame.image, matcher, now))
            loop.last_frame = time.monotonic()
        elif not loop.source_done and self.capture.ended:
            loop.source_done = True
            self._enqueue(self.tracker.flush(self._media_now() if self.until_end else now))
        elif loop.source_done:
            time.sleep(0.01)

    def _housekeeping(self) -> None:
        loop, mono = self._loop, time.monotonic()
        if (
            mono - loop.last_frame < self.config.camera.stall_seconds
            and mono - loop.last_watchdog >= 1.0
        ):
            self.notifier.watchdog()  # only while frames are being processed
            loop.last_watchdog = mono
        key = (
            self.paused,
            self.watchlist_note,
            self.watchlist.header.version if self.watchlist else None,
            self.last_rejection,
            self.link.generation,
            self.spool.disk_error is not None,
            self.storage_error,
            mono - loop.last_frame >= self.config.camera.stall_seconds,
        )
        if (
            mono - loop.last_status >= self.config.status.interval_seconds
            or key != loop.changed_key
        ):
            frames = self.pipeline.counters.frames
            fps = (
                (frames - loop.frames_at_status) / max(mono - loop.last_status, 1e-6)
                if loop.last_status
                else 0.0
            )
            self._publish_status(fps)
            loop.last_status, loop.frames_at_status, loop.changed_key = mono, frames, key

    def run(self) -> int:
        """Run until SIGTERM (or, with --until-end, until the source and outbox are done)."""
        self._start()
        try:
            while not self._stop.is_set():
                self._handle_messages()
                now = self.clock()
                self._check_expiry(now)
                self._take_frame(now)
                if self._loop.source_done and self.capture.fatal:
                    log.error("camera source failed: %s", self.capture.fatal)
                    if self.until_end:
                        return 2
                self.spool.retry()
                self._retry_install()
                self.publisher.step()
                self._housekeeping()
                if self.until_end and self._loop.source_done:
                    code = self._replay_finished()
                    if code is not None:
                        return code
            return 0
        finally:
            self._shutdown()

    def _replay_finished(self) -> int | None:
        """With --until-end, once the source is done: 0 when the outbox is drained, 3 when no
        consumer has been subscribed for a while (the events stay queued for the next run)."""
        if self.spool.held == 0 and len(self.outbox) == 0 and self.publisher.inflight == 0:
            return 0
        if not self.publisher.stats.waiting_for_consumer:
            self._unheard_since = None
            return None
        mono = time.monotonic()
        if self._unheard_since is None:
            self._unheard_since = mono
        if mono - self._unheard_since < UNHEARD_GIVE_UP_SECONDS:
            return None
        log.error(
            "%d events stay in the outbox: no consumer is subscribed to %s (sent on the next run)",
            len(self.outbox),
            self.topics.events,
        )
        return 3

    def _shutdown(self) -> None:
        self.notifier.stopping()
        self.capture.stop()
        self._enqueue(self.tracker.flush(self._media_now() if self.until_end else self.clock()))
        self.spool.retry(now=float("inf"))
        if self.spool.held:
            log.error(
                "%d events lost at shutdown: the outbox could not be written", self.spool.held
            )
        if self.link.is_connected:
            doc = {**self.status_document(0.0), "state": "offline"}
            mid = self.link.publish(self.topics.status, canonical_json(doc), qos=1, retain=True)
            try:
                self.link.wait_ack(mid, timeout=2.0)
            except MqttError as exc:  # best effort on the way out; the will covers it
                log.warning("final status not acknowledged: %s", exc)
        self.link.close()
        c = self.pipeline.counters
        log.info(
            "stopped: frames=%d faces_detected=%d faces_discarded=%d matches=%d "
            "events_published=%d events_queued=%d",
            c.frames,
            c.faces_detected,
            c.faces_discarded,
            c.matches,
            self.publisher.stats.events_published,
            len(self.outbox),
        )
        self.outbox.close()


def install_signal_handlers(agent: Agent) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        agent.stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
