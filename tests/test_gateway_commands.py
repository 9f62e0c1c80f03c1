"""The command center with the TCP protocol in memory: what a tracker gets,
and what becomes of each command."""

from __future__ import annotations

import attrs
import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IProtocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from teltotwist.codec import (
    Codec,
    CommandFrame,
    CommandMessage,
    CommandType,
    encode_frame,
    encode_login,
    tcp_ack,
)
from teltotwist.gateway.commands import (
    Command,
    CommandCenter,
    CommandLimits,
    CommandStatus,
    NotConnectedError,
    QueueFullError,
)
from teltotwist.gateway.dispatch import Dispatcher
from teltotwist.gateway.limits import DuplicateLogin, Limits
from teltotwist.gateway.tcp import TeltonikaTcpFactory
from teltotwist.testing import FakeTracker, RecordingSink
from tests.vectors import by_id

IMEI = "356307042441013"
CODEC8 = by_id("wiki-c8-tcp-1").data
GETINFO_COMMAND = by_id("wiki-c12-getinfo-cmd").data
GETINFO_RESPONSE = by_id("wiki-c12-getinfo-resp").data
GETIO_COMMAND = by_id("wiki-c12-getio-cmd").data
GETIO_RESPONSE = by_id("wiki-c12-getio-resp").data
LIMITS = Limits(command_quiet=5)
ANSWER_TIMEOUT = 60.0
GRACE = CommandLimits().late_answer_grace


def codec14(kind: CommandType, text: bytes = b"") -> bytes:
    message = CommandMessage(kind, text, imei=IMEI)
    return encode_frame(CommandFrame(Codec.CODEC14, (message,)))


@pytest.fixture
def clock() -> MemoryReactorClock:
    return MemoryReactorClock()


@pytest.fixture
def results() -> list[Command]:
    return []


@pytest.fixture
def center(clock: MemoryReactorClock, results: list[Command]) -> CommandCenter:
    limits = CommandLimits(answer_timeout=ANSWER_TIMEOUT, max_queued_per_imei=2)
    return CommandCenter(clock, limits=limits, results=results.append)


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def factory(
    clock: MemoryReactorClock, center: CommandCenter, sink: RecordingSink
) -> TeltonikaTcpFactory:
    dispatcher = Dispatcher([sink], LIMITS.sink_timeout, clock)
    return TeltonikaTcpFactory(dispatcher, clock, limits=LIMITS, commands=center)


def status_of(command: Command) -> CommandStatus:
    """The status now (spares mypy from narrowing across calls)."""
    return command.status


def connected(factory: TeltonikaTcpFactory) -> FakeTracker:
    """A tracker logged in whose first packet was ACKed."""
    tracker = FakeTracker(factory, IMEI)
    assert tracker.login() == b"\x01"
    assert tracker.send(CODEC8) == tcp_ack(1)
    return tracker


def test_a_command_is_answered(
    factory: TeltonikaTcpFactory, center: CommandCenter, results: list[Command]
) -> None:
    tracker = connected(factory)

    command = center.submit(IMEI, text="getinfo")
    outcomes: list[Command] = []
    center.outcome(command.id).addCallback(outcomes.append)

    assert tracker.replies() == GETINFO_COMMAND
    assert status_of(command) is CommandStatus.SENT
    assert tracker.send(GETINFO_RESPONSE) == b""
    assert status_of(command) is CommandStatus.ANSWERED
    assert outcomes == [command]
    assert command.to_json()["response"].startswith("INI:2019/7/22")
    assert results == [command]


def test_nothing_is_written_before_the_first_ack_or_a_quiet_spell(
    factory: TeltonikaTcpFactory, center: CommandCenter, clock: MemoryReactorClock
) -> None:
    tracker = FakeTracker(factory, IMEI)
    tracker.login()
    command = center.submit(IMEI, text="getinfo")

    clock.advance(4)
    assert tracker.replies() == b""
    clock.advance(1)

    assert tracker.replies() == GETINFO_COMMAND
    assert status_of(command) is CommandStatus.SENT


