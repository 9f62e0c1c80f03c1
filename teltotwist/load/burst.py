# -*- test-case-name: tests.test_load_burst -*-
"""Synchronized bursts: every tracker of a load sends at the same instants.

Trackers that reconnect after a cell outage, or that share a send period
set to the minute, all send at once. To play them, the trackers of a
:data:`~teltotwist.load.plan.Pace.BURST` load record on their own clocks as
usual, but each holds its next packet, packed, until the burst clock
releases one packet of every tracker at once, every interval: at the
instant, the trackers only write what they packed before.

A tracker whose previous packet still waits for its ACK at an instant does
what a real one does: it keeps recording, and sends its next packet as soon
as the ACK comes; one packet is released per instant, so once it has caught
up it sends at the instants again.
"""

from __future__ import annotations

from collections.abc import Sequence

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from teltotwist.device import VirtualTracker
from teltotwist.load.plan import LoadPlan


class BurstClock:
    """Releases a packet of each of *trackers* (started held) at every
    ``started_at + plan.burst_at(n)``."""

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
        """The number of the next burst."""
        self._call: IDelayedCall | None = None

    def start(self) -> None:
        """Schedule the bursts."""
        self._schedule()

    def stop(self) -> None:
        """Release no more."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _schedule(self) -> None:
        due = self._started_at + self._plan.burst_at(self._next)
        delay = max(0.0, due - self._clock.seconds())
        self._call = self._clock.callLater(delay, self._burst)

    def _burst(self) -> None:
        """Release the burst due. When the reactor was late, the ones due
        since follow at once: no tracker loses a packet."""
        for tracker in self._trackers:
            tracker.release()
        self._next += 1
        self._schedule()
