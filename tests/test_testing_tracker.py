"""``teltotwist.testing.FakeTracker``, as a user testing their own sink uses it."""

from __future__ import annotations

import pytest
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure

from teltotwist.codec import Codec, tcp_ack
from teltotwist.gateway.dispatch import Dispatcher
from teltotwist.gateway.items import TrackerRecord
from teltotwist.gateway.limits import Limits
from teltotwist.gateway.tcp import TeltonikaTcpFactory
from teltotwist.testing import FakeTracker, RecordingSink
from tests.vectors import build_record, by_id

CODEC8 = by_id("wiki-c8-tcp-1").data
CODEC8E = by_id("traccar-01-avl").data


@pytest.mark.parametrize("codec", [Codec.CODEC8, Codec.CODEC8E, Codec.CODEC16])
def test_records_sent_are_the_records_the_sink_gets(codec: Codec) -> None:
    clock = MemoryReactorClock()
    sink = RecordingSink()
    factory = TeltonikaTcpFactory(Dispatcher([sink], 5, clock), clock)
    tracker = FakeTracker(factory, imei="352093081452251")
    generation = 7 if codec is Codec.CODEC16 else None
    records = [
        build_record(
            timestamp_ms=1_700_000_000_000 + n, speed=n, generation_type=generation
        )
        for n in range(3)
    ]

    assert tracker.login() == b"\x01"
    assert tracker.send_records(records, codec) == tcp_ack(3)

    received = [item for item in sink.items if isinstance(item, TrackerRecord)]
    assert [item.record for item in received] == records
    assert {item.imei for item in received} == {"352093081452251"}
    assert {item.codec for item in received} == {codec}


def test_a_refused_connection_says_so() -> None:
    clock = MemoryReactorClock()
    factory = TeltonikaTcpFactory(Dispatcher([RecordingSink()], 5, clock), clock)
    factory.stop_accepting()

    tracker = FakeTracker(factory)

    assert tracker.refused
    assert not tracker.connected
    with pytest.raises(ConnectionError, match="refused"):
        tracker.login()


@pytest.fixture
def clock() -> MemoryReactorClock:
    return MemoryReactorClock()


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


def gateway(
    clock: MemoryReactorClock, sink: RecordingSink, limits: Limits = Limits()
) -> TeltonikaTcpFactory:
    return TeltonikaTcpFactory(Dispatcher([sink], 20, clock), clock, limits=limits)


def test_the_gateway_forgets_a_tracker_that_disconnected(
    clock: MemoryReactorClock, sink: RecordingSink
) -> None:
    factory = gateway(clock, sink)
    tracker = FakeTracker(factory)
    tracker.login()
    assert factory.by_imei == {tracker.imei: tracker.protocol}

    tracker.disconnect()

    assert not tracker.connected
    assert factory.connections == set()
    assert factory.by_imei == {}


def test_a_connection_the_gateway_closed_frees_its_place(
    clock: MemoryReactorClock, sink: RecordingSink
) -> None:
    factory = gateway(clock, sink, Limits(max_connections=1, idle_timeout=60))
    tracker = FakeTracker(factory)
    tracker.login()

    clock.advance(61)

    assert not tracker.connected
    assert factory.by_imei == {}
    again = FakeTracker(factory)
    assert again.connected
    assert again.login() == b"\x01"


def test_a_close_asked_for_while_reading_comes_once_the_read_is_over(
    clock: MemoryReactorClock, sink: RecordingSink
) -> None:
    factory = gateway(clock, sink)
    tracker = FakeTracker(factory)
    tracker.login()

    assert tracker.send(CODEC8[:-1] + b"\x00") == b""

    assert not tracker.connected
    assert factory.connections == set()
    with pytest.raises(ConnectionError, match="closed"):
        tracker.send(CODEC8)


def test_what_a_paused_gateway_did_not_read_arrives_once_it_resumes(
    clock: MemoryReactorClock, sink: RecordingSink
) -> None:
    factory = gateway(clock, sink)
    tracker = FakeTracker(factory)
    tracker.login()
    sink.hold()

    assert tracker.send(CODEC8) == b""
    assert tracker.send(CODEC8E) == b""
    assert len(sink.deliveries) == 1

    sink.release()
    assert tracker.replies() == tcp_ack(1)
    assert len(sink.deliveries) == 2
    sink.release()
    assert tracker.replies() == tcp_ack(2)


def test_what_a_paused_gateway_did_not_read_is_lost_with_the_connection(
    clock: MemoryReactorClock, sink: RecordingSink
) -> None:
    factory = gateway(clock, sink)
    tracker = FakeTracker(factory)
    tracker.login()
    sink.hold()
    tracker.send(CODEC8)
    tracker.send(CODEC8E)

    sink.release(OSError("disk full"))

    assert tracker.replies() == b""
    assert not tracker.connected
    assert len(sink.deliveries) == 1


class Reader(Protocol):
    """Records what it reads and whether its connection was lost."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.lost: list[Failure] = []

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.lost.append(reason)


def connect_reader() -> tuple[FakeTracker, Reader]:
    tracker = FakeTracker(Factory.forProtocol(Reader))
    assert isinstance(tracker.protocol, Reader)
    return tracker, tracker.protocol


def test_a_paused_reader_reads_at_the_first_call_after_it_resumes() -> None:
    tracker, reader = connect_reader()

    tracker.transport.pauseProducing()
    tracker.send(b"\x00\x00")
    tracker.send(b"\x00\x01")
    assert reader.received == []
    tracker.transport.resumeProducing()
    assert reader.received == []

    tracker.replies()
    assert reader.received == [b"\x00\x00\x00\x01"]


def test_the_protocol_learns_once_that_its_connection_is_lost() -> None:
    tracker, reader = connect_reader()

    tracker.transport.loseConnection()
    tracker.transport.loseConnection()
    tracker.disconnect()

    assert [failure.type for failure in reader.lost] == [ConnectionDone]
    assert not tracker.connected