def test_a_command_while_a_packet_is_in_flight_waits_for_its_ack(
    factory: TeltonikaTcpFactory, center: CommandCenter, sink: RecordingSink
) -> None:
    tracker = connected(factory)
    sink.hold()
    assert tracker.send(CODEC8) == b""

    command = center.submit(IMEI, text="getinfo")
    assert tracker.replies() == b""
    assert status_of(command) is CommandStatus.QUEUED
    sink.release()

    assert tracker.replies() == tcp_ack(1) + GETINFO_COMMAND


def test_queued_then_delivered_at_the_next_login(
    factory: TeltonikaTcpFactory, center: CommandCenter
) -> None:
    command = center.submit(IMEI, text="getinfo", ttl=3600)
    assert status_of(command) is CommandStatus.QUEUED

    tracker = FakeTracker(factory, IMEI)
    tracker.login()
    assert tracker.send(CODEC8) == tcp_ack(1) + GETINFO_COMMAND
    tracker.send(GETINFO_RESPONSE)

    assert status_of(command) is CommandStatus.ANSWERED


def test_without_a_ttl_a_tracker_not_connected_is_refused(
    center: CommandCenter,
) -> None:
    with pytest.raises(NotConnectedError):
        center.submit(IMEI, text="getinfo")


def test_a_queued_command_expires_when_its_ttl_is_over(
    center: CommandCenter, clock: MemoryReactorClock, results: list[Command]
) -> None:
    command = center.submit(IMEI, text="getinfo", ttl=60)

    clock.advance(60)

    assert status_of(command) is CommandStatus.EXPIRED
    assert results == [command]


def test_no_answer_times_out_and_the_next_command_goes(
    factory: TeltonikaTcpFactory, center: CommandCenter, clock: MemoryReactorClock
) -> None:
    tracker = connected(factory)
    first = center.submit(IMEI, text="getinfo")
    second = center.submit(IMEI, text="getio")
    assert tracker.replies() == GETINFO_COMMAND

    clock.advance(ANSWER_TIMEOUT)
    assert status_of(first) is CommandStatus.TIMED_OUT
    assert tracker.replies() == b""
    clock.advance(GRACE)

    assert tracker.replies() == GETIO_COMMAND
    assert status_of(second) is CommandStatus.SENT


def test_a_late_answer_is_dropped_not_taken_for_the_next_commands(
    factory: TeltonikaTcpFactory, center: CommandCenter, clock: MemoryReactorClock
) -> None:
    tracker = connected(factory)
    first = center.submit(IMEI, text="getinfo")
    second = center.submit(IMEI, text="getio")
    assert tracker.replies() == GETINFO_COMMAND
    clock.advance(ANSWER_TIMEOUT)

    assert tracker.send(GETINFO_RESPONSE) == GETIO_COMMAND
    assert (first.status, first.response) == (CommandStatus.TIMED_OUT, None)
    assert status_of(second) is CommandStatus.SENT
    tracker.send(GETIO_RESPONSE)
    assert second.to_json()["response"].startswith("DI1:1")


def test_after_the_grace_a_late_answer_is_an_unsolicited_message(
    factory: TeltonikaTcpFactory, center: CommandCenter, clock: MemoryReactorClock
) -> None:
    tracker = connected(factory)
    command = center.submit(IMEI, text="getinfo")
    clock.advance(ANSWER_TIMEOUT)
    clock.advance(GRACE)
    second = center.submit(IMEI, text="getio")
    assert tracker.replies() == GETINFO_COMMAND + GETIO_COMMAND

    tracker.send(GETIO_RESPONSE)

    assert status_of(command) is CommandStatus.TIMED_OUT
    assert status_of(second) is CommandStatus.ANSWERED


