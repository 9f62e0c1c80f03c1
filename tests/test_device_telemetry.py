"""Records of the virtual tracker: what a gateway decodes from them."""

from __future__ import annotations

import random

import pytest
from twisted.internet.task import Clock

from teltotwist.catalogue import load_catalogue
from teltotwist.codec import (
    AvlPacket,
    AvlRecord,
    Codec,
    decode_frame,
    encode_avl_frame,
    encode_frame,
)
from teltotwist.device import RoutePoint, RouteWalker, TelemetrySource

START = 1_795_000_000.0


def source(codec: Codec, clock: Clock, model: str = "FMB920") -> TelemetrySource:
    walker = RouteWalker(
        [RoutePoint(54.0, 25.0, 100), RoutePoint(54.1, 25.0, 140)],
        random.Random(3),
        min_speed=36,
        max_speed=36,
    )
    return TelemetrySource(clock, codec, walker, random.Random(4), model)


@pytest.mark.parametrize("codec", [Codec.CODEC8, Codec.CODEC8E, Codec.CODEC16])
def test_records_survive_their_codec(codec: Codec) -> None:
    clock = Clock()
    clock.advance(START)
    telemetry = source(codec, clock)
    records = []
    for _ in range(3):
        clock.advance(10.5)
        records.append(telemetry.sample())

    frame = encode_avl_frame(codec, [record.wire for record in records])
    decoded = decode_frame(frame)

    assert decoded == AvlPacket(codec, tuple(records))
    assert frame == encode_frame(decoded)
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


def test_by_default_an_fmb920_still_sends_the_ids_it_sent_before() -> None:
    """Before ``--model``, the tracker sent these five ids with these sizes."""
    clock = Clock()
    clock.advance(100)

    telemetry = TelemetrySource(clock, Codec.CODEC8)

    assert telemetry.model_io.model == "FMB920"
    sent = sizes(telemetry.sample())
    assert {239: 1, 240: 1, 21: 1, 66: 2, 16: 4}.items() <= sent.items()


def sizes(record: AvlRecord) -> dict[int, int]:
    """Each IO id of *record* and its size in bytes, from its layout."""
    ids = iter(record.io)
    return {
        next(ids): size
        for size, count in zip((1, 2, 4, 8), record.io_layout, strict=False)
        for _ in range(count)
    }


EXPECTED_IDS = {
    "FMB920": {239, 240, 21, 80, 69, 66, 67, 17, 18, 19, 16, 199, 11, 14},
    "FMC130": {239, 240, 21, 80, 69, 66, 67, 17, 18, 19, 16, 199, 11, 14},
    "FMB640": {239, 240, 21, 22, 71, 66, 67, 236, 237, 238, 216, 199},
}


@pytest.mark.parametrize("model", sorted(EXPECTED_IDS))
@pytest.mark.parametrize("codec", [Codec.CODEC8, Codec.CODEC8E])
def test_a_model_sends_what_its_catalogue_names(model: str, codec: Codec) -> None:
    clock = Clock()
    telemetry = source(codec, clock, model)
    clock.advance(100)
    sent = telemetry.sample()
    [record] = decode_frame(encode_frame(AvlPacket(codec, (sent,)))).records  # type: ignore[union-attr]

    naming = load_catalogue().naming(model)
    attributes = naming.attributes(record.io)

    assert set(record.io) == EXPECTED_IDS[model]
    assert all(size == naming.definitions[i].size for i, size in sizes(record).items())
    millivolts = 1 if model == "FMB640" else 1000  # FMB640 names millivolts
    assert 12_000 <= attributes["external_voltage"] * millivolts <= 14_000
    assert 4_000 <= attributes["battery_voltage_67"] * millivolts <= 4_200
    assert attributes["gnss_status"] == (3 if model == "FMB640" else 1)  # with fix
    assert (attributes["ignition"], attributes["movement"]) == (1, 1)
    assert attributes["data_mode"] == 1  # home on moving
    assert attributes["gsm_signal"] in range(3, 6)
    assert attributes["total_odometer"] == attributes["trip_odometer"] == 1000
    assert -1040 <= attributes["axis_z"] <= -960  # at rest: gravity, in mG
    assert all(-60 <= attributes[axis] <= 60 for axis in ("axis_x", "axis_y"))


def test_each_record_is_another_moment_with_its_own_noise() -> None:
    clock = Clock()
    clock.advance(START)
    telemetry = TelemetrySource(clock, Codec.CODEC8E, rng=random.Random(6))
    records = []
    for _ in range(200):
        clock.advance(1)
        records.append(telemetry.sample())

    assert len({record.wire for record in records}) == 200
    assert len({(record.latitude, record.longitude) for record in records}) == 200
    ranges = {
        21: range(3, 6),  # GSM signal
        66: range(12_000, 14_001),  # external voltage, mV
        67: range(4_000, 4_201),  # battery voltage, mV
        17: range(-60, 61),  # accelerometer, mG
        18: range(-60, 61),
        19: range(-1_040, -959),
    }
    for io_id, expected in ranges.items():
        values = {signed(record.io[io_id], 2) for record in records}
        assert values <= set(expected)
        assert len(values) >= min(len(expected), 60)  # drawn anew each time
    assert all(7 <= record.satellites <= 12 for record in records)
    assert len({record.satellites for record in records}) == 6


def signed(value: int | bytes, size: int) -> int:
    """*value*, sent in *size* bytes, as the signed integer it stands for."""
    assert isinstance(value, int)
    return int.from_bytes(value.to_bytes(size, "big"), "big", signed=True)
