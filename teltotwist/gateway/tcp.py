# -*- test-case-name: tests.test_gateway_tcp -*-
"""Twisted's side of a tracker connection: moves bytes, timers and Deferreds
for a :class:`~teltotwist.gateway.session.TrackerSession`; no parsing here."""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import suppress

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from teltotwist.codec import CommandFrame
from teltotwist.gateway.admission import Admission, Crowding, Refused
from teltotwist.gateway.after_acks import AfterAcks
from teltotwist.gateway.commands import CommandCenter
from teltotwist.gateway.dispatch import Dispatcher
from teltotwist.gateway.events import DataPathEvents, LoginResult, Transport
from teltotwist.gateway.faultlog import FaultLog
from teltotwist.gateway.immediate import ImmediateWriter
from teltotwist.gateway.items import Item, TrackerRecord, now_ms
from teltotwist.gateway.limits import DuplicateLogin, Limits
from teltotwist.gateway.models import NamingFor
from teltotwist.gateway.presence import CLAIM_WAIT, HolderSilentError, Presence
from teltotwist.gateway.proxied import IProxiedProtocol, awaits_proxy_header
from teltotwist.gateway.registry import TrackerRegistry
from teltotwist.gateway.session import (
    Action,
    ClaimLogin,
    Close,
    CommandAnswered,
    CommandReceived,
    CommandsReady,
    Deliver,
    Discard,
    LoggedIn,
    Send,
    SendCommand,
    State,
    TrackerSession,
)
from teltotwist.gateway.timeouts import Timeout
from teltotwist.gateway.traffic import TrafficTap
from teltotwist.gateway.unfinished import UnfinishedBytes

# FaultLog kinds: why a connection closed, or how it ended.
_BAD_INPUT = "bad input"
_TIMEOUT = "timeout"
_REPLACED = "replaced"
_OVER_BUDGET = "unfinished-frame budget"
_NOT_DELIVERED = "not delivered"
_NO_LOGIN = "no login"
_CLOSED_BY_GATEWAY = "closed by the gateway"

CLAIM_GIVE_UP = CLAIM_WAIT + 1.0
"""Seconds a login waits for the presence, which bounds its own wait at
:data:`CLAIM_WAIT`; past this the presence itself hangs (its bus takes no
request), and the login is decided here."""

_WAITING = frozenset({State.CLAIMING, State.DELIVERING})
"""The session's states in which the tracker waits for the gateway."""


