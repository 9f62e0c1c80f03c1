"""What follows the ACKs: done once, in order, after the reactor's turn,
each piece whatever the others do, and nothing left scheduled at shutdown."""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs

from teltotwist.gateway.after_acks import AfterAcks


def test_work_waits_for_the_end_of_the_turn_then_runs_in_order() -> None:
    clock = MemoryReactorClock()
    after = AfterAcks(clock)
    done: list[int] = []

    after.add(done.append, 1)
    after.add(done.append, 2)

    assert done == []
    assert len(clock.getDelayedCalls()) == 1
    clock.advance(0)
    assert done == [1, 2]
    assert clock.getDelayedCalls() == []


def test_work_added_later_runs_in_a_later_turn() -> None:
    clock = MemoryReactorClock()
    after = AfterAcks(clock)
    done: list[str] = []
    after.add(done.append, "first")
    clock.advance(0)

    after.add(done.append, "second")

    assert done == ["first"]
    clock.advance(0)
    assert done == ["first", "second"]


def test_a_piece_that_raises_is_logged_and_the_rest_still_runs() -> None:
    clock = MemoryReactorClock()
    after = AfterAcks(clock)
    done: list[str] = []

    def broken() -> None:
        raise RuntimeError("a bug in a report")

    after.add(broken)
    after.add(done.append, "still done")
    with capturedLogs() as events:
        clock.advance(0)

    assert done == ["still done"]
    [failure] = [event["log_failure"] for event in events if "log_failure" in event]
    assert failure.getErrorMessage() == "a bug in a report"


def test_flush_runs_the_queue_now_and_leaves_nothing_scheduled() -> None:
    clock = MemoryReactorClock()
    after = AfterAcks(clock)
    done: list[int] = []
    after.add(done.append, 1)

    after.flush()
    after.flush()

    assert done == [1]
    assert clock.getDelayedCalls() == []
