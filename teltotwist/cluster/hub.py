# -*- test-case-name: tests.test_cluster_hub -*-
"""The cluster bus between the worker processes of one gateway
(``--workers``), routed by their parent.

Each worker is a member; its :class:`HubBus` speaks AMP over its link to
the parent (:mod:`teltotwist.cluster.link`), where one :class:`Hub` keeps
the :class:`~teltotwist.cluster.router.Router` of all of them and passes
each message on to the links of the members it is for. Parked messages
outlast any worker; with a store
(:class:`~teltotwist.cluster.parking_store.SqliteParkingStore`), a restart
of the parent too.

The parent sees a worker's end the moment its link closes, so it says
goodbye on behalf of a member that ended without a word (killed, say): the
others stop waiting for its answers at once, not after their timeout.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.protocols import amp
from twisted.python.failure import Failure
from zope.interface import implementer

from teltotwist.cluster.bus import ClusterBusError, Envelope, IClusterBus, Receiver
from teltotwist.cluster.link import (
    LinkProtocol,
    fields,
    get_large,
    put_large,
    text,
)
from teltotwist.cluster.member import BYE
from teltotwist.cluster.parking_store import SqliteParkingStore
from teltotwist.cluster.requests import encode
from teltotwist.cluster.router import ParkingFullError, ParkingLimits, Router

MAX_BODY = 16 * 1024 * 1024
"""The largest envelope body the hub carries, in bytes."""


def _put_envelope(strings: dict[bytes, bytes], key: bytes, envelope: Envelope) -> None:
    strings[key + b".kind"] = envelope.kind.encode()
    strings[key + b".sender"] = envelope.sender.encode()
    if envelope.correlation is not None:
        strings[key + b".correlation"] = envelope.correlation.encode()
    put_large(strings, key + b".body", envelope.body)


def _get_envelope(strings: dict[bytes, bytes], key: bytes) -> Envelope:
    correlation = strings.get(key + b".correlation")
    return Envelope(
        strings[key + b".kind"].decode(),
        get_large(strings, key + b".body"),
        strings[key + b".sender"].decode(),
        None if correlation is None else correlation.decode(),
    )


class _EnvelopeArgument(amp.Argument):
    """An :class:`Envelope`, its body of any size up to :data:`MAX_BODY`."""

    def __init__(self) -> None:
        amp.Argument.__init__(self)  # type: ignore[no-untyped-call]

    def toBox(self, name: bytes, strings: Any, objects: Any, proto: Any) -> None:
        _put_envelope(strings, name, objects[name.decode()])

    def fromBox(self, name: bytes, strings: Any, objects: Any, proto: Any) -> None:
        objects[name.decode()] = _get_envelope(strings, name)


class _EnvelopeList(amp.Argument):
    """A list of :class:`Envelope`."""

    def __init__(self) -> None:
        amp.Argument.__init__(self)  # type: ignore[no-untyped-call]

    def toBox(self, name: bytes, strings: Any, objects: Any, proto: Any) -> None:
        envelopes: list[Envelope] = objects[name.decode()]
        strings[name] = str(len(envelopes)).encode()
        for index, envelope in enumerate(envelopes):
            _put_envelope(strings, name + b".%d" % index, envelope)

    def fromBox(self, name: bytes, strings: Any, objects: Any, proto: Any) -> None:
        count = int(strings[name])
        objects[name.decode()] = [
            _get_envelope(strings, name + b".%d" % index) for index in range(count)
        ]


_ERRORS = {
    ParkingFullError: b"PARKING_FULL",
    ClusterBusError: b"BUS_ERROR",
    ValueError: b"BAD_VALUE",
}


class _HubCommand(amp.Command):
    """A command whose errors come back as the bus's own."""

    errors = _ERRORS


class Join(_HubCommand):
    """A worker's member joins."""

    arguments = fields(member=text())


class Leave(_HubCommand):
    """A worker's member leaves."""


class Bind(_HubCommand):
    arguments = fields(imei=text())


class Unbind(_HubCommand):
    arguments = fields(imei=text())


class ToTracker(_HubCommand):
    arguments = fields(imei=text(), envelope=_EnvelopeArgument())
    response = fields(delivered=amp.Boolean())  # type: ignore[no-untyped-call]


class ToMember(_HubCommand):
    arguments = fields(member=text(), envelope=_EnvelopeArgument())


class Broadcast(_HubCommand):
    arguments = fields(envelope=_EnvelopeArgument())