@implementer(IProxiedProtocol)
class TeltonikaTcpProtocol(Protocol):
    """One tracker's TCP connection.

    Slotted, and its timeouts are the factory's (:class:`Timeout`): tens of
    thousands of idle trackers each cost only what they must hold.
    """

    __slots__ = (
        "_acked_packets",
        "_acked_records",
        "_actions",
        "_admitted",
        "_connected_at",
        "_frame_complete_at",
        "_in_flight",
        "_located",
        "_packets",
        "_reading_paused",
        "_records",
        "connected",
        "factory",
        "last_active",
        "peer",
        "session",
        "transport",
    )

    log = Logger()

    def __init__(self, factory: TeltonikaTcpFactory, peer: str) -> None:
        self.factory: TeltonikaTcpFactory = factory
        self.peer = peer
        """The tracker's address, ``HOST:PORT``; behind a load balancer,
        ``proxy HOST:PORT`` (the balancer's) until the PROXY header named it."""
        self.transport = None
        self.connected = 0
        self.session = TrackerSession(
            factory.allow,
            factory.now_ms,
            factory.limits.max_frame_size,
            factory.limits.imei_policy,
            claim=self._claim,
            claims_elsewhere=self._claims_elsewhere,
            naming=factory.naming,
        )
        self.last_active = factory.clock.seconds()
        """When the tracker last sent a byte (reactor seconds)."""
        self._actions: deque[tuple[Action, str]] | None = None
        """The actions still to carry out, while carrying them out."""
        self._connected_at = self.last_active
        self._packets = self._records = 0
        self._acked_packets = self._acked_records = 0
        self._in_flight: tuple[Item, ...] = ()
        """The packet with the sinks; let go once they answer, or an idle
        tracker would keep its last packet in memory."""
        self._frame_complete_at = 0.0
        """When the read completing the packet in flight came (reactor s)."""
        self._reading_paused = False
        """Reading waits for the ACK of the packet in flight."""
        self._admitted = False
        """The connection holds a slot (see :meth:`TeltonikaTcpFactory.admit`)."""
        self._located = True
        """The peer address is the tracker's (False until a PROXY header
        named it)."""
        self._writer: ImmediateWriter
        """Writes the replies and commands (from the admission on)."""

    @property
    def label(self) -> str:
        """IMEI (once known) and peer address, for the log."""
        return f"{self.session.imei or 'unknown IMEI'} at {self.peer}"

    def connectionMade(self) -> None:
        assert self.transport is not None
        address: str | None = _host(self.transport.getPeer())
        if awaits_proxy_header(self.transport):
            self.peer = f"proxy {self.peer}"
            self._located = False
            address = None
        if not self.factory.admit(self, address):
            self.transport.loseConnection()
            return
        self._admitted = True
        self._writer = ImmediateWriter(self.transport)
        self._connected_at = self.factory.clock.seconds()
        self.factory.events.connection_opened(Transport.TCP)
        self.factory.login_deadlines.start(self)

    def dataReceived(self, data: bytes) -> None:
        if not self._located:
            self._locate()
        if self.session.state in _WAITING and not self._reading_paused:
            # A tracker waits for its ACK (or login reply) before it sends
            # more; one that does not is read no further until then, so at
            # most this read waits in memory. Pausing only now spares a
            # tracker that waits, as they do, two system calls per packet.
            assert self.transport is not None
            self.transport.pauseProducing()  # type: ignore[attr-defined]
            self._reading_paused = True
        self.last_active = self.factory.clock.seconds()
        if self.session.imei is not None:
            self.factory.idle_deadlines.start(self)
            if not self.session.commands_ready:
                self.factory.quiet_spells.start(self)
        held_before = self.session.buffered
        self._perform(self.session.data_received(data))
        held = self.session.buffered
        # Unless the bytes held are the same unfinished frame plus this read,
        # they belong to a frame begun in this read.
        started = not held_before or held != held_before + len(data)
        self._track_unfinished(started)

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        if not self._admitted:
            return
        factory = self.factory
        factory.login_deadlines.cancel(self)
        factory.idle_deadlines.cancel(self)
        factory.quiet_spells.cancel(self)
        self.session.connection_lost()
        self._track_unfinished(started=False)
        # The commands first: a command handed over but not written is
        # queued again before the presence hears that the tracker left.
        self._commands_gone()
        self.factory.forget(self)
        if self.session.imei is not None:
            self.factory.registry.tcp_closed(self.session.imei, self)
        self.factory.events.connection_closed(Transport.TCP)
        if self.factory.traffic.active:
            self.factory.traffic.closed(self.session.imei)
        self._log_disconnect()

    def header_read(self) -> None:
        if not self._located:
            self._locate()

    def _locate(self) -> None:
        """The PROXY header was read (bytes only follow it): the peer is the
        tracker's address from now on."""
        assert self.transport is not None
        self._located = True
        address = self.transport.getPeer()
        self.peer = _describe(address)
        self.factory.located(self, _host(address))

    def replace(self) -> None:
        """A newer connection logged in with the same IMEI: this one goes."""
        self._perform(self.session.replaced(), _REPLACED)

    def shed(self) -> None:
        """The unfinished frames of all connections exceed their budget, and
        this connection's is the oldest: it goes."""
        self._perform(
            self.session.shed(
                "unfinished frames of all connections exceed "
                f"{self.factory.limits.max_buffered_bytes} bytes; "
                "this connection's is the oldest"
            ),
            _OVER_BUDGET,
        )

    def close(self, reason: str) -> None:
        """The gateway closes this connection; *reason* goes to the log."""
        self._perform(self.session.close(reason), _CLOSED_BY_GATEWAY)

    def send_command(self, frame: CommandFrame) -> None:
        """Write *frame* once the tracker waits for no ACK (one at a time)."""
        self._perform(self.session.send_command(frame))

    def abandon_command(self) -> None:
        """Stop waiting for the answer to the command handed over."""
        self.session.abandon_command()

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

    def _perform(self, actions: Iterable[Action], fault: str = _BAD_INPUT) -> None:
        """Carry out *actions* in order, after any already queued; a
        :class:`Close` among them is logged as a *fault* (a FaultLog kind).

        A delivery that fires at once queues the session's next actions
        instead of performing them from inside this call, so any number of
        frames in one read is handled in a loop, never by recursion.
        """
        if self._actions is not None:
            self._actions.extend((action, fault) for action in actions)
            return
        queue = self._actions = deque((action, fault) for action in actions)
        traffic = self.factory.traffic
        try:
            while queue:
                action, fault = queue.popleft()
                self._carry_out(action, fault)
                if traffic.active:
                    traffic.action(self.session.imei, action)
        finally:
            self._actions = None

    def _carry_out(self, action: Action, fault: str) -> None:
        transport = self.transport
        assert transport is not None
        match action:
            case Send(data=data):
                self._writer.write(data)
            case LoggedIn(imei=imei):
                self.log.info("{label}: logged in", label=self.label)
                self.factory.login_deadlines.cancel(self)
                self.factory.idle_deadlines.start(self)
                self.factory.logged_in(self, imei)
                self.factory.registry.tcp_logged_in(imei, self.peer, self)
                self.factory.events.login(Transport.TCP, LoginResult.ACCEPTED)
                self._commands_logged_in(imei)
                if self.factory.presence is not None:
                    self.factory.presence.logged_in(imei)
            case ClaimLogin(imei=imei):
                self._claim_elsewhere(imei)
            case Deliver(items=items):
                self._deliver(items)
            case CommandsReady() | SendCommand() | CommandAnswered():
                self._command_action(action)
            case CommandReceived(frame=frame):
                self.log.info(
                    "{label}: codec {codec} frame: {messages}",
                    label=self.label,
                    codec=frame.codec.label,
                    messages=[m.text or m.payload.hex() for m in frame.messages],
                )
            case Discard(reason=reason):
                self.log.warn("{label}: {reason}", label=self.label, reason=reason)
            case Close(reason=reason, cause=cause):
                self.factory.faults.warn(
                    fault, "{label}: closing: {reason}", label=self.label, reason=reason
                )
                self._track_unfinished(started=False)
                transport.loseConnection()
                if isinstance(cause, LoginResult):
                    self.factory.events.login(Transport.TCP, cause)
                elif cause is not None:
                    self.factory.events.rejected(Transport.TCP, cause)

    def _commands_logged_in(self, imei: str) -> None:
        """Commands wait for the first ACK or a quiet spell."""
        self.factory.quiet_spells.start(self)
        if self.factory.commands is not None:
            self.factory.commands.tracker_logged_in(imei, self)

    def _command_action(
        self, action: CommandsReady | SendCommand | CommandAnswered
    ) -> None:
        imei = self.session.imei
        assert imei is not None and self.transport is not None
        commands = self.factory.commands
        match action:
            case CommandsReady():
                self.factory.quiet_spells.cancel(self)
                if commands is not None:
                    commands.tracker_ready(imei, self)
            case SendCommand(data=data):
                self._writer.write(data)
                if commands is not None:
                    commands.command_written(imei, self)
            case CommandAnswered(message=message, executed=executed):
                if commands is not None:
                    commands.command_answered(imei, self, message, executed)

    def login_expired(self) -> None:
        """No login within ``Limits.login_timeout``: close."""
        self._timed_out("no IMEI login", self.factory.limits.login_timeout)

    def idle_expired(self) -> None:
        """No byte within ``Limits.idle_timeout`` since the last (or the last
        ACK): close."""
        self._timed_out("idle", self.factory.limits.idle_timeout)

    def frame_expired(self) -> None:
        """The unfinished frame did not complete within
        ``Limits.frame_timeout`` of its start: close."""
        self._timed_out("an unfinished frame", self.factory.limits.frame_timeout)

    def quiet_spell(self) -> None:
        """No data within ``Limits.command_quiet`` of the login: the
        tracker holds no stored records, commands may go."""
        self._perform(self.session.quiet())

    def _timed_out(self, what: str, seconds: float) -> None:
        self._perform(self.session.timed_out(f"{what} for {seconds:g} s"), _TIMEOUT)

    def _claim(self, imei: str) -> str | None:
        return self.factory.claim(self, imei)

    def _claims_elsewhere(self, imei: str) -> bool:
        return self.factory.presence is not None and imei not in self.factory.by_imei

    def _claim_elsewhere(self, imei: str) -> None:
        """Ask the presence whether *imei* may log in here."""
        presence = self.factory.presence
        assert presence is not None
        asked = presence.claim(imei, self.peer)
        asked.addTimeout(CLAIM_GIVE_UP, self.factory.clock)
        asked.addErrback(self._claim_unanswered, imei)
        asked.addCallback(self._claimed, imei)

    def _claim_unanswered(self, failure: Failure, imei: str) -> str | None:
        """A holder that stays silent may be using the IMEI: under
        ``--duplicate-login reject`` the login is refused. Otherwise (the
        others cannot be asked, or a login replaces the holder anyway) it is
        decided here alone, so that a bus outage locks no tracker out."""
        error = failure.getErrorMessage() or repr(failure.value)
        if (
            failure.check(HolderSilentError)
            and self.factory.limits.duplicate_login is DuplicateLogin.REJECT
        ):
            self.factory.faults.warn(
                "duplicate login rejected",
                "Security: IMEI {imei}: login from {peer} rejected, the member "
                "holding it did not answer within {wait:g} s (--duplicate-login "
                "reject)",
                imei=imei,
                peer=self.peer,
                wait=CLAIM_WAIT,
            )
            return (
                f"IMEI {imei} is held by another gateway, which did not answer "
                f"within {CLAIM_WAIT:g} s"
            )
        self.log.warn(
            "{label}: login for {imei} decided here: {error}",
            label=self.label,
            imei=imei,
            error=error,
        )
        return None

    def _claimed(self, conflict: str | None, imei: str) -> None:
        if self.transport is None or self.session.state is not State.CLAIMING:
            presence = self.factory.presence
            assert presence is not None
            presence.claim_dropped(imei)
            return
        self._perform(self.session.login_claimed(conflict))
        self._resume_reading()

    def _resume_reading(self) -> None:
        """Read again, if reading waited and the tracker may send now."""
        if self._reading_paused and self.session.state is State.STREAMING:
            self._reading_paused = False
            self.transport.resumeProducing()  # type: ignore[union-attr]

    def _commands_gone(self) -> None:
        imei = self.session.imei
        if imei is not None and self.factory.commands is not None:
            self.factory.commands.tracker_gone(imei, self)

    def _track_unfinished(self, started: bool) -> None:
        """Time the unfinished frame (none runs while a packet is with the
        sinks: the tracker waits for its ACK), and count it against the
        budget of all connections."""
        held = self.session.buffered
        frames = self.factory.frame_deadlines
        if not held or self.session.state is State.DELIVERING:
            frames.cancel(self)
        elif started or self not in frames:
            frames.start(self)
        self.factory.holding(self, held, started)

    def _deliver(self, items: tuple[Item, ...]) -> None:
        self.factory.idle_deadlines.cancel(self)
        self.factory.frame_deadlines.cancel(self)
        self._packets += 1
        self._records += len(items)
        self._in_flight = items
        self._frame_complete_at = self.last_active
        delivery = self.factory.dispatcher.deliver(items)
        delivery.addBoth(self._answered)

    def _answered(self, verdict: Failure | None) -> None:
        """The sinks answered for the packet in flight: ACK it, or not."""
        try:
            if isinstance(verdict, Failure):
                self._not_delivered(verdict)
            else:
                self._delivered()
        except Exception:
            self._failed_unexpectedly()

    def _failed_unexpectedly(self) -> None:
        """A bug once the sinks answered: log it with its traceback and close
        the connection; the tracker reconnects (and resends what it holds)
        instead of waiting on a connection in an unknown state."""
        self.log.failure("{label}: unexpected error", label=self.label)
        if self.transport is not None:
            self.transport.loseConnection()

    def _delivered(self) -> None:
        acked, self._in_flight = self._in_flight, ()
        if self.factory.stopping:
            self._perform(
                self.session.delivery_failed("the gateway is shutting down"),
                _NOT_DELIVERED,
            )
            return
        actions = self.session.delivery_succeeded()
        if not actions:
            self.log.warn(
                "{label}: records delivered after the connection closed, not ACKed",
                label=self.label,
            )
            return
        complete_at = self._frame_complete_at
        self._acked_packets += 1
        self._acked_records += len(acked)
        if self._reading_paused:
            self._reading_paused = False
            self.transport.resumeProducing()  # type: ignore[union-attr]
        self.factory.idle_deadlines.start(self)
        self._perform(actions)
        self._track_unfinished(started=False)
        self.factory.after_acks.add(
            self._report_ack, acked, self.factory.clock.seconds() - complete_at
        )

    def _report_ack(self, items: tuple[Item, ...], latency: float) -> None:
        """Tell the registry and the observers that *items* were ACKed
        (:attr:`TeltonikaTcpFactory.after_acks` runs this)."""
        try:
            imei = self.session.imei
            assert imei is not None
            records = [item.record for item in items if isinstance(item, TrackerRecord)]
            self.factory.registry.tcp_packet(imei, records)
            first = items[0] if items else None
            codec = first.codec if isinstance(first, TrackerRecord) else None
            self.factory.events.records_acknowledged(
                Transport.TCP, codec, len(records), latency
            )
        except Exception:
            self._failed_unexpectedly()

    def _not_delivered(self, failure: Failure) -> None:
        self._in_flight = ()
        self._perform(
            self.session.delivery_failed(failure.getErrorMessage()), _NOT_DELIVERED
        )

    def _log_disconnect(self) -> None:
        seconds = self.factory.clock.seconds() - self._connected_at
        if self.session.imei is None:
            self.factory.faults.warn(
                _NO_LOGIN,
                "{label}: disconnected after {seconds:.1f} s without logging in",
                label=self.label,
                seconds=seconds,
            )
            return
        self.log.info(
            "{label}: disconnected after {seconds:.1f} s; received {packets} "
            "packets ({records} records), acknowledged {acked_packets} "
            "({acked_records} records)",
            label=self.label,
            seconds=seconds,
            packets=self._packets,
            records=self._records,
            acked_packets=self._acked_packets,
            acked_records=self._acked_records,
        )


