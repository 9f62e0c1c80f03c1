# -*- test-case-name: tests.test_gateway_service -*-
"""The gateway as a Twisted service: listeners, sinks, and an orderly stop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from twisted.application.internet import StreamServerEndpointService, UDPServer
from twisted.application.service import IService, MultiService
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import (
    IDelayedCall,
    IReactorTime,
    IStreamServerEndpoint,
)
from twisted.logger import Logger

from teltotwist.gateway.dispatch import Dispatcher
from teltotwist.gateway.limits import Limits
from teltotwist.gateway.tcp import TeltonikaTcpFactory
from teltotwist.gateway.udp import TeltonikaUdpProtocol
from teltotwist.sinks import IRecordSink

DEFAULT_DRAIN_TIMEOUT = 10.0
_MAX_DATAGRAM = 65_535


class GatewayService(MultiService):
    """Sinks first, then the listeners; stopped in the safe order.

    On stop (SIGTERM under twistd): stop listening, stop reading and ACKing,
    let the deliveries in flight finish within *drain_timeout* seconds (then
    cancel those left), close the connections, then stop the sinks. A record
    ACKed before the stop is in the sinks; nothing is ACKed after it began
    (deliveries finishing during the drain stay unacknowledged, so their
    trackers resend them elsewhere).
    """

    log = Logger()

    def __init__(
        self,
        factory: TeltonikaTcpFactory,
        endpoint: IStreamServerEndpoint,
        sinks: Sequence[IRecordSink],
        clock: IReactorTime,
        *,
        udp: tuple[int, str, TeltonikaUdpProtocol] | None = None,
        drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
    ) -> None:
        MultiService.__init__(self)
        self.factory = factory
        self.drain_timeout = drain_timeout
        self._clock = clock
        self._sink_services = MultiService()
        for sink in sinks:
            service = IService(sink, None)
            if service is not None:
                self._sink_services.addService(service)
        MultiService.addService(self, self._sink_services)
        self._listeners = MultiService()
        tcp = StreamServerEndpointService(endpoint, factory)
        # As twisted.application.strports does: a port that cannot be bound
        # fails startService instead of leaving a gateway that never listens.
        tcp._raiseSynchronously = True
        self._listeners.addService(tcp)
        self.datagram_protocol: TeltonikaUdpProtocol | None = None
        if udp is not None:
            port, interface, protocol = udp
            self.datagram_protocol = protocol
            UDPServer(
                port, protocol, interface=interface, maxPacketSize=_MAX_DATAGRAM
            ).setServiceParent(self._listeners)
        MultiService.addService(self, self._listeners)

    def startService(self) -> None:
        """Start the sinks, then listen."""
        MultiService.startService(self)

    def stopService(self) -> Deferred[None]:
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        self.running = 0
        await self._listeners.stopService()
        self.factory.stop_accepting()
        if self.datagram_protocol is not None:
            self.datagram_protocol.stop_accepting()
        if not await self._drained_in_time():
            self.log.warn(
                "Deliveries still in flight after {seconds} s; cancelling them",
                seconds=self.drain_timeout,
            )
            self.factory.dispatcher.cancel()
        self.factory.close_all()
        await self._sink_services.stopService()

    def _drained_in_time(self) -> Deferred[bool]:
        """True once all in-flight deliveries finished, False if the drain
        timeout came first."""
        outcome: Deferred[bool] = Deferred()

        def settle(in_time: bool) -> None:
            if not outcome.called:
                outcome.callback(in_time)

        timer = self._clock.callLater(self.drain_timeout, settle, False)
        self._drain().addBoth(lambda _: settle(True))
        return outcome.addBoth(_cancel_timer, timer)

    def _drain(self) -> Deferred[object]:
        waits: list[Deferred[Any]] = [self.factory.drain()]
        if self.datagram_protocol is not None:
            waits.append(self.datagram_protocol.drain())
        return DeferredList(waits, consumeErrors=True).addCallback(lambda _: None)


def _cancel_timer(result: bool, timer: IDelayedCall) -> bool:
    if timer.active():
        timer.cancel()
    return result


def makeService(
    reactor: IReactorTime,
    endpoint: IStreamServerEndpoint,
    sinks: Sequence[IRecordSink],
    *,
    allow: Callable[[str], bool] = lambda imei: True,
    limits: Limits = Limits(),
    udp_port: int | None = None,
    udp_interface: str = "",
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
) -> GatewayService:
    """The gateway, ready to add to an application's ``MultiService``.

    :param reactor: the reactor (for timeouts).
    :param endpoint: where trackers connect, e.g.
        ``serverFromString(reactor, "tcp:5027")``.
    :param sinks: where records go; each must accept a packet before its
        tracker is acknowledged.
    :param allow: which IMEIs may log in (all by default).
    :param udp_port: also receive UDP datagrams on this port.
    """
    dispatcher = Dispatcher(sinks, limits.sink_timeout, reactor)
    factory = TeltonikaTcpFactory(dispatcher, reactor, allow=allow, limits=limits)
    udp = None
    if udp_port is not None:
        protocol = TeltonikaUdpProtocol(dispatcher, allow, reactor, limits=limits)
        udp = (udp_port, udp_interface, protocol)
    return GatewayService(
        factory, endpoint, sinks, reactor, udp=udp, drain_timeout=drain_timeout
    )