class Park(_HubCommand):
    arguments = fields(
        imei=text(),
        envelope=_EnvelopeArgument(),
        ttl=amp.Float(),  # type: ignore[no-untyped-call]
    )


class Collect(_HubCommand):
    arguments = fields(imei=text())
    response = fields(envelopes=_EnvelopeList())


class Deliver(amp.Command):
    """The parent hands a worker's member a message."""

    arguments = fields(envelope=_EnvelopeArgument())
    requiresAnswer = False


class Hub:
    """The parent's side: routes the messages of its workers' members.

    The envelopes in *store*, if any, are parked again (expired ones
    dropped), and every park and collect is written there.
    """

    def __init__(
        self,
        clock: IReactorTime,
        limits: ParkingLimits = ParkingLimits(),
        store: SqliteParkingStore | None = None,
    ) -> None:
        self._clock = clock
        self.router = Router(clock.seconds, limits)
        self._links: dict[str, LinkProtocol] = {}
        self._store = store
        if store is not None:
            self._restore(store)

    def _restore(self, store: SqliteParkingStore) -> None:
        now = self._clock.seconds()
        for stored in store.load():
            ttl = stored.expires_at - now
            if ttl <= 0:
                continue
            try:
                self.router.park(stored.imei, stored.envelope, ttl)
            except ParkingFullError:
                store.forget(stored.key)
        store.expire(now)

    def park(self, imei: str, envelope: Envelope, ttl: float) -> None:
        """Park *envelope* for *imei* for *ttl* seconds (see
        :meth:`Router.park`); written down first, so that a park the file
        cannot keep is refused, not kept in memory alone."""
        if self._store is None:
            self.router.park(imei, envelope, ttl)
            return
        now = self._clock.seconds()
        self._store.expire(now)
        key = self._store.add(imei, envelope, now + ttl)
        try:
            self.router.park(imei, envelope, ttl)
        except Exception:
            self._store.forget(key)
            raise

    def collect(self, imei: str) -> list[Envelope]:
        """Take the envelopes parked for *imei* (see :meth:`Router.collect`)."""
        envelopes = self.router.collect(imei)
        if self._store is not None:
            self._store.collected(imei)
        return envelopes

    def attach(self, link: LinkProtocol) -> None:
        """Route the messages of the member at the other end of *link*."""
        routes = _Routes(self, link)
        link.answer(routes)
        link.closed.addCallback(lambda _: routes.lost())

    def joined(self, member_id: str, protocol: LinkProtocol) -> None:
        if member_id in self._links:
            raise ClusterBusError(f"member {member_id!r} is already in the cluster")
        self.router.join(member_id)
        self._links[member_id] = protocol

    def left(self, member_id: str) -> None:
        self.router.leave(member_id)
        self._links.pop(member_id, None)

    def deliver(self, member_ids: frozenset[str], envelope: Envelope) -> None:
        for member_id in member_ids:
            link = self._links.get(member_id)
            if link is not None and not link.closed.called:
                link.dispatcher.callRemote(  # type: ignore[no-untyped-call]
                    Deliver, envelope=envelope
                )


class _Routes(amp.CommandLocator):
    """What the parent does for one worker's member."""

    def __init__(self, hub: Hub, link: LinkProtocol) -> None:
        self._hub = hub
        self._link = link
        self._member: str | None = None

    @property
    def _router(self) -> Router:
        return self._hub.router

    def _joined(self) -> str:
        if self._member is None:
            raise ClusterBusError("this worker has not joined")
        return self._member

    def left(self) -> None:
        if self._member is not None:
            self._hub.left(self._member)
            self._member = None

    def lost(self) -> None:
        """The link closed: a member still joined ended without leaving."""
        member = self._member
        self.left()
        if member is not None:
            goodbye = Envelope(BYE, encode({}), member)
            self._hub.deliver(self._router.members, goodbye)

    @Join.responder
    def join(self, member: str) -> dict[str, object]:
        self.left()
        self._hub.joined(member, self._link)
        self._member = member
        return {}

    @Leave.responder
    def leave(self) -> dict[str, object]:
        self.left()
        return {}

    @Bind.responder
    def bind(self, imei: str) -> dict[str, object]:
        self._router.bind(self._joined(), imei)
        return {}

    @Unbind.responder
    def unbind(self, imei: str) -> dict[str, object]:
        self._router.unbind(self._joined(), imei)
        return {}

    @ToTracker.responder
    def to_tracker(self, imei: str, envelope: Envelope) -> dict[str, object]:
        holders = self._router.holders(imei)
        self._hub.deliver(holders, envelope)
        return {"delivered": bool(holders)}

    @ToMember.responder
    def to_member(self, member: str, envelope: Envelope) -> dict[str, object]:
        self._hub.deliver(frozenset({member}), envelope)
        return {}

    @Broadcast.responder
    def broadcast(self, envelope: Envelope) -> dict[str, object]:
        self._hub.deliver(self._router.members, envelope)
        return {}

    @Park.responder
    def park(self, imei: str, envelope: Envelope, ttl: float) -> dict[str, object]:
        self._hub.park(imei, envelope, ttl)
        return {}

    @Collect.responder
    def collect(self, imei: str) -> dict[str, object]:
        return {"envelopes": self._hub.collect(imei)}