def test_stopping_fails_a_sent_command_and_keeps_the_queued_ones(
    factory: TeltonikaTcpFactory,
    center: CommandCenter,
    clock: MemoryReactorClock,
    results: list[Command],
) -> None:
    tracker = connected(factory)
    clock.advance(0)  # the turn that ACKed the packet ends
    sent = center.submit(IMEI, text="getinfo")
    queued = center.submit(IMEI, text="getio")
    assert tracker.replies() == GETINFO_COMMAND

    center.stop()
    tracker.disconnect()

    assert (sent.status, sent.error) == (
        CommandStatus.FAILED,
        "the gateway stopped before the answer; not sent again",
    )
    assert status_of(queued) is CommandStatus.QUEUED
    assert results == [sent]
    assert clock.getDelayedCalls() == []
    with pytest.raises(NotConnectedError):
        center.submit(IMEI, text="getver", ttl=60)


def test_two_commands_go_in_order_each_after_the_previous_answer(
    factory: TeltonikaTcpFactory, center: CommandCenter
) -> None:
    tracker = connected(factory)
    first = center.submit(IMEI, text="getinfo")
    second = center.submit(IMEI, text="getio")

    assert tracker.replies() == GETINFO_COMMAND
    assert tracker.send(GETINFO_RESPONSE) == GETIO_COMMAND
    tracker.send(GETIO_RESPONSE)

    assert (first.status, second.status) == (CommandStatus.ANSWERED,) * 2
    assert second.to_json()["response"].startswith("DI1:1")
    assert center.recent(IMEI) == [second, first]


def test_connection_lost_after_sending_fails_and_is_not_sent_again(
    factory: TeltonikaTcpFactory, center: CommandCenter
) -> None:
    tracker = connected(factory)
    command = center.submit(IMEI, text="getinfo", ttl=3600)
    tracker.disconnect()

    assert status_of(command) is CommandStatus.FAILED
    again = connected(factory)
    assert again.replies() == b""


def replaced_later(factory: TeltonikaTcpFactory) -> tuple[StringTransport, IProtocol]:
    """A tracker logged in on a bare transport that sent one packet: when the
    gateway closes it, its ``connectionLost`` comes only when the test
    delivers it, as a reactor does, not within the login that replaces it."""
    transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.10", 40_000))
    protocol: IProtocol | None = factory.buildProtocol(transport.getPeer())
    assert protocol is not None
    protocol.makeConnection(transport)
    protocol.dataReceived(encode_login(IMEI) + CODEC8)
    return transport, protocol


@pytest.mark.parametrize(
    ("limits", "quiet"),
    [
        (attrs.evolve(LIMITS, duplicate_login=DuplicateLogin.REPLACE), 0),
        (attrs.evolve(LIMITS, duplicate_login_window=30), 30),
    ],
    ids=["replace", "reject-after-the-window"],
)
def test_a_new_login_fails_the_command_written_to_the_replaced_connection(
    clock: MemoryReactorClock,
    center: CommandCenter,
    results: list[Command],
    limits: Limits,
    quiet: float,
) -> None:
    dispatcher = Dispatcher([RecordingSink()], limits.sink_timeout, clock)
    factory = TeltonikaTcpFactory(dispatcher, clock, limits=limits, commands=center)
    old, protocol = replaced_later(factory)
    written = center.submit(IMEI, text="getinfo")
    following = center.submit(IMEI, text="getio")
    assert old.value() == b"\x01" + tcp_ack(1) + GETINFO_COMMAND
    clock.advance(quiet)

    new = FakeTracker(factory, IMEI)
    assert new.login() == b"\x01"

    assert old.disconnecting
    assert (written.status, written.error) == (
        CommandStatus.FAILED,
        "the tracker logged in again before the answer; not sent again",
    )
    protocol.connectionLost(Failure(ConnectionDone()))
    assert new.send(CODEC8) == tcp_ack(1) + GETIO_COMMAND
    new.send(GETIO_RESPONSE)
    assert status_of(following) is CommandStatus.ANSWERED
    clock.advance(ANSWER_TIMEOUT)
    assert status_of(written) is CommandStatus.FAILED
    assert results == [written, following]


