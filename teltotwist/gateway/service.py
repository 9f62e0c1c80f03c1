# -*- test-case-name: tests.test_gateway_service -*-
"""The gateway as a Twisted service: listeners, sinks, and an orderly stop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from twisted.application.internet import UDPServer
from twisted.application.service import IService, MultiService, Service
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import CancelledError, Deferred, DeferredList
from twisted.internet.defer import TimeoutError as DeferredTimeoutError
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IListeningPort,
    IReactorTime,
    IReactorUDP,
    IStreamServerEndpoint,
)
from twisted.logger import Logger
from twisted.python.failure import Failure

from teltotwist.gateway.after_acks import AfterAcks
from teltotwist.gateway.command_store import SqliteCommandStore
from teltotwist.gateway.commands import Command, CommandCenter, CommandLimits
from teltotwist.gateway.dispatch import Dispatcher
from teltotwist.gateway.events import DataPathEvents
from teltotwist.gateway.items import CommandResult, now_ms
from teltotwist.gateway.limits import Limits
from teltotwist.gateway.models import NamingFor
from teltotwist.gateway.registry import TrackerRegistry
from teltotwist.gateway.tcp import TeltonikaTcpFactory
from teltotwist.gateway.traffic import TrafficTap
from teltotwist.gateway.udp import TeltonikaUdpProtocol
from teltotwist.sinks import IRecordSink
from teltotwist.sinks.readiness import is_ready, when_all_ready, why_not_ready

DEFAULT_DRAIN_TIMEOUT = 10.0
DEFAULT_SINK_READY_TIMEOUT = 10.0
_MAX_DATAGRAM = 65_535


class GatewayService(MultiService):
    """Sinks first, then the listeners; stopped in the safe order.

    On start: start the sinks, wait up to *sink_ready_timeout* seconds for
    those providing :class:`ISinkReadiness` to be ready (a broker connected),
    then listen, so that no tracker's first packet meets a sink still
    connecting. On stop (SIGTERM under twistd): stop listening, stop reading
    and ACKing, let the deliveries in flight finish within *drain_timeout*
    seconds (then cancel those left), close the connections, then stop the
    sinks. A record ACKed before the stop is in the sinks; nothing is ACKed
    after it began (deliveries finishing during the drain stay
    unacknowledged, so their trackers resend them elsewhere). The command
    center stops with the listeners: a command written and not answered
    fails (it is never written again); queued ones stay in the state
    directory for the next start.

    :attr:`registry` (the trackers known now) and :attr:`events` (add an
    observer of the data path with ``events.add``) are the TCP factory's,
    which :func:`makeService` shares with the UDP listener and the dispatcher;
    so is :attr:`traffic`, the tap of the TCP trackers' traffic.
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
        udp_reactor: IReactorUDP | None = None,
        drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
        sink_ready_timeout: float = DEFAULT_SINK_READY_TIMEOUT,
    ) -> None:
        MultiService.__init__(self)
        self.factory = factory
        self.registry: TrackerRegistry = factory.registry
        self.events: DataPathEvents = factory.events
        self.traffic: TrafficTap = factory.traffic
        self.drain_timeout = drain_timeout
        self.sink_ready_timeout = sink_ready_timeout
        self._clock = clock
        self._sinks = list(sinks)
        self._sink_services = MultiService()
        for sink in sinks:
            service = IService(sink, None)
            if service is not None:
                self._sink_services.addService(service)
        MultiService.addService(self, self._sink_services)
        self._listeners = MultiService()
        self._tcp = _EndpointListener(endpoint, factory)
        self._listeners.addService(self._tcp)
        self._udp: UDPServer | None = None
        self.datagram_protocol: TeltonikaUdpProtocol | None = None
        if udp is not None:
            port, interface, protocol = udp
            self.datagram_protocol = protocol
            self._udp = UDPServer(
                port,
                protocol,
                interface=interface,
                maxPacketSize=_MAX_DATAGRAM,
                reactor=udp_reactor,
            )
            self._udp.setServiceParent(self._listeners)
        MultiService.addService(self, self._listeners)
        self._starting: Deferred[None] | None = None
        self._listening: Literal[True] | Failure | None = None
        """True once listening, a Failure if it could not, None until then."""
        self._listen_waiters: list[Deferred[None]] = []

    def privilegedStartService(self) -> None:
        """The sinks' privileged start only: listening waits for the sinks."""
        Service.privilegedStartService(self)
        self._sink_services.privilegedStartService()

    def startService(self) -> None:
        """Start the sinks; listen once they are ready, or after
        *sink_ready_timeout* seconds (see :meth:`whenListening`)."""
        Service.startService(self)
        self._sink_services.startService()
        self._starting = Deferred.fromCoroutine(self._start_listening())
        self._starting.addErrback(lambda failure: failure.trap(CancelledError))

    def whenListening(self) -> Deferred[None]:
        """Fires once the gateway listens; fails with the
        ``CannotListenError`` of a port that cannot be bound (logged already,
        in one line)."""
        waiter: Deferred[None] = Deferred()
        if self._listening is None:
            self._listen_waiters.append(waiter)
        else:
            _settle(waiter, self._listening)
        return waiter

    @property
    def listening(self) -> bool:
        """True while the listeners are up (not before, nor once stopping)."""
        return self._listening is True and bool(self.running)

    def sinks_not_ready(self) -> list[str]:
        """The names of the sinks that could not accept a delivery now."""
        return [name for name, _ in self.sinks_not_ready_why()]

    def sinks_not_ready_why(self) -> list[tuple[str, str | None]]:
        """The sinks that could not accept a delivery now: each one's name,
        and why, when it says."""
        return [
            (sink.name, why_not_ready(sink))
            for sink in self._sinks
            if not is_ready(sink)
        ]

    async def _start_listening(self) -> None:
        await self._sinks_ready()
        try:
            addresses = await self._listen()
        except CannotListenError as error:
            self._listened(Failure(error))
            return
        self.log.info(
            "Listening for trackers on {addresses}; sinks: {sinks}",
            addresses=", ".join(addresses),
            sinks=", ".join(sink.name for sink in self._sinks),
        )
        self._listened(True)

    async def _sinks_ready(self) -> None:
        everyone = when_all_ready(self._sinks)
        if everyone.called:
            return
        self.log.info(
            "Waiting up to {timeout:g} s for the sinks to be ready: {sinks}",
            timeout=self.sink_ready_timeout,
            sinks=", ".join(self.sinks_not_ready()),
        )
        everyone.addTimeout(self.sink_ready_timeout, self._clock)
        try:
            await everyone
        except DeferredTimeoutError:
            self.log.warn(
                "Sinks not ready after {timeout:g} s: {sinks}; listening anyway "
                "(their deliveries fail until they are)",
                timeout=self.sink_ready_timeout,
                sinks=", ".join(self.sinks_not_ready()),
            )

    async def _listen(self) -> list[str]:
        """Listen on TCP, then on UDP; the addresses listened on.

        :raises CannotListenError: for the first that cannot be bound, after
            logging why in one line.
        """
        Service.startService(self._listeners)
        try:
            addresses = [_address("tcp", await self._tcp.listen())]
        except CannotListenError as error:
            self.log.error("{problem}", problem=_cannot_listen("tcp", error))
            raise
        if self._udp is not None:
            try:
                self._udp.startService()
            except CannotListenError as error:
                self.log.error("{problem}", problem=_cannot_listen("udp", error))
                raise
            assert self.datagram_protocol is not None
            transport = self.datagram_protocol.transport
            assert transport is not None
            addresses.append(_address("udp", transport.getHost()))
        return addresses

    def _listened(self, outcome: Literal[True] | Failure) -> None:
        self._listening = outcome
        waiters, self._listen_waiters = self._listen_waiters, []
        for waiter in waiters:
            _settle(waiter, outcome)

    def stopService(self) -> Deferred[None]:
        if self._starting is not None:
            self._starting.cancel()  # not listening yet: never will
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        self.running = 0
        await self._listeners.stopService()
        self.factory.stop_accepting()
        if self.factory.commands is not None:
            self.factory.commands.stop()
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


