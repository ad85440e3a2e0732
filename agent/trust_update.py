"""Trust rotations received over MQTT (on the device's command topic).

A rotation is verified against the trust the node pins now (``protocol.trust.open_rotation``:
``threshold`` of the pinned ops keys, a higher serial). An accepted one is written to
``trust.json`` atomically, and the agent then stops with ``EXIT_TRUST_ROTATED`` so systemd
starts it again (``RestartForceExitStatus=`` in the unit): the new keys then govern every
check from the start, and the watchlist signed by rotated-out keys is re-verified (and
refused) like any stored list. A refused rotation changes nothing and is logged with its
reason.
"""

from __future__ import annotations

import logging

from lfrkit.files import atomic_write
from lfrkit.layout import DeviceLayout
from protocol.errors import RejectedInput
from protocol.trust import DeviceTrust, is_rotation, open_rotation

log = logging.getLogger(__name__)
# EX_TEMPFAIL: "try again": the unit restarts the agent on it.
EXIT_TRUST_ROTATED = 75


class TrustUpdater:
    def __init__(self, layout: DeviceLayout, current: DeviceTrust) -> None:
        self._layout = layout
        self.current = current
        self.rotated: DeviceTrust | None = None
        self.refused = 0
        self.last_refusal: str | None = None

    @staticmethod
    def is_rotation(payload: bytes) -> bool:
        return is_rotation(payload)

    def on_rotation(self, payload: bytes) -> None:
        if self.rotated is not None:
            return  # one rotation per run: the restart applies it, then the next may come
        try:
            new = open_rotation(payload, self.current)
        except RejectedInput as exc:
            self.refused += 1
            self.last_refusal = exc.reason
            log.warning("trust rotation refused: %s [%s]", exc, exc.reason)
            return
        try:
            atomic_write(self._layout.trust, new.to_bytes(), 0o644)
        except OSError as exc:
            # Nothing changed on disk: the old trust stays in force; ops send it again.
            log.error("trust rotation to serial %d not saved: %s", new.serial, exc)
            return
        self.rotated = new
        log.warning(
            "trust rotated to serial %d (%d ops keys, threshold %d): restarting to apply it",
            new.serial,
            len(new.policy.ops_keys),
            new.policy.threshold,
        )
