"""Sink readiness: a sink without ISinkReadiness is ready at once; waiting
for several sinks ends when the last is ready, or when cancelled."""

from __future__ import annotations

import pytest
from twisted.internet.defer import CancelledError, Deferred
from twisted.python.failure import Failure
from zope.interface import implementer

from teltotwist.sinks import IRecordSink, ISinkReadiness
from teltotwist.sinks.readiness import ReadyWaiters, is_ready, when_all_ready
from teltotwist.testing import RecordingSink


@implementer(IRecordSink, ISinkReadiness)
class ConnectingSink(RecordingSink):
    def __init__(self) -> None:
        super().__init__("connecting")
        self.ready = False
        self.waiters = ReadyWaiters()

    def whenReady(self) -> Deferred[None]:
        return self.waiters.wait(self.ready)

    def connect(self) -> None:
        self.ready = True
        self.waiters.fire()


def test_a_sink_without_readiness_is_ready_at_once() -> None:
    plain = RecordingSink()

    assert is_ready(plain)
    assert when_all_ready([plain]).called


def test_waiting_ends_when_the_last_sink_is_ready() -> None:
    first, second = ConnectingSink(), ConnectingSink()
    everyone = when_all_ready([first, RecordingSink(), second])

    first.connect()
    assert not everyone.called
    assert not is_ready(second)
    second.connect()

    assert everyone.called
    assert when_all_ready([first, second]).called


def test_cancelling_the_wait_fails_it_and_leaves_the_sink_alone() -> None:
    sink = ConnectingSink()
    everyone = when_all_ready([sink])

    everyone.cancel()
    sink.connect()

    failures: list[Failure] = []
    everyone.addErrback(failures.append)
    assert len(failures) == 1
    with pytest.raises(CancelledError):
        failures[0].raiseException()
