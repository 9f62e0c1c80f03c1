"""The data path's events reach every observer; a failing one breaks nothing."""

from __future__ import annotations

from twisted.logger import LogLevel, capturedLogs

from teltotwist.codec import Codec
from teltotwist.gateway.commands import CommandStatus
from teltotwist.gateway.events import (
    DataPathEvents,
    LoginResult,
    Rejection,
    Transport,
)


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[object, ...]] = []

    def connection_opened(self, transport: Transport) -> None:
        self.seen.append(("opened", transport))

    def connection_closed(self, transport: Transport) -> None:
        self.seen.append(("closed", transport))

    def login(self, transport: Transport, result: LoginResult) -> None:
        self.seen.append(("login", transport, result))

    def records_acknowledged(
        self, transport: Transport, codec: Codec | None, records: int, latency: float
    ) -> None:
        self.seen.append(("acked", transport, codec, records, latency))

    def rejected(self, transport: Transport, reason: Rejection) -> None:
        self.seen.append(("rejected", transport, reason))

    def sink_delivered(self, sink: str, seconds: float, accepted: bool) -> None:
        self.seen.append(("sink", sink, seconds, accepted))

    def command(self, status: CommandStatus) -> None:
        self.seen.append(("command", status))


class Broken(Recorder):
    def login(self, transport: Transport, result: LoginResult) -> None:
        raise RuntimeError("a broken tap")


def test_every_event_reaches_every_observer_in_order() -> None:
    events = DataPathEvents()
    first, second = Recorder(), Recorder()
    events.add(first)
    events.add(second)

    events.connection_opened(Transport.TCP)
    events.login(Transport.TCP, LoginResult.ACCEPTED)
    events.records_acknowledged(Transport.TCP, Codec.CODEC8E, 2, 0.004)
    events.rejected(Transport.UDP, Rejection.OVER_CAP)
    events.sink_delivered("file:/tmp/r.jsonl", 0.002, True)
    events.command(CommandStatus.ANSWERED)
    events.connection_closed(Transport.TCP)

    assert (
        first.seen
        == second.seen
        == [
            ("opened", Transport.TCP),
            ("login", Transport.TCP, LoginResult.ACCEPTED),
            ("acked", Transport.TCP, Codec.CODEC8E, 2, 0.004),
            ("rejected", Transport.UDP, Rejection.OVER_CAP),
            ("sink", "file:/tmp/r.jsonl", 0.002, True),
            ("command", CommandStatus.ANSWERED),
            ("closed", Transport.TCP),
        ]
    )


def test_an_observer_that_raises_is_logged_and_the_others_still_hear() -> None:
    events = DataPathEvents()
    broken, healthy = Broken(), Recorder()
    events.add(broken)
    events.add(healthy)

    with capturedLogs() as logged:
        events.login(Transport.UDP, LoginResult.NOT_ALLOWED)

    assert healthy.seen == [("login", Transport.UDP, LoginResult.NOT_ALLOWED)]
    [failure] = [event for event in logged if event["log_level"] == LogLevel.critical]
    assert "the data path goes on" in failure["log_format"]
