"""The gateway service over real loopback TCP, as an application embeds it."""

from __future__ import annotations

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
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import IListeningPort
from twisted.internet.task import deferLater
from twisted.logger import capturedLogs, formatEvent

import teltotwist
from teltotwist.codec import tcp_ack
from teltotwist.gateway.service import GatewayService
from teltotwist.testing import RecordingSink
from tests.net import PortReportingEndpoint, TrackerClient
from tests.vectors import by_id

LOGIN = bytes.fromhex("000F") + b"356307042441013"
CODEC8 = by_id("wiki-c8-tcp-1").data
FOURTEEN_RECORDS = by_id("traccar-26-avl").data


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
