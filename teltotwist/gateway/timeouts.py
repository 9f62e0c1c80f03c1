# -*- test-case-name: tests.test_gateway_timeouts -*-
"""One timeout, such as the idle timeout, for any number of connections, on
one reactor timer.

A timer per connection costs memory (a ``DelayedCall`` with its arguments is
about 400 bytes, and tens of thousands of trackers sit idle), and restarting
it on every read churns the reactor's timer heap and the garbage collector.
All the deadlines of one timeout have the same length, so they fall due in
the order they were set: an insertion-ordered dict holds them, a restart
moves a connection to its end in O(1), and one reactor call, armed for the
earliest deadline, expires them in turn.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from twisted.internet.interfaces import IDelayedCall, IReactorTime

Member = TypeVar("Member", bound=Hashable)


class Timeout(Generic[Member]):
    """Calls *expired* with each member *seconds* after its last
    :meth:`start`, unless it is cancelled first.

    Deadlines fall due in the order they were started: after the clock was
    set back, a member started since waits for those started before it.
    """

    def __init__(
        self, clock: IReactorTime, seconds: float, expired: Callable[[Member], None]
    ) -> None:
        self.seconds = seconds
        self._clock = clock
        self._expired = expired
        # Insertion order is deadline order: all deadlines are now + seconds.
        self._deadlines: dict[Member, float] = {}
        self._call: IDelayedCall | None = None
        self._expiring = False

    def __len__(self) -> int:
        """Members waiting for their deadline."""
        return len(self._deadlines)

    def __contains__(self, member: Member) -> bool:
        """True while *member* waits for its deadline."""
        return member in self._deadlines

    def members(self) -> list[Member]:
        """The members waiting for their deadline, the earliest first."""
        return list(self._deadlines)

    def start(self, member: Member) -> None:
        """Expire *member* in :attr:`seconds`, forgetting its earlier deadline."""
        deadlines = self._deadlines
        deadlines.pop(member, None)
        deadlines[member] = self._clock.seconds() + self.seconds
        if self._call is None and not self._expiring:
            self._arm()

    def cancel(self, member: Member) -> None:
        """*member* does not expire (it may be started again)."""
        if self._deadlines.pop(member, None) is not None and not self._deadlines:
            self._disarm()

    def _arm(self) -> None:
        """Call :meth:`_expire` at the earliest deadline, if any."""
        self._disarm()
        earliest = next(iter(self._deadlines.values()), None)
        if earliest is not None:
            delay = max(0.0, earliest - self._clock.seconds())
            self._call = self._clock.callLater(delay, self._expire)

    def _disarm(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _expire(self) -> None:
        """Expire every member whose deadline has come, oldest first; the
        members may start or cancel deadlines meanwhile."""
        self._call = None
        self._expiring = True
        try:
            now = self._clock.seconds()
            deadlines = self._deadlines
            while deadlines:
                member, deadline = next(iter(deadlines.items()))
                if deadline > now:
                    break
                del deadlines[member]
                self._expired(member)
        finally:
            self._expiring = False
            self._arm()