class _EndpointListener(Service):
    """Listens on *endpoint* when :meth:`listen` says, not when started."""

    def __init__(
        self, endpoint: IStreamServerEndpoint, factory: TeltonikaTcpFactory
    ) -> None:
        self._endpoint = endpoint
        self._factory = factory
        self._port: IListeningPort | None = None

    async def listen(self) -> IAddress:
        """Listen; the address listened on.

        :raises CannotListenError: when the endpoint cannot be bound.
        """
        Service.startService(self)
        self._port = await self._endpoint.listen(self._factory)
        return self._port.getHost()

    def stopService(self) -> Deferred[None] | None:
        Service.stopService(self)
        port, self._port = self._port, None
        return None if port is None else port.stopListening()


def _address(kind: str, address: IAddress) -> str:
    """*address* as ``tcp:HOST:PORT`` (or ``udp:``), for the log."""
    if isinstance(address, IPv4Address | IPv6Address):
        host = f"[{address.host}]" if ":" in address.host else address.host
        return f"{kind}:{host}:{address.port}"
    return f"{kind}:{address}"


def _cannot_listen(kind: str, error: CannotListenError) -> str:
    """``cannot listen on tcp:5027: address already in use``."""
    where = f"{kind}:{error.port}"
    if error.interface:
        where += f":interface={error.interface}"
    reason = getattr(error.socketError, "strerror", None) or str(error.socketError)
    return f"cannot listen on {where}: {reason[:1].lower()}{reason[1:]}"


