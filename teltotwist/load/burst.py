# -*- test-case-name: tests.test_load_burst -*-
"""Synchronized bursts: every tracker of a load sends at the same instants.

Trackers that reconnect after a cell outage, or that share a send period
set to the minute, all send at once. To play them, the trackers of a
:data:`~teltotwist.load.plan.Pace.BURST` load do not record on their own
clocks: one clock records a position in every tracker at once, every
``interval / records_per_packet``, so that each tracker's packet fills up,
and goes, at the same instant as everyone else's, every interval.

A tracker whose previous packet still waits for its ACK at an instant does
what a real one does: it keeps recording, and sends its packets one after
another as the ACKs come, until it has caught up; its count of records stays
in step with the clock, so once caught up it sends at the instants again.
"""

from __future__ import annotations

from collections.abc import Sequence

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from teltotwist.device import VirtualTracker
from teltotwist.load.plan import LoadPlan


class BurstClock:
    """Records a position in each of *trackers* at every
    ``started_at + plan.record_at(n)``."""

    def __init__(
        self,
        trackers: Sequence[VirtualTracker],
        plan: LoadPlan,
        clock: IReactorTime,
        started_at: float,
    ) -> None:
        self._trackers = trackers
        self._plan = plan
        self._clock = clock
        self._started_at = started_at
        self._next = 1
        """The number of the next recording."""
        self._call: IDelayedCall | None = None

    def start(self) -> None:
        """Schedule the recordings."""
        self._schedule()

    def stop(self) -> None:
        """Record no more."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _schedule(self) -> None:
        due = self._started_at + self._plan.record_at(self._next)
        delay = max(0.0, due - self._clock.seconds())
        self._call = self._clock.callLater(delay, self._record)

    def _record(self) -> None:
        """Record the position due. When the reactor was late, the ones due
        since follow at once: each tracker's count of records stays in step."""
        for tracker in self._trackers:
            tracker.record()
        self._next += 1
        self._schedule()
