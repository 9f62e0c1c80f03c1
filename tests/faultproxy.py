"""A TCP proxy for fault tests: put it between a sink and its service, then
cut, refuse or stall the traffic. Never touch the machine's shared brokers.
"""

from __future__ import annotations

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.interfaces import IListeningPort, IProtocol
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure


class _Upstream(Protocol):
    """The proxy's connection to the real service."""

    def __init__(self, downstream: _Downstream) -> None:
        self.downstream = downstream

    def dataReceived(self, data: bytes) -> None:
        proxy = self.downstream.proxy
        if not (proxy.stalled or proxy.muted):
            self.downstream.transport.write(data)  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        if self.downstream.transport is not None:
            self.downstream.transport.loseConnection()


class _Downstream(Protocol):
    """A client's connection to the proxy."""

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self.upstream: _Upstream | None = None
        self._early: list[bytes] = []

    def connectionMade(self) -> None:
        if self.proxy.refusing:
            self.transport.abortConnection()  # type: ignore[union-attr]
            return
        self.proxy.connections.add(self)
        self.transport.pauseProducing()  # type: ignore[union-attr]
        target = TCP4ClientEndpoint(reactor, self.proxy.host, self.proxy.port)
        connecting: Deferred[IProtocol] = target.connect(
            Factory.forProtocol(lambda: _Upstream(self))
        )
        connecting.addCallbacks(self._connected, self._failed)

    def _connected(self, upstream: IProtocol) -> None:
        assert isinstance(upstream, _Upstream)
        self.upstream = upstream
        self.transport.resumeProducing()  # type: ignore[union-attr]

    def _failed(self, _: Failure) -> None:
        self.transport.abortConnection()  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        if self.upstream is not None and not self.proxy.stalled:
            self.upstream.transport.write(data)  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        self.proxy.connections.discard(self)
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.loseConnection()


class FaultProxy:
    """Forwards 127.0.0.1:``port`` to *host*:*port* until told otherwise.

    - :meth:`cut` drops every open connection at once (both sides);
    - :attr:`refusing` makes new connections close as soon as they open;
    - :attr:`stalled` swallows traffic both ways while connections stay open;
    - :attr:`muted` swallows only the service's replies: it still gets and
      acts on what clients send.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.refusing = False
        self.stalled = False
        self.muted = False
        self.connections: set[_Downstream] = set()
        self._listening: IListeningPort | None = None

    async def start(self) -> int:
        """Start listening on a free loopback port; returns it."""
        endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
        self._listening = await endpoint.listen(
            Factory.forProtocol(lambda: _Downstream(self))
        )
        port: int = self._listening.getHost().port  # type: ignore[union-attr]
        return port

    def cut(self) -> None:
        """Abort every connection through the proxy, mid-stream."""
        for connection in list(self.connections):
            connection.transport.abortConnection()  # type: ignore[union-attr]
            if connection.upstream is not None and connection.upstream.transport:
                connection.upstream.transport.abortConnection()  # type: ignore[attr-defined]

    async def stop(self) -> None:
        """Stop listening and drop every connection."""
        self.cut()
        if self._listening is not None:
            stopped = self._listening.stopListening()
            if stopped is not None:
                await stopped
