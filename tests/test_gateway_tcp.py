"""The TCP protocol and factory, in memory: what a tracker sees, and when."""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import pytest
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogEvent, capturedLogs, formatEvent

from teltotwist.codec import tcp_ack
from teltotwist.gateway.dispatch import Dispatcher
from teltotwist.gateway.items import TrackerRecord
from teltotwist.gateway.limits import Limits
from teltotwist.gateway.tcp import TeltonikaTcpFactory
from teltotwist.testing import FakeTracker, RecordingSink
from tests.vectors import by_id

CODEC8 = by_id("wiki-c8-tcp-1").data
CODEC8E = by_id("traccar-01-avl").data
GETINFO_RESPONSE = by_id("wiki-c12-getinfo-resp").data
LIMITS = Limits(
    login_timeout=30,
    idle_timeout=600,
    frame_timeout=30,
    sink_timeout=20,
    max_connections=3,
)
BIG_FRAME_HEADER = bytes(4) + (60_000).to_bytes(4, "big")
"""The start of a 60,000-byte frame, within the 64 KiB cap."""
BUDGET_OF_1000 = attrs.evolve(LIMITS, max_buffered_bytes=1_000, max_connections=10)


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


def test_a_thousand_frames_in_one_read_are_all_acked_in_order(
    factory: TeltonikaTcpFactory, sink: RecordingSink
) -> None:
    """A sink that accepts at once must not make the protocol recurse."""
    tracker = FakeTracker(factory)
    tracker.login()

    replies = tracker.send((CODEC8 + CODEC8E) * 500)

    assert replies == (tcp_ack(1) + tcp_ack(2)) * 500
    assert len(sink.deliveries) == 1000
    assert tracker.connected


def make_factory(
    clock: MemoryReactorClock, sink: RecordingSink, limits: Limits
) -> TeltonikaTcpFactory:
    dispatcher = Dispatcher([sink], limits.sink_timeout, clock)
    return TeltonikaTcpFactory(dispatcher, clock, limits=limits, now_ms=lambda: 0)


def tracker_number(factory: TeltonikaTcpFactory, number: int) -> FakeTracker:
    """A logged-in tracker of its own IMEI and address."""
    tracker = FakeTracker(
        factory, imei=f"35630704244{number:04d}", peer=(f"192.0.2.{number}", 40_000)
    )
    assert tracker.login() == b"\x01"
    return tracker


def test_a_trickled_frame_is_closed_after_the_frame_timeout(
    factory: TeltonikaTcpFactory, clock: MemoryReactorClock
) -> None:
    """Slowloris: a byte every 3 s would beat the idle timeout for ever."""
    tracker = FakeTracker(factory)
    tracker.login()
    tracker.send(BIG_FRAME_HEADER)

    with capturedLogs() as events:
        for _ in range(9):
            clock.advance(3)
            tracker.send(b"\x00")
        assert tracker.connected
        clock.advance(3)

    assert not tracker.connected
    assert tracker.replies() == b""
    assert any(
        "closing: an unfinished frame for 30 s" in formatEvent(event)
        for event in events
    )
    assert factory.unfinished.total == 0


def test_each_frame_gets_its_own_frame_timeout(
    factory: TeltonikaTcpFactory, clock: MemoryReactorClock
) -> None:
    tracker = FakeTracker(factory)
    tracker.login()

    tracker.send(CODEC8[:20])
    clock.advance(29)
    assert tracker.send(CODEC8[20:] + CODEC8[:20]) == tcp_ack(1)
    clock.advance(29)
    assert tracker.connected
    clock.advance(2)
    assert not tracker.connected


def test_the_frame_timeout_waits_while_the_sinks_have_the_packet(
    clock: MemoryReactorClock, sink: RecordingSink
) -> None:
    """The tracker waits for its ACK before it sends the rest."""
    factory = make_factory(clock, sink, attrs.evolve(LIMITS, frame_timeout=5))
    tracker = FakeTracker(factory)
    tracker.login()
    sink.hold()

    tracker.send(CODEC8 + CODEC8[:20])
    clock.advance(10)
    assert tracker.connected
    sink.release()
    assert tracker.replies() == tcp_ack(1)
    clock.advance(4)
    assert tracker.connected
    clock.advance(2)
    assert not tracker.connected


def test_past_the_byte_budget_the_oldest_unfinished_frame_is_closed(
    clock: MemoryReactorClock, sink: RecordingSink
) -> None:
    factory = make_factory(clock, sink, BUDGET_OF_1000)
    oldest, older, tracker = (tracker_number(factory, n) for n in (1, 2, 3))
    oldest.send(BIG_FRAME_HEADER + bytes(392))
    older.send(BIG_FRAME_HEADER + bytes(392))
    oldest.send(bytes(100))  # more of the same frame: it stays the oldest

    with capturedLogs() as events:
        tracker.send(BIG_FRAME_HEADER + bytes(292))

    assert not oldest.connected
    assert older.connected and tracker.connected
    assert factory.unfinished.total == 700
    assert any(
        "unfinished frames of all connections exceed 1000 bytes" in formatEvent(event)
        for event in events
    )


def test_finished_frames_free_their_share_of_the_budget(
    clock: MemoryReactorClock, sink: RecordingSink
) -> None:
    factory = make_factory(clock, sink, BUDGET_OF_1000)
    trackers = [tracker_number(factory, n) for n in range(1, 6)]

    for _ in range(3):
        for tracker in trackers:
            tracker.send(CODEC8[:-1])
        for tracker in trackers:
            assert tracker.send(CODEC8[-1:]) == tcp_ack(1)

    assert all(tracker.connected for tracker in trackers)
    assert factory.unfinished.total == 0


def logged_lines(events: Sequence[LogEvent]) -> list[str]:
    return [formatEvent(event) for event in events]


def test_a_disconnect_is_logged_with_what_the_tracker_sent_and_got_acked(
    factory: TeltonikaTcpFactory, sink: RecordingSink, clock: MemoryReactorClock
) -> None:
    tracker = FakeTracker(factory)
    tracker.login()
    tracker.send(CODEC8)
    sink.hold()
    tracker.send(CODEC8E)
    clock.advance(12.5)

    with capturedLogs() as events:
        tracker.disconnect()

    assert logged_lines(events) == [
        "356307042441013 at 192.0.2.10:40000: disconnected after 12.5 s; "
        "received 2 packets (3 records), acknowledged 1 (1 records)"
    ]


def test_a_disconnect_before_the_login_says_so(
    factory: TeltonikaTcpFactory, clock: MemoryReactorClock
) -> None:
    tracker = FakeTracker(factory)
    clock.advance(2)

    with capturedLogs() as events:
        tracker.disconnect()

    assert logged_lines(events) == [
        "unknown IMEI at 192.0.2.10:40000: disconnected after 2.0 s without logging in"
    ]


def test_closes_a_sender_can_repeat_are_rate_limited(
    clock: MemoryReactorClock, sink: RecordingSink
) -> None:
    factory = make_factory(clock, sink, attrs.evolve(LIMITS, max_connections=100))
    with capturedLogs() as events:
        for number in range(50):
            tracker = tracker_number(factory, number)
            tracker.send(CODEC8[:-1] + b"\x00")
            tracker.disconnect()
        clock.advance(60)

    closing = [line for line in logged_lines(events) if "closing: bad frame" in line]
    assert len(closing) == 20
    assert "30 more 'bad input' faults" in logged_lines(events)[-1]
