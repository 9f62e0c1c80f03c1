# -*- test-case-name: tests.test_load_cli -*-
"""The live progress line of a load run."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TextIO

import attrs
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

TTY_PERIOD = 1.0
PLAIN_PERIOD = 5.0


@attrs.frozen
class Snapshot:
    """The counters of a running load, at one moment."""

    devices: int = 0
    connected: int = 0
    records_acked: int = 0
    reconnects: int = 0
    errors: int = 0

    def to_json(self) -> dict[str, Any]:
        """A JSON object, for a worker process to report."""
        return attrs.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Snapshot:
        """The snapshot :meth:`to_json` wrote."""
        return cls(**{name: int(data[name]) for name in attrs.fields_dict(cls)})

    @classmethod
    def total(cls, parts: Iterable[Snapshot]) -> Snapshot:
        """The sum of side-by-side runs' snapshots."""
        parts = list(parts)
        return cls(
            devices=sum(part.devices for part in parts),
            connected=sum(part.connected for part in parts),
            records_acked=sum(part.records_acked for part in parts),
            reconnects=sum(part.reconnects for part in parts),
            errors=sum(part.errors for part in parts),
        )


def progress_line(snapshot: Snapshot, elapsed: float, rate: float) -> str:
    """*snapshot* after *elapsed* seconds, at *rate* records/s now."""
    return (
        f"{elapsed:5.0f} s  connected {snapshot.connected:,}/{snapshot.devices:,}  "
        f"ACKed {snapshot.records_acked:,} records  {rate:,.0f} records/s  "
        f"reconnects {snapshot.reconnects:,}  errors {snapshot.errors:,}"
    )


class Progress:
    """Writes the progress line of *source* to *stream*: redrawn every
    second on a terminal, a new line every 5 s otherwise."""

    def __init__(
        self, source: Callable[[], Snapshot], clock: IReactorTime, stream: TextIO
    ) -> None:
        self._source = source
        self._clock = clock
        self._stream = stream
        self._tty = stream.isatty()
        self._started = 0.0
        self._last = (0.0, 0)
        self._loop = LoopingCall(self._tick)
        self._loop.clock = clock

    def start(self) -> None:
        """Start writing."""
        self._started = self._clock.seconds()
        self._last = (self._started, 0)
        self._loop.start(TTY_PERIOD if self._tty else PLAIN_PERIOD, now=False)

    def stop(self) -> None:
        """Stop writing, ending the line on a terminal."""
        if self._loop.running:
            self._loop.stop()
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()

    def _tick(self) -> None:
        snapshot = self._source()
        now, acked = self._clock.seconds(), snapshot.records_acked
        then, before = self._last
        self._last = (now, acked)
        rate = (acked - before) / (now - then) if now > then else 0.0
        line = progress_line(snapshot, now - self._started, rate)
        self._stream.write(f"\r\x1b[K{line}" if self._tty else f"{line}\n")
        self._stream.flush()
