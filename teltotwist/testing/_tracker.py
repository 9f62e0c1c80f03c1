# -*- test-case-name: tests.test_testing_tracker -*-
"""A fake tracker that drives the gateway's protocol in memory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IProtocol, IProtocolFactory
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from teltotwist.codec import AvlPacket, AvlRecord, Codec, encode_frame, encode_login

DEFAULT_IMEI = "356307042441013"

Argument = TypeVar("Argument")


class _GatewayEnd(StringTransport):
    """The gateway's end of the link: keeps what the gateway writes while
    the connection is up and reports, once, that it is closing."""

    def __init__(self, peer: IPv4Address, closed: Callable[[], None]) -> None:
        StringTransport.__init__(self, peerAddress=peer)
        self._closed = closed

    def write(self, data: bytes) -> None:
        if self.connected:
            StringTransport.write(self, data)

    def loseConnection(self) -> None:
        if not self.disconnecting:
            StringTransport.loseConnection(self)
            self._closed()


class FakeTracker:
    """Plays a Teltonika tracker against a protocol factory, with no sockets.

    It models a connection's whole life, as a socket would: bytes the gateway
    writes collect in :attr:`transport` and :meth:`replies` returns the new
    ones; while the gateway pauses reading, bytes the tracker sends wait and
    reach the gateway at the tracker's first call after it resumes; when the
    gateway closes the connection or the tracker drops it
    (:meth:`disconnect`), the gateway's protocol gets ``connectionLost``. Pair it with a
    ``MemoryReactorClock`` given to the gateway to control time.
    """

    def __init__(
        self,
        factory: IProtocolFactory,
        imei: str = DEFAULT_IMEI,
        peer: tuple[str, int] = ("192.0.2.10", 40_000),
    ) -> None:
        self.imei = imei
        address = IPv4Address("TCP", *peer)
        self.transport: StringTransport = _GatewayEnd(address, self._closing)
        self._read = 0
        self._unread = b""
        self._calling = False
        self._lost_while_calling = False
        self.protocol: IProtocol | None = factory.buildProtocol(address)
        if self.protocol is None:
            self.transport.loseConnection()
        else:
            self._call(self.protocol.makeConnection, self.transport)
        self.refused = not self.connected
        """True when the gateway refused the connection: its factory built no
        protocol, or the protocol closed the connection as it was made."""

    @property
    def connected(self) -> bool:
        """False once the gateway refused or closed the connection, or the
        tracker disconnected."""
        return self.transport.connected and not self.transport.disconnecting

    def send(self, data: bytes) -> bytes:
        """Send raw bytes; return what the gateway wrote back meanwhile.

        :raises ConnectionError: when the connection was refused or is closed.
        """
        if self.refused:
            raise ConnectionError("the gateway refused this connection")
        if not self.connected:
            raise ConnectionError("the connection is closed")
        self._unread += data
        return self.replies()

    def login(self) -> bytes:
        """Send the IMEI login; return the reply (``01`` accepted, ``00`` not)."""
        return self.send(encode_login(self.imei))

    def send_records(
        self, records: Sequence[AvlRecord], codec: Codec = Codec.CODEC8
    ) -> bytes:
        """Send one AVL packet; return what the gateway wrote back meanwhile
        (the 4-byte ACK once the sinks accepted it)."""
        return self.send(encode_frame(AvlPacket(codec, tuple(records))))

    def replies(self) -> bytes:
        """Let the gateway read what waited for it to resume reading; return
        the bytes it wrote since the previous call."""
        self._deliver_unread()
        written: bytes = self.transport.value()
        new, self._read = written[self._read :], len(written)
        return new

    def disconnect(self) -> None:
        """Drop the connection, as a tracker losing coverage does."""
        if self.connected:
            self.transport.loseConnection()

    def _deliver_unread(self) -> None:
        reading = self.transport.producerState == "producing"
        if self._unread and self.connected and reading:
            assert self.protocol is not None
            data, self._unread = self._unread, b""
            self._call(self.protocol.dataReceived, data)

    def _call(self, method: Callable[[Argument], None], argument: Argument) -> None:
        """Call into the protocol; a close it asks for meanwhile takes effect
        once the call returns, as a reactor would deliver it."""
        self._calling = True
        try:
            method(argument)
        finally:
            self._calling = False
        if self._lost_while_calling:
            self._connection_lost()

    def _closing(self) -> None:
        if self._calling:
            self._lost_while_calling = True
        else:
            self._connection_lost()

    def _connection_lost(self) -> None:
        self._lost_while_calling = False
        self.transport.connected = False
        self._unread = b""
        if self.protocol is not None:
            self.protocol.connectionLost(
                Failure(ConnectionDone("the connection was closed"))
            )
