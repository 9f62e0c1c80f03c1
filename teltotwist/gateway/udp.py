# -*- test-case-name: tests.test_gateway_udp -*-
"""The UDP listener: check each datagram's sender, decode it, deliver its
records, then ACK it.

A datagram is acknowledged (``udp_ack`` echoing both of its ids and its record
count) only once every sink holds all of its records, so the tracker keeps
them in flash until then and resends otherwise.

The header (ids and IMEI) is read first: a datagram whose IMEI is implausible
(:class:`~teltotwist.codec.ImeiPolicy`) or not allowed is dropped before its
payload is decoded, so strangers cost no more than a header's worth of work.

A datagram that does not decode is dropped without a reply, even when only its
AVL payload is at fault: UDP has no CRC, so a payload that does not parse is
as likely a corrupted datagram as a new kind of content, and ACKing it would
make the tracker erase records nobody could read. It resends until a copy
decodes.

UDP has no back-pressure, so the datagrams awaiting the sinks are capped, in
all (``Limits.udp_max_in_flight``) and per IMEI
(``Limits.udp_max_in_flight_per_imei``). A datagram beyond a cap is dropped
unacknowledged: its tracker resends it later. The deliveries in flight, and
the record ids they hold, are bounded by the same caps, since a datagram
awaits every delivery it started until that delivery settles.

Trackers that miss an ACK resend the same records under a new AVL packet id,
so records are recognised by their deterministic ``id``: those delivered
within the dedupe window are not delivered again, and those being delivered
right now are waited for rather than delivered twice. Either way the resend
is ACKed with its own ids once its records are held.

Each ACK updates the tracker registry (a UDP tracker is known while it sends
within the idle timeout) and is reported to the data path's events, as are
each datagram's IMEI check and each drop. No connection events are reported
for UDP: the registry counts the UDP trackers heard from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from twisted.internet.defer import (
    Deferred,
    DeferredList,
    maybeDeferred,
    succeed,
)
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from teltotwist.codec import CodecError, UdpDatagram, udp_ack
from teltotwist.codec.udp import UdpHeader, decode_udp_header, decode_udp_payload
from teltotwist.gateway.after_acks import AfterAcks
from teltotwist.gateway.dedupe import RecentIds
from teltotwist.gateway.dispatch import Dispatcher
from teltotwist.gateway.events import (
    DataPathEvents,
    LoginResult,
    Rejection,
    Transport,
)
from teltotwist.gateway.faultlog import FaultLog
from teltotwist.gateway.items import (
    TrackerRecord,
    now_ms,
    records_not_made,
    tracker_records,
)
from teltotwist.gateway.limits import Limits
from teltotwist.gateway.models import NamingFor
from teltotwist.gateway.registry import TrackerRegistry

_log = Logger(namespace="teltotwist.udp")

Address = tuple[str, int]

DEFAULT_DEDUPE_WINDOW = 600.0
"""Seconds a delivered record id is remembered, to drop its resends."""
DEFAULT_DEDUPE_CAPACITY = 100_000
"""At most this many ids are remembered; the oldest are forgotten first."""


class _Delivery:
    """One dispatcher call, awaited by every datagram carrying its records."""

    def __init__(self, items: Sequence[TrackerRecord]) -> None:
        self.items = items
        self._waiting: list[Deferred[None]] = []

    def wait(self) -> Deferred[None]:
        """A new Deferred that fires (or fails) as this delivery does."""
        waiter: Deferred[None] = Deferred()
        self._waiting.append(waiter)
        return waiter

    def settle(self, result: Failure | None) -> None:
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            if result is None:
                waiter.callback(None)
            else:
                waiter.errback(result)


class TeltonikaUdpProtocol(DatagramProtocol):
    """Receives Teltonika UDP datagrams and ACKs each once its records are held.

    :param allow: whether an IMEI may send; datagrams from others are dropped.
    :param clock: times the dedupe window and the fault log.
    :param limits: which IMEIs are plausible, and the caps on datagrams
        awaiting the sinks.
    :param dedupe_window: seconds a delivered record is not delivered again.
    :param dedupe_capacity: the most record ids remembered at once.
    :param now_ms: the ``received_at`` of the records.
    :param registry: learns of each tracker whose datagram was ACKed.
    :param events: where ACKs, IMEI checks and drops are reported.
    :param naming: the naming of an IMEI's records (None: no attributes).
    :param after_acks: runs the reports that follow the ACKs (one of its
        own by default; a gateway shares its TCP factory's).
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        allow: Callable[[str], bool],
        clock: IReactorTime,
        *,
        limits: Limits = Limits(),
        dedupe_window: float = DEFAULT_DEDUPE_WINDOW,
        dedupe_capacity: int = DEFAULT_DEDUPE_CAPACITY,
        now_ms: Callable[[], int] = now_ms,
        registry: TrackerRegistry | None = None,
        events: DataPathEvents | None = None,
        naming: NamingFor = lambda imei: None,
        after_acks: AfterAcks | None = None,
    ) -> None:
        self._naming = naming
        self._after_acks = AfterAcks(clock) if after_acks is None else after_acks
        if registry is None:
            registry = TrackerRegistry(now_ms, limits.idle_timeout)
        self.registry = registry
        self.events = DataPathEvents() if events is None else events
        self._dispatcher = dispatcher
        self._allow = allow
        self._clock = clock
        self.limits = limits
        self._now_ms = now_ms
        self._faults = FaultLog(_log, clock)
        self._delivered = RecentIds(dedupe_window, dedupe_capacity)
        self._in_flight: dict[str, _Delivery] = {}
        self._accepting = True
        self._unsettled = 0
        self._unsettled_by_imei: dict[str, int] = {}
        self._drain_waiters: list[Deferred[None]] = []
        self.dropped_over_cap = 0
        """Datagrams dropped so far because too many awaited the sinks."""

    def datagramReceived(self, datagram: bytes, addr: Address) -> None:
        """Handle one datagram; never raises, so the listener lives on."""
        try:
            self._receive(datagram, addr)
        except Exception:
            _log.failure(
                "Unexpected error handling a datagram from {peer}", peer=_peer(addr)
            )

    def stopProtocol(self) -> None:
        """The port stopped listening: report what was ACKed, and summarise
        the faults left unlogged."""
        self._after_acks.flush()
        self._faults.stop()

    def stop_accepting(self) -> None:
        """Drop every datagram from now on, unacknowledged (for shutdown)."""
        self._accepting = False

    def drain(self) -> Deferred[None]:
        """Fires once no datagram awaits a delivery (after its ACK, if any).

        Call :meth:`stop_accepting` first, or new datagrams keep it waiting.
        """
        if not self._unsettled:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._drain_waiters.append(waiter)
        return waiter

    def _receive(self, data: bytes, addr: Address) -> None:
        if not self._accepting:
            _log.debug(
                "Shutting down: dropped a datagram from {peer}", peer=_peer(addr)
            )
            return
        received = self._clock.seconds()
        try:
            header = decode_udp_header(data)
        except CodecError as error:
            self._undecodable(str(error), addr)
            return
        if not self._admit(header, addr):
            return
        try:
            datagram = decode_udp_payload(data, header)
        except CodecError as error:
            self._undecodable(str(error), addr)
            return
        try:
            items = self._items(datagram)
        except Exception as error:
            self._undecodable(records_not_made(error), addr)
            return
        awaited, new_items = self._sort_out(items)
        new = _Delivery(new_items) if new_items else None
        if new is not None:
            awaited.append(new)
        if not awaited:
            self._acknowledge(datagram, addr, received)
            return
        self._hold(datagram.imei)
        outcome = DeferredList(
            [delivery.wait() for delivery in awaited], consumeErrors=True
        )
        outcome.addCallback(self._answer, datagram, addr, received)
        outcome.addErrback(
            lambda failure: _log.failure(
                "Unexpected error answering {peer}", failure, peer=_peer(addr)
            )
        )
        outcome.addBoth(lambda _: self._settled(datagram.imei))
        if new is not None:
            self._start(new)

    def _undecodable(self, reason: str, addr: Address) -> None:
        self.events.rejected(Transport.UDP, Rejection.UNDECODABLE)
        self._faults.warn(
            "undecodable datagram",
            "Dropped an undecodable datagram from {peer}: {reason}",
            peer=_peer(addr),
            reason=reason,
        )

    def _admit(self, header: UdpHeader, addr: Address) -> bool:
        """Whether a datagram with *header* may have its payload decoded: its
        IMEI is plausible and allowed, and it fits under the caps."""
        imei = header.imei
        problem = self.limits.imei_policy.problem(imei)
        if problem is not None:
            self.events.login(Transport.UDP, LoginResult.IMPLAUSIBLE)
            self._faults.warn(
                "implausible IMEI",
                "Dropped a datagram from {peer}: implausible IMEI: {problem}",
                peer=_peer(addr),
                problem=problem,
            )
            return False
        if not self._allow(imei):
            self.events.login(Transport.UDP, LoginResult.NOT_ALLOWED)
            self._faults.warn(
                "IMEI not allowed",
                "Dropped a datagram from {peer}: IMEI {imei} is not allowed",
                peer=_peer(addr),
                imei=imei,
            )
            return False
        self.events.login(Transport.UDP, LoginResult.ACCEPTED)
        own = self._unsettled_by_imei.get(imei, 0)
        if own >= self.limits.udp_max_in_flight_per_imei:
            self._over_cap(imei, addr, f"{own} of its datagrams", "per IMEI")
            return False
        if self._unsettled >= self.limits.udp_max_in_flight:
            self._over_cap(imei, addr, f"{self._unsettled} datagrams", "in all")
            return False
        return True

    def _over_cap(self, imei: str, addr: Address, awaiting: str, scope: str) -> None:
        self.dropped_over_cap += 1
        self.events.rejected(Transport.UDP, Rejection.OVER_CAP)
        self._faults.warn(
            f"over the in-flight cap {scope}",
            "Dropped a datagram from IMEI {imei} at {peer}, unacknowledged: "
            "{awaiting} already await the sinks, the most allowed {scope} "
            "({dropped} dropped so far)",
            imei=imei,
            peer=_peer(addr),
            awaiting=awaiting,
            scope=scope,
            dropped=self.dropped_over_cap,
        )

    def _items(self, datagram: UdpDatagram) -> tuple[TrackerRecord, ...]:
        imei = datagram.imei
        return tracker_records(
            imei, datagram.packet, self._now_ms(), self._naming(imei)
        )

    def _sort_out(
        self, items: Sequence[TrackerRecord]
    ) -> tuple[list[_Delivery], list[TrackerRecord]]:
        """The deliveries in flight that hold some of *items*, and those of
        *items* neither delivered recently nor in flight."""
        now = self._clock.seconds()
        in_flight: dict[_Delivery, None] = {}
        new: dict[str, TrackerRecord] = {}
        for item in items:
            if self._delivered.seen(item.id, now):
                continue
            delivery = self._in_flight.get(item.id)
            if delivery is not None:
                in_flight[delivery] = None
            else:
                new.setdefault(item.id, item)
        return list(in_flight), list(new.values())

    def _start(self, delivery: _Delivery) -> None:
        for item in delivery.items:
            self._in_flight[item.id] = delivery
        attempt: Deferred[None] = maybeDeferred(
            self._dispatcher.deliver, delivery.items
        )
        attempt.addBoth(self._finish, delivery)

    def _finish(self, result: Failure | None, delivery: _Delivery) -> None:
        now = self._clock.seconds()
        for item in delivery.items:
            del self._in_flight[item.id]
            if result is None:
                self._delivered.add(item.id, now)
        delivery.settle(result)

    def _answer(
        self,
        outcomes: Sequence[tuple[bool, Failure | None]],
        datagram: UdpDatagram,
        addr: Address,
        received: float,
    ) -> None:
        """ACK *datagram* once every delivery it awaited succeeded."""
        for _, result in outcomes:
            if result is not None:
                self._withhold(result, datagram, addr)
                return
        self._acknowledge(datagram, addr, received)

    def _acknowledge(
        self, datagram: UdpDatagram, addr: Address, received: float
    ) -> None:
        """ACK *datagram*, *received* at that reactor time, and report it."""
        if self.transport is None:
            _log.warn("Listener closed: cannot ACK {peer}", peer=_peer(addr))
            return
        packet = datagram.packet
        ack = udp_ack(datagram.packet_id, datagram.avl_packet_id, len(packet.records))
        self.transport.write(ack, addr)
        self._after_acks.add(
            self._report_ack, datagram, addr, self._clock.seconds() - received
        )

    def _report_ack(self, datagram: UdpDatagram, addr: Address, latency: float) -> None:
        """Tell the registry and the observers that *datagram* was ACKed."""
        packet = datagram.packet
        self.registry.udp_packet(datagram.imei, _peer(addr), packet.records)
        self.events.records_acknowledged(
            Transport.UDP, packet.codec, len(packet.records), latency
        )

    def _withhold(self, failure: Failure, datagram: UdpDatagram, addr: Address) -> None:
        self._faults.warn(
            "datagram not acknowledged",
            "Not acknowledging IMEI {imei} datagram {avl_packet_id} from {peer}: "
            "{reason}",
            imei=datagram.imei,
            avl_packet_id=datagram.avl_packet_id,
            peer=_peer(addr),
            reason=failure.getErrorMessage(),
        )

    def _hold(self, imei: str) -> None:
        self._unsettled += 1
        self._unsettled_by_imei[imei] = self._unsettled_by_imei.get(imei, 0) + 1

    def _settled(self, imei: str) -> None:
        self._unsettled -= 1
        left = self._unsettled_by_imei[imei] - 1
        if left:
            self._unsettled_by_imei[imei] = left
        else:
            del self._unsettled_by_imei[imei]
        if not self._unsettled:
            waiters, self._drain_waiters = self._drain_waiters, []
            for waiter in waiters:
                waiter.callback(None)


def _peer(addr: Address) -> str:
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
