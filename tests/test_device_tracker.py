"""The virtual tracker's protocol, in memory with a fake clock."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import (
    IProtocol,
    IProtocolFactory,
    IStreamClientEndpoint,
)
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from zope.interface import implementer

from teltotwist.codec import (
    AvlPacket,
    Codec,
    CommandFrame,
    CommandMessage,
    CommandType,
    decode_frame,
    encode_frame,
    tcp_ack,
)
from teltotwist.device import (
    DeviceEvent,
    EventKind,
    TrackerSettings,
    VirtualTracker,
)
from tests.vectors import by_id

IMEI = "356307042441013"
GETINFO = bytes.fromhex("000000000000000F0C010500000007676574696E666F0100004312")


@implementer(IStreamClientEndpoint)
class MemoryEndpoint:
    """Every connect() succeeds at once, onto a StringTransport."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.connections: list[tuple[float, IProtocol, StringTransport]] = []

    def connect(self, factory: IProtocolFactory) -> Deferred[IProtocol]:
        protocol = factory.buildProtocol(None)  # type: ignore[arg-type]
        assert protocol is not None
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.connections.append((self.clock.seconds(), protocol, transport))
        return succeed(protocol)

    @property
    def protocol(self) -> IProtocol:
        return self.connections[-1][1]

    def written(self) -> bytes:
        transport = self.connections[-1][2]
        data: bytes = transport.value()
        transport.clear()
        return data


class Harness:
    def __init__(
        self,
        imei: str = IMEI,
        *,
        recording: bool = True,
        held: bool = False,
        report_wire: bool = True,
        **settings: object,
    ) -> None:
        self.clock = Clock()
        self.clock.advance(1_795_000_000)
        self.endpoint = MemoryEndpoint(self.clock)
        self.events: list[DeviceEvent] = []
        self.login = len(imei).to_bytes(2, "big") + imei.encode()
        self.tracker = VirtualTracker(
            self.endpoint,
            self.clock,
            TrackerSettings(imei, **settings),  # type: ignore[arg-type]
            observer=self.events.append,
            report_wire=report_wire,
            rng=random.Random(7),
        )
        self.tracker.start(recording=recording, held=held)

    def kinds(self) -> list[EventKind]:
        return [
            event.kind
            for event in self.events
            if event.kind not in (EventKind.WROTE, EventKind.READ)
        ]

    def messages(self, kind: EventKind) -> list[str]:
        return [event.message for event in self.events if event.kind is kind]

    def log_in(self) -> bytes:
        """Accept the login; what the tracker wrote after the login frame."""
        assert self.endpoint.written() == self.login
        self.endpoint.protocol.dataReceived(b"\x01")
        return self.endpoint.written()


def test_rejected_login_retries_with_doubling_delays_up_to_the_cap() -> None:
    harness = Harness(backoff_initial=1.0, backoff_max=8.0)
    connections = harness.endpoint.connections
    for attempts in range(1, 7):
        harness.endpoint.protocol.dataReceived(b"\x00")
        while len(connections) == attempts:
            harness.clock.advance(0.5)

    starts = [start for start, _, _ in connections]
    assert [later - earlier for earlier, later in pairwise(starts)] == [
        1,
        2,
        4,
        8,
        8,
        8,
    ]
    assert all(transport.disconnecting for _, _, transport in connections[:-1])
    assert harness.kinds().count(EventKind.REJECTED) == 6
    delays = [event.delay for event in harness.events if event.delay is not None]
    assert delays == [1, 2, 4, 8, 8, 8]


