"""The TCP protocol and factory, in memory: what a tracker sees, and when."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import pytest
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogEvent, LogLevel, capturedLogs, formatEvent

from teltotwist.codec import tcp_ack
from teltotwist.gateway.dispatch import Dispatcher
from teltotwist.gateway.items import TrackerRecord
from teltotwist.gateway.limits import DuplicateLogin, Limits
from teltotwist.gateway.tcp import TeltonikaTcpFactory
from teltotwist.testing import FakeTracker, RecordingSink
from tests.vectors import by_id

CODEC8 = by_id("wiki-c8-tcp-1").data
CODEC8E = by_id("traccar-01-avl").data
GETINFO_RESPONSE = by_id("wiki-c12-getinfo-resp").data
LIMITS = Limits(login_timeout=30, idle_timeout=600, sink_timeout=20, max_connections=3)


@pytest.fixture
def clock() -> MemoryReactorClock:
    return MemoryReactorClock()


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def factory(clock: MemoryReactorClock, sink: RecordingSink) -> TeltonikaTcpFactory:
    dispatcher = Dispatcher([sink], LIMITS.sink_timeout, clock)
    return TeltonikaTcpFactory(dispatcher, clock, limits=LIMITS, now_ms=lambda: 0)


def test_records_reach_the_sink_and_the_tracker_gets_its_ack(
    factory: TeltonikaTcpFactory, sink: RecordingSink
) -> None:
    tracker = FakeTracker(factory)

    assert tracker.login() == b"\x01"
    assert tracker.send(CODEC8E) == tcp_ack(2)

    assert [item.imei for item in sink.items] == [tracker.imei] * 2
    assert all(isinstance(item, TrackerRecord) for item in sink.items)


def test_no_ack_and_no_reading_until_the_sink_accepts(
    factory: TeltonikaTcpFactory, sink: RecordingSink
) -> None:
    tracker = FakeTracker(factory)
    tracker.login()
    sink.hold()

    assert tracker.send(CODEC8) == b""
    assert tracker.transport.producerState == "paused"

    sink.release()
    assert tracker.replies() == tcp_ack(1)
    assert tracker.transport.producerState == "producing"


def test_failing_sink_means_no_ack_and_a_closed_connection(
    factory: TeltonikaTcpFactory, sink: RecordingSink
) -> None:
    tracker = FakeTracker(factory)
    tracker.login()
    sink.fail_with(OSError("disk full"))

    assert tracker.send(CODEC8) == b""
    assert not tracker.connected


def test_sink_timeout_means_no_ack(
    factory: TeltonikaTcpFactory, sink: RecordingSink, clock: MemoryReactorClock
) -> None:
    tracker = FakeTracker(factory)
    tracker.login()
    sink.hold()
    tracker.send(CODEC8)

    clock.advance(LIMITS.sink_timeout + 1)

    assert tracker.replies() == b""
    assert not tracker.connected
    assert sink.pending == ()


def test_command_frames_are_never_acked(factory: TeltonikaTcpFactory) -> None:
    tracker = FakeTracker(factory)
    tracker.login()

    assert tracker.send(GETINFO_RESPONSE) == b""
    assert tracker.connected
    assert tracker.send(CODEC8) == tcp_ack(1)


def test_bad_crc_closes_without_writing_anything(factory: TeltonikaTcpFactory) -> None:
    tracker = FakeTracker(factory)
    tracker.login()

    assert tracker.send(CODEC8[:-1] + b"\x00") == b""
    assert not tracker.connected


def test_login_timeout_closes(
    factory: TeltonikaTcpFactory, clock: MemoryReactorClock
) -> None:
    tracker = FakeTracker(factory)

    clock.advance(LIMITS.login_timeout - 1)
    assert tracker.connected
    clock.advance(2)
    assert not tracker.connected
    assert tracker.replies() == b""


def test_idle_timeout_restarts_with_every_byte(
    factory: TeltonikaTcpFactory, clock: MemoryReactorClock
) -> None:
    tracker = FakeTracker(factory)
    tracker.login()

    clock.advance(LIMITS.idle_timeout - 10)
    tracker.send(b"\xff")
    clock.advance(LIMITS.idle_timeout - 10)
    assert tracker.connected
    clock.advance(20)
    assert not tracker.connected


def make_factory(
    clock: MemoryReactorClock,
    allow: Callable[[str], bool] = lambda imei: True,
    **limits: Any,
) -> TeltonikaTcpFactory:
    dispatcher = Dispatcher([RecordingSink()], LIMITS.sink_timeout, clock)
    return TeltonikaTcpFactory(
        dispatcher,
        clock,
        allow=allow,
        limits=attrs.evolve(LIMITS, **limits),
        now_ms=lambda: 0,
    )


def warnings(events: Sequence[LogEvent]) -> list[str]:
    return [formatEvent(e) for e in events if e["log_level"] == LogLevel.warn]


def test_replace_policy_lets_the_newest_login_of_an_imei_win(
    clock: MemoryReactorClock,
) -> None:
    factory = make_factory(clock, duplicate_login=DuplicateLogin.REPLACE)
    older = FakeTracker(factory)
    older.login()
    newer = FakeTracker(factory, peer=("192.0.2.11", 40_001))
    with capturedLogs() as events:
        assert newer.login() == b"\x01"

    assert not older.connected
    assert newer.connected
    older.disconnect()
    assert factory.by_imei[newer.imei] is newer.protocol
    assert any(
        "Security" in line and "192.0.2.11:40001" in line and "192.0.2.10:40000" in line
        for line in warnings(events)
    )


def test_a_login_for_an_active_imei_is_rejected_by_default(
    factory: TeltonikaTcpFactory, clock: MemoryReactorClock
) -> None:
    tracker = FakeTracker(factory)
    tracker.login()
    clock.advance(LIMITS.duplicate_login_window - 1)
    tracker.send(CODEC8)
    clock.advance(LIMITS.duplicate_login_window - 1)
    impostor = FakeTracker(factory, peer=("198.51.100.7", 50_000))

    with capturedLogs() as events:
        assert impostor.login() == b"\x00"

    assert not impostor.connected
    assert tracker.connected
    assert tracker.send(CODEC8) == tcp_ack(1)
    assert any(
        "Security" in line
        and "198.51.100.7:50000" in line
        and "192.0.2.10:40000" in line
        for line in warnings(events)
    )


def test_reject_lets_a_tracker_back_in_once_its_old_connection_is_quiet(
    factory: TeltonikaTcpFactory, clock: MemoryReactorClock
) -> None:
    silently_dropped = FakeTracker(factory)
    silently_dropped.login()
    clock.advance(LIMITS.duplicate_login_window)
    reconnected = FakeTracker(factory, peer=("192.0.2.99", 41_000))

    assert reconnected.login() == b"\x01"
    assert not silently_dropped.connected
    assert factory.by_imei[reconnected.imei] is reconnected.protocol


def test_reject_ignores_a_connection_the_gateway_already_closed(
    factory: TeltonikaTcpFactory,
) -> None:
    tracker = FakeTracker(factory)
    tracker.login()
    tracker.send(CODEC8[:-1] + b"\x00")

    assert FakeTracker(factory, peer=("192.0.2.10", 40_001)).login() == b"\x01"


def test_a_flood_from_one_address_cannot_lock_trackers_out(
    clock: MemoryReactorClock,
) -> None:
    factory = make_factory(clock, max_connections=50, max_pending_per_address=5)
    with capturedLogs() as events:
        flood = [
            FakeTracker(factory, peer=("198.51.100.7", port))
            for port in range(10_000, 11_000)
        ]
        trackers = [
            FakeTracker(
                factory, imei=f"3563070424410{n:02}", peer=(f"192.0.2.{n}", 4000)
            )
            for n in range(20)
        ]
        neighbour = FakeTracker(
            factory, imei="352093081452251", peer=("198.51.100.7", 1)
        )

    assert [tracker.login() for tracker in trackers] == [b"\x01"] * 20
    assert neighbour.login() == b"\x01"
    assert sum(attacker.connected for attacker in flood) == 4
    assert len(warnings(events)) <= factory.faults.burst


def test_a_flood_from_many_addresses_never_closes_logged_in_trackers(
    clock: MemoryReactorClock,
) -> None:
    factory = make_factory(clock, max_connections=10)
    trackers = [
        FakeTracker(factory, imei=f"3563070424410{n:02}", peer=("203.0.113.1", n))
        for n in range(5)
    ]
    for tracker in trackers:
        tracker.login()

    flood = [
        FakeTracker(factory, peer=(f"198.51.{n // 250}.{n % 250}", 9))
        for n in range(1000)
    ]
    newcomer = FakeTracker(factory, imei="352093081452251")

    assert all(tracker.connected for tracker in trackers)
    assert newcomer.login() == b"\x01"
    assert sum(attacker.connected for attacker in flood) == 4


def test_refused_only_when_every_slot_holds_a_logged_in_tracker(
    clock: MemoryReactorClock,
) -> None:
    factory = make_factory(clock, max_connections=3)
    fleet = [
        FakeTracker(factory, imei=f"3563070424410{n:02}", peer=("203.0.113.1", n))
        for n in range(3)
    ]
    for tracker in fleet:
        tracker.login()

    assert not FakeTracker(factory).connected
    fleet[0].disconnect()
    assert FakeTracker(factory).connected


def test_closing_disallowed_sessions_keeps_the_allowed_ones(
    clock: MemoryReactorClock,
) -> None:
    allowed = {"356307042441013", "352093081452251"}
    factory = make_factory(clock, allow=allowed.__contains__)
    kept = FakeTracker(factory, imei="356307042441013")
    kept.login()
    revoked = FakeTracker(factory, imei="352093081452251", peer=("192.0.2.11", 1))
    revoked.login()

    allowed.discard(revoked.imei)
    with capturedLogs() as events:
        factory.close_disallowed()

    assert kept.connected
    assert not revoked.connected
    lines = [formatEvent(event) for event in events]
    assert any(
        "352093081452251" in line and "no longer allowed" in line for line in lines
    )
    assert any("Closed 1 sessions" in line for line in lines)


def test_nothing_is_acked_once_shutdown_began(
    factory: TeltonikaTcpFactory, sink: RecordingSink
) -> None:
    tracker = FakeTracker(factory)
    tracker.login()
    sink.hold()
    tracker.send(CODEC8)

    factory.stop_accepting()
    drained = factory.drain()
    sink.release()

    assert tracker.replies() == b""
    assert not tracker.connected
    assert len(sink.items) == 1
    assert drained.called
    assert not FakeTracker(factory).connected
