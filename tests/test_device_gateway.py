"""The virtual tracker against the real gateway (and a test server) over
loopback TCP."""

from __future__ import annotations

import random
import socket
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.endpoints import TCP4ClientEndpoint, serverFromString
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocol,
    IProtocolFactory,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from zope.interface import implementer

import teltotwist
from teltotwist.codec import (
    AvlPacket,
    AvlRecord,
    Codec,
    CommandFrame,
    CommandMessage,
    CommandType,
    Frame,
    Login,
    StreamFramer,
    decode_frame,
    encode_frame,
    login_reply,
    tcp_ack,
)
from teltotwist.device import DeviceEvent, EventKind, TrackerSettings, VirtualTracker
from teltotwist.gateway.items import TrackerRecord
from teltotwist.testing import RecordingSink
from tests.net import PortReportingEndpoint
from tests.vectors import by_id

IMEI = "356307042441013"


class Device:
    """A running virtual tracker and everything it reported."""

    def __init__(self, port: int, **settings: object) -> None:
        self.events: list[DeviceEvent] = []
        self.tracker = VirtualTracker(
            TCP4ClientEndpoint(reactor, "127.0.0.1", port),
            reactor,
            TrackerSettings(IMEI, **settings),  # type: ignore[arg-type]
            observer=self.events.append,
            rng=random.Random(5),
        )
        self.tracker.start()

    def count(self, kind: EventKind) -> int:
        return sum(event.kind is kind for event in self.events)

    def packets_written(self) -> list[bytes]:
        return [
            event.data
            for event in self.events
            if event.kind is EventKind.WROTE and event.data[:4] == bytes(4)
        ]

    def records_sent(self) -> list[AvlRecord]:
        records: list[AvlRecord] = []
        for data in dict.fromkeys(self.packets_written()):
            packet = decode_frame(data)
            assert isinstance(packet, AvlPacket)
            records.extend(packet.records)
        return records


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = reactor.seconds() + timeout
    while not condition():
        if reactor.seconds() > deadline:
            pytest.fail("timed out waiting")
        await deferLater(reactor, 0.01, lambda: None)


@pytest_twisted.async_yield_fixture
async def gateway() -> AsyncIterator[tuple[int, RecordingSink]]:
    async for running in _gateway():
        yield running


@pytest_twisted.async_yield_fixture
async def closed_gateway() -> AsyncIterator[tuple[int, RecordingSink]]:
    async for running in _gateway(allow=lambda imei: False):
        yield running


async def _gateway(
    allow: Callable[[str], bool] = lambda imei: True,
) -> AsyncIterator[tuple[int, RecordingSink]]:
    sink = RecordingSink()
    endpoint = PortReportingEndpoint(
        serverFromString(reactor, "tcp:0:interface=127.0.0.1")
    )
    service = teltotwist.makeService(
        reactor, endpoint, [sink], allow=allow, drain_timeout=0.5
    )
    service.startService()
    port: IListeningPort = await endpoint.port
    yield port.getHost().port, sink  # type: ignore[attr-defined]
    await service.stopService()


def sink_records(sink: RecordingSink) -> list[TrackerRecord]:
    return [item for item in sink.items if isinstance(item, TrackerRecord)]


@pytest_twisted.ensureDeferred
async def test_records_reach_the_sink_intact(
    gateway: tuple[int, RecordingSink],
) -> None:
    port, sink = gateway
    device = Device(port, codec=Codec.CODEC8E, records_per_packet=3, interval=0.3)
    await until(lambda: device.count(EventKind.ACKED) >= 2)
    await device.tracker.stop()

    received = sink_records(sink)
    sent = device.records_sent()
    assert [item.record for item in received] == sent[: len(received)]
    assert {(item.imei, item.codec) for item in received} == {(IMEI, Codec.CODEC8E)}
    assert len(received) >= 6
    acked = [event for event in device.events if event.kind is EventKind.ACKED]
    assert all(event.latency is not None and event.latency < 5 for event in acked)


@pytest_twisted.ensureDeferred
async def test_an_unacked_packet_is_resent_with_the_same_record_ids(
    gateway: tuple[int, RecordingSink],
) -> None:
    port, sink = gateway
    sink.fail_with(RuntimeError("broker down"), times=1)
    device = Device(port, interval=60.0, backoff_initial=0.1)
    await until(lambda: device.count(EventKind.ACKED) == 1)
    await device.tracker.stop()

    [refused, accepted] = sink.deliveries
    assert [item.id for item in refused] == [item.id for item in accepted]
    assert sink.items == list(accepted)
    first, again = device.packets_written()
    assert first == again
    assert device.count(EventKind.RESEND) == 1
    assert device.count(EventKind.LINK_DOWN) == 1


@pytest_twisted.ensureDeferred
async def test_a_rejected_tracker_backs_off_and_retries(
    closed_gateway: tuple[int, RecordingSink],
) -> None:
    port, sink = closed_gateway
    device = Device(port, interval=60.0, backoff_initial=0.05)
    await until(lambda: device.count(EventKind.REJECTED) == 4)
    await device.tracker.stop()

    delays = [event.delay for event in device.events if event.delay is not None]
    assert delays[:4] == [0.05, 0.1, 0.2, 0.4]
    assert device.count(EventKind.LOGGED_IN) == 0
    assert sink.deliveries == []


