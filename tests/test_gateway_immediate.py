"""Writes that leave at once on a plain TCP connection, over real loopback
sockets; everything else goes through the transport, in order."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.interfaces import ITransport
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.internet.testing import StringTransport

from teltotwist.gateway.immediate import ImmediateWriter
from tests.net import receive_exactly


class _Accepted(Protocol):
    def __init__(self, made: Deferred[ITransport]) -> None:
        self._made = made

    def connectionMade(self) -> None:
        assert self.transport is not None
        self._made.callback(self.transport)


@pytest_twisted.async_yield_fixture
async def connection() -> AsyncIterator[tuple[ITransport, socket.socket]]:
    """The server's transport of a real loopback TCP connection, and the
    client's blocking socket."""
    made: Deferred[ITransport] = Deferred()
    endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
    port = await endpoint.listen(Factory.forProtocol(lambda: _Accepted(made)))
    number = port.getHost().port
    client = socket.create_connection(("127.0.0.1", number))
    client.settimeout(5)
    transport = await made
    try:
        yield transport, client
    finally:
        client.close()
        transport.loseConnection()
        await maybeDeferred(port.stopListening)


@pytest_twisted.ensureDeferred
async def test_a_write_leaves_before_the_reactor_turns(
    connection: tuple[ITransport, socket.socket],
) -> None:
    transport, client = connection
    writer = ImmediateWriter(transport)
    writer.write(b"\x00\x00\x00\x0a")
    # No reactor turn in between: the bytes are on the wire already.
    assert receive_exactly(client, 4) == b"\x00\x00\x00\x0a"
    assert writer.immediate


@pytest_twisted.ensureDeferred
async def test_what_the_socket_does_not_take_follows_through_the_transport(
    connection: tuple[ITransport, socket.socket],
) -> None:
    transport, client = connection
    writer = ImmediateWriter(transport)
    chunks = [bytes([number]) * 65536 for number in range(64)]
    for chunk in chunks:  # 4 MB, more than loopback buffers hold
        writer.write(chunk)
    assert not writer.immediate
    writer.write(b"end")

    expected = b"".join(chunks) + b"end"
    received = await _read_while_the_reactor_runs(client, len(expected))
    assert received == expected


async def _read_while_the_reactor_runs(client: socket.socket, size: int) -> bytes:
    client.setblocking(False)
    data = bytearray()
    for _ in range(5000):
        try:
            data += client.recv(1 << 20)
        except BlockingIOError:
            await deferLater(reactor, 0.001, lambda: None)
        if len(data) >= size:
            break
    return bytes(data)


def test_other_transports_are_written_through() -> None:
    transport = StringTransport()
    writer = ImmediateWriter(transport)
    writer.write(b"\x01")
    writer.write(b"\x00\x00\x00\x01")
    assert not writer.immediate
    assert transport.value() == b"\x01\x00\x00\x00\x01"
