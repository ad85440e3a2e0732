"""Signed commands: threshold signatures, strictly increasing counter, short validity."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from protocol import errors
from protocol.command import Action, Command, open_command, sign_command
from tests.conftest import NOW, Fleet


def command(
    action: Action = Action.WIPE,
    counter: int = 5,
    device_id: str = "cam-01",
    issued: datetime = NOW,
    lifetime: timedelta = timedelta(minutes=10),
) -> Command:
    return Command(device_id, "kx", action, counter, issued, issued + lifetime)


def receive(fleet: Fleet, data: bytes, last_counter: int = 4, now: datetime = NOW) -> Command:
    return open_command(
        data, trust=fleet.trust, device_id="cam-01", site="kx", last_counter=last_counter, now=now
    )


@pytest.mark.parametrize("action", list(Action))
def test_round_trip(fleet: Fleet, action: Action) -> None:
    got = receive(fleet, sign_command(command(action), fleet.signers(0, 2)))
    assert got.action is action
    assert got.counter == 5
    assert len(got.signed_by) == 2


def test_replayed_command_does_nothing(fleet: Fleet) -> None:
    data = sign_command(command(counter=5), fleet.signers(0, 1))
    receive(fleet, data, last_counter=4)
    with pytest.raises(errors.RollbackRejected, match="replayed"):
        receive(fleet, data, last_counter=5)


def test_forged_command_is_refused(fleet: Fleet) -> None:
    with pytest.raises(errors.InsufficientSignatures):
        receive(fleet, sign_command(command(), fleet.signers(1)))


def test_expired_and_future_commands_are_refused(fleet: Fleet) -> None:
    with pytest.raises(errors.Expired):
        receive(
            fleet, sign_command(command(issued=NOW - timedelta(minutes=30)), fleet.signers(0, 1))
        )
    with pytest.raises(errors.NotYetValid):
        receive(
            fleet, sign_command(command(issued=NOW + timedelta(minutes=30)), fleet.signers(0, 1))
        )


def test_long_lived_commands_cannot_be_made(fleet: Fleet) -> None:
    with pytest.raises(errors.BadEncoding, match="validity"):
        sign_command(command(lifetime=timedelta(days=2)), fleet.signers(0, 1))


def test_command_for_another_device_is_refused(fleet: Fleet) -> None:
    with pytest.raises(errors.WrongDevice):
        receive(fleet, sign_command(command(device_id="cam-02"), fleet.signers(0, 1)))


def test_watchlist_is_not_a_command(fleet: Fleet) -> None:
    with pytest.raises(errors.UnsupportedAlgorithm, match="typ"):
        receive(fleet, fleet.bundle())
