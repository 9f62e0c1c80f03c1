# -*- test-case-name: tests.test_testing_tracker -*-
"""A fake tracker that drives the gateway's protocol in memory."""

from __future__ import annotations

from collections.abc import Sequence

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IProtocol, IProtocolFactory
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from teltotwist.codec import AvlPacket, AvlRecord, Codec, encode_frame, encode_login

DEFAULT_IMEI = "356307042441013"


class FakeTracker:
    """Plays a Teltonika tracker against a protocol factory, with no sockets.

    Bytes the gateway writes collect in :attr:`transport`; :meth:`replies`
    returns those written since the last call. Pair it with a
    ``MemoryReactorClock`` given to the gateway to control time.
    """

    def __init__(
        self,
        factory: IProtocolFactory,
        imei: str = DEFAULT_IMEI,
        peer: tuple[str, int] = ("192.0.2.10", 40_000),
    ) -> None:
        self.imei = imei
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", *peer))
        protocol = factory.buildProtocol(self.transport.getPeer())
        if protocol is None:
            self.transport.loseConnection()
            self.protocol: IProtocol | None = None
            return
        self.protocol = protocol
        protocol.makeConnection(self.transport)
        self._read = 0

    @property
    def connected(self) -> bool:
        """False once the gateway refused or closed the connection."""
        return self.protocol is not None and not self.transport.disconnecting

    def send(self, data: bytes) -> bytes:
        """Send raw bytes; return what the gateway wrote back meanwhile."""
        if self.protocol is None:
            raise ConnectionError("the gateway refused this connection")
        self.protocol.dataReceived(data)
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
        """Bytes the gateway wrote since the previous call."""
        written: bytes = self.transport.value()
        new, self._read = written[self._read :], len(written)
        return new

    def disconnect(self) -> None:
        """Drop the connection, as a tracker losing coverage does."""
        if self.protocol is not None and not self.transport.disconnecting:
            self.transport.loseConnection()
            self.protocol.connectionLost(Failure(ConnectionError("tracker left")))