class TeltonikaTcpFactory(Factory):
    """Makes a :class:`TeltonikaTcpProtocol` per tracker connection within
    the :class:`~teltotwist.gateway.admission.Admission` slots, keeps one
    connection per IMEI (``Limits.duplicate_login``), bounds the bytes held in
    unfinished frames, and stops the connections in order at shutdown."""

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
        registry: TrackerRegistry | None = None,
        events: DataPathEvents | None = None,
        commands: CommandCenter | None = None,
        naming: NamingFor = lambda imei: None,
        presence: Presence | None = None,
        after_acks: AfterAcks | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.presence = presence
        """Where logins are claimed and reported beyond this gateway (a
        cluster's members), if anywhere."""
        self.naming = naming
        """The naming of an IMEI's records (see :mod:`~teltotwist.gateway.models`)."""
        self.commands = commands
        """Where the trackers' command path reports, if anywhere."""
        if registry is None:
            registry = TrackerRegistry(now_ms, limits.idle_timeout)
        self.registry = registry
        """The trackers connected now, kept current by the connections."""
        self.events = DataPathEvents() if events is None else events
        """Where the connections report what happens to them."""
        self.traffic = TrafficTap(clock, now_ms)
        """Where the connections report their traffic, while watched."""
        self.clock = clock
        self.after_acks = AfterAcks(clock) if after_acks is None else after_acks
        """What follows the ACKs (reports, freeing the records), done once
        every ACK the reactor has to send now is out."""
        self.allow = allow
        self.limits = limits
        self.now_ms = now_ms
        self.stopping = False
        self.connections: set[TeltonikaTcpProtocol] = set()
        self.by_imei: dict[str, TeltonikaTcpProtocol] = {}
        self.admission: Admission[TeltonikaTcpProtocol] = Admission(
            limits.max_connections, limits.max_pending_per_address
        )
        self.faults = FaultLog(TeltonikaTcpProtocol.log, clock)
        """Warnings about what a sender can repeat, rate-limited."""
        self.unfinished: UnfinishedBytes[TeltonikaTcpProtocol] = UnfinishedBytes(
            limits.max_buffered_bytes
        )
        # The connections' timeouts: one reactor timer each, for them all.
        protocol = TeltonikaTcpProtocol
        self.login_deadlines = Timeout(
            clock, limits.login_timeout, protocol.login_expired
        )
        """From connecting to the login."""
        self.idle_deadlines = Timeout(clock, limits.idle_timeout, protocol.idle_expired)
        """From the login, the last byte or the last ACK, while no packet is
        with the sinks."""
        self.frame_deadlines = Timeout(
            clock, limits.frame_timeout, protocol.frame_expired
        )
        """From the start of an unfinished frame."""
        self.quiet_spells = Timeout(clock, limits.command_quiet, protocol.quiet_spell)
        """From the login or the last byte, until commands may go."""

    def buildProtocol(self, addr: IAddress) -> TeltonikaTcpProtocol:  # type: ignore[override]
        # Never None: a wrapping factory (the PROXY protocol's) cannot take
        # it. A connection without a slot is closed once made (admit).
        return TeltonikaTcpProtocol(self, _describe(addr))

    def admit(self, protocol: TeltonikaTcpProtocol, address: str | None) -> bool:
        """Give *protocol*'s connection from *address* (None: not known
        before its PROXY header) a slot, if any can be had; False: close it."""
        if self.stopping:
            return False
        admitted = self.admission.admit(protocol, address)
        if isinstance(admitted, Refused):
            self.faults.warn(
                "gateway full",
                "Refusing {peer}: all {count} connections are logged-in trackers",
                peer=protocol.peer,
                count=len(self.admission),
            )
            return False
        if admitted.evicted is not None:
            self._evict(admitted.evicted, admitted.crowding, protocol.peer)
        self.connections.add(protocol)
        return True

    def located(self, protocol: TeltonikaTcpProtocol, address: str) -> None:
        """*protocol*'s PROXY header says it comes from *address*: from now
        on it counts towards that address's connections without a login."""
        admitted = self.admission.located(protocol, address)
        if admitted.evicted is not None:
            self._evict(admitted.evicted, admitted.crowding, protocol.peer)

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
        return self._conflict(imei, protocol.peer)

    def claimed_elsewhere(self, imei: str, peer: str, where: str) -> str | None:
        """A login for *imei* from *peer* on another gateway (*where*): why
        it must be refused (as :meth:`claim` says), or None once the IMEI's
        connection here, if any, was closed."""
        conflict = self._conflict(imei, f"{peer} on {where}")
        holder = self.by_imei.get(imei)
        if conflict is None and holder is not None:
            self._replaced(holder, imei, f"{peer} on {where}")
            holder.replace()
        return conflict

    def _conflict(self, imei: str, peer: str) -> str | None:
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
            peer=peer,
            holder=holder.peer,
            quiet=quiet,
        )
        return f"IMEI {imei} is logged in from {holder.peer}, active {quiet:.0f} s ago"

    def _replaced(self, older: TeltonikaTcpProtocol, imei: str, peer: str) -> None:
        if older.session.state is not State.CLOSED:
            self.faults.warn(
                "duplicate login replaced",
                "Security: IMEI {imei}: login from {peer} replaces the connection "
                "from {older}, quiet for {quiet:.0f} s (--duplicate-login {policy})",
                imei=imei,
                peer=peer,
                older=older.peer,
                quiet=self.clock.seconds() - older.last_active,
                policy=self.limits.duplicate_login.value,
            )

    def logged_in(self, protocol: TeltonikaTcpProtocol, imei: str) -> None:
        """*protocol* holds *imei* now; its previous connection is closed."""
        self.admission.logged_in(protocol)
        older = self.by_imei.get(imei)
        self.by_imei[imei] = protocol
        if older is None or older is protocol:
            return
        self._replaced(older, imei, protocol.peer)
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
            if self.presence is not None:
                self.presence.logged_out(imei)

    def holding(self, protocol: TeltonikaTcpProtocol, held: int, started: bool) -> None:
        """*protocol* holds *held* bytes of an unfinished frame (a new one if
        *started*); past the budget, the oldest unfinished frames go."""
        for oldest in self.unfinished.update(protocol, held, started):
            oldest.shed()

    def stop_accepting(self) -> None:
        """Shutdown began: refuse connections, stop reading, ACK nothing more."""
        self.stopping = True
        for protocol in self.connections:
            protocol.stop_reading()

    def drain(self) -> Deferred[None]:
        """Fires when no sink is working on a delivery any more, however the
        deliveries ended."""
        return self.dispatcher.drain()

    def close_all(self) -> None:
        """Report what was ACKed, close every tracker connection, and
        summarise the faults logged."""
        self.after_acks.flush()
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
    if not isinstance(host, str):
        return str(address)
    if ":" in host:  # a PROXY header's IPv6 address comes in full
        with suppress(ValueError):
            host = ipaddress.ip_address(host).compressed
    return f"{host}:{port}"