def _settle(waiter: Deferred[None], outcome: Literal[True] | Failure) -> None:
    if isinstance(outcome, Failure):
        waiter.errback(outcome)
    else:
        waiter.callback(None)


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
    udp_reactor: IReactorUDP | None = None,
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
    sink_ready_timeout: float = DEFAULT_SINK_READY_TIMEOUT,
    state_dir: Path | None = None,
    command_limits: CommandLimits = CommandLimits(),
    naming: NamingFor = lambda imei: None,
) -> GatewayService:
    """The gateway, ready to add to an application's ``MultiService``.

    :param reactor: the reactor (for timeouts).
    :param endpoint: where trackers connect, e.g.
        ``serverFromString(reactor, "tcp:5027")``.
    :param sinks: where records go; each must accept a packet before its
        tracker is acknowledged.
    :param allow: which IMEIs may log in (all by default).
    :param udp_port: also receive UDP datagrams on this port.
    :param udp_reactor: what opens that port (by default the global
        reactor; a worker process adopts the one its parent opened).
    :param sink_ready_timeout: seconds to wait for the sinks to be ready
        before listening anyway.
    :param state_dir: where queued commands are kept across restarts (in
        memory only when None); its ``factory.commands`` takes commands.
    :param command_limits: how long commands wait, and how many are kept.
    :param naming: the naming of an IMEI's records, for their ``attributes``
        (a :class:`~teltotwist.gateway.models.TrackerModels`); by default
        records have none.
    """
    registry = TrackerRegistry(now_ms, limits.idle_timeout)
    events = DataPathEvents()
    dispatcher = Dispatcher(sinks, limits.sink_timeout, reactor, events)
    after_acks = AfterAcks(reactor)
    commands = CommandCenter(
        reactor,
        None if state_dir is None else SqliteCommandStore(state_dir),
        limits=command_limits,
        imei_policy=limits.imei_policy,
        results=lambda command: _deliver_result(dispatcher, command),
        events=events,
    )
    factory = TeltonikaTcpFactory(
        dispatcher,
        reactor,
        allow=allow,
        limits=limits,
        registry=registry,
        events=events,
        commands=commands,
        naming=naming,
        after_acks=after_acks,
    )
    udp = None
    if udp_port is not None:
        protocol = TeltonikaUdpProtocol(
            dispatcher,
            allow,
            reactor,
            limits=limits,
            registry=registry,
            events=events,
            naming=naming,
            after_acks=after_acks,
        )
        udp = (udp_port, udp_interface, protocol)
    return GatewayService(
        factory,
        endpoint,
        sinks,
        reactor,
        udp=udp,
        udp_reactor=udp_reactor,
        drain_timeout=drain_timeout,
        sink_ready_timeout=sink_ready_timeout,
    )


def _deliver_result(dispatcher: Dispatcher, command: Command) -> None:
    """Pass a command's outcome to the sinks, best effort: a sink that fails
    is logged (there is no tracker to resend it)."""
    item = CommandResult(command.imei, command.to_json(), now_ms())
    dispatcher.deliver((item,)).addErrback(
        lambda failure: GatewayService.log.warn(
            "Command {id}: result not delivered: {error}",
            id=command.id,
            error=failure.getErrorMessage(),
        )
    )
