# -*- test-case-name: tests.test_device_route -*-
"""Where the virtual tracker drives: a route, and positions along it in time.

A route is a list of points driven as a loop (from the last point back to the
first) at a speed that wanders between a minimum and a maximum.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple
from xml.etree import ElementTree

import attrs

EARTH_RADIUS_M = 6_371_008.8


class RouteError(ValueError):
    """A route file that cannot be used; the message names the file and why."""


@attrs.frozen
class RoutePoint:
    """A point of a route: signed degrees, and metres above sea level."""

    latitude: float
    longitude: float
    altitude: float = 0.0


class Position(NamedTuple):
    """Where the tracker is, as its GPS reports it."""

    # A named tuple, not a frozen attrs class: a load generator makes one per
    # record, and a tuple builds in half the time.

    latitude: float
    longitude: float
    altitude: int
    angle: int
    """Degrees from north, clockwise: the bearing to the next route point."""
    speed: int
    """km/h."""
    satellites: int


BUILT_IN_ROUTE: tuple[RoutePoint, ...] = tuple(
    RoutePoint(latitude, longitude, altitude)
    for latitude, longitude, altitude in (
        (54.6872, 25.2797, 112),
        (54.6896, 25.2665, 106),
        (54.6934, 25.2620, 104),
        (54.6968, 25.2700, 110),
        (54.6990, 25.2810, 118),
        (54.6961, 25.2920, 131),
        (54.6905, 25.2985, 140),
        (54.6840, 25.2960, 137),
        (54.6790, 25.2890, 128),
        (54.6770, 25.2780, 121),
        (54.6800, 25.2690, 115),
        (54.6840, 25.2700, 113),
    )
)
"""A loop of about 9 km around the old town of Vilnius."""


def distance_metres(start: RoutePoint, end: RoutePoint) -> float:
    """The great-circle distance between two points (haversine)."""
    lat1, lat2 = math.radians(start.latitude), math.radians(end.latitude)
    dlat = lat2 - lat1
    dlon = math.radians(end.longitude - start.longitude)
    h = (
        math.sin(dlat / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def bearing_degrees(start: RoutePoint, end: RoutePoint) -> int:
    """The initial bearing from *start* to *end*: 0 north, 90 east, 0..359."""
    lat1, lat2 = math.radians(start.latitude), math.radians(end.latitude)
    dlon = math.radians(end.longitude - start.longitude)
    y = math.sin(dlon) * math.cos(lat2)
    x = math.cos(lat1) * math.sin(lat2) - (
        math.sin(lat1) * math.cos(lat2) * math.cos(dlon)
    )
    return round(math.degrees(math.atan2(y, x))) % 360


class RouteWalker:
    """Moves along a route as time passes; counts the distance driven."""

    def __init__(
        self,
        points: Sequence[RoutePoint] = BUILT_IN_ROUTE,
        rng: random.Random | None = None,
        *,
        min_speed: float = 30.0,
        max_speed: float = 60.0,
    ) -> None:
        if len(points) < 2:
            raise RouteError(f"a route needs at least 2 points, not {len(points)}")
        if not 0 < min_speed <= max_speed:
            raise ValueError(f"speeds must be 0 < {min_speed} <= {max_speed}")
        if not _goes_somewhere(points):
            raise RouteError("a route's points must not all be the same place")
        self._segments = tuple(map(_Segment.between, points, (*points[1:], points[0])))
        self._rng = rng or random.Random()
        self._min_speed = min_speed
        self._max_speed = max_speed
        self._speed = self._rng.uniform(min_speed, max_speed)
        self._segment = 0
        self._along = 0.0
        self.odometer_m = 0.0
        """Metres driven since the start."""

    def advance(self, seconds: float) -> Position:
        """Drive for *seconds* at the current speed; the position reached."""
        driven = self._speed / 3.6 * seconds if seconds > 0.0 else 0.0
        self.odometer_m += driven
        along = self._along + driven
        segments = self._segments
        segment = segments[self._segment]
        while along >= segment.length:
            along -= segment.length
            self._segment = (self._segment + 1) % len(segments)
            segment = segments[self._segment]
        self._along = along
        share = along / segment.length
        speed = self._speed
        random = self._rng.random
        position = Position(
            segment.latitude + segment.north * share,
            segment.longitude + segment.east * share,
            round(segment.altitude + segment.up * share),
            segment.bearing,
            round(speed),
            7 + int(random() * 6),  # satellites: 7 to 12
        )
        speed += random() * 10.0 - 5.0  # drifting by up to 5 km/h
        self._speed = min(self._max_speed, max(self._min_speed, speed))
        return position


class _Segment(NamedTuple):
    """A leg of a route, from a point towards the next, measured once."""

    latitude: float
    longitude: float
    altitude: float
    north: float
    """Degrees of latitude to the next point."""
    east: float
    """Degrees of longitude to the next point."""
    up: float
    """Metres of altitude to the next point."""
    length: float
    """Metres to the next point."""
    bearing: int

    @classmethod
    def between(cls, start: RoutePoint, end: RoutePoint) -> _Segment:
        return cls(
            start.latitude,
            start.longitude,
            start.altitude,
            end.latitude - start.latitude,
            end.longitude - start.longitude,
            end.altitude - start.altitude,
            distance_metres(start, end),
            bearing_degrees(start, end),
        )


def load_route(path: Path) -> tuple[RoutePoint, ...]:
    """Read a GPX file (``<trkpt lat lon>``, optional ``<ele>``) or a CSV file
    (``lat,lon[,altitude,...]``, optional header line), by its suffix.

    :raises RouteError: naming the file, and the line or point at fault.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RouteError(f"cannot read route {path}: {error}") from None
    if path.suffix.lower() == ".gpx":
        points = _gpx_points(path, text)
    else:
        points = _csv_points(path, text)
    if len(points) < 2:
        raise RouteError(f"route {path} has {len(points)} points; it needs 2 or more")
    if not _goes_somewhere(points):
        raise RouteError(f"route {path}: its points are all the same place")
    return points


