# -*- test-case-name: tests.test_cluster_bus_contract -*-
"""A cluster whose members live in one process: the reference semantics of
:class:`~teltotwist.cluster.bus.IClusterBus`, and the bus the cluster's
logic is tested over.

Messages are handed to receivers on a later reactor turn, never inside the
sender's call, as a real transport would; parked messages live in memory
only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from teltotwist.cluster.bus import ClusterBusError, Envelope, IClusterBus, Receiver
from teltotwist.cluster.router import ParkingLimits, Router

T = TypeVar("T")


class MemoryCluster:
    """The members of one in-process cluster, around one :class:`Router`."""

    def __init__(
        self, clock: IReactorTime, limits: ParkingLimits = ParkingLimits()
    ) -> None:
        self.clock = clock
        self.router = Router(clock.seconds, limits)
        self._receivers: dict[str, Receiver] = {}

    def member(self, member_id: str) -> MemoryBus:
        """A bus for a new member with this id (joined once started)."""
        return MemoryBus(self, member_id)

    def _join(self, member_id: str, receiver: Receiver) -> None:
        if member_id in self._receivers:
            raise ClusterBusError(f"member {member_id!r} is already in the cluster")
        self.router.join(member_id)
        self._receivers[member_id] = receiver

    def _leave(self, member_id: str) -> None:
        self.router.leave(member_id)
        self._receivers.pop(member_id, None)

    def _deliver(self, member_ids: frozenset[str], envelope: Envelope) -> None:
        for member_id in sorted(member_ids):
            self.clock.callLater(0, self._hand, member_id, envelope)

    def _hand(self, member_id: str, envelope: Envelope) -> None:
        receiver = self._receivers.get(member_id)
        if receiver is not None:
            receiver(envelope)


@implementer(IClusterBus)
class MemoryBus:
    """One member of a :class:`MemoryCluster`.

    :meth:`disconnect` and :meth:`reconnect` play a transport that loses its
    link: meanwhile the member is not ready and every call fails; once
    reconnected it binds again every IMEI bound, those bound meanwhile
    included (as :class:`~teltotwist.cluster.amqp.AmqpBus` does).
    """

    def __init__(self, cluster: MemoryCluster, member_id: str) -> None:
        self._cluster = cluster
        self.member_id = member_id
        self._receiver: Receiver | None = None
        self._connected = True
        self._bound: set[str] = set()

    @property
    def ready(self) -> bool:
        return self._receiver is not None and self._connected

    def start(self, receiver: Receiver) -> Deferred[None]:
        self._cluster._join(self.member_id, receiver)
        self._receiver = receiver
        return succeed(None)

    def stop(self) -> Deferred[None]:
        self._bound.clear()
        if self._receiver is not None:
            self._cluster._leave(self.member_id)
            self._receiver = None
        return succeed(None)

    def disconnect(self) -> None:
        """Lose the link: the member leaves, its bindings with it."""
        self._connected = False
        self._cluster._leave(self.member_id)

    def reconnect(self) -> None:
        """Join again, and bind again every IMEI bound."""
        if self._receiver is not None:
            self._cluster._join(self.member_id, self._receiver)
            for imei in self._bound:
                self._cluster.router.bind(self.member_id, imei)
        self._connected = True

    def bind(self, imei: str) -> Deferred[None]:
        self._bound.add(imei)
        return self._call(lambda: self._cluster.router.bind(self.member_id, imei))

    def unbind(self, imei: str) -> Deferred[None]:
        self._bound.discard(imei)
        return self._call(lambda: self._cluster.router.unbind(self.member_id, imei))

    def send_to_tracker(self, imei: str, envelope: Envelope) -> Deferred[bool]:
        def send() -> bool:
            holders = self._cluster.router.holders(imei)
            self._cluster._deliver(holders, envelope)
            return bool(holders)

        return self._call(send)

    def send_to_member(self, member_id: str, envelope: Envelope) -> Deferred[None]:
        return self._call(
            lambda: self._cluster._deliver(frozenset({member_id}), envelope)
        )

    def broadcast(self, envelope: Envelope) -> Deferred[None]:
        return self._call(
            lambda: self._cluster._deliver(self._cluster.router.members, envelope)
        )

    def park(self, imei: str, envelope: Envelope, ttl: float) -> Deferred[None]:
        return self._call(lambda: self._cluster.router.park(imei, envelope, ttl))

    def collect(self, imei: str) -> Deferred[list[Envelope]]:
        return self._call(lambda: self._cluster.router.collect(imei))

    def _call(self, action: Callable[[], T]) -> Deferred[T]:
        if not self.ready:
            return fail(ClusterBusError(f"member {self.member_id} is not connected"))
        try:
            return succeed(action())
        except (ClusterBusError, ValueError) as error:
            return fail(error)
