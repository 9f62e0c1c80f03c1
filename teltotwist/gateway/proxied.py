# -*- test-case-name: tests.test_gateway_proxied -*-
"""Listening behind a load balancer that speaks the PROXY protocol
(``--port haproxy:tcp:5027``): each connection opens with a header naming
the tracker's address, before the tracker's first byte.

This is Twisted's ``haproxy:`` endpoint wrapper, with one change: a header
that its parser cannot read (a port that is not a number, bytes that are not
ASCII) closes the connection as any other bad header does, instead of
raising into the reactor, which would log a traceback per connection.
"""

from __future__ import annotations

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IReactorCore,
    IStreamServerEndpoint,
    ITransport,
)
from twisted.protocols.haproxy._wrapper import (
    HAProxyProtocolWrapper,
    HAProxyWrappingFactory,
)
from zope.interface import Interface, implementer

PROXY_PREFIX = "haproxy:"
"""How an endpoint string asks for the PROXY protocol, as in Twisted's."""


class IProxiedProtocol(Interface):
    """A protocol that wants to know when its PROXY header was read, even
    before any byte follows it."""

    def header_read() -> None:
        """The header was read: ``transport.getPeer()`` is the address it
        names from now on."""


class _ProxyHeaderReader(HAProxyProtocolWrapper):
    """Reads the PROXY header, then passes the bytes through."""

    def dataReceived(self, data: bytes) -> None:
        if self._proxyInfo is not None:
            self.wrappedProtocol.dataReceived(data)
            return
        try:
            super().dataReceived(data)
        except ValueError:
            if self._proxyInfo is not None:
                raise  # from the wrapped protocol, after the header
            self.loseConnection()  # type: ignore[no-untyped-call]
            return
        protocol = self.wrappedProtocol
        if self._proxyInfo is not None and IProxiedProtocol.providedBy(protocol):
            protocol.header_read()


class _ProxyHeaderFactory(HAProxyWrappingFactory):
    protocol = _ProxyHeaderReader  # type: ignore[assignment]


@implementer(IStreamServerEndpoint)
@attrs.frozen
class ProxiedEndpoint:
    """Listens like *wrapped*; every connection starts with a PROXY header
    (version 1 or 2), and its transport's ``getPeer()`` then returns the
    address the header names."""

    wrapped: IStreamServerEndpoint

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        listening: Deferred[IListeningPort] = self.wrapped.listen(
            _ProxyHeaderFactory(protocolFactory)  # type: ignore[no-untyped-call]
        )
        return listening


def tracker_endpoint(reactor: IReactorCore, description: str) -> IStreamServerEndpoint:
    """The server endpoint *description* names; ``haproxy:`` followed by
    another description is that endpoint behind the PROXY protocol.

    :raises ValueError: for ``haproxy:ssl:``: the wrapper would look for the
        header inside TLS, where no balancer sends it (it comes first, in
        the clear), so no connection could ever work.
    """
    inner = description.removeprefix(PROXY_PREFIX)
    if inner != description and inner.startswith("ssl:"):
        raise ValueError(
            "a balancer sends the PROXY header before TLS, not inside it: "
            "terminate TLS at the balancer and listen with haproxy:tcp:"
        )
    endpoint: IStreamServerEndpoint = serverFromString(reactor, inner)
    return endpoint if inner == description else ProxiedEndpoint(endpoint)


def awaits_proxy_header(transport: ITransport | None) -> bool:
    """True if *transport* reads a PROXY header first: until it has, its
    ``getPeer()`` is the balancer's address, not the tracker's."""
    return isinstance(transport, HAProxyProtocolWrapper)
