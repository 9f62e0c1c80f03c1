# -*- test-case-name: tests.test_cluster_listeners -*-
"""The listening sockets of ``--workers``: the parent binds them, its worker
processes accept on them.

Both sides read the same endpoint strings (``--port``, ``--api``) and the
same UDP port, through a stand-in for the reactor's ``listenTCP``,
``listenSSL`` and ``listenUDP``: in the parent, :class:`SocketBinder` binds a
socket where the endpoint would have listened, and accepts nothing on it; in
a worker, :class:`InheritedSocket` adopts the socket its parent passed
instead of binding one. Whatever wraps the port (TLS for ``ssl:``, the PROXY
protocol for ``haproxy:``) is the endpoint's own doing, so a worker's port
behaves exactly as a single process's.

The tracker port is a group of listening sockets, one per worker, on the
same address (``SO_REUSEPORT``): the kernel spreads new connections evenly
over them by a hash of their addresses. On one socket shared by all, the
worker that woke first took each connection, and of trackers connecting at
once one worker could take several times as many as the other
(``docs/scaling.rst``).
"""

from __future__ import annotations

import os
import socket
from typing import Any

import attrs
from twisted.internet.abstract import isIPv6Address
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IReactorSocket,
    IStreamServerEndpoint,
)
from twisted.internet.protocol import DatagramProtocol, Factory
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure

from teltotwist.gateway.proxied import PROXY_PREFIX, tracker_endpoint

TRACKER_FD = 3
"""The descriptor of the tracker port in a worker."""
UDP_FD = 4
"""The descriptor of the UDP port in a worker."""
API_FD = 5
"""The descriptor of the API port in a worker."""
HUB_FD = 6
"""The descriptor of a worker's link to its parent."""


_SHAREABLE = {"tcp", "tcp6", "ssl"}
_log = Logger()


def shareable(description: str) -> bool:
    """True for an endpoint string whose port workers can share: ``tcp:``,
    ``tcp6:``, ``ssl:``, each also behind ``haproxy:``."""
    kind = description.removeprefix(PROXY_PREFIX).partition(":")[0]
    return kind in _SHAREABLE


def _family(interface: str) -> socket.AddressFamily:
    return socket.AF_INET6 if isIPv6Address(interface) else socket.AF_INET


@attrs.define
class BoundSocket:
    """Sockets bound on one port, and for TCP listening, by
    :class:`SocketBinder`: one shared by every worker, or one for each."""

    sockets: tuple[socket.socket, ...]

    def fileno(self, worker: int = 1) -> int:
        """The descriptor for worker number *worker* (from 1)."""
        return self.sockets[(worker - 1) % len(self.sockets)].fileno()

    @property
    def port(self) -> int:
        """The port bound (the one the kernel chose, for port 0)."""
        port: int = self.sockets[0].getsockname()[1]
        return port

    def close(self) -> None:
        for each in self.sockets:
            each.close()


