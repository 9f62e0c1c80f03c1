"""Records' IO named for a model: checked against the raw CSV on real frames."""

from __future__ import annotations

import csv
from collections.abc import Mapping

import pytest

from teltotwist.catalogue import Definition, attribute_name, load_catalogue
from teltotwist.catalogue.naming import unique_names
from teltotwist.codec import AvlRecord, decode_frame
from teltotwist.codec.model import AvlPacket
from tests.vectors import VECTORS_DIR, by_id


def records(vector_id: str) -> tuple[AvlRecord, ...]:
    packet = decode_frame(by_id(vector_id).data)
    assert isinstance(packet, AvlPacket)
    return packet.records


def csv_names(model: str) -> dict[int, str]:
    """Each id's catalogue name for *model*, straight from the CSV."""
    with (VECTORS_DIR / "avl_ids.csv").open(encoding="utf-8", newline="") as f:
        return {
            int(row["id"]): row["name"]
            for row in csv.DictReader(f)
            if model in {m.strip() for m in row["supported_models"].split(",")}
        }


def named(model: str, io_id: int) -> Definition:
    return load_catalogue().naming(model).definitions[io_id]


@pytest.mark.parametrize(
    ("model", "vector_id"),
    [
        ("FMB920", "wiki-fmb920pdf-tcp"),
        ("FMC130", "traccar-19-avl"),
        ("FMB640", "traccar-08-avl"),
        ("TAT100", "traccar-11-avl"),
        ("FMB120", "traccar-26-avl"),
    ],
)
def test_every_id_the_model_knows_is_named_from_its_row(
    model: str, vector_id: str
) -> None:
    names = csv_names(model)
    naming = load_catalogue().naming(model)
    for record in records(vector_id):
        attributes = naming.attributes(record.io)
        expected = {
            io_id: attribute_name(names[io_id]) for io_id in record.io if io_id in names
        }
        assert len(attributes) == len(expected)
        for io_id, key in expected.items():
            assert naming.names[io_id] in (key, f"{key}_{io_id}")
            assert naming.names[io_id] in attributes


def test_fmb920_record_attributes() -> None:
    [record] = records("wiki-fmb920pdf-tcp")

    attributes = load_catalogue().naming("FMB920").attributes(record.io)

    assert attributes["external_voltage"] == 11.935
    assert attributes["battery_voltage_67"] == 1.751
    assert attributes["gnss_pdop"] == 1.1
    assert attributes["ble_battery_3"] == 1
    assert attributes["dallas_temperature_id_4"] == 3
    assert attributes["active_gsm_operator"] == 24602


def test_fmb640_reads_the_same_ids_otherwise() -> None:
    record = records("traccar-08-avl")[0]

    attributes = load_catalogue().naming("FMB640").attributes(record.io)

    assert attributes["external_voltage"] == 28713
    assert attributes["data_mode"] == 3
    assert attributes["gnss_status"] == 3
    assert attributes["wheel_based_speed"] == 84
    assert "ble_battery_3" not in attributes


def test_fmc130_signed_axes_and_vin() -> None:
    record = records("traccar-07-avl")[1]
    [vin_record] = records("traccar-12-avl")

    naming = load_catalogue().naming("FMC130")
    attributes = naming.attributes(record.io)

    assert (attributes["axis_x"], attributes["axis_y"], attributes["axis_z"]) == (
        -298,
        -739,
        -3598,
    )
    assert naming.attributes(vin_record.io)["vin_256"] == "WV1ZZZ2EZ86015388"


def test_ids_the_model_does_not_know_are_left_out() -> None:
    attributes = load_catalogue().naming("FMB920").attributes({1: 1, 65000: 5})

    assert attributes == {"digital_input_1": 1}


def test_ids_sharing_a_name_get_their_id_appended() -> None:
    names = load_catalogue().naming("FMB920").names

    assert names[67] == "battery_voltage_67"
    assert names[168] == "battery_voltage_168"
    assert names[66] == "external_voltage"


def test_unique_names_suffixes_only_the_colliding_ids() -> None:
    rows = [named("FMB920", io_id) for io_id in (66, 67, 168)]

    assert unique_names(rows) == {
        66: "external_voltage",
        67: "battery_voltage_67",
        168: "battery_voltage_168",
    }


def test_attributes_take_any_mapping() -> None:
    io: Mapping[int, int | bytes] = {66: 24079}

    assert load_catalogue().naming("fmb920").attributes(io) == {
        "external_voltage": 24.079
    }


def _rows_of(model: str) -> dict[int, dict[str, str]]:
    with (VECTORS_DIR / "avl_ids.csv").open(encoding="utf-8", newline="") as f:
        return {
            int(row["id"]): row
            for row in csv.DictReader(f)
            if model in {m.strip() for m in row["supported_models"].split(",")}
        }


def _expected_number(row: Mapping[str, str], raw: int) -> int | float:
    """The value the catalogue row means, worked out here independently."""
    value = raw
    if row["type"] == "Signed":
        bits = 8 * int(row["bytes"])
        if raw >= 1 << (bits - 1) and raw < 1 << bits:
            value = raw - (1 << bits)
    multiplier = row["multiplier"]
    if multiplier in ("", "0", "1"):
        return value
    decimals = len(multiplier.partition(".")[2])
    return round(value * float(multiplier), decimals)


AVL_VECTORS = [
    "wiki-fmb920pdf-tcp",
    "traccar-19-avl",
    "traccar-08-avl",
    "traccar-11-avl",
    "traccar-26-avl",
    "traccar-07-avl",
]


@pytest.mark.parametrize("model", load_catalogue().models())
def test_every_model_names_and_scales_real_frames_as_its_rows_say(model: str) -> None:
    rows = _rows_of(model)
    naming = load_catalogue().naming(model)
    for vector_id in AVL_VECTORS:
        for record in records(vector_id):
            attributes = naming.attributes(record.io)
            for io_id, raw in record.io.items():
                row = rows.get(io_id)
                if row is None:
                    continue
                key = attribute_name(row["name"])
                name = naming.names[io_id]
                assert name in (key, f"{key}_{io_id}"), (model, io_id)
                if isinstance(raw, int) and row["type"] in ("Signed", "Unsigned"):
                    assert attributes[name] == _expected_number(row, raw), (
                        model,
                        io_id,
                    )


def test_a_plain_number_sent_as_bytes_is_named_as_hex() -> None:
    """A value too wide for its catalogue row (from the variable-length group)
    stays bytes in the decoded IO; named, it is hex, never the bytes object."""
    naming = load_catalogue().naming("FMB920")

    assert naming.attributes({239: 1, 240: b"\x00\x01"}) == {
        "ignition": 1,
        "movement": "0001",
    }
