"""CRC-16/IBM: the check value, the vectors' CRCs, native against pure Python."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

import teltotwist
from teltotwist.codec import (
    Codec,
    CommandFrame,
    CommandMessage,
    CommandType,
    crc16_ibm,
    crc16_ibm_pure,
    encode_frame,
)
from tests.vectors import (
    FRAME_HEADER_SIZE,
    Vector,
    by_id,
    select,
    vector_id,
)

WITH_CRC = select(lambda v: "crc_calc" in v.reference and v.reference["length_ok"])
"""Frames whose reference computed the CRC of their data field."""


@pytest.mark.parametrize("crc", [crc16_ibm, crc16_ibm_pure], ids=["native", "pure"])
def test_check_value(crc: Callable[[bytes], int]) -> None:
    assert crc(b"123456789") == 0xBB3D
    assert crc(b"") == 0


@pytest.mark.parametrize("vector", WITH_CRC, ids=vector_id)
def test_crc_of_the_data_field_is_the_references(vector: Vector) -> None:
    data = vector.data
    length = int.from_bytes(data[4:8], "big")
    field = data[FRAME_HEADER_SIZE : FRAME_HEADER_SIZE + length]

    expected = int(vector.reference["crc_calc"], 16)
    assert crc16_ibm(field) == expected
    assert crc16_ibm_pure(field) == expected


@given(st.binary(max_size=2048))
def test_native_and_pure_agree(data: bytes) -> None:
    assert crc16_ibm(data) == crc16_ibm_pure(data)


def test_getio_crc_keeps_its_leading_zeros() -> None:
    """getio's CRC is 0x00CB: the field reads 000000CB, all four bytes kept."""
    vector = by_id("wiki-c12-getio-cmd")
    assert vector.reference["crc_field"] == "000000cb"
    command = CommandMessage(CommandType.COMMAND, b"getio")

    frame = encode_frame(CommandFrame(Codec.CODEC12, (command,)))

    assert frame == vector.data
    assert frame[-4:] == bytes.fromhex("000000cb")
    assert teltotwist.decode(frame) == CommandFrame(Codec.CODEC12, (command,))
