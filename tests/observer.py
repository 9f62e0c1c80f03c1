"""An observer of the data path's events that keeps them, for the tests."""

from __future__ import annotations

from teltotwist.codec import Codec
from teltotwist.gateway.commands import CommandStatus
from teltotwist.gateway.events import LoginResult, Rejection, Transport


class RecordingObserver:
    """Keeps each event as a tuple: its name, then its arguments."""

    def __init__(self) -> None:
        self.seen: list[tuple[object, ...]] = []

    def of(self, name: str) -> list[tuple[object, ...]]:
        """The arguments of each *name* event, in order."""
        return [event[1:] for event in self.seen if event[0] == name]

    def connection_opened(self, transport: Transport) -> None:
        self.seen.append(("connection_opened", transport))

    def connection_closed(self, transport: Transport) -> None:
        self.seen.append(("connection_closed", transport))

    def login(self, transport: Transport, result: LoginResult) -> None:
        self.seen.append(("login", transport, result))

    def records_acknowledged(
        self, transport: Transport, codec: Codec | None, records: int, latency: float
    ) -> None:
        self.seen.append(("records_acknowledged", transport, codec, records, latency))

    def rejected(self, transport: Transport, reason: Rejection) -> None:
        self.seen.append(("rejected", transport, reason))

    def sink_delivered(self, sink: str, seconds: float, accepted: bool) -> None:
        self.seen.append(("sink_delivered", sink, seconds, accepted))

    def command(self, status: CommandStatus) -> None:
        self.seen.append(("command", status))
