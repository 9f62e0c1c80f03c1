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
from tests.observer import RecordingObserver


class Broken(RecordingObserver):
    def login(self, transport: Transport, result: LoginResult) -> None:
        raise RuntimeError("a broken tap")


def test_every_event_reaches_every_observer_in_order() -> None:
    events = DataPathEvents()
    first, second = RecordingObserver(), RecordingObserver()
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
            ("connection_opened", Transport.TCP),
            ("login", Transport.TCP, LoginResult.ACCEPTED),
            ("records_acknowledged", Transport.TCP, Codec.CODEC8E, 2, 0.004),
            ("rejected", Transport.UDP, Rejection.OVER_CAP),
            ("sink_delivered", "file:/tmp/r.jsonl", 0.002, True),
            ("command", CommandStatus.ANSWERED),
            ("connection_closed", Transport.TCP),
        ]
    )


def test_an_observer_that_raises_is_logged_and_the_others_still_hear() -> None:
    events = DataPathEvents()
    broken, healthy = Broken(), RecordingObserver()
    events.add(broken)
    events.add(healthy)

    with capturedLogs() as logged:
        events.login(Transport.UDP, LoginResult.NOT_ALLOWED)

    assert healthy.seen == [("login", Transport.UDP, LoginResult.NOT_ALLOWED)]
    [failure] = [event for event in logged if event["log_level"] == LogLevel.critical]
    assert "the data path goes on" in failure["log_format"]
