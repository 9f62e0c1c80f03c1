# -*- test-case-name: tests.test_cluster_live -*-
"""The live view's traffic of a tracker held by another member.

The member serving the page asks the tracker's holder over the bus
(:data:`LIVE_WATCH`, sent to the IMEI) and renews that request every
:data:`RENEW_INTERVAL`; the holder forwards the tracker's traffic events to
it (:data:`LIVE_TRAFFIC`) until the page closes (:data:`LIVE_UNWATCH`), the
lease runs out (:data:`LEASE`: the serving member is gone), or the tracker
leaves the holder. Forwarding is bounded: events beyond
:data:`MAX_EVENTS_PER_SECOND`, or while :data:`MAX_BYTES_IN_FLIGHT` are not
yet taken by the bus, are dropped and counted, and the page is told.

A tracker held by the serving member itself is watched on its own tap; one
that moves is followed: the page gets a ``moved`` event when it leaves a
member and a ``holder`` event once it is watched where it went (within a
renewal; its traffic in between is not seen).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from teltotwist.cluster.bus import Envelope, IClusterBus
from teltotwist.cluster.requests import Body, encode
from teltotwist.gateway.tcp import TeltonikaTcpFactory
from teltotwist.gateway.traffic import (
    LivePage,
    PageWatcher,
    TrafficEvent,
    TrafficKind,
)

LIVE_WATCH = "live.watch"
"""To the member holding ``imei``: forward its traffic to the sender under
``watch`` (an id), or go on doing so (a renewal)."""
LIVE_UNWATCH = "live.unwatch"
"""To the holder: stop forwarding ``watch``."""
LIVE_TRAFFIC = "live.traffic"
"""To the serving member: for ``watch``, an ``event`` (a traffic object),
the count of events ``dropped`` before it, or that the watch ``ended``
(why) here."""

RENEW_INTERVAL = 2.0
"""Seconds between two watch requests of a page (renewal, or a new holder)."""
LEASE = 3 * RENEW_INTERVAL
"""Seconds a holder forwards after the last watch request, at most."""
MAX_EVENTS_PER_SECOND = 200
"""Traffic events a holder forwards for one watch in a second."""
MAX_BYTES_IN_FLIGHT = 256 * 1024
"""Bytes of one watch's events a holder hands the bus before it took them."""
MAX_FORWARDS = 64
"""Watches a holder serves for other members at once; more are refused."""

_log = Logger()


class ClusterTraffic:
    """The :class:`~teltotwist.gateway.traffic.TrafficSource` of a member:
    its own trackers' traffic from its tap, the others' over *bus*; and the
    forwarding of its trackers' traffic to the members that ask."""

    def __init__(
        self, bus: IClusterBus, factory: TeltonikaTcpFactory, clock: IReactorTime
    ) -> None:
        self._bus = bus
        self._factory = factory
        self._clock = clock
        self._watches: dict[str, _Watch] = {}
        self._forwards: dict[tuple[str, str], _Forward] = {}

    # The serving member.

    def watch(self, imei: str, page: LivePage) -> Callable[[], None]:
        watch = _Watch(imei, page, uuid.uuid4().hex)
        watch.local_stop = self._factory.traffic.watch(imei, PageWatcher(page))
        self._watches[watch.id] = watch
        self.ask(watch)
        return lambda: self._stop_watch(watch)

    def ask(self, watch: _Watch) -> None:
        """Find *watch*'s tracker: here, or by a watch request to its holder."""
        watch.renewal = self._clock.callLater(RENEW_INTERVAL, self.ask, watch)
        if watch.imei in self._factory.by_imei:
            watch.held_by(self._bus.member_id)
            return
        if watch.holder == self._bus.member_id:
            watch.left(self._bus.member_id, "the tracker left this member")
        envelope = Envelope(
            LIVE_WATCH,
            encode({"imei": watch.imei, "watch": watch.id}),
            self._bus.member_id,
        )
        self._bus.send_to_tracker(watch.imei, envelope).addErrback(_failed, LIVE_WATCH)

    def traffic_came(self, envelope: Envelope, body: Body) -> None:
        """A holder forwards traffic (or ends a watch) for a page here."""
        watch = self._watches.get(str(body.get("watch")))
        if watch is None:  # the page closed: the holder should stop
            self._send(envelope.sender, LIVE_UNWATCH, {"watch": body.get("watch")})
            return
        if "ended" in body:
            if watch.holder == envelope.sender:
                watch.left(envelope.sender, str(body["ended"]))
            return  # asked again at the next renewal, wherever it is then
        watch.held_by(envelope.sender)
        dropped = int(body.get("dropped", 0))
        if dropped:
            watch.page.send(
                "dropped", {"imei": watch.imei, "events": dropped, "why": "rate"}
            )
        if "event" in body:
            watch.page.send("traffic", body["event"])

    def _stop_watch(self, watch: _Watch) -> None:
        self._watches.pop(watch.id, None)
        if watch.renewal is not None and watch.renewal.active():
            watch.renewal.cancel()
        watch.renewal = None
        watch.local_stop()
        if watch.holder is not None and watch.holder != self._bus.member_id:
            self._send(watch.holder, LIVE_UNWATCH, {"watch": watch.id})

    # The holder.

    def watch_asked(self, envelope: Envelope, body: Body) -> None:
        """A member asks for (or renews) the traffic of a tracker held here."""
        if envelope.sender == self._bus.member_id:
            return  # its own tap already shows it
        key = (envelope.sender, str(body["watch"]))
        forward = self._forwards.get(key)
        if forward is not None:
            forward.renew()
            return
        imei = str(body["imei"])
        if imei not in self._factory.by_imei:
            self._send(key[0], LIVE_TRAFFIC, {"watch": key[1], "ended": "not here"})
            return
        if len(self._forwards) >= MAX_FORWARDS:
            why = f"{MAX_FORWARDS} watches are forwarded already"
            self._send(key[0], LIVE_TRAFFIC, {"watch": key[1], "ended": why})
            return
        forward = _Forward(self, key, self._clock)
        self._forwards[key] = forward
        forward.tap_stop = self._factory.traffic.watch(imei, forward)
        forward.renew()
        forward.forward({})  # tells the serving member who holds the tracker

    def unwatch_asked(self, envelope: Envelope, body: Body) -> None:
        """The page of a watch closed."""
        forward = self._forwards.get((envelope.sender, str(body.get("watch"))))
        if forward is not None:
            forward.end(None)

    def forward_ended(self, forward: _Forward) -> None:
        self._forwards.pop(forward.key, None)

    def send(self, member: str, kind: str, body: bytes) -> Deferred[None]:
        """Send the encoded *body* to *member*; fires once the bus took it
        (or failed to: that is logged)."""
        envelope = Envelope(kind, body, self._bus.member_id)
        return self._bus.send_to_member(member, envelope).addErrback(_failed, kind)

    def _send(self, member: str, kind: str, body: Body) -> None:
        self.send(member, kind, encode(body))