def _bind(
    kind: socket.SocketKind, interface: str, port: int, grouped: bool = False
) -> socket.socket:
    """A socket of *kind* bound to *interface* and *port*, inheritable by
    the workers, in non-blocking mode as a reactor wants it; *grouped*, it
    shares the port with the other grouped sockets of this user's.

    :raises CannotListenError: as Twisted's own ports would.
    """
    family = _family(interface)
    sock = socket.socket(family, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if grouped:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((interface or ("::" if family == socket.AF_INET6 else ""), port))
    except OSError as error:
        sock.close()
        raise CannotListenError(  # type: ignore[no-untyped-call]
            interface, port, error
        ) from error
    sock.setblocking(False)
    sock.set_inheritable(True)
    return sock


def _listening_group(
    interface: str, port: int, backlog: int, size: int
) -> tuple[socket.socket, ...]:
    """*size* sockets listening on *interface* and *port* as a group.

    A socket in the way, a group of another gateway's included, makes the
    first bind fail: it is a plain one, closed once it found the port free
    (and, for port 0, which port the kernel chose).
    """
    with _bind(socket.SOCK_STREAM, interface, port) as probe:
        port = probe.getsockname()[1]
    group: list[socket.socket] = []
    try:
        for _ in range(size):
            group.append(_bind(socket.SOCK_STREAM, interface, port, grouped=True))
            group[-1].listen(backlog)
    except BaseException:
        for each in group:
            each.close()
        raise
    return tuple(group)


class SocketBinder:
    """Stands in for the reactor while an endpoint "listens" in the parent:
    the socket is bound and listening, but nothing accepts on it. The
    factory is not used. With *workers* above 1, a TCP port is a group of
    that many listening sockets, one for each worker."""

    def __init__(self, workers: int = 1) -> None:
        self._workers = workers

    def listenTCP(
        self,
        port: int,
        factory: IProtocolFactory,
        backlog: int = 50,
        interface: str = "",
    ) -> BoundSocket:
        if self._workers == 1:
            sock = _bind(socket.SOCK_STREAM, interface, port)
            sock.listen(backlog)
            return BoundSocket((sock,))
        return BoundSocket(_listening_group(interface, port, backlog, self._workers))

    def listenSSL(
        self,
        port: int,
        factory: IProtocolFactory,
        contextFactory: object,
        backlog: int = 50,
        interface: str = "",
    ) -> BoundSocket:
        return self.listenTCP(port, factory, backlog, interface)

    def listenUDP(
        self,
        port: int,
        protocol: DatagramProtocol,
        interface: str = "",
        maxPacketSize: int = 8192,
    ) -> BoundSocket:
        return BoundSocket((_bind(socket.SOCK_DGRAM, interface, port),))


def _bound(endpoint: IStreamServerEndpoint) -> BoundSocket:
    """The socket *endpoint*, parsed with a :class:`SocketBinder`, bound."""
    outcome: list[object] = []
    endpoint.listen(Factory()).addBoth(outcome.append)
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    assert isinstance(outcome[0], BoundSocket)
    return outcome[0]


@attrs.frozen
class BoundSockets:
    """The sockets the parent bound for its workers."""

    tracker: BoundSocket
    udp: BoundSocket | None
    api: BoundSocket | None

    def child_fds(self, worker: int) -> dict[int, int]:
        """Worker number *worker*'s descriptors for them (as
        ``spawnProcess`` takes)."""
        fds = {TRACKER_FD: self.tracker.fileno(worker)}
        if self.udp is not None:
            fds[UDP_FD] = self.udp.fileno()
        if self.api is not None:
            fds[API_FD] = self.api.fileno()
        return fds

    def close(self) -> None:
        for each in (self.tracker, self.udp, self.api):
            if each is not None:
                each.close()


def bind_sockets(
    port: str,
    udp_port: int | None,
    udp_interface: str,
    api: str | None,
    *,
    workers: int,
) -> BoundSockets:
    """Bind the tracker port (endpoint string *port*), a socket for each of
    the *workers*, the UDP port if any, and the API's port (endpoint string
    *api*) if any, each of these two shared by all. An API port that cannot
    be bound is logged and left out, as a single process goes on without
    its API: the trackers matter more.

    :raises CannotListenError: for the tracker or UDP port; those bound
        before it are closed.
    """
    binder = SocketBinder()
    tracker = _bound(
        tracker_endpoint(SocketBinder(workers), port)  # type: ignore[arg-type]
    )
    udp = None
    if udp_port is not None:
        try:
            udp = binder.listenUDP(udp_port, DatagramProtocol(), udp_interface)
        except CannotListenError:
            tracker.close()
            raise
    api_socket = None
    if api is not None:
        try:
            api_socket = _bound(serverFromString(binder, api))
        except CannotListenError as error:
            _log.error(
                "HTTP API: cannot listen: {error}; the gateway runs without it",
                error=error,
            )
    return BoundSockets(tracker, udp, api_socket)


class InheritedSocket:
    """Stands in for *reactor* while an endpoint listens in a worker: the
    socket at descriptor *fd*, bound by the parent, is adopted instead of
    binding one; everything else is *reactor*'s."""

    def __init__(self, reactor: IReactorSocket, fd: int) -> None:
        self._reactor = reactor
        self._fd = fd

    def listenTCP(
        self,
        port: int,
        factory: IProtocolFactory,
        backlog: int = 50,
        interface: str = "",
    ) -> IListeningPort:
        family = _family(interface)
        adopted = self._reactor.adoptStreamPort(
            self._fd,
            family,
            factory,  # type: ignore[arg-type]
        )
        os.close(self._fd)  # adopting made its own copy
        return adopted

    def listenSSL(
        self,
        port: int,
        factory: IProtocolFactory,
        contextFactory: Any,
        backlog: int = 50,
        interface: str = "",
    ) -> IListeningPort:
        # What the reactor's listenSSL does over a TCP port.
        tls = TLSMemoryBIOFactory(contextFactory, False, factory)
        listening = self.listenTCP(port, tls, backlog, interface)
        listening._type = "TLS"  # type: ignore[attr-defined]
        return listening

    def listenUDP(
        self,
        port: int,
        protocol: DatagramProtocol,
        interface: str = "",
        maxPacketSize: int = 8192,
    ) -> IListeningPort:
        adopted = self._reactor.adoptDatagramPort(
            self._fd, _family(interface), protocol, maxPacketSize
        )
        os.close(self._fd)
        return adopted

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reactor, name)
