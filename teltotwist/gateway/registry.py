# -*- test-case-name: tests.test_gateway_registry -*-
"""The trackers the gateway knows now: connected over TCP, or heard from over
UDP within the idle timeout.

The adapters keep it current; the control plane reads it and closes a
connection through it, never through protocol objects. Its size is bounded:
TCP entries by the connection slots, UDP entries by *udp_capacity* (the
oldest forgotten first) and by the idle timeout.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, Protocol

import attrs

from teltotwist.codec import AvlRecord, format_timestamp_ms
from teltotwist.gateway.events import Transport

DEFAULT_UDP_CAPACITY = 100_000
"""UDP trackers remembered at most; the one heard from longest ago goes first."""


class TrackerLink(Protocol):
    """A live TCP connection, as the registry may act on it."""

    def close(self, reason: str) -> None:
        """Close the connection; *reason* goes to the log."""


class Position(NamedTuple):
    """Where a record put its tracker: all the registry keeps of the newest
    record. Not the record itself: its IO would stay in memory per tracker,
    and a tuple of numbers is no work for the garbage collector."""

    timestamp_ms: int
    latitude: float
    longitude: float
    speed: int
    altitude: int
    angle: int
    satellites: int

    @classmethod
    def of(cls, record: AvlRecord) -> Position:
        """The position *record* gives."""
        return cls(
            record.timestamp_ms,
            record.latitude,
            record.longitude,
            record.speed,
            record.altitude,
            record.angle,
            record.satellites,
        )


@attrs.define
class TrackerState:
    """What the gateway knows of one tracker now."""

    imei: str
    transport: Transport
    peer: str
    connected_at_ms: int
    last_seen_ms: int
    packets: int = 0
    records: int = 0
    last_record: Position | None = None
    """The position of the newest record by device time."""

    def to_json(self) -> dict[str, Any]:
        """The tracker object of the HTTP API."""
        return {
            "imei": self.imei,
            "transport": str(self.transport),
            "peer": self.peer,
            "connected_at": format_timestamp_ms(self.connected_at_ms),
            "last_seen": format_timestamp_ms(self.last_seen_ms),
            "packets": self.packets,
            "records": self.records,
            "last_record": _position(self.last_record),
        }


def _position(position: Position | None) -> dict[str, Any] | None:
    if position is None:
        return None
    return {
        "timestamp": format_timestamp_ms(position.timestamp_ms),
        "latitude": position.latitude,
        "longitude": position.longitude,
        "speed": position.speed,
        "altitude": position.altitude,
        "angle": position.angle,
        "satellites": position.satellites,
    }


class TrackerRegistry:
    """The trackers connected over TCP and those heard over UDP recently.

    :param now_ms: the wall clock, in milliseconds since the epoch.
    :param udp_idle: seconds after which a silent UDP tracker is forgotten.
    :param udp_capacity: UDP trackers remembered at most.
    """

    def __init__(
        self,
        now_ms: Callable[[], int],
        udp_idle: float,
        udp_capacity: int = DEFAULT_UDP_CAPACITY,
    ) -> None:
        self._now_ms = now_ms
        self._udp_idle_ms = int(udp_idle * 1000)
        self._udp_capacity = udp_capacity
        self._tcp: dict[str, tuple[TrackerState, TrackerLink]] = {}
        self._udp: OrderedDict[str, TrackerState] = OrderedDict()

    def __len__(self) -> int:
        self._forget_silent_udp()
        return len(self._tcp) + len(self._udp)

    def count(self, transport: Transport) -> int:
        """How many trackers of *transport* are known now, without listing them."""
        if transport is Transport.TCP:
            return len(self._tcp)
        self._forget_silent_udp()
        return len(self._udp)

    def tcp_logged_in(self, imei: str, peer: str, link: TrackerLink) -> None:
        """*link* is the IMEI's connection now."""
        now = self._now_ms()
        self._tcp[imei] = (TrackerState(imei, Transport.TCP, peer, now, now), link)

    def tcp_closed(self, imei: str, link: TrackerLink) -> None:
        """*link* is gone; the IMEI leaves unless a newer connection holds it."""
        entry = self._tcp.get(imei)
        if entry is not None and entry[1] is link:
            del self._tcp[imei]

    def tcp_packet(self, imei: str, records: Sequence[AvlRecord]) -> None:
        """The IMEI's connection had a packet of *records* acknowledged."""
        entry = self._tcp.get(imei)
        if entry is not None:
            _count(entry[0], records, self._now_ms())

    def udp_packet(self, imei: str, peer: str, records: Sequence[AvlRecord]) -> None:
        """A datagram of *records* from *imei* at *peer* was acknowledged."""
        now = self._now_ms()
        state = self._udp.pop(imei, None)
        if state is None:
            state = TrackerState(imei, Transport.UDP, peer, now, now)
        state.peer = peer
        _count(state, records, now)
        self._udp[imei] = state
        while len(self._udp) > self._udp_capacity:
            self._udp.popitem(last=False)

    def get(self, imei: str) -> TrackerState | None:
        """The tracker's state, or None when it is not connected (or silent)."""
        entry = self._tcp.get(imei)
        if entry is not None:
            return entry[0]
        self._forget_silent_udp()
        return self._udp.get(imei)

    def trackers(self) -> list[TrackerState]:
        """Every tracker known now, TCP ones first, each by IMEI."""
        self._forget_silent_udp()
        return [
            *sorted((state for state, _ in self._tcp.values()), key=_by_imei),
            *sorted(self._udp.values(), key=_by_imei),
        ]

    def close(self, imei: str, reason: str) -> bool:
        """Close the IMEI's TCP connection; False when it has none."""
        entry = self._tcp.get(imei)
        if entry is None:
            return False
        entry[1].close(reason)
        return True

    def _forget_silent_udp(self) -> None:
        silent_since = self._now_ms() - self._udp_idle_ms
        udp = self._udp
        while udp:
            state = next(iter(udp.values()))
            if state.last_seen_ms > silent_since:
                break
            udp.popitem(last=False)


def _by_imei(state: TrackerState) -> str:
    return state.imei


def _count(state: TrackerState, records: Iterable[AvlRecord], now: int) -> None:
    """One more packet of *records*; the newest record by device time is kept
    (trackers may send a packet newest-first)."""
    records = list(records)
    state.packets += 1
    state.records += len(records)
    state.last_seen_ms = now
    newest = max(records, key=_device_time, default=None)
    if newest is not None and (
        state.last_record is None
        or newest.timestamp_ms >= state.last_record.timestamp_ms
    ):
        state.last_record = Position.of(newest)


def _device_time(record: AvlRecord) -> int:
    return record.timestamp_ms
