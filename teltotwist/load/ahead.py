# -*- test-case-name: tests.test_load_ahead -*-
"""Flat out, each tracker's next packet is recorded and packed ahead.

A :data:`~teltotwist.load.plan.Pace.FLAT_OUT` tracker sends its next packet
the moment the ACK of the previous one comes. So that an ACK costs the load
generator no more than writing that packet, the packet is recorded and
packed while the ACK is awaited: once a tracker sends, it joins a queue,
and the queue's trackers are recorded and packed in slices, with a turn of
the reactor between, in which the ACKs that came meanwhile are read. A
tracker whose ACK comes before its turn sends once its packet is recorded.
"""

from __future__ import annotations

from collections import deque

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from teltotwist.device import VirtualTracker

PACK_SLICE = 10
"""Trackers whose next packet is recorded and packed in one turn."""


class PackAhead:
    """Records and packs, a slice per turn of the reactor, the next packet of
    the trackers handed to :meth:`add` (started not recording, not held)."""

    def __init__(self, clock: IReactorTime, records_per_packet: int) -> None:
        self._clock = clock
        self._records_per_packet = records_per_packet
        self._waiting: deque[VirtualTracker] = deque()
        self._call: IDelayedCall | None = None

    def add(self, tracker: VirtualTracker) -> None:
        """Record and pack *tracker*'s next packet on a coming turn."""
        self._waiting.append(tracker)
        if self._call is None:
            self._call = self._clock.callLater(0, self._slice)

    def now(self, tracker: VirtualTracker) -> None:
        """Record and pack *tracker*'s next packet at once; it goes as soon
        as the link is free."""
        for _ in range(self._records_per_packet - len(tracker.flash)):
            tracker.record()
        tracker.pack()

    def stop(self) -> None:
        """Record and pack no more."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self._waiting.clear()

    def _slice(self) -> None:
        waiting = self._waiting
        for _ in range(min(PACK_SLICE, len(waiting))):
            self.now(waiting.popleft())
        self._call = self._clock.callLater(0, self._slice) if waiting else None