class _Inbox(amp.CommandLocator):
    """What a worker's member does for the parent: take its messages."""

    def __init__(self, bus: HubBus) -> None:
        self._bus = bus

    @Deliver.responder
    def deliver(self, envelope: Envelope) -> dict[str, object]:
        self._bus.received(envelope)
        return {}


@implementer(IClusterBus)
class HubBus:
    """A worker's member of the cluster of its parent's workers; speaks
    over *link*, the worker's end of its link to the parent.

    The link lasts as long as the worker: once it is lost (the parent is
    gone) every call fails.
    """

    def __init__(self, member_id: str, link: LinkProtocol) -> None:
        self.member_id = member_id
        self.protocol = link
        link.answer(_Inbox(self))
        self._receiver: Receiver | None = None

    @property
    def ready(self) -> bool:
        return self._receiver is not None and not self.protocol.closed.called

    def received(self, envelope: Envelope) -> None:
        if self._receiver is not None:
            self._receiver(envelope)

    def start(self, receiver: Receiver) -> Deferred[None]:
        def joined(_: object) -> None:
            self._receiver = receiver

        return self._remote(Join, member=self.member_id).addCallback(joined)

    def stop(self) -> Deferred[None]:
        if self._receiver is None:
            return succeed(None)
        self._receiver = None
        left = self._remote(Leave)
        return left.addCallbacks(lambda _: None, lambda _: None)

    def bind(self, imei: str) -> Deferred[None]:
        return self._call(Bind, imei=imei).addCallback(lambda _: None)

    def unbind(self, imei: str) -> Deferred[None]:
        return self._call(Unbind, imei=imei).addCallback(lambda _: None)

    def send_to_tracker(self, imei: str, envelope: Envelope) -> Deferred[bool]:
        sent = self._call(ToTracker, imei=imei, envelope=envelope)
        return sent.addCallback(lambda answer: bool(answer["delivered"]))

    def send_to_member(self, member_id: str, envelope: Envelope) -> Deferred[None]:
        sent = self._call(ToMember, member=member_id, envelope=envelope)
        return sent.addCallback(lambda _: None)

    def broadcast(self, envelope: Envelope) -> Deferred[None]:
        sent = self._call(Broadcast, envelope=envelope)
        return sent.addCallback(lambda _: None)

    def park(self, imei: str, envelope: Envelope, ttl: float) -> Deferred[None]:
        parked = self._call(Park, imei=imei, envelope=envelope, ttl=float(ttl))
        return parked.addCallback(lambda _: None)

    def collect(self, imei: str) -> Deferred[list[Envelope]]:
        collected = self._call(Collect, imei=imei)
        return collected.addCallback(lambda answer: list(answer["envelopes"]))

    def _call(self, command: type[amp.Command], **arguments: object) -> Deferred[Any]:
        if not self.ready:
            return fail(ClusterBusError(f"member {self.member_id} is not connected"))
        for value in arguments.values():
            if isinstance(value, Envelope) and len(value.body) > MAX_BODY:
                return fail(
                    ClusterBusError(
                        f"a {value.kind} of {len(value.body)} bytes is over the"
                        f" hub's {MAX_BODY} bytes"
                    )
                )
        return self._remote(command, **arguments)

    def _remote(self, command: type[amp.Command], **arguments: object) -> Deferred[Any]:
        if self.protocol.closed.called:
            return fail(ClusterBusError("the link to the parent is lost"))
        called: Deferred[Any] = self.protocol.dispatcher.callRemote(  # type: ignore[no-untyped-call]
            command, **arguments
        )
        return called.addErrback(_bus_error)


def _bus_error(failure: Failure) -> Failure:
    """A failure of the link as a :class:`ClusterBusError`."""
    if failure.check(ClusterBusError, ValueError):
        return failure
    return Failure(ClusterBusError(f"the hub failed: {failure.getErrorMessage()}"))
