"""The router: bindings follow members, parked envelopes are bounded and
expire."""

from __future__ import annotations

import pytest

from teltotwist.cluster.bus import Envelope
from teltotwist.cluster.router import ParkingFullError, ParkingLimits, Router

IMEI = "356307042441013"
OTHER_IMEI = "356307042441021"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def envelope(n: int) -> Envelope:
    return Envelope("command.request", str(n).encode(), "a")


def test_a_member_that_leaves_holds_nothing_and_rejoins_with_nothing() -> None:
    router = Router(Clock())
    router.join("a")
    router.join("b")
    router.bind("a", IMEI)
    router.bind("b", IMEI)
    router.bind("a", OTHER_IMEI)

    router.leave("a")

    assert router.holders(IMEI) == {"b"}
    assert router.holders(OTHER_IMEI) == frozenset()
    router.join("b")
    assert router.holders(IMEI) == frozenset()
    assert router.members == {"b"}


def test_a_member_that_has_not_joined_cannot_bind() -> None:
    with pytest.raises(KeyError):
        Router(Clock()).bind("a", IMEI)


def test_parking_beyond_the_imei_bound_is_refused_and_others_still_park() -> None:
    router = Router(Clock(), ParkingLimits(per_imei=2, total=10))
    router.park(IMEI, envelope(1), 60)
    router.park(IMEI, envelope(2), 60)

    with pytest.raises(ParkingFullError, match=f"2 messages are parked for {IMEI}"):
        router.park(IMEI, envelope(3), 60)
    router.park(OTHER_IMEI, envelope(4), 60)

    assert router.collect(IMEI) == [envelope(1), envelope(2)]
    assert router.parked == 1


def test_parking_beyond_the_total_is_refused_until_some_expire() -> None:
    clock = Clock()
    router = Router(clock, ParkingLimits(per_imei=5, total=2))
    router.park(IMEI, envelope(1), 10)
    router.park(OTHER_IMEI, envelope(2), 60)

    with pytest.raises(ParkingFullError, match="2 messages are parked"):
        router.park(OTHER_IMEI, envelope(3), 60)
    clock.now += 10
    router.park(OTHER_IMEI, envelope(3), 60)

    assert router.collect(IMEI) == []
    assert router.collect(OTHER_IMEI) == [envelope(2), envelope(3)]
    assert router.parked == 0


def test_an_envelope_is_collected_until_its_ttl_and_not_after() -> None:
    clock = Clock()
    router = Router(clock)
    router.park(IMEI, envelope(1), 5)
    router.park(IMEI, envelope(2), 30)
    clock.now += 4.9

    router.expire()
    assert router.parked == 2
    clock.now += 0.1

    assert router.collect(IMEI) == [envelope(2)]


def test_a_ttl_must_be_positive() -> None:
    with pytest.raises(ValueError, match="ttl must be a positive number"):
        Router(Clock()).park(IMEI, envelope(1), 0)
