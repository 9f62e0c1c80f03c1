"""The dispatcher: a packet counts as delivered only when every sink has it."""

from __future__ import annotations

import pytest
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure

from teltotwist.codec import Codec
from teltotwist.gateway.dispatch import DeliveryError, Dispatcher
from teltotwist.gateway.items import Item, TrackerRecord
from teltotwist.testing import RecordingSink
from tests.vectors import build_record

ITEMS: tuple[Item, ...] = (
    TrackerRecord("356307042441013", Codec.CODEC8, build_record(), 0),
)


def outcome(dispatcher: Dispatcher) -> list[object]:
    results: list[object] = []
    dispatcher.deliver(ITEMS).addBoth(results.append)
    return results


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
