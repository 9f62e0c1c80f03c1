# -*- test-case-name: tests.test_gateway_tcp -*-
"""Twisted's side of a tracker connection: moves bytes, timers and Deferreds
for a :class:`~teltotwist.gateway.session.TrackerSession`; no parsing here."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IAddress, IDelayedCall, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from teltotwist.gateway.admission import Admission, Crowding, Refused
from teltotwist.gateway.dispatch import Dispatcher
from teltotwist.gateway.faultlog import FaultLog
from teltotwist.gateway.items import Item, now_ms
from teltotwist.gateway.limits import DuplicateLogin, Limits
from teltotwist.gateway.session import (
    Action,
    Close,
    CommandReceived,
    Deliver,
    Discard,
    LoggedIn,
    Send,
    State,
    TrackerSession,
)


class TeltonikaTcpProtocol(Protocol):
    """One tracker's TCP connection."""

    log = Logger()

    def __init__(self, factory: TeltonikaTcpFactory, peer: str) -> None:
        self.factory = factory
        self.peer = peer
        self.session = TrackerSession(
            factory.allow,
            factory.now_ms,
            factory.limits.max_frame_size,
            factory.limits.imei_policy,
            claim=lambda imei: factory.claim(self, imei),
        )
        self.last_active = factory.clock.seconds()
        """When the tracker last sent a byte (reactor seconds)."""
        self._timer: IDelayedCall | None = None

    @property
    def label(self) -> str:
        """IMEI (once known) and peer address, for the log."""
        return f"{self.session.imei or 'unknown IMEI'} at {self.peer}"

    def connectionMade(self) -> None:
        self._arm(self.factory.limits.login_timeout, "no IMEI login")

    def dataReceived(self, data: bytes) -> None:
        self.last_active = self.factory.clock.seconds()
        if self.session.imei is not None:
            self._arm(self.factory.limits.idle_timeout, "idle")
        self._perform(self.session.data_received(data))

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        self._disarm()
        self.session.connection_lost()
        self.factory.forget(self)

    def replace(self) -> None:
        """A newer connection logged in with the same IMEI: this one goes."""
        self._perform(self.session.replaced())

    def close(self, reason: str) -> None:
        """The gateway closes this connection; *reason* goes to the log."""
        self._perform(self.session.close(reason))

    def evict(self) -> None:
        """Close, without a log line of its own, to make room for another
        connection (the factory logs that, rate-limited)."""
        self.session.connection_lost()
        if self.transport is not None:
            self.transport.loseConnection()

    def stop_reading(self) -> None:
        """Shutdown began: read nothing more from this tracker."""
        assert self.transport is not None
        self.transport.pauseProducing()  # type: ignore[attr-defined]

    def _perform(self, actions: Sequence[Action]) -> None:
        transport = self.transport
        assert transport is not None
        for action in actions:
            match action:
                case Send(data=data):
                    transport.write(data)
                case LoggedIn(imei=imei):
                    self.log.info("{label}: logged in", label=self.label)
                    self._arm(self.factory.limits.idle_timeout, "idle")
                    self.factory.logged_in(self, imei)
                case Deliver(items=items):
                    self._deliver(items)
                case CommandReceived(frame=frame):
                    self.log.info(
                        "{label}: codec {codec} frame: {messages}",
                        label=self.label,
                        codec=frame.codec.label,
                        messages=[m.text or m.payload.hex() for m in frame.messages],
                    )
                case Discard(reason=reason):
                    self.log.warn("{label}: {reason}", label=self.label, reason=reason)
                case Close(reason=reason):
                    self.log.warn(
                        "{label}: closing: {reason}", label=self.label, reason=reason
                    )
                    transport.loseConnection()

    def _deliver(self, items: tuple[Item, ...]) -> None:
        self._disarm()
        self.transport.pauseProducing()  # type: ignore[union-attr]
        delivery = self.factory.deliver(items)
        delivery.addCallbacks(self._delivered, self._not_delivered)
        delivery.addErrback(self._crashed)

    def _delivered(self, _: None) -> None:
        if self.factory.stopping:
            self._perform(self.session.delivery_failed("the gateway is shutting down"))
            return
        actions = self.session.delivery_succeeded()
        if not actions:
            self.log.warn(
                "{label}: records delivered after the connection closed, not ACKed",
                label=self.label,
            )
            return
        self.transport.resumeProducing()  # type: ignore[union-attr]
        self._arm(self.factory.limits.idle_timeout, "idle")
        self._perform(actions)

    def _not_delivered(self, failure: Failure) -> None:
        self._perform(self.session.delivery_failed(failure.getErrorMessage()))

    def _crashed(self, failure: Failure) -> None:
        self.log.failure("{label}: unexpected error", failure, label=self.label)
        if self.transport is not None:
            self.transport.loseConnection()

    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._timer = self.factory.clock.callLater(
            seconds, self._expired, what, seconds
        )

    def _disarm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _expired(self, what: str, seconds: float) -> None:
        self._timer = None
        self._perform(self.session.timed_out(f"{what} for {seconds:g} s"))