def test_stop_and_wait_then_ack_with_latency() -> None:
    harness = Harness(
        records_per_packet=2, interval=10.0, ack_timeout=30.0, ping_interval=None
    )
    assert harness.log_in() == b""  # one record so far: no packet yet
    harness.clock.advance(5)
    packet = harness.endpoint.written()
    harness.clock.advance(4.75)
    harness.endpoint.protocol.dataReceived(tcp_ack(2))
    assert harness.endpoint.written() == b""  # no records: nothing to send
    harness.clock.pump([0.5] * 11)  # two more records

    first, second = decode_frame(packet), decode_frame(harness.endpoint.written())
    assert isinstance(first, AvlPacket) and isinstance(second, AvlPacket)
    assert [len(first.records), len(second.records)] == [2, 2]
    assert first.records[-1].timestamp_ms < second.records[0].timestamp_ms
    acked = [event for event in harness.events if event.kind is EventKind.ACKED]
    assert [(event.records, event.latency) for event in acked] == [(2, 4.75)]


def test_a_tracker_started_without_recording_records_only_when_told() -> None:
    harness = Harness(
        records_per_packet=2, interval=1.0, ping_interval=None, recording=False
    )
    assert harness.log_in() == b""
    harness.clock.advance(10)
    assert not harness.tracker.flash

    harness.tracker.record()
    assert harness.endpoint.written() == b""  # half a packet
    harness.tracker.record()

    packet = decode_frame(harness.endpoint.written())
    assert isinstance(packet, AvlPacket)
    assert len(packet.records) == 2


def test_records_can_be_stamped_ahead_of_time() -> None:
    harness = Harness(records_per_packet=2, ping_interval=None, recording=False)
    harness.log_in()
    now = harness.clock.seconds()

    harness.tracker.record(now + 0.5)
    harness.tracker.record(now + 1.0)

    packet = decode_frame(harness.endpoint.written())
    assert isinstance(packet, AvlPacket)
    stamps = [record.timestamp_ms for record in packet.records]
    assert stamps == [round(now * 1000) + 500, round(now * 1000) + 1000]


def test_a_packet_packed_ahead_goes_with_the_ack_and_later_records_wait() -> None:
    harness = Harness(records_per_packet=2, ping_interval=None, recording=False)
    harness.log_in()
    now = harness.clock.seconds()
    for offset in (0.1, 0.2, 0.3, 0.4, 0.5):
        harness.tracker.record(now + offset)
    first = decode_frame(harness.endpoint.written())

    harness.tracker.pack()  # while the first waits for its ACK
    harness.endpoint.protocol.dataReceived(tcp_ack(2))
    second = decode_frame(harness.endpoint.written())

    assert isinstance(first, AvlPacket) and isinstance(second, AvlPacket)
    stamps = [[record.timestamp_ms for record in p.records] for p in (first, second)]
    base = round(now * 1000)
    assert stamps == [[base + 100, base + 200], [base + 300, base + 400]]
    assert len(harness.tracker.flash) == 1


def test_a_late_reactor_does_not_thin_out_the_records() -> None:
    harness = Harness(records_per_packet=8, interval=4.0, ping_interval=None)

    harness.clock.advance(4.0)  # in one step, as a busy reactor would

    assert len(harness.tracker.flash) == 9  # the first at the start, then 8


def test_a_held_tracker_sends_a_packet_each_time_it_is_released() -> None:
    harness = Harness(records_per_packet=2, interval=1.0, ping_interval=None, held=True)
    assert harness.log_in() == b""
    harness.clock.pump([0.5, 0.5])  # three records: a packet is full
    assert harness.endpoint.written() == b""

    harness.tracker.release()
    first = decode_frame(harness.endpoint.written())
    harness.endpoint.protocol.dataReceived(tcp_ack(2))
    harness.tracker.release()  # before the next packet's records are in
    assert harness.endpoint.written() == b""
    harness.clock.advance(0.5)  # the record that fills it
    second = decode_frame(harness.endpoint.written())

    assert isinstance(first, AvlPacket) and isinstance(second, AvlPacket)
    assert [len(first.records), len(second.records)] == [2, 2]


