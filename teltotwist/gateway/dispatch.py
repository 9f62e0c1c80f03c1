# -*- test-case-name: tests.test_gateway_dispatch -*-
"""Fan one packet's items out to every sink; succeed only if all accept them."""

from __future__ import annotations

from collections.abc import Sequence

from twisted.internet.defer import (
    Deferred,
    DeferredList,
    FirstError,
    maybeDeferred,
    succeed,
)
from twisted.internet.defer import TimeoutError as DeferredTimeoutError
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from teltotwist.gateway.items import Item
from teltotwist.sinks import IRecordSink


class DeliveryError(Exception):
    """A sink failed, or took longer than the sink timeout, to accept items."""

    def __init__(self, sink: str, reason: str) -> None:
        super().__init__(f"sink {sink} did not accept the records: {reason}")
        self.sink = sink
        self.reason = reason


class Dispatcher:
    """Delivers items to all sinks at once, each within *timeout* seconds.

    A sink still working when the timeout expires has its Deferred cancelled.
    """

    def __init__(
        self, sinks: Sequence[IRecordSink], timeout: float, clock: IReactorTime
    ) -> None:
        if not sinks:
            raise ValueError("a dispatcher needs at least one sink")
        self.sinks = tuple(sinks)
        self.timeout = timeout
        self._clock = clock

    def deliver(self, items: Sequence[Item]) -> Deferred[None]:
        """Fires with None once every sink accepted *items*; fails with a
        :class:`DeliveryError` naming the first sink that did not."""
        if not items:
            return succeed(None)
        attempts = [self._deliver_to(sink, items) for sink in self.sinks]
        gathered: Deferred[list[tuple[bool, None]]] = DeferredList(
            attempts, fireOnOneErrback=True, consumeErrors=True
        )
        return gathered.addCallbacks(_all_accepted, _first_failure)

    def _deliver_to(self, sink: IRecordSink, items: Sequence[Item]) -> Deferred[None]:
        attempt: Deferred[None] = maybeDeferred(sink.deliver, items)
        attempt.addTimeout(self.timeout, self._clock)
        return attempt.addErrback(_name_failure, str(sink.name), self.timeout)


def _all_accepted(results: list[tuple[bool, None]]) -> None:
    return None


def _first_failure(failure: Failure) -> None:
    """Re-raise the sink's DeliveryError out of DeferredList's FirstError."""
    error = failure.value
    if isinstance(error, FirstError):
        error.subFailure.raiseException()
    failure.raiseException()


def _name_failure(failure: Failure, sink: str, timeout: float) -> None:
    if isinstance(failure.value, DeferredTimeoutError):
        raise DeliveryError(sink, f"no answer within {timeout:g} s")
    raise DeliveryError(sink, failure.getErrorMessage() or repr(failure.value))
