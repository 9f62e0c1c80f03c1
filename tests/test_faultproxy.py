"""The fault proxy the network-sink tests rely on does what it claims."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import ClassVar

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    TCP4ServerEndpoint,
    connectProtocol,
)
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater

from tests.faultproxy import FaultProxy
from tests.net import TrackerClient


class Echo(Protocol):
    heard: ClassVar[list[bytes]] = []
    """What every echo server of the test process received."""

    def dataReceived(self, data: bytes) -> None:
        self.heard.append(data)
        self.transport.write(data)  # type: ignore[union-attr]


@pytest_twisted.async_yield_fixture
async def proxy() -> AsyncIterator[tuple[FaultProxy, int]]:
    server = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
    echo: IListeningPort = await server.listen(Factory.forProtocol(Echo))
    proxy = FaultProxy("127.0.0.1", echo.getHost().port)  # type: ignore[attr-defined]
    port = await proxy.start()
    yield proxy, port
    await proxy.stop()
    stopped = echo.stopListening()
    if stopped is not None:
        await stopped


async def connect(port: int) -> TrackerClient:
    client = TrackerClient()
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), client)
    return client


@pytest_twisted.ensureDeferred
async def test_forwards_then_cut_drops_the_connection(
    proxy: tuple[FaultProxy, int],
) -> None:
    faults, port = proxy
    client = await connect(port)
    client.send(b"ping")
    assert await client.read(4) == b"ping"

    faults.cut()

    await client.closed


@pytest_twisted.ensureDeferred
async def test_refusing_closes_new_connections(proxy: tuple[FaultProxy, int]) -> None:
    faults, port = proxy
    faults.refusing = True

    client = await connect(port)

    await client.closed
    with pytest.raises(ConnectionError):
        await client.read(1)


@pytest_twisted.ensureDeferred
async def test_stalled_swallows_traffic_but_stays_open(
    proxy: tuple[FaultProxy, int],
) -> None:
    faults, port = proxy
    client = await connect(port)
    faults.stalled = True

    client.send(b"lost")
    await deferLater(reactor, 0.1, lambda: None)

    assert client.received == b""
    assert not client.closed.called


@pytest_twisted.ensureDeferred
async def test_muted_passes_requests_on_but_swallows_the_replies(
    proxy: tuple[FaultProxy, int],
) -> None:
    faults, port = proxy
    client = await connect(port)
    faults.muted = True

    client.send(b"muted request")
    await deferLater(reactor, 0.1, lambda: None)

    assert b"muted request" in Echo.heard
    assert client.received == b""
    assert not client.closed.called
