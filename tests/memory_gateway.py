"""A gateway in memory for load tests on a fake clock: it accepts every
login and ACKs each packet when the test says, noting when it came."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import attrs
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import (
    IProtocol,
    IProtocolFactory,
    IStreamClientEndpoint,
    ITransport,
)
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from zope.interface import implementer

from teltotwist.codec import (
    AvlPacket,
    Frame,
    Login,
    StreamFramer,
    decode_frame,
    login_reply,
    tcp_ack,
)

GATEWAY = IPv4Address("TCP", "127.0.0.1", 5027)
TRACKER = IPv4Address("TCP", "127.0.0.1", 40000)

AckDelay = Callable[[str, int], float]
"""Seconds the gateway waits before ACKing tracker IMEI's packet n (from 1)."""


@attrs.frozen
class Arrival:
    """A packet the gateway received: when, from whom, how many records
    stamped when (device time, ms)."""

    at: float
    imei: str
    records: int
    stamps: tuple[int, ...]


@implementer(ITransport)
class _GatewaySide:
    """The tracker's transport; the gateway reads what it writes and answers
    on the clock, never from inside the tracker's own write."""

    def __init__(self, gateway: MemoryGateway, tracker: IProtocol) -> None:
        self._gateway = gateway
        self._tracker = tracker
        self._framer = StreamFramer()
        self._imei = ""
        self._packets = 0
        self.disconnecting = False

    def write(self, data: bytes) -> None:
        clock = self._gateway.clock
        for event in self._framer.feed(data):
            if isinstance(event, Login):
                self._imei = event.imei
                clock.callLater(0, self._reply, login_reply(True))
            elif isinstance(event, Frame):
                packet = decode_frame(event.data)
                assert isinstance(packet, AvlPacket)
                count = len(packet.records)
                self._packets += 1
                stamps = tuple(record.timestamp_ms for record in packet.records)
                arrival = Arrival(clock.seconds(), self._imei, count, stamps)
                self._gateway.arrivals.append(arrival)
                self._gateway.log.append(("packet", self._imei))
                delay = self._gateway.ack_delay(self._imei, self._packets)
                clock.callLater(delay, self._reply, tcp_ack(count))

    def writeSequence(self, data: Iterable[bytes]) -> None:
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        if not self.disconnecting:
            self.disconnecting = True
            reason = Failure(ConnectionDone())
            self._gateway.clock.callLater(0, self._tracker.connectionLost, reason)

    def getPeer(self) -> IPv4Address:
        return GATEWAY

    def getHost(self) -> IPv4Address:
        return TRACKER

    def _reply(self, data: bytes) -> None:
        if not self.disconnecting:
            if len(data) == len(tcp_ack(1)):
                self._gateway.log.append(("ack", self._imei))
            self._tracker.dataReceived(data)


@implementer(IStreamClientEndpoint)
class MemoryGateway:
    """Every connect() succeeds at once, to this gateway."""

    def __init__(self, clock: Clock, ack_delay: AckDelay = lambda imei, n: 0.0):
        self.clock = clock
        self.ack_delay = ack_delay
        self.arrivals: list[Arrival] = []
        self.log: list[tuple[str, str]] = []
        """("packet", IMEI) and ("ack", IMEI), in the order they passed."""

    def connect(self, factory: IProtocolFactory) -> Deferred[IProtocol]:
        tracker = factory.buildProtocol(None)  # type: ignore[arg-type]
        assert tracker is not None
        tracker.makeConnection(_GatewaySide(self, tracker))
        return succeed(tracker)

    def sends(self, imei: str) -> list[float]:
        """When each packet of *imei* came."""
        return [arrival.at for arrival in self.arrivals if arrival.imei == imei]


def run_on(clock: Clock, running: Deferred[Any], until: float | None = None) -> None:
    """Advance *clock* from one delayed call to the next until *running* has
    fired, or until clock time *until*."""
    while not running.called:
        calls = clock.getDelayedCalls()
        assert calls, "nothing left to run"
        next_call = min(call.getTime() for call in calls)
        if until is not None and next_call > until:
            clock.advance(until - clock.seconds())
            return
        clock.advance(max(0.0, next_call - clock.seconds()))
