"""The dispatcher: a packet counts as delivered only when every sink has it."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from zope.interface import implementer

from teltotwist.codec import Codec
from teltotwist.gateway.dispatch import DeliveryError, Dispatcher
from teltotwist.gateway.events import DataPathEvents
from teltotwist.gateway.items import Item, TrackerRecord
from teltotwist.sinks import IRecordSink
from teltotwist.testing import RecordingSink
from tests.observer import RecordingObserver
from tests.vectors import build_record

ITEMS: tuple[Item, ...] = (
    TrackerRecord("356307042441013", Codec.CODEC8, build_record(), 0),
)


def outcome(dispatcher: Dispatcher) -> list[object]:
    results: list[object] = []
    dispatcher.deliver(ITEMS).addBoth(results.append)
    return results


def delivery_error(results: list[object]) -> DeliveryError:
    [result] = results
    assert isinstance(result, Failure)
    assert isinstance(result.value, DeliveryError)
    return result.value


@implementer(IRecordSink)
class CarelessSink:
    """Does its work, but returns None instead of a Deferred."""

    name = "careless"

    def __init__(self) -> None:
        self.items: list[Item] = []

    def deliver(self, items: Sequence[Item]) -> None:  # type: ignore[override]
        self.items.extend(items)


@implementer(IRecordSink)
class RaisingSink:
    name = "raising"

    def deliver(self, items: Sequence[Item]) -> Deferred[None]:
        raise OSError("no space left on device")


@implementer(IRecordSink)
class AsyncSink:
    """A sink written with ``async def``; on cancellation it first finishes
    writing what it started (:attr:`flushed`), then gives up."""

    name = "async"

    def __init__(self) -> None:
        self.written: Deferred[None] = Deferred()
        self.flushed: Deferred[None] = Deferred()
        self.items: list[Item] = []

    async def deliver(self, items: Sequence[Item]) -> None:
        try:
            await self.written
        except CancelledError:
            await self.flushed
            raise
        self.items.extend(items)


def test_all_sinks_get_the_items_and_then_it_fires() -> None:
    first, second = RecordingSink("first"), RecordingSink("second")
    second.hold()
    results = outcome(Dispatcher([first, second], 10, MemoryReactorClock()))

    assert results == []
    assert first.items == list(ITEMS)
    second.release()
    assert results == [None]
    assert second.items == list(ITEMS)


def test_one_failing_sink_fails_the_delivery_and_is_named() -> None:
    good, bad = RecordingSink("good"), RecordingSink("bad")
    bad.fail_with(OSError("broker gone"))

    [result] = outcome(Dispatcher([good, bad], 10, MemoryReactorClock()))

    assert isinstance(result, Failure)
    error = result.value
    assert isinstance(error, DeliveryError)
    assert error.sink == "bad"
    assert "broker gone" in str(error)


def test_a_slow_sink_times_out_and_is_cancelled() -> None:
    clock = MemoryReactorClock()
    slow = RecordingSink("slow")
    slow.hold()
    results = outcome(Dispatcher([slow], 5, clock))

    clock.advance(4.9)
    assert results == []
    clock.advance(0.2)

    [failure] = results
    assert isinstance(failure, Failure)
    assert "within 5 s" in str(failure.value)
    assert slow.pending == ()
    assert slow.items == []


def test_no_items_succeed_at_once_without_calling_sinks() -> None:
    sink = RecordingSink()
    results: list[object] = []
    Dispatcher([sink], 5, MemoryReactorClock()).deliver(()).addBoth(results.append)

    assert results == [None]
    assert sink.deliveries == []


def test_a_dispatcher_needs_a_sink() -> None:
    with pytest.raises(ValueError, match="at least one sink"):
        Dispatcher([], 5, MemoryReactorClock())


def test_a_sink_that_returns_no_deferred_fails_the_delivery() -> None:
    """Records a sink never promised to keep are never ACKed."""
    careless = CarelessSink()
    results = outcome(Dispatcher([careless], 10, MemoryReactorClock()))

    error = delivery_error(results)
    assert error.sink == "careless"
    assert "deliver() returned NoneType, not a Deferred or a coroutine" in str(error)


def test_a_sink_that_raises_fails_the_delivery() -> None:
    results = outcome(Dispatcher([RaisingSink()], 10, MemoryReactorClock()))

    error = delivery_error(results)
    assert error.sink == "raising"
    assert "no space left on device" in str(error)


def test_a_coroutine_sink_is_awaited() -> None:
    sink = AsyncSink()
    results = outcome(Dispatcher([sink], 10, MemoryReactorClock()))

    assert results == []
    sink.written.callback(None)
    assert results == [None]
    assert sink.items == list(ITEMS)


def test_a_failing_sink_cancels_the_others() -> None:
    slow, bad = RecordingSink("slow"), RecordingSink("bad")
    slow.hold()
    bad.fail_with(OSError("broker gone"))

    results = outcome(Dispatcher([slow, bad], 10, MemoryReactorClock()))

    assert delivery_error(results).sink == "bad"
    assert slow.pending == ()
    assert slow.items == []


def test_drain_waits_for_every_attempt_not_only_the_first_failure() -> None:
    finishing, bad = AsyncSink(), RecordingSink("bad")
    bad.hold()
    dispatcher = Dispatcher([finishing, bad], 10, MemoryReactorClock())
    results = outcome(dispatcher)
    bad.release(OSError("broker gone"))
    drained = dispatcher.drain()

    assert delivery_error(results).sink == "bad"
    assert not drained.called
    finishing.flushed.callback(None)
    assert drained.called


def test_drain_fires_at_once_when_nothing_is_in_flight() -> None:
    dispatcher = Dispatcher([RecordingSink()], 10, MemoryReactorClock())
    outcome(dispatcher)

    assert dispatcher.drain().called


@pytest.fixture
def clock() -> MemoryReactorClock:
    """A clock already at 100 s, so durations are told from timestamps."""
    clock = MemoryReactorClock()
    clock.advance(100)
    return clock


def observed(
    sinks: Sequence[IRecordSink], clock: MemoryReactorClock
) -> tuple[Dispatcher, RecordingObserver]:
    events = DataPathEvents()
    observer = RecordingObserver()
    events.add(observer)
    return Dispatcher(sinks, 10, clock, events), observer


def test_each_sinks_answer_is_reported_with_its_time_on_the_clock(
    clock: MemoryReactorClock,
) -> None:
    fast, slow = RecordingSink("fast"), RecordingSink("slow")
    slow.hold()
    dispatcher, observer = observed([fast, slow], clock)
    outcome(dispatcher)
    clock.advance(2.5)
    slow.release()

    assert observer.of("sink_delivered") == [("fast", 0, True), ("slow", 2.5, True)]


def test_a_failing_sink_and_the_attempt_it_cancels_are_not_accepted(
    clock: MemoryReactorClock,
) -> None:
    slow, bad = RecordingSink("slow"), RecordingSink("bad")
    slow.hold()
    bad.hold()
    dispatcher, observer = observed([slow, bad], clock)
    outcome(dispatcher)
    clock.advance(1)
    bad.release(OSError("broker gone"))

    assert observer.of("sink_delivered") == [("bad", 1, False), ("slow", 1, False)]


def test_a_sink_timing_out_is_reported_not_accepted_at_the_timeout(
    clock: MemoryReactorClock,
) -> None:
    slow = RecordingSink("slow")
    slow.hold()
    dispatcher, observer = observed([slow], clock)
    outcome(dispatcher)
    clock.advance(10)

    assert observer.of("sink_delivered") == [("slow", 10, False)]
