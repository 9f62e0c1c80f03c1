# -*- test-case-name: tests.test_cluster_worker_log -*-
"""A worker's log: written by the worker to a pipe, relayed by its parent.

A worker writes its log as text lines to its standard output, each line's
source in brackets prefixed with the worker's number, without a time; its
parent reads the worker's standard output and standard error and logs each
line through its own log observers (``--logfile``, the journal), which
stamp it, so the lines of every worker land where the parent's do.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import suppress
from typing import IO, Any

from twisted.logger import (
    FileLogObserver,
    InvalidLogLevelError,
    LogEvent,
    Logger,
    LogLevel,
    eventAsText,
)

LONGEST_LINE = 64 * 1024
"""Bytes of one line a parent holds for each stream of a worker; a longer
line is logged in pieces of this size."""

_TAGGED = re.compile(r"\[(w\d+ [^\]]*)\] (.*)", re.DOTALL)
"""A line as :func:`worker_log_observer` writes it: ``[source] text``."""


def worker_log_observer(number: int) -> Callable[[IO[Any]], FileLogObserver]:
    """A worker's log as text, each line's source in brackets prefixed with
    the worker's number (``[w2 teltotwist.gateway.tcp...#info]``), so that
    the lines of all workers, in one log, say whose they are. No time: the
    parent's log stamps each line as it relays it."""

    def source(event: LogEvent) -> str:
        system = event.get("log_system")
        if system is None:
            level = event.get("log_level")
            system = f"{event.get('log_namespace', '-')}#{getattr(level, 'name', '-')}"
        return f"w{number} {system}"

    def line(event: LogEvent) -> str | None:
        text = eventAsText(
            {**event, "log_system": source(event)}, includeTimestamp=False
        )
        return text.replace("\n", "\n\t") + "\n" if text else None

    def observer(output: IO[Any]) -> FileLogObserver:
        return FileLogObserver(output, line)

    return observer


class WorkerLines:
    """One stream of a worker (its standard output or error), split into
    lines, each logged to *log* with the source and level the worker gave
    it, else with *system* and *level*. Empty lines are dropped."""

    def __init__(self, log: Logger, system: str, level: LogLevel) -> None:
        self._log = log
        self._system = system
        self._level = level
        self._partial = b""

    def feed(self, data: bytes) -> None:
        """Log each line *data* ends; hold the rest, up to :data:`LONGEST_LINE`."""
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            self._emit_pieces(line)
        whole = len(self._partial) - len(self._partial) % LONGEST_LINE
        self._emit_pieces(self._partial[:whole])
        self._partial = self._partial[whole:]

    def flush(self) -> None:
        """Log the unfinished line, if any: the stream ended."""
        self._emit_pieces(self._partial)
        self._partial = b""

    def _emit_pieces(self, line: bytes) -> None:
        for start in range(0, len(line), LONGEST_LINE):
            self._emit(line[start : start + LONGEST_LINE].decode("utf-8", "replace"))

    def _emit(self, line: str) -> None:
        system, level, text = self._system, self._level, line
        tagged = _TAGGED.fullmatch(line)
        if tagged is not None:
            system, text = tagged.groups()
            _, tag, name = system.rpartition("#")
            if tag:
                with suppress(InvalidLogLevelError):
                    level = LogLevel.levelWithName(name)
        self._log.emit(level, "{text}", text=text, log_system=system)
