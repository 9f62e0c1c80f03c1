# -*- test-case-name: tests.test_gateway_after_acks -*-
"""Work that no tracker waits for, done once the reactor has sent the ACKs
it had to send.

One fsync of the file sink can answer for hundreds of packets: the reactor
then sends hundreds of ACKs in one go. What follows each ACK (telling the
registry and the metrics, freeing the packet's records) takes longer than
the ACK itself, and done in between it would hold back every later ACK of
the wave. Queued here, it runs once the reactor is done with what it is
handling now, always before it polls again: what a sink's thread hands back
(the file sink's fsync) is handled as the reactor runs its timed calls, and
a call 0 s later made meanwhile runs in that same pass, after it; after an
answer that came with a read (a broker's), the queue runs once the rest of
that poll's reads are handled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

_log = Logger()

Work = tuple[Callable[..., object], tuple[Any, ...]]


class AfterAcks:
    """Runs what :meth:`add` was given once the ACKs being sent now are out
    (a call 0 s later), in the order it was given; a piece that raises is
    logged, and the others still run. It holds one piece per packet ACKed
    since it last ran: no more than the connections and the datagrams
    awaiting the sinks, both bounded by the
    :class:`~teltotwist.gateway.limits.Limits`."""

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._pending: list[Work] = []
        self._call: IDelayedCall | None = None

    def add(self, work: Callable[..., object], *arguments: Any) -> None:
        """Call ``work(*arguments)`` after the ACKs of this reactor turn."""
        if self._call is None:
            self._call = self._clock.callLater(0, self._run)
        self._pending.append((work, arguments))

    def flush(self) -> None:
        """Do what is queued now (at shutdown: nothing stays scheduled)."""
        if self._call is not None:
            self._call.cancel()
            self._run()

    def _run(self) -> None:
        self._call = None
        pending, self._pending = self._pending, []
        for work, arguments in pending:
            try:
                work(*arguments)
            except Exception:
                _log.failure("{work!r} failed after the ACKs", work=work)
