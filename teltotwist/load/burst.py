# -*- test-case-name: tests.test_load_burst -*-
"""Synchronized bursts: every tracker of a load sends at the same instants.

Trackers that reconnect after a cell outage, or that share a send period
set to the minute, all send at once. To play them, the trackers of a
:data:`~teltotwist.load.plan.Pace.BURST` load record nothing on their own:
half an interval before each instant the burst clock records each tracker's
next packet in one go, stamped as if recorded through the interval that ends
at the instant, and packs it; at the instant it releases one packet of every
tracker. So that the load generator measures the gateway and not itself,
nothing but the writes happens at the instant and nothing but the ACK reads
after it. The recording and the writes go in slices of trackers, with a turn
of the reactor between: an ACK that comes meanwhile is read after the slice,
not after all the trackers.

A tracker whose previous packet still waits for its ACK at an instant does
what a real one does: it keeps recording, and sends its next packet as soon
as the ACK comes; one packet is released per instant, so once it has caught
up it sends at the instants again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from teltotwist.device import VirtualTracker
from teltotwist.load.plan import LoadPlan

RELEASE_SLICE = 50
"""Trackers released in one turn of the reactor."""
RECORD_SLICE = 20
"""Trackers whose next packet is recorded and packed in one turn."""

_Step = Callable[[Sequence[VirtualTracker]], None]


class BurstClock:
    """Records the next packet of each of *trackers* (started held, not
    recording) half an interval before every ``started_at +
    plan.burst_at(n)`` the run does not end before, and releases it then."""

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
        self._recorded = False
        """Whether the next burst's packets are recorded."""
        self._call: IDelayedCall | None = None

    def start(self) -> None:
        """Schedule the bursts."""
        self._schedule()

    def stop(self) -> None:
        """Record and release no more."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _schedule(self) -> None:
        """Wait for the next step: recording the next burst, or releasing it;
        none for a burst the run ends before. When the reactor was late, the
        steps due since follow at once: no tracker loses a packet."""
        if self._plan.burst_at(self._next) >= self._plan.duration:
            return
        burst = self._started_at + self._plan.burst_at(self._next)
        if self._recorded:
            self._at(burst, self._release, RELEASE_SLICE)
        else:
            self._at(burst - self._plan.interval / 2, self._record, RECORD_SLICE)

    def _at(self, due: float, step: _Step, size: int) -> None:
        delay = max(0.0, due - self._clock.seconds())
        self._call = self._clock.callLater(delay, self._in_slices, step, size, 0)

    def _in_slices(self, step: _Step, size: int, start: int) -> None:
        """Run *step* on the trackers from *start* on, *size* of them per turn
        of the reactor; then schedule the next step."""
        trackers = self._trackers
        end = start + size
        step(trackers[start:end])
        if end < len(trackers):
            self._call = self._clock.callLater(0, self._in_slices, step, size, end)
            return
        if self._recorded:
            self._next += 1
        self._recorded = not self._recorded
        self._schedule()

    def _record(self, trackers: Sequence[VirtualTracker]) -> None:
        """Record and pack the next packet of *trackers*."""
        plan = self._plan
        burst = self._started_at + plan.burst_at(self._next)
        spacing = plan.interval / plan.records_per_packet
        stamps = [
            burst - plan.interval + spacing * (n + 1)
            for n in range(plan.records_per_packet)
        ]
        for tracker in trackers:
            for stamp in stamps:
                tracker.record(stamp)

    def _release(self, trackers: Sequence[VirtualTracker]) -> None:
        """Let the next packet of *trackers* go."""
        for tracker in trackers:
            tracker.release()