class CommandingServer(Protocol):
    """Accepts the login, ACKs the first packet, then sends *command*."""

    def __init__(self, command: bytes, answered: Deferred[CommandFrame]) -> None:
        self.framer = StreamFramer()
        self.command = command
        self.answered = answered

    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        for event in self.framer.feed(data):
            if isinstance(event, Login):
                self.transport.write(login_reply(True))
            elif isinstance(event, Frame):
                content = decode_frame(event.data)
                if isinstance(content, AvlPacket):
                    self.transport.write(tcp_ack(len(content.records)))
                    self.transport.write(self.command)
                else:
                    self.answered.callback(content)


async def answer_to(command: bytes) -> tuple[CommandFrame, Device]:
    """What the device answers to *command* sent after its first ACK."""
    answered: Deferred[CommandFrame] = Deferred()
    factory = Factory.forProtocol(lambda: CommandingServer(command, answered))
    endpoint = serverFromString(reactor, "tcp:0:interface=127.0.0.1")
    listening: IListeningPort = await endpoint.listen(factory)
    port: int = listening.getHost().port  # type: ignore[attr-defined]
    device = Device(port, interval=60.0, answer_delay=(0.05, 0.2))
    try:
        return await answered, device
    finally:
        await device.tracker.stop()
        await maybeDeferred(listening.stopListening)


@pytest_twisted.ensureDeferred
async def test_a_getinfo_command_gets_a_codec12_response() -> None:
    getinfo = CommandMessage(CommandType.COMMAND, b"getinfo")

    response, device = await answer_to(
        encode_frame(CommandFrame(Codec.CODEC12, (getinfo,)))
    )

    assert response.codec is Codec.CODEC12
    [message] = response.messages
    assert message.type == CommandType.RESPONSE
    assert message.text is not None
    assert message.text.startswith("RTC:") and "SAT:" in message.text
    assert device.count(EventKind.ACKED) == 1
    assert device.count(EventKind.COMMAND) == 1


@pytest_twisted.ensureDeferred
async def test_a_codec14_command_for_another_imei_gets_a_nack() -> None:
    response, device = await answer_to(by_id("wiki-c14-getver-cmd").data)

    assert response == CommandFrame(
        Codec.CODEC14, (CommandMessage(CommandType.NACK, b"", imei=IMEI),)
    )
    assert device.count(EventKind.COMMAND) == 1


SMALL_BUFFER = 4096
"""Socket buffer bytes: far less than a 255-record packet."""


class LateReader(Protocol):
    """Accepts the login, then reads nothing for *pause* seconds; ACKs each
    packet, keeping it."""

    def __init__(self, pause: float, packets: list[AvlPacket]) -> None:
        self.framer = StreamFramer()
        self.pause = pause
        self.packets = packets

    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        for event in self.framer.feed(data):
            if isinstance(event, Login):
                self.transport.write(login_reply(True))
                self.transport.pauseProducing()  # type: ignore[attr-defined]
                reactor.callLater(self.pause, self.transport.resumeProducing)  # type: ignore[attr-defined]
            elif isinstance(event, Frame):
                packet = decode_frame(event.data)
                assert isinstance(packet, AvlPacket)
                self.packets.append(packet)
                self.transport.write(tcp_ack(len(packet.records)))


@implementer(IStreamClientEndpoint)
class SmallSendBuffer:
    """Connects to *port*, then shrinks the socket's send buffer."""

    def __init__(self, port: int) -> None:
        self.inner = TCP4ClientEndpoint(reactor, "127.0.0.1", port)

    def connect(self, factory: IProtocolFactory) -> Deferred[IProtocol]:
        def shrink(protocol: IProtocol) -> IProtocol:
            handle = protocol.transport.getHandle()  # type: ignore[attr-defined]
            handle.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
            return protocol

        connecting: Deferred[IProtocol] = self.inner.connect(factory)
        return connecting.addCallback(shrink)


@pytest_twisted.ensureDeferred
async def test_a_packet_larger_than_the_socket_takes_at_once_arrives_whole() -> None:
    packets: list[AvlPacket] = []
    factory = Factory.forProtocol(lambda: LateReader(0.3, packets))
    endpoint = serverFromString(reactor, "tcp:0:interface=127.0.0.1")
    listening: IListeningPort = await endpoint.listen(factory)
    listening.socket.setsockopt(  # type: ignore[attr-defined]
        socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER
    )
    port: int = listening.getHost().port  # type: ignore[attr-defined]
    events: list[DeviceEvent] = []
    settings = TrackerSettings(
        IMEI, codec=Codec.CODEC8E, records_per_packet=255, interval=60.0
    )
    tracker = VirtualTracker(
        SmallSendBuffer(port), reactor, settings, observer=events.append
    )
    tracker.start(recording=False)
    try:
        for _ in range(255):
            tracker.record()
        await until(lambda: any(event.kind is EventKind.ACKED for event in events))
    finally:
        await tracker.stop()
        await maybeDeferred(listening.stopListening)

    [written] = [
        event.data
        for event in events
        if event.kind is EventKind.WROTE and event.data[:4] == bytes(4)
    ]
    assert len(written) > 4 * SMALL_BUFFER
    assert packets == [decode_frame(written)]
    assert [event.records for event in events if event.kind is EventKind.ACKED] == [255]