def test_a_command_not_yet_written_to_a_replaced_connection_goes_on_the_new_one(
    clock: MemoryReactorClock, center: CommandCenter, sink: RecordingSink
) -> None:
    limits = attrs.evolve(LIMITS, duplicate_login=DuplicateLogin.REPLACE)
    dispatcher = Dispatcher([sink], limits.sink_timeout, clock)
    factory = TeltonikaTcpFactory(dispatcher, clock, limits=limits, commands=center)
    old, protocol = replaced_later(factory)
    sink.hold()
    protocol.dataReceived(CODEC8)
    command = center.submit(IMEI, text="getinfo")
    assert old.value() == b"\x01" + tcp_ack(1)

    new = FakeTracker(factory, IMEI)
    new.login()
    protocol.connectionLost(Failure(ConnectionDone()))
    new.send(CODEC8)
    sink.release_all()

    assert old.value() == b"\x01" + tcp_ack(1)
    assert new.replies() == tcp_ack(1) + GETINFO_COMMAND
    assert status_of(command) is CommandStatus.SENT


class TakingBack:
    """A cluster's presence, as far as commands go: when a tracker leaves,
    it takes the commands still queued for it."""

    def __init__(self, center: CommandCenter) -> None:
        self.center = center
        self.taken: list[Command] = []

    def claim(self, imei: str, peer: str) -> Deferred[str | None]:
        return succeed(None)

    def logged_in(self, imei: str) -> None:
        pass

    def logged_out(self, imei: str) -> None:
        self.taken = self.center.take_queued(imei)

    def claim_dropped(self, imei: str) -> None:
        pass


def test_a_command_not_yet_written_is_queued_again_before_the_tracker_leaves(
    factory: TeltonikaTcpFactory, center: CommandCenter, sink: RecordingSink
) -> None:
    factory.presence = presence = TakingBack(center)
    tracker = connected(factory)
    sink.hold()
    tracker.send(CODEC8)
    handed, following = (center.submit(IMEI, text=t, ttl=60) for t in ("a", "b"))

    tracker.disconnect()

    assert presence.taken == [handed, following]
    assert center.get(handed.id) is None
    center.put_back(presence.taken)
    sink.accept()
    again = FakeTracker(factory, IMEI)
    again.login()
    assert again.send(CODEC8) == tcp_ack(1) + encode_frame(handed.frame())
    assert center.recent(IMEI) == [following, handed]


def test_a_codec_14_nack_is_not_executed(
    factory: TeltonikaTcpFactory, center: CommandCenter
) -> None:
    tracker = connected(factory)
    command = center.submit(IMEI, text="getver", codec=14)

    assert tracker.replies() == codec14(CommandType.COMMAND, b"getver")
    tracker.send(codec14(CommandType.NACK))

    assert status_of(command) is CommandStatus.NOT_EXECUTED
    assert command.to_json()["codec"] == 14


def test_the_queue_per_tracker_is_bounded(center: CommandCenter) -> None:
    center.submit(IMEI, text="getinfo", ttl=60)
    center.submit(IMEI, text="getio", ttl=60)

    with pytest.raises(QueueFullError):
        center.submit(IMEI, text="getver", ttl=60)


@pytest.mark.parametrize(
    ("imei", "text", "codec", "ttl"),
    [
        ("12345", "getinfo", 12, 60),
        (IMEI, "get\ninfo", 12, 60),
        (IMEI, "getinfo", 13, 60),
        (IMEI, "getinfo", 12, -1),
        (IMEI, "x" * 1025, 12, 60),
    ],
)
def test_bad_commands_are_refused_with_the_reason(
    center: CommandCenter, imei: str, text: str, codec: int, ttl: float
) -> None:
    with pytest.raises(ValueError):
        center.submit(imei, text=text, codec=codec, ttl=ttl)


def test_the_command_object(center: CommandCenter) -> None:
    command = center.submit(IMEI, payload=b"\x01\x02", ttl=60)

    assert command.to_json() == {
        "id": command.id,
        "imei": IMEI,
        "codec": 12,
        "hex": "0102",
        "status": "queued",
        "created_at": "1970-01-01T00:00:00.000Z",
        "sent_at": None,
        "answered_at": None,
        "response": None,
        "response_hex": None,
        "error": None,
    }
    assert center.get(command.id) is command