@pytest.mark.parametrize("reply", [None, tcp_ack(3)], ids=["timeout", "wrong count"])
def test_missing_or_wrong_ack_closes_and_resends_the_same_bytes(
    reply: bytes | None,
) -> None:
    harness = Harness(ack_timeout=10.0, ping_interval=None)
    packet = harness.log_in()
    first = harness.endpoint.connections[0][2]
    if reply is None:
        harness.clock.advance(10)
    else:
        harness.endpoint.protocol.dataReceived(reply)
    assert first.disconnecting

    harness.clock.advance(1)  # the reconnect delay
    assert harness.log_in() == packet
    harness.endpoint.protocol.dataReceived(tcp_ack(1))

    assert harness.kinds().count(EventKind.RESEND) == 1
    assert harness.kinds().count(EventKind.ACKED) == 1


def test_an_acked_packet_never_times_out() -> None:
    harness = Harness(
        records_per_packet=1, ack_timeout=10.0, ping_interval=None, recording=False
    )
    harness.log_in()
    for _ in range(3):
        harness.tracker.record()
        harness.clock.advance(6)  # more than the ACK timeout in all
        harness.endpoint.protocol.dataReceived(tcp_ack(1))

    harness.clock.advance(60)

    assert harness.kinds().count(EventKind.ACKED) == 3
    assert EventKind.LINK_DOWN not in harness.kinds()
    assert harness.endpoint.connections[0][2].disconnecting is False


def test_lost_connection_reconnects_and_resends() -> None:
    harness = Harness(ping_interval=None)
    packet = harness.log_in()
    harness.endpoint.protocol.connectionLost(Failure(ConnectionError("gone")))

    harness.clock.advance(1)

    assert harness.log_in() == packet


def test_records_wait_in_flash_while_offline_and_the_oldest_are_overwritten() -> None:
    harness = Harness(interval=1.0, flash_capacity=5, ping_interval=None)
    harness.endpoint.protocol.dataReceived(b"\x00")
    harness.clock.pump([1.0] * 8)  # 9 records, offline until the reconnect

    assert len(harness.tracker.flash) <= 5
    assert EventKind.FLASH_FULL in harness.kinds()


def test_without_wire_reports_the_bytes_are_not_reported() -> None:
    harness = Harness(ping_interval=None, report_wire=False)

    harness.log_in()
    harness.endpoint.protocol.dataReceived(tcp_ack(1))

    assert harness.kinds() == [
        EventKind.CONNECTING,
        EventKind.LOGGED_IN,
        EventKind.SENT,
        EventKind.ACKED,
    ]
    assert len(harness.events) == 4


def test_pings_only_when_idle() -> None:
    harness = Harness(interval=100.0, ack_timeout=60.0, ping_interval=30.0)
    packet = harness.log_in()
    harness.clock.advance(30)
    assert harness.endpoint.written() == b""  # a packet is in flight
    harness.endpoint.protocol.dataReceived(tcp_ack(1))

    harness.clock.advance(30)

    assert packet
    assert harness.endpoint.written() == b"\xff"


def test_codec12_command_is_answered_after_the_delay_and_never_acked() -> None:
    harness = Harness(interval=100.0, ping_interval=None, answer_delay=(0.8, 0.8))
    harness.log_in()
    harness.endpoint.protocol.dataReceived(tcp_ack(1))

    harness.endpoint.protocol.dataReceived(GETINFO)
    harness.clock.advance(0.79)
    assert harness.endpoint.written() == b""
    harness.clock.advance(0.01)

    response = decode_frame(harness.endpoint.written())
    assert isinstance(response, CommandFrame)
    assert response.codec is Codec.CODEC12
    [message] = response.messages
    assert message.type == CommandType.RESPONSE
    assert message.text is not None and message.text.startswith("RTC:2026/11/18")
    assert EventKind.COMMAND in harness.kinds()


def test_setdigout_then_getio() -> None:
    harness = Harness(interval=100.0, ping_interval=None, answer_delay=(0, 0))
    harness.log_in()
    harness.endpoint.protocol.dataReceived(tcp_ack(1))
    commands = CommandFrame(
        Codec.CODEC12,
        (
            CommandMessage(CommandType.COMMAND, b"setdigout 10"),
            CommandMessage(CommandType.COMMAND, b"getio"),
        ),
    )

    harness.endpoint.protocol.dataReceived(encode_frame(commands))
    harness.clock.advance(0)

    response = decode_frame(harness.endpoint.written())
    assert isinstance(response, CommandFrame)
    assert [message.text for message in response.messages] == [
        "DOUT1:1 DOUT2:0",
        "DI1:0 DI2:0 DI3:0 AIN1:0 AIN2:0 DO1:1 DO2:0",
    ]


