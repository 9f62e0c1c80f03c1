# -*- test-case-name: tests.test_gateway_faultlog -*-
"""Rate-limited warnings for faults the network can repeat at will.

A sender that repeats a bad frame, a refused login or a flood of connections
must not fill the operator's disk through the log. Each *kind* of fault (a
fixed label chosen by the code, never taken from the input) logs its first
*burst* occurrences in an interval in full; the rest are counted, and one
summary line per kind says how many were left out.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

DEFAULT_INTERVAL = 60.0
DEFAULT_BURST = 20


class _Window:
    __slots__ = ("logged", "summary", "suppressed")

    def __init__(self) -> None:
        self.logged = 0
        self.suppressed = 0
        self.summary: IDelayedCall | None = None


class FaultLog:
    """Warnings about network faults, at most *burst* lines per kind per
    *interval* seconds, then one summary line per kind and interval."""

    def __init__(
        self,
        log: Logger,
        clock: IReactorTime,
        *,
        interval: float = DEFAULT_INTERVAL,
        burst: int = DEFAULT_BURST,
    ) -> None:
        self.log = log
        self.interval = interval
        self.burst = burst
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def warn(self, kind: str, format: str, **fields: Any) -> None:
        """Log ``format`` (a Twisted log format) unless *kind* already logged
        *burst* lines in the current interval; then only count it."""
        window = self._windows.get(kind)
        if window is None:
            window = self._windows[kind] = _Window()
            window.summary = self._clock.callLater(self.interval, self._close, kind)
        if window.logged < self.burst:
            window.logged += 1
            self.log.warn(format, fault=kind, **fields)
        else:
            window.suppressed += 1

    def stop(self) -> None:
        """Summarise what is pending now and cancel the timers (for shutdown)."""
        for kind in list(self._windows):
            window = self._windows[kind]
            if window.summary is not None and window.summary.active():
                window.summary.cancel()
            self._close(kind)

    def _close(self, kind: str) -> None:
        window = self._windows.pop(kind)
        if window.suppressed:
            self.log.warn(
                "{count} more {fault!r} faults in the last {interval:g} s were "
                "not logged one by one",
                fault=kind,
                count=window.suppressed,
                interval=self.interval,
            )
