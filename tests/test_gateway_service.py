"""The gateway service over real loopback TCP, as an application embeds it."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    connectProtocol,
    serverFromString,
)
from twisted.internet.error import CannotListenError, ConnectionRefusedError
from twisted.internet.interfaces import IListeningPort
from twisted.internet.task import deferLater
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs, formatEvent
from zope.interface import implementer

import teltotwist
from teltotwist.codec import Codec, tcp_ack
from teltotwist.gateway.events import LoginResult, Transport
from teltotwist.gateway.service import GatewayService
from teltotwist.sinks import IRecordSink, ISinkReadiness
from teltotwist.sinks.readiness import ReadyWaiters
from teltotwist.testing import FakeTracker, RecordingSink
from tests.net import PortReportingEndpoint, TrackerClient
from tests.observer import RecordingObserver
from tests.vectors import by_id

LOGIN = bytes.fromhex("000F") + b"356307042441013"
CODEC8 = by_id("wiki-c8-tcp-1").data
FOURTEEN_RECORDS = by_id("traccar-26-avl").data
UDP_CODEC8 = by_id("wiki-c8-udp-1").data


class Running:
    def __init__(self, service: GatewayService, port: int, sink: RecordingSink):
        self.service = service
        self.port = port
        self.sink = sink

    async def connect(self) -> TrackerClient:
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port)
        client: TrackerClient = await connectProtocol(endpoint, TrackerClient())
        return client

    async def packet_in_flight(self) -> TrackerClient:
        """A logged-in tracker whose packet the (held) sink has not accepted."""
        client = await self.connect()
        client.send(LOGIN)
        await client.read(1)
        self.sink.hold()
        client.send(CODEC8)
        while not self.sink.pending:
            await sleep(0.01)
        return client


@pytest_twisted.async_yield_fixture
async def gateway() -> AsyncIterator[Running]:
    sink = RecordingSink()
    endpoint = PortReportingEndpoint(
        serverFromString(reactor, "tcp:0:interface=127.0.0.1")
    )
    service = teltotwist.makeService(reactor, endpoint, [sink], drain_timeout=0.5)
    service.startService()
    port: IListeningPort = await endpoint.port
    yield Running(service, port.getHost().port, sink)  # type: ignore[attr-defined]
    if service.running:
        await service.stopService()


def sleep(seconds: float) -> Deferred[None]:
    return deferLater(reactor, seconds, lambda: None)


@pytest_twisted.ensureDeferred
async def test_a_tracker_is_acked_after_its_records_reach_the_sink(
    gateway: Running,
) -> None:
    client = await gateway.connect()
    client.send(LOGIN)
    assert await client.read(1) == b"\x01"

    client.send(FOURTEEN_RECORDS)

    assert await client.read(4) == tcp_ack(14)
    assert len(gateway.sink.items) == 14


@pytest_twisted.ensureDeferred
async def test_split_and_glued_segments(gateway: Running) -> None:
    client = await gateway.connect()
    stream = b"\xff" + LOGIN + CODEC8 + b"\xff" + CODEC8
    for start in range(0, len(stream), 7):
        client.send(stream[start : start + 7])
        await sleep(0.001)

    assert await client.read(9) == b"\x01" + tcp_ack(1) + tcp_ack(1)
    assert len(gateway.sink.items) == 2


@pytest_twisted.ensureDeferred
async def test_shutdown_drains_without_acking_and_stops_listening(
    gateway: Running,
) -> None:
    client = await gateway.packet_in_flight()

    stopping = gateway.service.stopService()
    await sleep(0.05)
    with pytest.raises(ConnectionRefusedError):
        await gateway.connect()
    gateway.sink.release()
    await stopping
    await client.closed

    assert client.received == b""
    assert len(gateway.sink.items) == 1


@pytest_twisted.ensureDeferred
async def test_shutdown_gives_up_on_a_stuck_sink_after_the_drain_timeout(
    gateway: Running,
) -> None:
    client = await gateway.packet_in_flight()

    started = reactor.seconds()
    with capturedLogs() as events:
        await gateway.service.stopService()
    await client.closed

    warnings = [formatEvent(event) for event in events]
    assert any("still in flight after 0.5 s" in text for text in warnings)
    assert 0.4 < reactor.seconds() - started < 5
    assert client.received == b""
    assert gateway.sink.items == []
    assert gateway.sink.pending == (), "the stuck delivery is cancelled"


# --- Start-up: sinks first, then listening ---------------------------------


@implementer(IRecordSink, ISinkReadiness)
class ConnectingSink(RecordingSink):
    """A RecordingSink that is ready only once :meth:`connect` is called."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.ready = False
        self._waiters = ReadyWaiters()

    def whenReady(self) -> Deferred[None]:
        return self._waiters.wait(self.ready)

    def connect(self) -> None:
        self.ready = True
        self._waiters.fire()


def on_memory(*sinks: IRecordSink) -> tuple[GatewayService, MemoryReactorClock]:
    clock = MemoryReactorClock()
    endpoint = serverFromString(clock, "tcp:5027")
    return teltotwist.makeService(clock, endpoint, sinks), clock


def test_listens_only_once_every_sink_is_ready() -> None:
    broker = ConnectingSink("amqp:broker")
    service, clock = on_memory(RecordingSink(), broker)
    listening = service.whenListening()

    service.startService()
    clock.advance(9)

    assert clock.tcpServers == []
    assert service.sinks_not_ready() == ["amqp:broker"]
    broker.connect()
    assert [port for port, *_ in clock.tcpServers] == [5027]
    assert listening.called
    assert service.sinks_not_ready() == []


