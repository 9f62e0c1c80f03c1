"""Records of the virtual tracker: what a gateway decodes from them."""

from __future__ import annotations

import random

import pytest
from twisted.internet.task import Clock

from teltotwist.codec import AvlPacket, Codec, decode_frame, encode_frame
from teltotwist.device import RoutePoint, RouteWalker, TelemetrySource

START = 1_795_000_000.0


def source(codec: Codec, clock: Clock) -> TelemetrySource:
    walker = RouteWalker(
        [RoutePoint(54.0, 25.0, 100), RoutePoint(54.1, 25.0, 140)],
        random.Random(3),
        min_speed=36,
        max_speed=36,
    )
    return TelemetrySource(clock, codec, walker, random.Random(4))


@pytest.mark.parametrize("codec", [Codec.CODEC8, Codec.CODEC8E, Codec.CODEC16])
def test_records_survive_their_codec(codec: Codec) -> None:
    clock = Clock()
    clock.advance(START)
    telemetry = source(codec, clock)
    records = []
    for _ in range(3):
        clock.advance(10.5)
        records.append(telemetry.sample())

    decoded = decode_frame(encode_frame(AvlPacket(codec, tuple(records))))

    assert decoded == AvlPacket(codec, tuple(records))
    assert [record.timestamp_ms for record in records] == [
        1_795_000_010_500,
        1_795_000_021_000,
        1_795_000_031_500,
    ]
    expected_generation = 7 if codec is Codec.CODEC16 else None
    assert {record.generation_type for record in records} == {expected_generation}


def test_io_of_a_moving_car_with_odometer_following_the_distance() -> None:
    clock = Clock()
    telemetry = source(Codec.CODEC8, clock)
    clock.advance(100)
    first = telemetry.sample()
    clock.advance(50)
    second = telemetry.sample()

    assert first.io[239] == 1
    assert first.io[240] == 1
    assert first.io[21] in range(6)
    assert first.io[66] in range(12_000, 14_001)
    assert (first.io[16], second.io[16]) == (1000, 1500)  # 36 km/h = 10 m/s
    assert (first.speed, first.angle, first.event_id) == (36, 0, 0)
    assert 100 < first.altitude < second.altitude < 140


def test_only_avl_codecs() -> None:
    with pytest.raises(ValueError, match="codec 12 carries no AVL records"):
        TelemetrySource(Clock(), Codec.CODEC12)
