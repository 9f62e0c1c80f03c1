# -*- test-case-name: tests.test_cluster_member -*-
"""One gateway as a member of a cluster: the service that joins the bus,
knows the other members, and hands each message to the part it concerns.

Once added, the gateway's logins are claimed and reported through the
cluster (:attr:`presence`), and :attr:`fleet` and :attr:`traffic` are what
the API and its live view serve.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from teltotwist.cluster.bus import Envelope, IClusterBus
from teltotwist.cluster.fleet import COMMAND_REQUEST, FLEET_QUERY, ClusterFleet
from teltotwist.cluster.live_watch import (
    LIVE_TRAFFIC,
    LIVE_UNWATCH,
    LIVE_WATCH,
    ClusterTraffic,
)
from teltotwist.cluster.membership import Membership
from teltotwist.cluster.presence import (
    COMMAND_COLLECTED,
    COMMANDS_PARKED,
    LOGIN_CLAIM,
    ClusterPresence,
)
from teltotwist.cluster.requests import ANSWER, Body, Requests, decode, encode
from teltotwist.gateway.fleet import LocalFleet
from teltotwist.gateway.service import GatewayService

HELLO = "member.hello"
"""A member joined (to everyone), or answers one that joined (to it)."""
BYE = "member.bye"
"""A member leaves (to everyone)."""

_log = Logger()


class ClusterMember(Service):
    """*gateway* as the member of the cluster *bus* links it to; *counted*
    hears each command routed, parked or collected (for the metrics)."""

    def __init__(
        self,
        bus: IClusterBus,
        gateway: GatewayService,
        clock: IReactorTime,
        counted: Callable[[str], None] = lambda what: None,
    ) -> None:
        self.bus = bus
        self._requests = Requests(bus, clock)
        self.membership = Membership(bus.member_id)
        factory = gateway.factory
        self.fleet = ClusterFleet(
            bus,
            self._requests,
            LocalFleet(gateway.registry, factory.commands, clock),
            factory,
            clock,
            self.membership,
            counted,
        )
        self.presence = ClusterPresence(
            bus, self._requests, factory, clock, self.fleet.hand_back, counted
        )
        factory.presence = self.presence
        self.traffic = ClusterTraffic(bus, factory, clock)
        """The live view's traffic of any tracker of the cluster."""
        self._handlers: dict[str, Callable[[Envelope, Body], None]] = {
            ANSWER: self._answered,
            HELLO: self._hello,
            BYE: lambda envelope, _: self.membership.left({envelope.sender}),
            LOGIN_CLAIM: self.presence.claim_asked,
            COMMAND_REQUEST: self.fleet.command_asked,
            FLEET_QUERY: self.fleet.query_asked,
            COMMAND_COLLECTED: lambda _, body: self.fleet.collected(body),
            COMMANDS_PARKED: lambda _, body: self.presence.parked_asked(body),
            LIVE_WATCH: self.traffic.watch_asked,
            LIVE_UNWATCH: self.traffic.unwatch_asked,
            LIVE_TRAFFIC: self.traffic.traffic_came,
        }

    def not_ready_why(self) -> str | None:
        """Why the member should get no trackers now, or None."""
        if self.bus.ready:
            return None
        return "cluster bus not connected"

    def startService(self) -> None:
        Service.startService(self)
        started = self.bus.start(self._receive)
        started.addCallback(lambda _: self._announce(HELLO))
        started.addErrback(self._failed, "joining the cluster")

    def stopService(self) -> Deferred[None]:
        Service.stopService(self)
        self._requests.stop()
        said: Deferred[None] = self._announce(BYE)
        return said.addCallback(lambda _: self.bus.stop())

    def _announce(self, kind: str) -> Deferred[None]:
        if not self.bus.ready:
            return succeed(None)
        _log.info("Cluster: {kind} from {member}", kind=kind, member=self.bus.member_id)
        sent = self.bus.broadcast(Envelope(kind, encode({}), self.bus.member_id))
        return sent.addErrback(self._failed, kind)

    def _receive(self, envelope: Envelope) -> None:
        handler = self._handlers.get(envelope.kind)
        if handler is None:
            _log.warn("Cluster: unknown message {kind} dropped", kind=envelope.kind)
            return
        if envelope.kind != BYE:
            self.membership.heard(envelope.sender)
        try:
            handler(envelope, decode(envelope))
        except Exception:
            _log.failure(
                "Cluster: a {kind} from {sender} failed",
                kind=envelope.kind,
                sender=envelope.sender,
            )

    def _answered(self, envelope: Envelope, body: Body) -> None:
        self._requests.answered(envelope, body)

    def _hello(self, envelope: Envelope, _: Body) -> None:
        """A member joined: answer it (a hello with a correlation id is an
        answer), so that it knows this one too."""
        if envelope.correlation is None and envelope.sender != self.bus.member_id:
            answer = Envelope(HELLO, encode({}), self.bus.member_id, HELLO)
            self.bus.send_to_member(envelope.sender, answer).addErrback(
                self._failed, HELLO
            )

    def _failed(self, failure: Failure, doing: str) -> None:
        _log.warn(
            "Cluster: {doing} failed: {error}",
            doing=doing,
            error=failure.getErrorMessage(),
        )
