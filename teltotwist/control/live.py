# -*- test-case-name: tests.test_control_live -*-
"""The live view's endpoints: the trackers and one tracker's traffic as
Server-Sent Events, and the map's tile settings.

A stream of the trackers looks at the registry once a
:data:`ROSTER_INTERVAL` and sends what changed; a stream of one tracker's
traffic watches the gateway's :class:`~teltotwist.gateway.traffic.TrafficTap`
while it is open. At most :data:`MAX_STREAMS` streams are open at once; each
is bounded (:mod:`~teltotwist.control.event_stream`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.web.server import Request

from teltotwist.codec import is_digits
from teltotwist.control.answers import Answer, error_answer, json_answer
from teltotwist.control.event_stream import EventStream
from teltotwist.gateway.registry import TrackerRegistry, TrackerState
from teltotwist.gateway.traffic import TrafficEvent, TrafficTap

MAX_STREAMS = 32
"""Live streams open at once, at most; more are answered 503."""

ROSTER_INTERVAL = 1.0
"""Seconds between two looks at the registry for a stream of the trackers."""

OPENSTREETMAP_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OPENSTREETMAP_ATTRIBUTION = (
    '&copy; <a href="https://www.openstreetmap.org/copyright">'
    "OpenStreetMap</a> contributors"
)
_MAX_IMEI_LENGTH = 20


@attrs.frozen
class MapTiles:
    """Where the live view's map takes its tiles from (*url* None: no
    tiles, the positions on a plain background), and the attribution the
    map shows for them."""

    url: str | None = OPENSTREETMAP_TILES
    attribution: str = OPENSTREETMAP_ATTRIBUTION

    def to_json(self) -> dict[str, Any]:
        return {"tiles": self.url, "attribution": self.attribution}


class LiveEndpoints:
    """Opens the live streams of the API and answers its map settings."""

    def __init__(
        self,
        registry: TrackerRegistry,
        traffic: TrafficTap,
        clock: IReactorTime,
        tiles: MapTiles = MapTiles(),
        max_streams: int = MAX_STREAMS,
    ) -> None:
        self._registry = registry
        self._traffic = traffic
        self._clock = clock
        self._tiles = tiles
        self._max_streams = max_streams
        self.open_streams = 0

    def map_settings(self) -> Answer:
        """``GET /v1/live/map``."""
        return json_answer(200, self._tiles.to_json())

    def trackers(self, request: Request) -> Answer | EventStream:
        """``GET /v1/live/trackers``: the trackers now, then what changes."""
        if self.open_streams >= self._max_streams:
            return _busy(self._max_streams)
        roster = _Roster(self._registry, self._clock)
        stream = self._open(request, roster.stop)
        roster.start(stream)
        return stream

    def traffic(self, request: Request, imei: str) -> Answer | EventStream:
        """``GET /v1/live/trackers/{imei}/traffic``: the tracker's traffic
        from now on (while it is connected over TCP)."""
        if not (is_digits(imei) and len(imei) <= _MAX_IMEI_LENGTH):
            return error_answer(404, "no such resource")
        if self.open_streams >= self._max_streams:
            return _busy(self._max_streams)
        watcher = _TrafficForwarder()
        stop = self._traffic.watch(imei, watcher)
        watcher.stream = self._open(request, stop)
        return watcher.stream

    def _open(self, request: Request, stop: Callable[[], None]) -> EventStream:
        self.open_streams += 1

        def closed() -> None:
            self.open_streams -= 1
            stop()

        return EventStream(request, self._clock, closed)


def _busy(limit: int) -> Answer:
    return error_answer(503, f"{limit} live streams are open already; close one")


class _TrafficForwarder:
    """Sends each traffic event of the watched tracker down its stream."""

    stream: EventStream | None = None

    def traffic(self, event: TrafficEvent) -> None:
        if self.stream is not None:
            self.stream.send("traffic", event.to_json())


_Signature = tuple[int, int, str, int]


def _signature(state: TrackerState) -> _Signature:
    """What changes in a tracker's JSON when anything does."""
    return (state.packets, state.last_seen_ms, state.peer, state.connected_at_ms)


class _Roster:
    """The trackers' stream: all of them first (``trackers``), then once an
    interval the ones that changed and the ones gone (``changes``)."""

    def __init__(self, registry: TrackerRegistry, clock: IReactorTime) -> None:
        self._registry = registry
        self._clock = clock
        self._sent: dict[str, _Signature] = {}
        self._stream: EventStream | None = None
        self._next: IDelayedCall | None = None

    def start(self, stream: EventStream) -> None:
        self._stream = stream
        states = self._registry.trackers()
        self._sent = {state.imei: _signature(state) for state in states}
        stream.send("trackers", {"trackers": [state.to_json() for state in states]})
        self._next = self._clock.callLater(ROSTER_INTERVAL, self._look)

    def stop(self) -> None:
        if self._next is not None and self._next.active():
            self._next.cancel()
        self._next = None
        self._stream = None

    def _look(self) -> None:
        stream = self._stream
        if stream is None:
            return
        changed = []
        now: dict[str, _Signature] = {}
        for state in self._registry.trackers():
            signature = now[state.imei] = _signature(state)
            if self._sent.get(state.imei) != signature:
                changed.append(state.to_json())
        gone = [imei for imei in self._sent if imei not in now]
        self._sent = now
        if changed or gone:
            stream.send("changes", {"trackers": changed, "gone": gone})
        if self._stream is not None:
            self._next = self._clock.callLater(ROSTER_INTERVAL, self._look)