@attrs.define(eq=False)
class _Watch:
    """A page here watching a tracker, wherever it is held."""

    imei: str
    page: LivePage
    id: str
    holder: str | None = None
    local_stop: Callable[[], None] = lambda: None
    renewal: IDelayedCall | None = None

    def held_by(self, member: str) -> None:
        if member != self.holder:
            self.holder = member
            self.page.send("holder", {"imei": self.imei, "member": member})

    def left(self, member: str, why: str) -> None:
        self.holder = None
        self.page.send("moved", {"imei": self.imei, "member": member, "why": why})


class _Forward:
    """A tracker's traffic, forwarded from its holder to a serving member
    under a lease, bounded."""

    def __init__(
        self, traffic: ClusterTraffic, key: tuple[str, str], clock: IReactorTime
    ) -> None:
        self.key = key
        self.tap_stop: Callable[[], None] = lambda: None
        self._traffic = traffic
        self._clock = clock
        self._lease: IDelayedCall | None = None
        self._window_start = clock.seconds()
        self._in_window = 0
        self._in_flight = 0
        self._dropped = 0

    def renew(self) -> None:
        if self._lease is not None and self._lease.active():
            self._lease.reset(LEASE)
        else:
            self._lease = self._clock.callLater(LEASE, self.end, None)

    def traffic(self, event: TrafficEvent) -> None:
        """A :class:`~teltotwist.gateway.traffic.TrafficWatcher` of the tap."""
        if event.kind is TrafficKind.LOGOUT:
            self.forward({"event": event.to_json()})
            self.end("the tracker left this member")
            return
        now = self._clock.seconds()
        if now - self._window_start >= 1.0:
            self._window_start = now
            self._in_window = 0
        if (
            self._in_window >= MAX_EVENTS_PER_SECOND
            or self._in_flight >= MAX_BYTES_IN_FLIGHT
        ):
            self._dropped += 1
            return
        self._in_window += 1
        self.forward({"event": event.to_json()})

    def forward(self, body: Body) -> None:
        body = {"watch": self.key[1], **body}
        if self._dropped:
            body["dropped"], self._dropped = self._dropped, 0
        encoded = encode(body)
        self._in_flight += len(encoded)
        sent = self._traffic.send(self.key[0], LIVE_TRAFFIC, encoded)
        sent.addBoth(self._taken, len(encoded))

    def end(self, why: str | None) -> None:
        """Stop forwarding; *why* (unless None) goes to the serving member."""
        if self._lease is not None and self._lease.active():
            self._lease.cancel()
        self._lease = None
        self.tap_stop()
        self._traffic.forward_ended(self)
        if why is not None:
            self.forward({"ended": why})

    def _taken(self, _: object, size: int) -> None:
        self._in_flight -= size


def _failed(failure: Failure, kind: str) -> None:
    _log.warn(
        "Cluster: a {kind} was not sent: {error}",
        kind=kind,
        error=failure.getErrorMessage(),
    )
