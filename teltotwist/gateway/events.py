# -*- test-case-name: tests.test_gateway_events -*-
"""What the data path reports to observers (metrics, a live view), best effort.

The TCP and UDP adapters, the dispatcher and the command center call a
:class:`DataPathEvents`; it passes each event to every observer, and an
observer that raises is logged and skipped, so a broken tap can never delay
or break an ACK. Every label is a small fixed set (an enum or a sink's name):
never an IMEI.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from twisted.logger import Logger

from teltotwist.codec import Codec

if TYPE_CHECKING:  # the command center reports to these events
    from teltotwist.gateway.commands import CommandStatus

_log = Logger()


class Transport(enum.StrEnum):
    """How a tracker reached the gateway."""

    TCP = "tcp"
    UDP = "udp"


class LoginResult(enum.StrEnum):
    """How a login (TCP) or a datagram's IMEI (UDP) was judged."""

    ACCEPTED = "accepted"
    IMPLAUSIBLE = "implausible"
    """Not an identifier of ``--imei-length``."""
    NOT_ALLOWED = "not_allowed"
    """Not on ``--allow-imeis``."""
    DUPLICATE = "duplicate"
    """Refused by ``--duplicate-login reject``."""


class Rejection(enum.StrEnum):
    """Why input from a tracker was turned away unacknowledged."""

    FRAMING = "framing"
    """Unframeable TCP input: a bad preamble, login or size."""
    CRC = "crc"
    """A frame whose CRC or data field length is wrong."""
    TIMEOUT = "timeout"
    """No login, an idle connection, or a frame not finished in time."""
    BUDGET = "budget"
    """Closed to keep unfinished frames within ``--max-buffered-bytes``."""
    UNDECODABLE = "undecodable"
    """A UDP datagram that does not decode."""
    OVER_CAP = "over_cap"
    """A UDP datagram over ``--udp-max-in-flight`` (in all or per IMEI)."""


class DataPathObserver(Protocol):
    """Receives the data path's events; each method must return quickly."""

    def connection_opened(self, transport: Transport) -> None:
        """A TCP connection was accepted (UDP has no connections: a gauge of
        UDP trackers reads :class:`~teltotwist.gateway.registry.TrackerRegistry`)."""

    def connection_closed(self, transport: Transport) -> None:
        """A TCP connection ended."""

    def login(self, transport: Transport, result: LoginResult) -> None:
        """A login (or a datagram's IMEI) was judged."""

    def records_acknowledged(
        self, transport: Transport, codec: Codec | None, records: int, latency: float
    ) -> None:
        """A packet was ACKed: *records* records of *codec* (None for an
        unparsed frame), *latency* seconds after it was complete."""

    def rejected(self, transport: Transport, reason: Rejection) -> None:
        """Input was turned away without an ACK."""

    def sink_delivered(self, sink: str, seconds: float, accepted: bool) -> None:
        """*sink* answered one delivery after *seconds*: accepted or not."""

    def command(self, status: CommandStatus) -> None:
        """A command to a tracker entered *status*."""


class DataPathEvents:
    """Passes each event to every observer; an observer that raises is
    logged and the others still get the event."""

    def __init__(self) -> None:
        self._observers: list[DataPathObserver] = []

    def add(self, observer: DataPathObserver) -> None:
        """Report every later event to *observer* too."""
        self._observers.append(observer)

    def connection_opened(self, transport: Transport) -> None:
        for observer in self._observers:
            _safely(observer.connection_opened, transport)

    def connection_closed(self, transport: Transport) -> None:
        for observer in self._observers:
            _safely(observer.connection_closed, transport)

    def login(self, transport: Transport, result: LoginResult) -> None:
        for observer in self._observers:
            _safely(observer.login, transport, result)

    def records_acknowledged(
        self, transport: Transport, codec: Codec | None, records: int, latency: float
    ) -> None:
        for observer in self._observers:
            _safely(observer.records_acknowledged, transport, codec, records, latency)

    def rejected(self, transport: Transport, reason: Rejection) -> None:
        for observer in self._observers:
            _safely(observer.rejected, transport, reason)

    def sink_delivered(self, sink: str, seconds: float, accepted: bool) -> None:
        for observer in self._observers:
            _safely(observer.sink_delivered, sink, seconds, accepted)

    def command(self, status: CommandStatus) -> None:
        for observer in self._observers:
            _safely(observer.command, status)


def _safely(method: Callable[..., None], *arguments: object) -> None:
    try:
        method(*arguments)
    except Exception:
        _log.failure("{observer!r} failed; the data path goes on", observer=method)
