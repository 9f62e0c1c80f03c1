# -*- test-case-name: tests.test_gateway_allowlist,tests.test_gateway_models -*-
"""A file the gateway re-reads when it changes: ``--allow-imeis``, ``--models``."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

Parsed = TypeVar("Parsed")


class FileWatch:
    """Reads *path*, and once started checks every *interval* seconds whether
    its modification time or size changed since the last good :meth:`read`:
    then it calls *changed*; when the file cannot even be looked at,
    *unreadable*."""

    def __init__(
        self,
        path: Path,
        clock: IReactorTime,
        interval: float,
        changed: Callable[[], None],
        unreadable: Callable[[OSError], None],
    ) -> None:
        self.path = path
        self._changed = changed
        self._unreadable = unreadable
        self._stamp: tuple[int, int] | None = None
        self._poll = LoopingCall(self._check)
        self._poll.clock = clock
        self._interval = interval

    def read(self, parse: Callable[[str], Parsed]) -> Parsed:
        """What *parse* makes of the file's text; only once it succeeded is
        this version of the file the one in use (a broken one is read again
        at the next check).

        :raises OSError, UnicodeDecodeError: when it cannot be read; and
            whatever *parse* raises.
        """
        status = os.stat(self.path)
        parsed = parse(self.path.read_text(encoding="utf-8"))
        self._stamp = (status.st_mtime_ns, status.st_size)
        return parsed

    def start(self) -> None:
        self._poll.start(self._interval, now=False)

    def stop(self) -> None:
        if self._poll.running:
            self._poll.stop()

    def _check(self) -> None:
        try:
            status = os.stat(self.path)
        except OSError as error:
            self._unreadable(error)
            return
        if (status.st_mtime_ns, status.st_size) != self._stamp:
            self._changed()
