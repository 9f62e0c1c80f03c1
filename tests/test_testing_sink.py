"""RecordingSink: the test double users give the gateway in their own tests."""

from __future__ import annotations

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from zope.interface.verify import verifyObject

from teltotwist.codec import Codec
from teltotwist.gateway.dispatch import DeliveryError, Dispatcher
from teltotwist.gateway.items import TrackerRecord
from teltotwist.sinks import IRecordSink
from teltotwist.testing._sink import PendingDelivery, RecordingSink
from tests.vectors import build_record

IMEI = "356307042441013"


def tracker_record(second: int) -> TrackerRecord:
    record = build_record(timestamp_ms=1_560_161_086_000 + 1000 * second)
    return TrackerRecord(IMEI, Codec.CODEC8, record, 1_795_251_600_123)


A, B, C, D = (tracker_record(second) for second in range(4))


def outcome(deferred: Deferred[None]) -> list[Failure | None]:
    """What *deferred* fired with so far: ``[]`` while it has not fired."""
    fired: list[Failure | None] = []
    deferred.addBoth(fired.append)
    return fired


def error_of(deferred: Deferred[None]) -> BaseException | None:
    [failure] = outcome(deferred)
    assert isinstance(failure, Failure)
    return failure.value


def test_provides_the_sink_interface() -> None:
    assert verifyObject(IRecordSink, RecordingSink())
    assert RecordingSink().name == "recording"
    assert RecordingSink("second").name == "second"


def test_accepts_at_once_by_default() -> None:
    sink = RecordingSink()

    assert outcome(sink.deliver([A, B])) == [None]
    assert outcome(sink.deliver([C])) == [None]
    assert sink.items == [A, B, C]
    assert sink.deliveries == [(A, B), (C,)]


def test_fail_with_fails_every_later_delivery_until_accept() -> None:
    sink = RecordingSink()
    refused = ConnectionRefusedError("broker down")
    sink.fail_with(refused)

    assert error_of(sink.deliver([A])) is refused
    assert error_of(sink.deliver([B])) is refused
    sink.accept()
    assert outcome(sink.deliver([C])) == [None]
    assert sink.items == [C]
    assert sink.deliveries == [(A,), (B,), (C,)]


def test_fail_with_times_fails_only_that_many() -> None:
    sink = RecordingSink()
    sink.fail_with(TimeoutError("slow"), times=2)

    assert isinstance(error_of(sink.deliver([A])), TimeoutError)
    assert isinstance(error_of(sink.deliver([B])), TimeoutError)
    assert outcome(sink.deliver([C])) == [None]
    assert sink.items == [C]


def test_after_its_failures_a_holding_sink_holds_again() -> None:
    sink = RecordingSink()
    sink.hold()
    sink.fail_with(OSError("disk full"), times=1)

    assert isinstance(error_of(sink.deliver([A])), OSError)
    assert outcome(sink.deliver([B])) == []
    assert [held.items for held in sink.pending] == [(B,)]


def test_fail_with_needs_a_positive_count() -> None:
    with pytest.raises(ValueError, match="times must be at least 1, not 0"):
        RecordingSink().fail_with(OSError(), times=0)


def test_a_held_delivery_is_acked_only_once_released() -> None:
    sink = RecordingSink()
    sink.hold()
    dispatcher = Dispatcher([sink, RecordingSink("other")], timeout=5, clock=Clock())

    ack = outcome(dispatcher.deliver([A, B]))
    assert ack == []
    assert sink.items == []
    assert sink.deliveries == [(A, B)]

    released = sink.release()
    assert ack == [None]
    assert released.items == (A, B)
    assert sink.items == [A, B]
    assert sink.pending == ()


def test_release_with_an_error_fails_the_delivery() -> None:
    sink = RecordingSink()
    sink.hold()
    ack = Dispatcher([sink], timeout=5, clock=Clock()).deliver([A])

    sink.release(ConnectionResetError("broker went away"))

    error = error_of(ack)
    assert isinstance(error, DeliveryError)
    assert str(error) == ("sink recording did not accept the records: broker went away")
    assert sink.items == []


def test_release_answers_the_oldest_first() -> None:
    sink = RecordingSink()
    sink.hold()
    first, second = sink.deliver([A]), sink.deliver([B])

    assert sink.release().deferred is first
    assert outcome(second) == []
    assert sink.items == [A]


def test_release_all_answers_those_pending_now() -> None:
    sink = RecordingSink()
    sink.hold()
    first, second = sink.deliver([A]), sink.deliver([B])
    later: list[Deferred[None]] = []
    first.addCallback(lambda _: later.append(sink.deliver([C])))

    released = sink.release_all()

    assert released == [PendingDelivery((A,), first), PendingDelivery((B,), second)]
    assert outcome(second) == [None]
    assert sink.items == [A, B]
    assert [held.deferred for held in sink.pending] == later


def test_release_without_a_pending_delivery_is_an_error() -> None:
    with pytest.raises(IndexError, match="no delivery is pending"):
        RecordingSink().release()


def test_a_timed_out_delivery_leaves_pending_and_is_never_accepted() -> None:
    sink = RecordingSink()
    sink.hold()
    clock = Clock()
    ack = Dispatcher([sink], timeout=5, clock=clock).deliver([A])
    kept = sink.deliver([B])

    clock.advance(5)

    assert isinstance(error_of(ack), DeliveryError)
    assert [held.deferred for held in sink.pending] == [kept]
    sink.release_all()
    assert sink.items == [B]
