"""An alert becomes a signed match event with its probe sealed to the control room."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric import ed25519

from agent.core.tracker import Alert
from agent.io.jpeg import encode_jpeg
from protocol import hpke
from protocol.event import MatchEvent, new_event_id, seal_probe, sign_event
from protocol.keys import HpkePublicKey
from protocol.watchlist import WatchlistHeader


@dataclass(frozen=True)
class EventSigner:
    device_id: str
    site: str
    signing_key: ed25519.Ed25519PrivateKey
    adjudication_key: HpkePublicKey
    jpeg_quality: int = 85

    def sign(
        self,
        alert: Alert[npt.NDArray[np.uint8]],
        watchlist: WatchlistHeader,
        track_id: int | None = None,
    ) -> tuple[str, bytes]:
        """(event_id, compact JWS) for ``alert`` under the installed ``watchlist``."""
        if alert.crop is None:
            raise ValueError("an alert without a crop cannot become an event")
        event_id = new_event_id()
        suite = hpke.suite_of(self.adjudication_key)
        probe = seal_probe(
            encode_jpeg(alert.crop, self.jpeg_quality),
            self.adjudication_key,
            event_id=event_id,
            device_id=self.device_id,
            suite=suite,
        )
        match = alert.match
        event = MatchEvent(
            event_id=event_id,
            device_id=self.device_id,
            site=self.site,
            deployment_id=watchlist.deployment_id,
            watchlist_version=watchlist.version,
            subject_ref=match.subject_ref,
            category=match.category,
            score=round(match.score, 6),
            threshold=round(match.threshold, 6),
            margin=round(match.margin, 6),
            observed_at=alert.observed_at,
            track_id=alert.track_id if track_id is None else track_id,
            embedder_sha256=watchlist.embedder_sha256,
            probe_suite=suite,
            probe=probe,
        )
        return event_id, sign_event(event, self.signing_key)
