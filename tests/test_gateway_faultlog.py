"""Rate-limited fault warnings: a repeating sender cannot flood the log."""

from __future__ import annotations

from collections.abc import Sequence

from twisted.internet.task import Clock
from twisted.logger import LogEvent, Logger, capturedLogs, formatEvent

from teltotwist.gateway.faultlog import FaultLog


def lines(events: Sequence[LogEvent]) -> list[str]:
    return [formatEvent(event) for event in events]


def test_a_burst_is_logged_in_full_then_counted_and_summarised() -> None:
    clock = Clock()
    faults = FaultLog(Logger(), clock, interval=60, burst=3)
    with capturedLogs() as events:
        for number in range(1000):
            faults.warn("bad frame", "peer {peer}: bad frame", peer=number)
        clock.advance(60)

    assert lines(events) == [
        "peer 0: bad frame",
        "peer 1: bad frame",
        "peer 2: bad frame",
        "997 more 'bad frame' faults in the last 60 s were not logged one by one",
    ]


def test_each_kind_has_its_own_budget_and_a_new_interval_starts_afresh() -> None:
    clock = Clock()
    faults = FaultLog(Logger(), clock, interval=10, burst=1)
    with capturedLogs() as events:
        faults.warn("login", "refused {n}", n=1)
        faults.warn("frame", "bad {n}", n=1)
        faults.warn("login", "refused {n}", n=2)
        clock.advance(10)
        faults.warn("login", "refused {n}", n=3)

    assert lines(events) == [
        "refused 1",
        "bad 1",
        "1 more 'login' faults in the last 10 s were not logged one by one",
        "refused 3",
    ]


def test_an_interval_without_suppression_has_no_summary() -> None:
    clock = Clock()
    faults = FaultLog(Logger(), clock, interval=10, burst=5)
    with capturedLogs() as events:
        faults.warn("login", "refused")
        clock.advance(10)

    assert lines(events) == ["refused"]
    assert not clock.getDelayedCalls()


def test_stop_summarises_at_once_and_leaves_no_timer() -> None:
    clock = Clock()
    faults = FaultLog(Logger(), clock, interval=60, burst=1)
    with capturedLogs() as events:
        faults.warn("flood", "refused")
        faults.warn("flood", "refused")
        faults.stop()

    assert lines(events)[-1].startswith("1 more 'flood' faults")
    assert not clock.getDelayedCalls()
