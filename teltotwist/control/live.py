# -*- test-case-name: tests.test_control_live -*-
"""The live view's endpoints: the trackers and one tracker's traffic as
Server-Sent Events, and the map's tile settings.

The trackers' streams share one :class:`SharedRoster`: it asks the
:class:`~teltotwist.gateway.fleet.Fleet` (this gateway's registry, or every
member of its cluster) once a :data:`ROSTER_INTERVAL` while any stream is
open, and each stream sends what changed. A stream of one tracker's traffic
watches a :class:`~teltotwist.gateway.traffic.TrafficSource` (this
gateway's tap, or in a cluster the member holding the tracker) while it is
open. At most :data:`MAX_STREAMS` streams are open at once; each is bounded
(:mod:`~teltotwist.control.event_stream`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Request

from teltotwist.codec import is_digits
from teltotwist.control.answers import Answer, error_answer, json_answer
from teltotwist.control.event_stream import EventStream
from teltotwist.gateway.fleet import Fleet, Json, TrackerListing
from teltotwist.gateway.traffic import LivePage, TrafficSource

_log = Logger()

MAX_STREAMS = 32
"""Live streams open at once, at most; more are answered 503."""

ROSTER_INTERVAL = 1.0
"""Seconds from one look at the fleet (for every stream of the trackers)
to the next."""

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
        fleet: Fleet,
        traffic: TrafficSource,
        clock: IReactorTime,
        tiles: MapTiles = MapTiles(),
        max_streams: int = MAX_STREAMS,
    ) -> None:
        self._roster = SharedRoster(fleet, clock)
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
        return self._open(request, self._roster.follow)

    def traffic(self, request: Request, imei: str) -> Answer | EventStream:
        """``GET /v1/live/trackers/{imei}/traffic``: the tracker's traffic
        from now on (while it is connected over TCP)."""
        if not (is_digits(imei) and len(imei) <= _MAX_IMEI_LENGTH):
            return error_answer(404, "no such resource")
        if self.open_streams >= self._max_streams:
            return _busy(self._max_streams)
        return self._open(request, lambda stream: self._traffic.watch(imei, stream))

    def _open(
        self, request: Request, start: Callable[[EventStream], Callable[[], None]]
    ) -> EventStream:
        """A stream for *request*, fed by *start*, which returns the call
        that stops feeding it."""
        self.open_streams += 1
        stops: list[Callable[[], None]] = []

        def closed() -> None:
            self.open_streams -= 1
            for stop in stops:
                stop()

        stream = EventStream(request, self._clock, closed)
        stops.append(start(stream))
        return stream


def _busy(limit: int) -> Answer:
    return error_answer(503, f"{limit} live streams are open already; close one")


class _RosterFollower:
    """One stream of the trackers, and the tracker objects it sent last
    (None until the first roster went out whole, as ``trackers``)."""

    def __init__(self, stream: LivePage) -> None:
        self.stream = stream
        self.sent: dict[str, Json] | None = None

    def roster(self, trackers: dict[str, Json]) -> None:
        if self.sent is None:
            self.stream.send("trackers", {"trackers": list(trackers.values())})
        else:
            sent = self.sent
            changed = [t for imei, t in trackers.items() if sent.get(imei) != t]
            gone = [imei for imei in sent if imei not in trackers]
            if changed or gone:
                self.stream.send("changes", {"trackers": changed, "gone": gone})
        self.sent = trackers


class SharedRoster:
    """The trackers of *fleet*, looked at once an interval while any stream
    follows them; a look that fails keeps the last roster."""

    def __init__(self, fleet: Fleet, clock: IReactorTime) -> None:
        self._fleet = fleet
        self._clock = clock
        self._followers: list[_RosterFollower] = []
        self._trackers: dict[str, Json] | None = None
        self._next: IDelayedCall | None = None
        self._looking = False

    def follow(self, stream: LivePage) -> Callable[[], None]:
        """Send the roster down *stream* now (once known), then what changes
        once an interval; returns the call that stops it."""
        follower = _RosterFollower(stream)
        self._followers.append(follower)
        if self._trackers is not None:
            follower.roster(self._trackers)
        elif not self._looking:
            self._look()
        return lambda: self._unfollow(follower)

    def _unfollow(self, follower: _RosterFollower) -> None:
        self._followers.remove(follower)
        if not self._followers:
            if self._next is not None and self._next.active():
                self._next.cancel()
            self._next = None
            self._trackers = None

    def _look(self) -> None:
        self._next = None
        self._looking = True
        looked = self._fleet.trackers()
        looked.addCallback(self._looked).addErrback(self._failed)
        looked.addBoth(self._after_look)

    def _looked(self, listing: TrackerListing) -> None:
        if not self._followers:
            return
        trackers: dict[str, Json] = {}
        for tracker in listing.trackers:  # in a cluster, the first holder
            trackers.setdefault(tracker["imei"], tracker)
        self._trackers = trackers
        for follower in list(self._followers):
            follower.roster(trackers)

    def _failed(self, failure: Failure) -> None:
        _log.warn(
            "Live view: the trackers could not be listed: {error}",
            error=failure.getErrorMessage(),
        )

    def _after_look(self, _: object) -> None:
        self._looking = False
        if self._followers and self._next is None:
            self._next = self._clock.callLater(ROSTER_INTERVAL, self._look)
