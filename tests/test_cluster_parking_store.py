"""The hub between a gateway's workers keeps its parked envelopes in its
state directory: a hub started again on the same file has them back, until
collected or expired, within the Router's bounds."""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.internet.task import Clock

from teltotwist.cluster.bus import Envelope
from teltotwist.cluster.hub import Hub
from teltotwist.cluster.parking_store import SqliteParkingStore
from teltotwist.cluster.router import ParkingFullError, ParkingLimits

IMEI = "356307042441013"
OTHER = "356307042441021"


def envelope(n: int) -> Envelope:
    return Envelope("command.parked", b'{"n":%d}' % n, "host:1/w1", f"c{n}")


def restarted(state_dir: Path, clock: Clock, **limits: int) -> Hub:
    """A hub as a gateway started again on *state_dir* has it."""
    return Hub(clock, ParkingLimits(**limits), SqliteParkingStore(state_dir))


def test_parked_envelopes_outlast_the_hub_until_collected(tmp_path: Path) -> None:
    clock = Clock()
    clock.advance(1_700_000_000)
    hub = restarted(tmp_path, clock)
    hub.park(IMEI, envelope(1), 60)
    hub.park(IMEI, envelope(2), 60)
    hub.park(OTHER, envelope(3), 60)

    again = restarted(tmp_path, clock)

    assert again.router.parked == 3
    assert again.collect(IMEI) == [envelope(1), envelope(2)]
    assert restarted(tmp_path, clock).collect(OTHER) == [envelope(3)]
    assert restarted(tmp_path, clock).router.parked == 0


def test_an_envelope_expired_while_stopped_is_dropped(tmp_path: Path) -> None:
    clock = Clock()
    hub = restarted(tmp_path, clock)
    hub.park(IMEI, envelope(1), 10)
    hub.park(IMEI, envelope(2), 100)
    hub.park(OTHER, envelope(3), 100)
    clock.advance(50)

    assert restarted(tmp_path, clock).collect(IMEI) == [envelope(2)]
    # Its TTL runs on from when it was parked, not from the restart.
    clock.advance(51)
    assert restarted(tmp_path, clock).collect(OTHER) == []
    assert SqliteParkingStore(tmp_path).load() == []


def test_the_file_keeps_no_more_than_the_router_bounds(tmp_path: Path) -> None:
    clock = Clock()
    hub = restarted(tmp_path, clock, per_imei=2, total=3)
    hub.park(IMEI, envelope(1), 60)
    hub.park(IMEI, envelope(2), 60)
    with pytest.raises(ParkingFullError):
        hub.park(IMEI, envelope(3), 60)
    hub.park(OTHER, envelope(4), 60)
    with pytest.raises(ParkingFullError):
        hub.park("356307042441039", envelope(5), 60)

    assert len(SqliteParkingStore(tmp_path).load()) == 3
    # Bounds lowered since: what is over them is dropped, file and all.
    again = restarted(tmp_path, clock, per_imei=1, total=3)
    assert again.collect(IMEI) == [envelope(1)]
    assert [stored.envelope for stored in SqliteParkingStore(tmp_path).load()] == [
        envelope(4)
    ]