def test_listens_after_the_ready_timeout_and_names_the_sink_not_ready() -> None:
    service, clock = on_memory(RecordingSink(), ConnectingSink("mqtt://broker:1883"))

    with capturedLogs() as events:
        service.startService()
        clock.advance(9.9)
        assert clock.tcpServers == []
        clock.advance(0.1)

    assert len(clock.tcpServers) == 1
    lines = [formatEvent(event) for event in events]
    assert "Sinks not ready after 10 s: mqtt://broker:1883; listening anyway" in (
        "\n".join(lines)
    )
    assert service.sinks_not_ready() == ["mqtt://broker:1883"]


def test_stopping_before_the_sinks_are_ready_never_listens() -> None:
    broker = ConnectingSink("amqp:broker")
    service, clock = on_memory(broker)
    service.startService()

    stopped = service.stopService()
    broker.connect()
    clock.advance(60)

    assert stopped.called
    assert clock.tcpServers == []


@pytest_twisted.ensureDeferred
async def test_the_log_says_where_it_listens_and_which_sinks_are_on() -> None:
    endpoint = PortReportingEndpoint(
        serverFromString(reactor, "tcp:0:interface=127.0.0.1")
    )
    service = teltotwist.makeService(
        reactor,
        endpoint,
        [RecordingSink("first"), RecordingSink("second")],
        udp_port=0,
        udp_interface="127.0.0.1",
    )
    with capturedLogs() as events:
        service.startService()
    try:
        await service.whenListening()
        port: IListeningPort = await endpoint.port
        tcp = port.getHost().port  # type: ignore[attr-defined]
        udp = service.datagram_protocol.transport.getHost().port  # type: ignore[union-attr]
    finally:
        await service.stopService()

    lines = [formatEvent(event) for event in events]
    assert (
        f"Listening for trackers on tcp:127.0.0.1:{tcp}, udp:127.0.0.1:{udp}; "
        "sinks: first, second"
    ) in lines


@pytest.mark.parametrize("kind", ["tcp", "udp"])
@pytest_twisted.ensureDeferred
async def test_an_occupied_port_is_one_clear_line_and_a_failed_wait(
    kind: str,
) -> None:
    udp = kind == "udp"
    with socket.socket(type=socket.SOCK_DGRAM if udp else socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        if not udp:
            taken.listen()
        port = taken.getsockname()[1]
        tcp_port = 0 if udp else port
        service = teltotwist.makeService(
            reactor,
            serverFromString(reactor, f"tcp:{tcp_port}:interface=127.0.0.1"),
            [RecordingSink()],
            udp_port=port if udp else None,
            udp_interface="127.0.0.1",
        )
        with capturedLogs() as events:
            service.startService()
        with pytest.raises(CannotListenError):
            await service.whenListening()
        await service.stopService()

    lines = [formatEvent(event) for event in events]
    assert lines[-1] == (
        f"cannot listen on {kind}:{port}:interface=127.0.0.1: address already in use"
    )
    assert not any(event.get("log_failure") for event in events)


@pytest_twisted.ensureDeferred
async def test_the_registry_and_the_events_follow_a_real_connection(
    gateway: Running,
) -> None:
    observer = RecordingObserver()
    gateway.service.events.add(observer)
    client = await gateway.connect()
    client.send(LOGIN)
    await client.read(1)
    client.send(CODEC8)
    await client.read(4)

    [tracker] = [state.to_json() for state in gateway.service.registry.trackers()]
    assert tracker["imei"] == "356307042441013"
    assert (tracker["transport"], tracker["packets"], tracker["records"]) == (
        "tcp",
        1,
        1,
    )
    assert tracker["peer"].startswith("127.0.0.1:")
    [(transport, codec, records, latency)] = observer.of("records_acknowledged")
    assert (transport, codec, records) == (Transport.TCP, Codec.CODEC8, 1)
    assert isinstance(latency, float) and 0 <= latency < 5
    client.transport.loseConnection()  # type: ignore[union-attr]
    while observer.of("connection_closed") == []:
        await sleep(0.01)
    assert len(gateway.service.registry) == 0


class UdpPort:
    """The listener's UDP port, keeping what is written to it."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, packet: bytes, addr: tuple[str, int]) -> None:
        self.written.append(packet)


def test_tcp_udp_and_the_dispatcher_share_one_registry_and_one_events() -> None:
    clock = MemoryReactorClock()
    service = teltotwist.makeService(
        clock, serverFromString(clock, "tcp:5027"), [RecordingSink()], udp_port=5027
    )
    observer = RecordingObserver()
    service.events.add(observer)
    datagrams = service.datagram_protocol
    assert datagrams is not None
    port = UdpPort()
    datagrams.makeConnection(port)  # type: ignore[arg-type]

    FakeTracker(service.factory).login()
    datagrams.datagramReceived(UDP_CODEC8, ("192.0.2.7", 40123))

    assert port.written == [bytes.fromhex("0005cafe010501")]
    clock.advance(0)  # the turn ends: the reports follow the ACKs
    assert [(s.imei, s.transport) for s in service.registry.trackers()] == [
        ("356307042441013", Transport.TCP),
        ("352093086403655", Transport.UDP),
    ]
    assert observer.of("login") == [
        (Transport.TCP, LoginResult.ACCEPTED),
        (Transport.UDP, LoginResult.ACCEPTED),
    ]
    assert observer.of("sink_delivered") == [("recording", 0, True)]