def test_stop_closes_the_link_and_stops_reconnecting() -> None:
    harness = Harness()
    harness.log_in()

    stopped = harness.tracker.stop()
    harness.endpoint.protocol.connectionLost(Failure(ConnectionError("closed")))
    harness.clock.advance(1000)

    assert stopped.called
    assert len(harness.endpoint.connections) == 1
    assert harness.clock.getDelayedCalls() == []


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="IMEI must be up to 32 digits"):
        TrackerSettings("35630704244101X")
    with pytest.raises(ValueError, match=r"records per packet must be 1\.\.255"):
        TrackerSettings(IMEI, records_per_packet=256)


def test_a_refused_connection_is_retried() -> None:
    clock = Clock()
    endpoint = MemoryEndpoint(clock)
    attempts: list[float] = []

    def refuse(factory: IProtocolFactory) -> Deferred[IProtocol]:
        attempts.append(clock.seconds())
        return fail(ConnectionRefusedError("refused"))

    endpoint.connect = refuse  # type: ignore[method-assign]
    events: list[DeviceEvent] = []
    tracker = VirtualTracker(
        endpoint, clock, TrackerSettings(IMEI), observer=events.append
    )
    tracker.start()
    clock.pump([0.5] * 10)

    assert attempts == [0, 1, 3]
    assert events[1].message == "cannot connect: refused"
    assert events[2].message == "reconnecting in 1 s"


def command(
    text: bytes, codec: Codec = Codec.CODEC12, imei: str | None = None
) -> bytes:
    message = CommandMessage(CommandType.COMMAND, text, imei=imei)
    return encode_frame(CommandFrame(codec, (message,)))


def answer_in(written: bytes, codec: Codec = Codec.CODEC12) -> CommandMessage:
    frame = decode_frame(written)
    assert isinstance(frame, CommandFrame) and frame.codec is codec
    [message] = frame.messages
    return message


@pytest.mark.parametrize(
    ("imei", "answer_type"),
    [("352093081452251", CommandType.RESPONSE), (IMEI, CommandType.NACK)],
    ids=["this tracker", "another tracker"],
)
def test_codec14_command_is_run_only_by_the_tracker_it_names(
    imei: str, answer_type: CommandType
) -> None:
    harness = Harness(imei, interval=100.0, ping_interval=None, answer_delay=(0, 0))
    harness.log_in()
    harness.endpoint.protocol.dataReceived(tcp_ack(1))

    harness.endpoint.protocol.dataReceived(by_id("wiki-c14-getver-cmd").data)
    harness.clock.advance(0)

    answer = answer_in(harness.endpoint.written(), Codec.CODEC14)
    assert (answer.type, answer.imei) == (answer_type, imei)
    if answer_type is CommandType.RESPONSE:
        assert f"IMEI:{imei}" in (answer.text or "")
    else:
        assert answer.payload == b""
        assert harness.messages(EventKind.COMMAND) == [
            "command 'getver' for IMEI 352093081452251 not executed (nACK)"
        ]


def test_the_answer_delay_is_drawn_from_its_range() -> None:
    harness = Harness(interval=100.0, ping_interval=None, answer_delay=(0.2, 1.5))
    harness.log_in()
    harness.endpoint.protocol.dataReceived(tcp_ack(1))

    harness.endpoint.protocol.dataReceived(command(b"getio"))
    harness.clock.advance(0.199)
    assert harness.endpoint.written() == b""
    harness.clock.advance(1.5 - 0.199)

    assert answer_in(harness.endpoint.written()).text == (
        "DI1:0 DI2:0 DI3:0 AIN1:0 AIN2:0 DO1:0 DO2:0"
    )


