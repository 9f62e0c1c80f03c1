# -*- test-case-name: tests.test_gateway_immediate -*-
"""Writes that leave at once on a plain TCP connection.

Twisted's TCP transport writes on the reactor's next turn: it registers the
socket for writing (a system call), waits for the poll to report it
writable, sends, and unregisters it (another system call). During a burst,
that turn comes only after every read the poll returned with it: hundreds
of packets. A small reply (an ACK is 4 bytes) to a socket whose send buffer
has room goes at once with one ``send`` instead.
"""

from __future__ import annotations

import socket

from twisted.internet import tcp
from twisted.internet.interfaces import ISSLTransport, ITransport


def plain_socket(transport: ITransport) -> socket.socket | None:
    """The socket of *transport* if it is a plain TCP connection of the POSIX
    reactors (no TLS, no wrapper that changes the bytes); else ``None``."""
    if isinstance(transport, tcp.Connection) and not ISSLTransport.providedBy(
        transport
    ):
        return transport.getHandle()
    return None


class ImmediateWriter:
    """Writes to *transport*: straight to its socket where it is a plain TCP
    one (:func:`plain_socket`), else through it.

    Should the socket take less than all (its send buffer is full) or fail,
    the rest and everything after go through the transport, in order; the
    transport finds out about a failed connection by itself.
    """

    def __init__(self, transport: ITransport) -> None:
        self._transport = transport
        self._socket = plain_socket(transport)

    @property
    def immediate(self) -> bool:
        """Whether writes still go straight to the socket."""
        return self._socket is not None

    def write(self, data: bytes) -> None:
        """Send *data*, now if the socket takes it."""
        sock = self._socket
        if sock is not None:
            try:
                sent = sock.send(data)
            except OSError:
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
            self._socket = None
        self._transport.write(data)
