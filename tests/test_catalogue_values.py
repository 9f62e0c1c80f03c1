"""Raw IO values read as the catalogue row says: signed, scaled, hex, text."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from teltotwist.catalogue import Definition, load_catalogue
from teltotwist.catalogue.values import IoValue, converter, integer_converter


def definition(
    *, kind: str = "Unsigned", size: int | None = 2, multiplier: str = "1"
) -> Definition:
    return Definition(
        io_id=1000,
        name="Test",
        size=size,
        type=kind,
        minimum=0,
        maximum=0,
        multiplier=multiplier,
        units="",
        description="",
        models=frozenset({"FMB920"}),
    )


def value_for(model: str, io_id: int, raw: IoValue) -> Any:
    row = load_catalogue().naming(model).definitions[io_id]
    return converter(row)(raw)


def test_external_voltage_scaled_to_volts_for_fmb920() -> None:
    assert value_for("FMB920", 66, 24079) == 24.079


def test_external_voltage_stays_millivolts_for_fmb640() -> None:
    assert value_for("FMB640", 66, 24079) == 24079


@pytest.mark.parametrize(
    ("raw", "axis"), [(0xFFE5, -27), (0xFD1D, -739), (31, 31), (0x8000, -32768)]
)
def test_accelerometer_axes_are_signed_for_fmb920(raw: int, axis: int) -> None:
    assert value_for("FMB920", 17, raw) == axis
    assert value_for("FMB920", 19, raw) == axis


def test_signed_and_scaled_for_tat100_axes() -> None:
    assert value_for("TAT100", 17, 0xFFE5) == -0.027


@pytest.mark.parametrize(
    ("multiplier", "raw", "expected"),
    [
        ("0.1", 3001, 300.1),
        ("0.01", 1, 0.01),
        ("0.03125", 3, 0.09375),
        ("0.4", 7, 2.8),
        ("0.001", 2**64 - 1, 18446744073709551.615),
        ("10", 7, 70),
        ("0", 7, 7),
        ("", 7, 7),
    ],
)
def test_multiplier_gives_the_float_nearest_the_exact_product(
    multiplier: str, raw: int, expected: float
) -> None:
    value = converter(definition(multiplier=multiplier))(raw)

    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize("kind", ["Unsigned", "Signed", "Hex", "ASCII"])
@pytest.mark.parametrize("multiplier", ["1", "0.1", "0.03125", "50"])
@pytest.mark.parametrize("raw", [0, 1, 0x7FFF, 0x8000, 0xFFFF])
def test_an_integer_converts_alike_in_one_call(
    kind: str, multiplier: str, raw: int
) -> None:
    row = definition(kind=kind, multiplier=multiplier)
    of_integer = integer_converter(row)

    expected = converter(row)(raw)
    if of_integer is None:
        assert (kind, multiplier, expected) == ("Unsigned", "1", raw)
    else:
        assert of_integer(raw) == expected


def test_hex_keeps_the_catalogue_size() -> None:
    convert = converter(definition(kind="Hex", size=8))

    assert convert(0x1A2B) == "0000000000001a2b"
    assert convert(b"\xab\xcd") == "abcd"


def test_variable_length_number_stays_hex() -> None:
    assert converter(definition(size=None))(b"\x01\xff") == "01ff"


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"WV1ZZZ2EZ86015388", "WV1ZZZ2EZ86015388"),
        (b"ABC\x00\x00", "ABC"),
        (bytes(17), ""),
        (b"AB\x07C", "41420743"),
        (b"\xffAB", "ff4142"),
    ],
)
def test_ascii_is_text_where_printable_else_hex(raw: bytes, text: str) -> None:
    assert converter(definition(kind="ASCII", size=None))(raw) == text


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("Unsigned", (2**64 - 1) // 10, (2**64 - 1) // 10 * 10),
        ("Unsigned", 2**64 - 1, float((2**64 - 1) * 10)),
        ("Signed", 2**63, float(-(2**63) * 10)),
    ],
)
def test_a_whole_multiplier_gives_a_float_beyond_json_integers(
    kind: str, raw: int, expected: float
) -> None:
    """A tracker may send a value larger than its catalogue size: scaled, it
    must still fit a record's JSON, which holds 64-bit integers."""
    value = converter(definition(kind=kind, size=8, multiplier="10"))(raw)

    assert value == expected
    assert type(value) is type(expected)
    assert orjson.loads(orjson.dumps(value)) == expected
