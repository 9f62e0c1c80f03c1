# -*- test-case-name: tests.test_gateway_allowlist -*-
"""``--allow-imeis FILE``: which trackers may log in, re-read when it changes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from teltotwist.codec.imei import MAX_LOGIN_LENGTH, is_digits
from teltotwist.gateway.filewatch import FileWatch


class AllowlistError(ValueError):
    """An allowlist file that cannot be read or holds a line that is no IMEI."""


def parse_allowlist(text: str, source: str) -> frozenset[str]:
    """The IMEIs in *text*: one per line; blank lines and ``#`` comments skipped."""
    imeis = set()
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if not (is_digits(entry) and len(entry) <= MAX_LOGIN_LENGTH):
            raise AllowlistError(f"{source}:{number}: {entry!r} is not an IMEI")
        imeis.add(entry)
    return frozenset(imeis)


class ImeiAllowlist(Service):
    """The IMEIs of an allowlist file, reloaded when the file changes.

    As a service it checks the file's modification time every
    *check_interval* seconds; :meth:`reload` (wired to SIGHUP by the plugin)
    re-reads it at once. A reload that fails keeps the previous list; one
    that succeeds calls every :meth:`on_reload` callback (the gateway closes
    the sessions of IMEIs no longer allowed).
    """

    log = Logger()

    def __init__(
        self, path: Path, clock: IReactorTime, check_interval: float = 5.0
    ) -> None:
        self.path = path
        self._watch = FileWatch(path, clock, check_interval, self.reload, self._lost)
        self._imeis: frozenset[str] = frozenset()
        self._reloaded: list[Callable[[], None]] = []
        self._load()

    def __call__(self, imei: str) -> bool:
        """Whether *imei* may log in."""
        return imei in self._imeis

    def __len__(self) -> int:
        return len(self._imeis)

    def on_reload(self, callback: Callable[[], None]) -> None:
        """Call *callback* after every reload that succeeded."""
        self._reloaded.append(callback)

    def _load(self) -> None:
        try:
            self._imeis = self._watch.read(self._parse)
        except (OSError, UnicodeDecodeError) as error:
            raise AllowlistError(
                f"cannot read the allowlist {self.path}: {error}"
            ) from None

    def _parse(self, text: str) -> frozenset[str]:
        return parse_allowlist(text, str(self.path))

    def reload(self) -> None:
        """Re-read the file now; on failure log why and keep the current list."""
        try:
            self._load()
        except AllowlistError as error:
            self.log.error(
                "Keeping {count} allowed IMEIs: {error}", count=len(self), error=error
            )
            return
        self.log.info(
            "Allowlist {path} loaded: {count} IMEIs", path=self.path, count=len(self)
        )
        for callback in self._reloaded:
            callback()

    def _lost(self, error: OSError) -> None:
        self.log.error(
            "Allowlist {path} unreadable: {error}", path=self.path, error=error
        )

    def startService(self) -> None:
        Service.startService(self)
        self._watch.start()

    def stopService(self) -> None:
        self._watch.stop()
        Service.stopService(self)
