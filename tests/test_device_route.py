"""Routes for the virtual tracker: geometry, driving, and route files."""

from __future__ import annotations

import random
from itertools import pairwise
from pathlib import Path

import pytest

from teltotwist.device import (
    BUILT_IN_ROUTE,
    RouteError,
    RoutePoint,
    RouteWalker,
    bearing_degrees,
    distance_metres,
    load_route,
)

ORIGIN = RoutePoint(54.0, 25.0)


@pytest.mark.parametrize(
    ("end", "bearing"),
    [
        (RoutePoint(54.01, 25.0), 0),
        (RoutePoint(54.0, 25.01), 90),
        (RoutePoint(53.99, 25.0), 180),
        (RoutePoint(54.0, 24.99), 270),
    ],
)
def test_bearing_is_clockwise_from_north(end: RoutePoint, bearing: int) -> None:
    assert bearing_degrees(ORIGIN, end) == bearing


def test_a_degree_of_latitude_is_about_111_km() -> None:
    assert distance_metres(ORIGIN, RoutePoint(55.0, 25.0)) == pytest.approx(
        111_195, rel=1e-3
    )


def test_the_walker_drives_at_town_speed_and_counts_every_metre() -> None:
    walker = RouteWalker(rng=random.Random(1))
    positions = [walker.advance(10.0) for _ in range(200)]

    assert all(30 <= position.speed <= 60 for position in positions)
    assert all(7 <= position.satellites <= 12 for position in positions)
    assert {position.angle for position in positions} == {
        bearing_degrees(start, end)
        for start, end in pairwise((*BUILT_IN_ROUTE, BUILT_IN_ROUTE[0]))
    }
    # 2000 s at 30..60 km/h: 17..33 km, several laps of the 9 km loop.
    assert 16_600 <= walker.odometer_m <= 33_400


def test_the_walker_follows_a_straight_route_north() -> None:
    walker = RouteWalker([ORIGIN, RoutePoint(54.1, 25.0)], min_speed=36, max_speed=36)

    position = walker.advance(100.0)

    assert walker.odometer_m == pytest.approx(1000)
    assert position.angle == 0
    assert distance_metres(ORIGIN, RoutePoint(position.latitude, 25.0)) == (
        pytest.approx(1000, rel=1e-3)
    )


def test_gpx_track_points(tmp_path: Path) -> None:
    gpx = tmp_path / "drive.gpx"
    gpx.write_text(
        '<?xml version="1.0"?>\n'
        '<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>'
        '<trkpt lat="54.1" lon="25.2"><ele>120.5</ele></trkpt>'
        '<trkpt lat="-33.9" lon="18.4"/>'
        "</trkseg></trk></gpx>"
    )

    assert load_route(gpx) == (
        RoutePoint(54.1, 25.2, 120.5),
        RoutePoint(-33.9, 18.4, 0.0),
    )


@pytest.mark.parametrize("header", ["lat,lon,alt,name\n", ""])
def test_csv_with_or_without_a_header(tmp_path: Path, header: str) -> None:
    route = tmp_path / "drive.csv"
    route.write_text(header + "54.1,25.2,130,depot\n\n54.2,25.3\n")

    assert load_route(route) == (
        RoutePoint(54.1, 25.2, 130.0),
        RoutePoint(54.2, 25.3, 0.0),
    )


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.csv", "lat,lon\n54.1,25.2\n54.2,east\n", "line 3: latitude '54.2'"),
        (
            "far.csv",
            "54.1,25.2\n95.0,25.3\n",
            "line 2: (95.0, 25.3) is not a valid position",
        ),
        ("one.csv", "54.1,25.2\n", "has 1 points; it needs 2 or more"),
        ("same.csv", "54.1,25.2\n54.1,25.2\n", "are all the same place"),
        ("short.csv", "54.1,25.2\n54.3\n", "line 2: expected lat,lon"),
        ("broken.gpx", "<gpx><trkpt lat='1'", "is not valid GPX"),
        ("nolon.gpx", "<gpx><trkpt lat='1'/><trkpt lat='2' lon='3'/></gpx>", "#1"),
    ],
)
def test_bad_route_files_say_where_and_why(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    route = tmp_path / name
    route.write_text(content)

    with pytest.raises(RouteError, match="route .*" + name) as raised:
        load_route(route)
    assert message in str(raised.value)


def test_a_missing_route_file(tmp_path: Path) -> None:
    with pytest.raises(RouteError, match=r"cannot read route .*nowhere\.csv"):
        load_route(tmp_path / "nowhere.csv")


def test_a_route_must_go_somewhere() -> None:
    with pytest.raises(RouteError, match="must not all be the same place"):
        RouteWalker([ORIGIN, ORIGIN])
