# -*- test-case-name: tests.test_sinks_readiness -*-
"""Whether sinks are ready to take records: the one place that says a sink
without :class:`ISinkReadiness` is ready at once."""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence

from twisted.internet.defer import CancelledError, Deferred, DeferredList, succeed
from twisted.python.failure import Failure

from teltotwist.sinks.interfaces import IRecordSink, ISinkReadiness, ISinkStatus


def is_ready(sink: IRecordSink) -> bool:
    """Whether *sink* could accept a delivery now."""
    readiness = ISinkReadiness(sink, None)
    return readiness is None or bool(readiness.ready)


def why_not_ready(sink: IRecordSink) -> str | None:
    """Why *sink* is not ready, if it is not and says why (:class:`ISinkStatus`)."""
    if is_ready(sink):
        return None
    status = ISinkStatus(sink, None)
    return None if status is None else str(status.status)


def reconnecting(problem: str, reason: str | None, retry_in: float | None) -> str:
    """A status's line on a sink's connection trouble: *problem* (``the last
    attempt failed``), when it tries again (in *retry_in* seconds, if it is
    waiting), and the *reason* given, if any."""
    if retry_in is not None:
        when = f"in {math.ceil(retry_in)} s" if retry_in > 0 else "now"
        problem += f" (retrying {when})"
    return problem if reason is None else f"{problem}: {reason}"


def not_running(sink: str) -> str:
    """Why *sink* (``the file sink for PATH``), stopped, fails a delivery."""
    return (
        f"{sink} is not running: it takes records between startService() "
        "and stopService()"
    )


def when_ready(sink: IRecordSink) -> Deferred[None]:
    """Fires once *sink* is ready; cancellable."""
    readiness = ISinkReadiness(sink, None)
    if readiness is None:
        return succeed(None)
    return readiness.whenReady()


def when_all_ready(sinks: Sequence[IRecordSink]) -> Deferred[None]:
    """Fires once every one of *sinks* is ready. Cancelling it fails it with
    ``CancelledError`` and stops waiting for each sink."""
    pending = [waiter for waiter in map(when_ready, sinks) if not waiter.called]

    def cancel(everyone: Deferred[None]) -> None:
        everyone.errback(Failure(CancelledError()))
        for waiter in pending:
            waiter.cancel()

    everyone: Deferred[None] = Deferred(cancel)

    def all_fired(_: object) -> None:
        if not everyone.called:
            everyone.callback(None)

    DeferredList(pending, consumeErrors=True).addCallback(all_fired)
    return everyone


class ReadyWaiters:
    """The pending ``whenReady()`` Deferreds of one sink."""

    def __init__(self) -> None:
        self._waiting: list[Deferred[None]] = []

    def wait(self, ready: bool) -> Deferred[None]:
        """Fires at once if *ready*, else at the next :meth:`fire`."""
        if ready:
            return succeed(None)
        waiter: Deferred[None] = Deferred(self._waiting.remove)
        self._waiting.append(waiter)
        return waiter

    def fire(self) -> None:
        """The sink became ready: fire every pending waiter."""
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            waiter.callback(None)


class ReadyWhileConnected(abc.ABC):
    """:class:`ISinkReadiness` and :class:`ISinkStatus` of a sink that is
    ready while connected to its server. The sink says whether it is
    :attr:`connected` and why not, and fires :attr:`_ready_waiters` (which its
    ``__init__`` creates) once it connects."""

    _ready_waiters: ReadyWaiters

    @property
    @abc.abstractmethod
    def connected(self) -> bool:
        """Whether the sink has a connection to deliver on."""

    @abc.abstractmethod
    def _why_not_connected(self) -> str:
        """Why the sink is not connected, and when it tries again."""

    @property
    def ready(self) -> bool:
        """Ready while connected."""
        return self.connected

    @property
    def status(self) -> str:
        """``connected``, or why not and when it tries again."""
        return "connected" if self.connected else self._why_not_connected()

    def whenReady(self) -> Deferred[None]:
        """Fires once the sink is connected."""
        return self._ready_waiters.wait(self.connected)