def _goes_somewhere(points: Sequence[RoutePoint]) -> bool:
    return any(map(distance_metres, points, (*points[1:], points[0])))


def _gpx_points(path: Path, text: str) -> tuple[RoutePoint, ...]:
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as error:
        raise RouteError(f"route {path} is not valid GPX: {error}") from None
    points: list[RoutePoint] = []
    for element in root.iter():
        if element.tag.rpartition("}")[2] != "trkpt":
            continue
        where = f"route {path}, <trkpt> #{len(points) + 1}"
        elevation = next(
            (child.text for child in element if child.tag.endswith("ele")), None
        )
        points.append(_point(where, element.get("lat"), element.get("lon"), elevation))
    return tuple(points)


def _csv_points(path: Path, text: str) -> tuple[RoutePoint, ...]:
    points: list[RoutePoint] = []
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or not "".join(row).strip():
            continue
        if number == 1 and not _is_number(row[0]):
            continue  # a header line
        if len(row) < 2:
            raise RouteError(f"route {path}, line {number}: expected lat,lon")
        altitude = row[2] if len(row) > 2 and _is_number(row[2]) else None
        points.append(_point(f"route {path}, line {number}", row[0], row[1], altitude))
    return tuple(points)


def _point(
    where: str, latitude: str | None, longitude: str | None, altitude: str | None
) -> RoutePoint:
    try:
        lat = float(latitude or "")
        lon = float(longitude or "")
        alt = float(altitude) if altitude else 0.0
    except ValueError:
        raise RouteError(
            f"{where}: latitude {latitude!r} / longitude {longitude!r} are not numbers"
        ) from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise RouteError(f"{where}: ({lat}, {lon}) is not a valid position")
    return RoutePoint(lat, lon, alt)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
