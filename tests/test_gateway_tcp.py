"""The TCP protocol and factory, in memory: what a tracker sees, and when."""

from __future__ import annotations

import pytest
from twisted.internet.testing import MemoryReactorClock

from teltotwist.codec import tcp_ack
from teltotwist.gateway.dispatch import Dispatcher
from teltotwist.gateway.items import TrackerRecord
from teltotwist.gateway.limits import Limits
from teltotwist.gateway.tcp import TeltonikaTcpFactory
from teltotwist.testing import FakeTracker, RecordingSink
from tests.vectors import by_id, frame_payload

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


@pytest.mark.parametrize("data", [b"", b"\x08\x01"], ids=len)
def test_frame_too_short_for_content_closes_without_an_ack(
    factory: TeltonikaTcpFactory, sink: RecordingSink, data: bytes
) -> None:
    """The 12-byte all-zero frame included: a framing fault, not content."""
    tracker = FakeTracker(factory)
    tracker.login()

    assert tracker.send(frame_payload(data)) == b""
    assert not tracker.connected
    assert sink.items == []


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


def test_newest_login_of_an_imei_wins(factory: TeltonikaTcpFactory) -> None:
    older = FakeTracker(factory)
    older.login()
    newer = FakeTracker(factory, peer=("192.0.2.11", 40_001))
    newer.login()

    assert not older.connected
    assert newer.connected
    older.disconnect()
    assert factory.by_imei[newer.imei] is newer.protocol


def test_connections_beyond_the_limit_are_refused(factory: TeltonikaTcpFactory) -> None:
    open_ = [FakeTracker(factory) for _ in range(LIMITS.max_connections)]
    refused = FakeTracker(factory)

    assert all(tracker.connected for tracker in open_)
    assert not refused.connected
    open_[0].disconnect()
    assert FakeTracker(factory).connected


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
