"""The IO ids and sizes of a model: the catalogue's, so naming reads them back."""

from __future__ import annotations

import pytest

from teltotwist.catalogue import UnknownModelError, load_catalogue
from teltotwist.codec import AvlPacket, Codec, decode_frame, encode_frame
from teltotwist.device import ModelIo
from teltotwist.device.model_io import model_io, raw_units
from tests.vectors import build_record

READINGS = {
    "ignition": 1,
    "movement": 0,
    "gsm_signal": 4,
    "external_voltage": 12_840,
    "battery_voltage": 4_100,
    "total_odometer": 123_456,
    "axis_z": -1_000,
}


def named(model: str, readings: dict[str, int]) -> dict[str, object]:
    io, layout = ModelIo(model).elements(readings)
    record = build_record()._replace(io=io, io_layout=layout)
    frame = encode_frame(AvlPacket(Codec.CODEC8, (record,)))
    [record] = decode_frame(frame).records  # type: ignore[union-attr]
    return load_catalogue().naming(model).attributes(record.io)


def test_fmb920_readings_are_named_and_scaled_back() -> None:
    assert named("FMB920", READINGS) == {
        "ignition": 1,
        "movement": 0,
        "gsm_signal": 4,
        "external_voltage": 12.84,
        "battery_voltage_67": 4.1,
        "total_odometer": 123_456,
        "axis_z": -1_000,
    }


def test_fmb640_sends_its_own_ids_in_millivolts() -> None:
    io, _ = ModelIo("FMB640").elements(READINGS)

    assert io == {
        239: 1,
        240: 0,
        21: 4,
        66: 12_840,
        67: 4_100,
        216: 123_456,
        238: 64_536,
    }
    assert named("FMB640", READINGS)["external_voltage"] == 12_840


def test_a_negative_value_goes_as_twos_complement_of_its_size() -> None:
    io, layout = ModelIo("FMB920").elements({"axis_x": -1, "axis_y": -8_000})

    assert io == {17: 0xFFFF, 18: 0x10000 - 8_000}
    assert layout[:4] == (0, 2, 0, 0)


def test_the_lowest_id_of_a_name_is_the_trackers_own() -> None:
    """FMB920 also has "Battery Voltage" as OBD id 168, in whole volts."""
    battery = ModelIo("FMB920").definitions["battery_voltage"]

    assert (battery.io_id, battery.size) == (67, 2)


@pytest.mark.parametrize(
    ("model", "gnss_fix"), [("FMB920", 1), ("FMC130", 1), ("FMB640", 3)]
)
def test_gnss_on_with_fix_is_read_from_the_catalogue(model: str, gnss_fix: int) -> None:
    assert ModelIo(model).gnss_fix == gnss_fix


def test_raw_units_are_the_units_of_the_integer_sent() -> None:
    rows = {m: ModelIo(m).definitions["external_voltage"] for m in ("FMB920", "FMB640")}

    assert {m: raw_units(row) for m, row in rows.items()} == {
        "FMB920": "mV",
        "FMB640": "mV",
    }
    assert raw_units(load_catalogue().naming("FMB920").definitions[168]) == "V"


def test_model_names_are_the_catalogues_in_any_case() -> None:
    assert ModelIo("fmc130").model == "FMC130"
    with pytest.raises(UnknownModelError, match=r"near matches: .*FMB920"):
        ModelIo("FMB92")


def test_trackers_of_one_model_share_its_io_table() -> None:
    assert model_io("FMB920") is model_io("FMB920")
    assert model_io("FMB920").definitions == ModelIo("FMB920").definitions


def test_values_come_in_the_order_of_the_ids_grouped_by_size() -> None:
    fmb920 = ModelIo("FMB920")
    readings = dict.fromkeys(fmb920.names, 7) | {"axis_x": -1, "iccid2": 2**40}

    values = fmb920.values(readings)

    assert dict(zip(fmb920.io_ids, values, strict=True)) == {
        **dict.fromkeys(fmb920.io_ids, 7),
        17: 0xFFFF,
        14: 2**40,
    }
    sizes = [fmb920.definitions[name].size or 0 for name in fmb920.names]
    assert sizes == sorted(sizes)
    assert fmb920.io_layout == (*map(sizes.count, (1, 2, 4, 8)), 0, 0)


def test_a_model_without_these_readings_sends_none() -> None:
    """FM3010 names none of them in the catalogue."""
    fm3010 = ModelIo("FM3010")

    assert (fm3010.names, fm3010.values({}), fm3010.io_layout) == ((), [], (0,) * 6)
