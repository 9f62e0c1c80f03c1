# -*- test-case-name: tests.test_gateway_dispatch -*-
"""Fan one packet's items out to every sink; succeed only if all accept them."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from teltotwist.gateway.events import DataPathEvents
from teltotwist.gateway.items import Item
from teltotwist.gateway.timeouts import Timeout
from teltotwist.sinks import IRecordSink


class DeliveryError(Exception):
    """A sink failed, or took longer than the sink timeout, to accept items."""

    def __init__(self, sink: str, reason: str) -> None:
        super().__init__(f"sink {sink} did not accept the records: {reason}")
        self.sink = sink
        self.reason = reason


class Dispatcher:
    """Delivers items to all sinks at once, within *timeout* seconds.

    When one sink fails, or the timeout expires, the delivery fails and the
    sinks still working on it have their attempts cancelled. :meth:`drain`
    waits for every attempt, cancelled ones included, to end. Each sink's
    answer goes to *events* (``sink_delivered``); a cancelled attempt counts
    as not accepted.
    """

    def __init__(
        self,
        sinks: Sequence[IRecordSink],
        timeout: float,
        clock: IReactorTime,
        events: DataPathEvents | None = None,
    ) -> None:
        if not sinks:
            raise ValueError("a dispatcher needs at least one sink")
        self.sinks = tuple(sinks)
        self.timeout = timeout
        self.events = DataPathEvents() if events is None else events
        self._clock = clock
        self._unsettled = 0
        self._drain_waiters: list[Deferred[None]] = []
        self._undecided: Timeout[_Fanout] = Timeout(clock, timeout, _Fanout.timed_out)
        """The deliveries not yet decided, each with its deadline."""

    def deliver(self, items: Sequence[Item]) -> Deferred[None]:
        """Fires with None once every sink accepted *items*; fails with a
        :class:`DeliveryError` naming the first sink that did not."""
        if not items:
            return succeed(None)
        return _Fanout(self, items).verdict

    def drain(self) -> Deferred[None]:
        """Fires once no sink is working on a delivery (at once if none is)."""
        if not self._unsettled:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._drain_waiters.append(waiter)
        return waiter

    def cancel(self) -> None:
        """Fail every delivery not yet decided and cancel its sinks' attempts
        (at shutdown, once the drain timeout is over)."""
        for fanout in self._undecided.members():
            fanout.give_up("the gateway is shutting down")

    def _attempt_started(self) -> None:
        self._unsettled += 1

    def _attempt_ended(self) -> None:
        self._unsettled -= 1
        if not self._unsettled:
            waiters, self._drain_waiters = self._drain_waiters, []
            for waiter in waiters:
                waiter.callback(None)


class _Fanout:
    """One packet on its way to every sink of a dispatcher."""

    def __init__(self, dispatcher: Dispatcher, items: Sequence[Item]) -> None:
        self.verdict: Deferred[None] = Deferred()
        self._dispatcher = dispatcher
        self._waiting_for = len(dispatcher.sinks)
        self._attempts: dict[Deferred[None], str] = {}
        self._started = dispatcher._clock.seconds()
        dispatcher._undecided.start(self)
        for sink in dispatcher.sinks:
            if self.verdict.called:  # an earlier sink failed at once
                break
            name = str(sink.name)
            attempt = _attempt(sink, items)
            self._attempts[attempt] = name
            dispatcher._attempt_started()
            attempt.addBoth(self._ended, attempt, name)

    def _ended(self, result: object, attempt: Deferred[None], name: str) -> None:
        del self._attempts[attempt]
        dispatcher = self._dispatcher
        dispatcher.events.sink_delivered(
            name,
            dispatcher._clock.seconds() - self._started,
            not isinstance(result, Failure),
        )
        if isinstance(result, Failure):
            reason = result.getErrorMessage() or repr(result.value)
            self._fail(DeliveryError(name, reason))
        else:
            self._waiting_for -= 1
            if not self._waiting_for and not self.verdict.called:
                dispatcher._undecided.cancel(self)
                self.verdict.callback(None)
        dispatcher._attempt_ended()

    def give_up(self, reason: str) -> None:
        """Fail the delivery now, naming a sink still working on it."""
        self._fail(DeliveryError(next(iter(self._attempts.values())), reason))

    def timed_out(self) -> None:
        """The sinks did not all answer within the dispatcher's timeout."""
        self.give_up(f"no answer within {self._dispatcher.timeout:g} s")

    def _fail(self, error: DeliveryError) -> None:
        if self.verdict.called:  # a cancelled attempt ending
            return
        self._dispatcher._undecided.cancel(self)
        self.verdict.errback(error)
        for attempt in list(self._attempts):
            attempt.cancel()


def _attempt(sink: IRecordSink, items: Sequence[Item]) -> Deferred[None]:
    """What *sink* does with *items*, as a Deferred; a sink that raises, or
    returns neither a Deferred nor a coroutine, has failed."""
    try:
        result: object = sink.deliver(items)
    except Exception as error:
        return fail(error)
    if isinstance(result, Deferred):
        return result
    if inspect.iscoroutine(result):
        return Deferred.fromCoroutine(result)
    return fail(
        TypeError(
            f"deliver() returned {type(result).__qualname__}, "
            "not a Deferred or a coroutine"
        )
    )
