# -*- test-case-name: tests.test_cluster_router -*-
"""Who gets a cluster message: the members, the IMEIs each binds, and the
envelopes parked for IMEIs that no member binds.

Pure state, no I/O: a transport that routes itself (a gateway's parent
between its worker processes, :class:`~teltotwist.cluster.memory.MemoryBus`)
keeps one :class:`Router` and moves the bytes.

Parked envelopes are bounded per IMEI and in all; a park beyond either bound
is *refused* (:class:`ParkingFullError`), as the command center refuses a command
beyond its queues: the caller hears it and can tell its user, where dropping
the oldest would lose a command that was already promised.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import attrs

from teltotwist.cluster.bus import ClusterBusError, Envelope


class ParkingFullError(ClusterBusError):
    """Too many envelopes are parked (for this IMEI, or in all)."""


@attrs.frozen
class ParkingLimits:
    """How many envelopes may wait for trackers offline everywhere."""

    per_imei: int = 16
    """As many as the command center queues for one tracker."""
    total: int = 10_000


@attrs.frozen
class _Parked:
    envelope: Envelope
    expires_at: float


class Router:
    """The routing state of one cluster.

    *now* gives the time in seconds (a TTL is measured against it).
    """

    def __init__(
        self, now: Callable[[], float], limits: ParkingLimits = ParkingLimits()
    ) -> None:
        self._now = now
        self._limits = limits
        self._members: dict[str, set[str]] = {}
        self._holders: dict[str, set[str]] = {}
        self._parked: dict[str, deque[_Parked]] = {}
        self._parked_count = 0

    @property
    def members(self) -> frozenset[str]:
        """The ids of the members joined."""
        return frozenset(self._members)

    @property
    def parked(self) -> int:
        """How many envelopes are parked (expired ones included until
        swept)."""
        return self._parked_count

    def join(self, member_id: str) -> None:
        """*member_id* is in the cluster (again: its bindings start empty)."""
        self.leave(member_id)
        self._members[member_id] = set()

    def leave(self, member_id: str) -> None:
        """*member_id* left; its bindings go with it."""
        for imei in self._members.pop(member_id, ()):
            self._drop_holder(imei, member_id)

    def bind(self, member_id: str, imei: str) -> None:
        """Messages for *imei* reach *member_id*.

        :raises KeyError: when *member_id* has not joined.
        """
        self._members[member_id].add(imei)
        self._holders.setdefault(imei, set()).add(member_id)

    def unbind(self, member_id: str, imei: str) -> None:
        """Messages for *imei* no longer reach *member_id*."""
        bound = self._members.get(member_id)
        if bound is not None and imei in bound:
            bound.discard(imei)
            self._drop_holder(imei, member_id)

    def holders(self, imei: str) -> frozenset[str]:
        """The members a message for *imei* goes to (each that binds it, as
        a direct exchange routes); empty when the tracker is offline
        everywhere."""
        return frozenset(self._holders.get(imei, ()))

    def park(self, imei: str, envelope: Envelope, ttl: float) -> None:
        """Keep *envelope* for *imei* for *ttl* seconds.

        :raises ParkingFullError: when the IMEI's or the cluster's bound is
            reached (expired envelopes do not count).
        :raises ValueError: for a TTL that is not positive.
        """
        if not ttl > 0:
            raise ValueError(f"ttl must be a positive number of seconds, not {ttl!r}")
        now = self._now()
        self._sweep(imei, now)
        queue = self._parked.get(imei, ())
        if len(queue) >= self._limits.per_imei:
            raise ParkingFullError(
                f"{self._limits.per_imei} messages are parked for {imei}"
            )
        if self._parked_count >= self._limits.total:
            self.expire()
        if self._parked_count >= self._limits.total:
            raise ParkingFullError(f"{self._limits.total} messages are parked")
        self._parked.setdefault(imei, deque()).append(_Parked(envelope, now + ttl))
        self._parked_count += 1

    def collect(self, imei: str) -> list[Envelope]:
        """Take the envelopes parked for *imei* and not expired, oldest first."""
        self._sweep(imei, self._now())
        queue = self._parked.pop(imei, deque())
        self._parked_count -= len(queue)
        return [parked.envelope for parked in queue]

    def expire(self) -> None:
        """Drop every expired envelope."""
        now = self._now()
        for imei in list(self._parked):
            self._sweep(imei, now)

    def _sweep(self, imei: str, now: float) -> None:
        queue = self._parked.get(imei)
        if queue is None:
            return
        kept = deque(parked for parked in queue if parked.expires_at > now)
        self._parked_count -= len(queue) - len(kept)
        if kept:
            self._parked[imei] = kept
        else:
            del self._parked[imei]

    def _drop_holder(self, imei: str, member_id: str) -> None:
        holders = self._holders.get(imei)
        if holders is not None:
            holders.discard(member_id)
            if not holders:
                del self._holders[imei]
