"""Real loopback connections for tests: a tracker-side TCP client, and an
endpoint wrapper that tells which port the gateway bound."""

from __future__ import annotations

import socket

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IStreamServerEndpoint,
)
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from zope.interface import implementer


@implementer(IStreamServerEndpoint)
class PortReportingEndpoint:
    """Listens like *inner*; :attr:`port` fires with the listening port."""

    def __init__(self, inner: IStreamServerEndpoint) -> None:
        self.inner = inner
        self.port: Deferred[IListeningPort] = Deferred()

    def listen(self, factory: IProtocolFactory) -> Deferred[IListeningPort]:
        listening: Deferred[IListeningPort] = self.inner.listen(factory)

        def report(port: IListeningPort) -> IListeningPort:
            self.port.callback(port)
            return port

        return listening.addCallback(report)


class TrackerClient(Protocol):
    """The tracker's end of a real TCP connection."""

    def __init__(self) -> None:
        self.received = b""
        self.closed: Deferred[None] = Deferred()
        self._want: tuple[int, Deferred[bytes]] | None = None
        self._lost: Failure | None = None

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        self._check()

    def send(self, data: bytes) -> None:
        """Write *data* to the gateway."""
        assert self.transport is not None
        self.transport.write(data)

    def read(self, count: int) -> Deferred[bytes]:
        """The next *count* bytes the gateway sends; fails if it closes first."""
        waiting: Deferred[bytes] = Deferred()
        self._want = (count, waiting)
        self._check()
        return waiting

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        self._lost = reason
        self._check()
        self.closed.callback(None)

    def _check(self) -> None:
        if self._want is None:
            return
        if len(self.received) < self._want[0]:
            if self._lost is not None:
                waiting = self._want[1]
                self._want = None
                waiting.errback(ConnectionError(f"closed: {self._lost.value}"))
            return
        count, waiting = self._want
        self._want = None
        data, self.received = self.received[:count], self.received[count:]
        waiting.callback(data)


def receive_exactly(connection: socket.socket, size: int) -> bytes:
    """*size* bytes from a blocking socket, or fewer if it closes first."""
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data