def test_an_answer_due_while_a_packet_waits_for_its_ack_follows_the_ack() -> None:
    harness = Harness(
        interval=10.0, ack_timeout=30.0, ping_interval=None, answer_delay=(1, 1)
    )
    harness.log_in()
    harness.endpoint.protocol.dataReceived(tcp_ack(1))
    harness.clock.advance(9.5)
    harness.endpoint.protocol.dataReceived(command(b"getgps"))

    harness.clock.advance(0.5)  # the next packet is due, and sent
    packet = harness.endpoint.written()
    harness.clock.advance(5)  # the answer is due since 4.5 s
    assert harness.endpoint.written() == b""
    harness.endpoint.protocol.dataReceived(tcp_ack(1))

    assert isinstance(decode_frame(packet), AvlPacket)
    assert (answer_in(harness.endpoint.written()).text or "").startswith("GPS:1")


def test_commands_are_answered_one_after_another_and_a_flood_is_bounded() -> None:
    harness = Harness(interval=100.0, ping_interval=None, answer_delay=(0.5, 0.5))
    harness.log_in()
    harness.endpoint.protocol.dataReceived(tcp_ack(1))
    texts = [b"setdigout 1?", b"setdigout ?1"] + [b"getver"] * 8

    harness.endpoint.protocol.dataReceived(b"".join(map(command, texts)))
    answers = []
    for _ in range(10):
        harness.clock.advance(0.5)
        answers.append(harness.endpoint.written())

    assert [answer_in(data).text for data in answers[:2]] == [
        "DOUT1:1 DOUT2:0",
        "DOUT1:1 DOUT2:1",
    ]
    assert all(answers[:8]) and answers[8:] == [b"", b""]
    assert (
        harness.messages(EventKind.COMMAND)[:2]
        == ["command frame ignored: 8 wait for answers"] * 2
    )


def test_commands_not_answered_when_the_link_drops_are_forgotten() -> None:
    harness = Harness(interval=100.0, ping_interval=None, answer_delay=(2, 2))
    harness.log_in()
    harness.endpoint.protocol.dataReceived(tcp_ack(1))
    harness.endpoint.protocol.dataReceived(command(b"getinfo"))

    harness.endpoint.protocol.connectionLost(Failure(ConnectionError("gone")))
    harness.clock.advance(1)  # the reconnect delay
    harness.log_in()
    harness.clock.advance(5)

    assert harness.endpoint.written() == b""
    assert "1 command frame(s) left unanswered with the link" in harness.messages(
        EventKind.COMMAND
    )


def test_a_frame_that_is_no_command_to_answer_closes_the_link() -> None:
    harness = Harness(interval=100.0, ping_interval=None)
    harness.log_in()
    harness.endpoint.protocol.dataReceived(tcp_ack(1))

    harness.endpoint.protocol.dataReceived(by_id("wiki-c15-hello").data)

    assert harness.endpoint.connections[0][2].disconnecting
    assert harness.messages(EventKind.LINK_DOWN) == [
        "link closed: the server sent a frame that is no Codec 12 or 14 command"
    ]


@pytest.mark.parametrize("delay", [(1.0, 0.5), (-1.0, 0.0), (0.0, float("inf"))])
def test_the_answer_delay_is_checked(delay: tuple[float, float]) -> None:
    with pytest.raises(ValueError, match="answer delay must be 0 <="):
        TrackerSettings(IMEI, answer_delay=delay)


@pytest.mark.parametrize("text", ["cpureset", "GETINFO"])
def test_an_unknown_command_is_answered_with_a_short_text(text: str) -> None:
    harness = Harness(interval=100.0, ping_interval=None, answer_delay=(0, 0))
    harness.log_in()
    harness.endpoint.protocol.dataReceived(tcp_ack(1))

    harness.endpoint.protocol.dataReceived(command(text.encode()))
    harness.clock.advance(0)

    assert answer_in(harness.endpoint.written()).text == f"Unsupported command: {text}"
