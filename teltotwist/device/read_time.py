# -*- test-case-name: tests.test_device_read_time -*-
"""When a reply was read, for trackers that share a reactor.

The reactor reads every connection its poll found readable, one after
another. When hundreds of ACKs come at once, as they do after a burst, the
last of them is read only once the others have been handled: a wait that
is the reader's doing, not the server's. So every read of one such round
is stamped with the time of the round's first read, by which all of them
had come.
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime


class ReadTime:
    """The time to stamp a read with on *clock*: when the reactor's current
    round of reads began. Trackers on one reactor share one."""

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._round: float | None = None
        """When the current round's first read came; None between rounds."""

    def now(self) -> float:
        """The time of the current round's first read (this one's, if it is
        the first)."""
        if self._round is None:
            self._round = self._clock.seconds()
            # Timed calls run once the reactor has handled all its poll found.
            self._clock.callLater(0, self._end_round)
        return self._round

    def _end_round(self) -> None:
        self._round = None
