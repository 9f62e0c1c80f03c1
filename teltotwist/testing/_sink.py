# -*- test-case-name: tests.test_testing_sink -*-
"""A sink for tests: it records what it is given, and accepts, fails or holds
deliveries as the test tells it to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from teltotwist.gateway.items import Item
from teltotwist.sinks.interfaces import IRecordSink


class PendingDelivery(NamedTuple):
    """A delivery held by a :class:`RecordingSink`, not yet answered."""

    items: tuple[Item, ...]
    deferred: Deferred[None]
    """What ``deliver()`` returned: the gateway ACKs once it fires."""


@implementer(IRecordSink)
class RecordingSink:
    """An :class:`~teltotwist.sinks.IRecordSink` for tests.

    It accepts every delivery at once until told otherwise: :meth:`hold`
    keeps later deliveries pending until :meth:`release`, so a test can see
    that nothing is ACKed before the sink answers; :meth:`fail_with` makes
    them fail. A held delivery that is cancelled (the gateway's sink timeout)
    leaves :attr:`pending` and is never accepted.
    """

    def __init__(self, name: str = "recording") -> None:
        self.name = name
        self.items: list[Item] = []
        """Every accepted item, in the order they were accepted."""
        self.deliveries: list[tuple[Item, ...]] = []
        """The items of every ``deliver()`` call, accepted or not."""
        self._pending: list[PendingDelivery] = []
        self._holding = False
        self._error: Exception | None = None
        self._failures_left: int | None = None

    @property
    def pending(self) -> tuple[PendingDelivery, ...]:
        """The held deliveries not answered yet, oldest first."""
        return tuple(self._pending)

    def accept(self) -> None:
        """Accept later deliveries at once: the initial behaviour."""
        self._holding = False
        self._error = None

    def hold(self) -> None:
        """Keep later deliveries pending until :meth:`release` or
        :meth:`release_all`."""
        self.accept()
        self._holding = True

    def fail_with(self, error: Exception, *, times: int | None = None) -> None:
        """Fail later deliveries with *error*: every one, or only the next
        *times*, after which the sink accepts or holds as it did before."""
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1, not {times!r}")
        self._error = error
        self._failures_left = times

    def release(self, error: Exception | None = None) -> PendingDelivery:
        """Accept the oldest pending delivery, or fail it with *error*.

        :raises IndexError: when no delivery is pending.
        """
        if not self._pending:
            raise IndexError("no delivery is pending: hold() keeps them pending")
        delivery = self._pending.pop(0)
        _answer(delivery, error)
        return delivery

    def release_all(self, error: Exception | None = None) -> list[PendingDelivery]:
        """Accept, or fail with *error*, every delivery pending now, oldest
        first; deliveries made meanwhile stay pending."""
        released, self._pending = self._pending, []
        for delivery in released:
            _answer(delivery, error)
        return released

    def deliver(self, items: Sequence[Item]) -> Deferred[None]:
        delivered = tuple(items)
        self.deliveries.append(delivered)
        if self._error is not None:
            return fail(self._next_failure())
        if self._holding:
            deferred: Deferred[None] = Deferred(self._withdraw)
            deferred.addCallback(self._accepted, delivered)
            self._pending.append(PendingDelivery(delivered, deferred))
            return deferred
        self._accepted(None, delivered)
        return succeed(None)

    def _next_failure(self) -> Exception:
        error = self._error
        assert error is not None
        if self._failures_left is not None:
            self._failures_left -= 1
            if not self._failures_left:
                self._error = None
        return error

    def _accepted(self, _: None, items: tuple[Item, ...]) -> None:
        self.items.extend(items)

    def _withdraw(self, deferred: Deferred[None]) -> None:
        self._pending = [
            held for held in self._pending if held.deferred is not deferred
        ]


def _answer(delivery: PendingDelivery, error: Exception | None) -> None:
    if delivery.deferred.called:  # cancelled during release_all()
        return
    if error is None:
        delivery.deferred.callback(None)
    else:
        delivery.deferred.errback(error)