class TeltonikaTcpFactory(Factory):
    """Makes a :class:`TeltonikaTcpProtocol` per tracker connection within
    the :class:`~teltotwist.gateway.admission.Admission` slots, keeps one
    connection per IMEI (``Limits.duplicate_login``), and knows what is in
    flight for shutdown."""

    log = Logger()
    noisy = False

    def __init__(
        self,
        dispatcher: Dispatcher,
        clock: IReactorTime,
        *,
        allow: Callable[[str], bool] = lambda imei: True,
        limits: Limits = Limits(),
        now_ms: Callable[[], int] = now_ms,
    ) -> None:
        self.dispatcher = dispatcher
        self.clock = clock
        self.allow = allow
        self.limits = limits
        self.now_ms = now_ms
        self.stopping = False
        self.connections: set[TeltonikaTcpProtocol] = set()
        self.by_imei: dict[str, TeltonikaTcpProtocol] = {}
        self.admission: Admission[TeltonikaTcpProtocol] = Admission(
            limits.max_connections, limits.max_pending_per_address
        )
        self.faults = FaultLog(self.log, clock)
        self._in_flight: set[Deferred[None]] = set()

    def buildProtocol(self, addr: IAddress) -> TeltonikaTcpProtocol | None:  # type: ignore[override]
        if self.stopping:
            return None
        peer = _describe(addr)
        protocol = TeltonikaTcpProtocol(self, peer)
        admitted = self.admission.admit(protocol, _host(addr))
        if isinstance(admitted, Refused):
            self.faults.warn(
                "gateway full",
                "Refusing {peer}: all {count} connections are logged-in trackers",
                peer=peer,
                count=len(self.admission),
            )
            return None
        if admitted.evicted is not None:
            self._evict(admitted.evicted, admitted.crowding, peer)
        self.connections.add(protocol)
        return protocol

    def _evict(
        self, evicted: TeltonikaTcpProtocol, crowding: Crowding | None, peer: str
    ) -> None:
        if crowding is Crowding.ADDRESS:
            self.faults.warn(
                "address crowded",
                "Closing {evicted}: its address has {count} connections "
                "without a login; the oldest makes room for {peer}",
                evicted=evicted.peer,
                count=self.limits.max_pending_per_address,
                peer=peer,
            )
        else:
            self.faults.warn(
                "gateway crowded",
                "Closing {evicted}, the oldest of {waiting} connections without "
                "a login: {count} connections open, making room for {peer}",
                evicted=evicted.peer,
                waiting=self.admission.waiting + 1,
                count=self.limits.max_connections,
                peer=peer,
            )
        evicted.evict()

    def claim(self, protocol: TeltonikaTcpProtocol, imei: str) -> str | None:
        """Why *protocol* may not log in as *imei* now, or None.

        With ``--duplicate-login reject``, a login is refused while the IMEI's
        current connection sent a byte within ``duplicate_login_window``.
        """
        holder = self.by_imei.get(imei)
        if (
            holder is None
            or holder.session.state is State.CLOSED
            or self.limits.duplicate_login is DuplicateLogin.REPLACE
        ):
            return None
        quiet = self.clock.seconds() - holder.last_active
        if quiet >= self.limits.duplicate_login_window:
            return None
        self.faults.warn(
            "duplicate login rejected",
            "Security: IMEI {imei}: login from {peer} rejected, the connection "
            "from {holder} sent bytes {quiet:.0f} s ago (--duplicate-login reject)",
            imei=imei,
            peer=protocol.peer,
            holder=holder.peer,
            quiet=quiet,
        )
        return f"IMEI {imei} is logged in from {holder.peer}, active {quiet:.0f} s ago"

    def logged_in(self, protocol: TeltonikaTcpProtocol, imei: str) -> None:
        """*protocol* holds *imei* now; its previous connection is closed."""
        self.admission.logged_in(protocol)
        older = self.by_imei.get(imei)
        self.by_imei[imei] = protocol
        if older is None or older is protocol:
            return
        if older.session.state is not State.CLOSED:
            self.faults.warn(
                "duplicate login replaced",
                "Security: IMEI {imei}: login from {peer} replaces the connection "
                "from {older}, quiet for {quiet:.0f} s (--duplicate-login {policy})",
                imei=imei,
                peer=protocol.peer,
                older=older.peer,
                quiet=self.clock.seconds() - older.last_active,
                policy=self.limits.duplicate_login.value,
            )
        older.replace()

    def close_disallowed(self) -> None:
        """Close the sessions whose IMEI is no longer allowed (after the
        allowlist was reloaded)."""
        revoked = [
            protocol for imei, protocol in self.by_imei.items() if not self.allow(imei)
        ]
        for protocol in revoked:
            protocol.close("the IMEI is no longer allowed")
        self.log.info(
            "Closed {count} sessions of IMEIs no longer allowed", count=len(revoked)
        )

    def forget(self, protocol: TeltonikaTcpProtocol) -> None:
        """*protocol*'s connection is gone."""
        self.connections.discard(protocol)
        self.admission.release(protocol)
        imei = protocol.session.imei
        if imei is not None and self.by_imei.get(imei) is protocol:
            del self.by_imei[imei]

    def deliver(self, items: tuple[Item, ...]) -> Deferred[None]:
        """Deliver through the dispatcher, remembering it until it finishes."""
        delivery = self.dispatcher.deliver(items)
        self._in_flight.add(delivery)

        def finished(result: object) -> object:
            self._in_flight.discard(delivery)
            return result

        return delivery.addBoth(finished)

    def stop_accepting(self) -> None:
        """Shutdown began: refuse connections, stop reading, ACK nothing more."""
        self.stopping = True
        for protocol in self.connections:
            protocol.stop_reading()

    def drain(self) -> Deferred[object]:
        """Fires when every delivery in flight has finished, however it ended."""
        return DeferredList(list(self._in_flight), consumeErrors=True).addCallback(
            lambda _: None
        )

    def close_all(self) -> None:
        """Close every tracker connection, and summarise the faults logged."""
        for protocol in list(self.connections):
            if protocol.transport is not None:
                protocol.transport.loseConnection()
        self.faults.stop()


def _host(address: IAddress) -> str:
    host = getattr(address, "host", None)
    return host if isinstance(host, str) else str(address)


def _describe(address: IAddress) -> str:
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    return f"{host}:{port}" if host is not None else str(address)
