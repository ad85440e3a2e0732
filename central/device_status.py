"""The latest verified status of each device (store schema version 6), for the fleet view.

The listener calls :func:`record_status` with a status it has already verified (signed by the
device of its topic); :func:`latest_statuses` reads them back, parsed by the same strict code
the devices' documents always go through.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from central.store import AlertStore
from protocol.encoding import format_time, parse_time
from protocol.errors import RejectedInput
from protocol.status import DeviceStatus, encode_status, parse_status

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LatestStatus:
    status: DeviceStatus
    state_since: datetime  # when the device entered its present state (as received here)
    received_at: datetime  # when a new document last arrived: staleness is judged by it


REORDER_S = 60  # an older document is ignored unless the stored one is this old (clock set back)


def record_status(store: AlertStore, status: DeviceStatus, received_at: datetime) -> None:
    """Keep ``status`` as the device's latest. The state's start time moves only when the
    state changes; the same document again (a retained copy after a reconnect) changes
    nothing, so a dead device's last words do not look fresh. Listeners in one shared group
    may store a device's consecutive documents out of order: a document older (by its own
    time) than the stored one is ignored, unless the stored one arrived over
    :data:`REORDER_S` ago (a device whose clock went back must not be frozen as stale)."""
    received = received_at.astimezone(UTC).replace(microsecond=0)
    stamp = format_time(received)
    at = None if status.report is None else format_time(status.report.at.replace(microsecond=0))
    store.execute(
        "INSERT INTO device_status (device_id, site, state, state_since, received_at, at, "
        "document) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET "
        "state_since = CASE WHEN device_status.state = excluded.state THEN "
        "device_status.state_since ELSE excluded.state_since END, "
        "received_at = CASE WHEN device_status.document = excluded.document THEN "
        "device_status.received_at ELSE excluded.received_at END, "
        "site = excluded.site, state = excluded.state, at = excluded.at, "
        "document = excluded.document "
        "WHERE excluded.at IS NULL OR device_status.at IS NULL OR "
        "excluded.at >= device_status.at OR device_status.received_at < ?",
        (
            status.device_id,
            status.site,
            status.state.value,
            stamp,
            stamp,
            at,
            encode_status(status).decode("utf-8"),
            format_time(received - timedelta(seconds=REORDER_S)),
        ),
    )


def latest_statuses(store: AlertStore) -> dict[str, LatestStatus]:
    """Device id -> its latest status. A row that no longer parses (a database edited by
    hand) is logged and left out: the fleet view then shows the device as never heard."""
    found: dict[str, LatestStatus] = {}
    for device_id, since, received, document in store.rows(
        "SELECT device_id, state_since, received_at, document FROM device_status"
    ):
        try:
            found[str(device_id)] = LatestStatus(
                parse_status(str(document).encode("utf-8")),
                parse_time(str(since), "state_since"),
                parse_time(str(received), "received_at"),
            )
        except RejectedInput as exc:
            log.warning("stored status of %s unreadable (%s): left out", device_id, exc.reason)
    return found


def alerts_since(store: AlertStore, since: datetime) -> dict[str, int]:
    """Alerts per device received since ``since`` (the fleet view's "alerts today")."""
    rows = store.rows(
        "SELECT device_id, COUNT(*) FROM alerts WHERE received_at >= ? GROUP BY device_id",
        (format_time(since.astimezone(UTC).replace(microsecond=0)),),
    )
    return {str(device): int(count) for device, count in rows}
