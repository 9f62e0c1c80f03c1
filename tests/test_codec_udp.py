"""UDP datagrams: IMEI, packet ids and records, with no CRC."""

from __future__ import annotations

import pytest

from teltotwist.codec import (
    Codec,
    CodecError,
    InvalidLoginError,
    LengthMismatchError,
    TruncatedError,
    UnknownCodecError,
    decode_udp,
    encode_udp,
)
from teltotwist.codec.udp import decode_udp_header, decode_udp_payload
from tests.vectors import (
    UDP_VALID,
    Vector,
    assert_names_offset,
    by_id,
    codec_of,
    expected_record_fields,
    record_fields,
    vector_id,
)


@pytest.mark.parametrize("vector", UDP_VALID, ids=vector_id)
def test_vector_decodes_like_the_reference(vector: Vector) -> None:
    datagram = decode_udp(vector.data)

    reference = vector.reference
    assert datagram.imei == reference["imei"]
    assert datagram.packet_id == int(reference["packet_id"], 16)
    assert datagram.avl_packet_id == reference["avl_packet_id"]
    codec = codec_of(vector)
    assert datagram.packet.codec is codec
    assert len(datagram.packet.records) == reference["count1"]
    for record, expected in zip(
        datagram.packet.records, reference["records"], strict=True
    ):
        fields = expected_record_fields(expected, codec)
        assert record_fields(record, with_io="io" in fields) == fields


@pytest.mark.parametrize("vector", UDP_VALID, ids=vector_id)
def test_encoder_reproduces_vector(vector: Vector) -> None:
    assert encode_udp(decode_udp(vector.data)) == vector.data


@pytest.mark.parametrize("vector", UDP_VALID, ids=vector_id)
def test_records_carry_the_bytes_they_were_decoded_from(vector: Vector) -> None:
    records = decode_udp(vector.data).packet.records
    records_start = decode_udp_header(vector.data).payload_start + 2

    assert b"".join(r.wire for r in records) == vector.data[records_start:-1]
    assert len({record.wire for record in records}) == len(records)


def test_published_codec16_example_is_a_length_mismatch() -> None:
    """Its length field says 0x015B bytes follow; 72 do."""
    vector = by_id("wiki-c16-udp-published")
    assert vector.reference["length"] != len(vector.data) - 2

    with pytest.raises(LengthMismatchError) as caught:
        decode_udp(vector.data)
    assert_names_offset(caught.value, vector.data)


def test_every_truncation_is_rejected() -> None:
    """Shorter than its fixed header: truncated; else the length field disagrees."""
    data = by_id("wiki-c8-udp-1").data
    for size in range(len(data)):
        with pytest.raises(TruncatedError if size < 8 else LengthMismatchError):
            decode_udp(data[:size])


def test_trailing_bytes_are_a_length_mismatch() -> None:
    data = by_id("wiki-c8-udp-1").data + b"\x00"

    with pytest.raises(LengthMismatchError):
        decode_udp(data)


def with_imei(imei: bytes, payload: bytes = b"") -> bytes:
    """The wiki Codec 8 datagram with another IMEI (and length field to match)."""
    original = by_id("wiki-c8-udp-1").data
    body = original[2:6] + len(imei).to_bytes(2, "big") + imei
    body += payload or original[23:]
    return len(body).to_bytes(2, "big") + body


def test_the_helper_rebuilds_the_vector() -> None:
    assert with_imei(b"352093086403655") == by_id("wiki-c8-udp-1").data


@pytest.mark.parametrize(
    "imei",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"35209308640365X", id="letter"),
        pytest.param(b"35209308640365 ", id="space"),
        pytest.param("35209308640365٣".encode(), id="arabic-indic-digit"),
        pytest.param(b"1" * 33, id="33-digits"),
    ],
)
def test_implausible_imei_is_rejected(imei: bytes) -> None:
    data = with_imei(imei)

    with pytest.raises(InvalidLoginError) as caught:
        decode_udp(data)
    assert_names_offset(caught.value, data)


def test_imei_running_past_the_datagram_is_truncated() -> None:
    """IMEI length 30, but only 20 bytes follow the header."""
    body = bytes.fromhex("CAFE0105") + (30).to_bytes(2, "big") + b"3" * 20
    data = len(body).to_bytes(2, "big") + body

    with pytest.raises(TruncatedError):
        decode_udp(data)


def test_command_codec_in_a_datagram_is_rejected() -> None:
    """UDP carries AVL data only; Codec 12 frames travel over TCP."""
    data = with_imei(b"352093086403655", bytes((Codec.CODEC12, 1, 1)))

    with pytest.raises(UnknownCodecError) as caught:
        decode_udp(data)
    assert_names_offset(caught.value, data)


@pytest.mark.parametrize("vector", UDP_VALID, ids=vector_id)
def test_the_header_alone_gives_the_ids_imei_and_payload_start(
    vector: Vector,
) -> None:
    header = decode_udp_header(vector.data)

    reference = vector.reference
    assert header.imei == reference["imei"]
    assert header.packet_id == int(reference["packet_id"], 16)
    assert header.avl_packet_id == reference["avl_packet_id"]
    assert header.payload_start == 8 + len(reference["imei"])
    assert vector.data[header.payload_start] == codec_of(vector)


def test_the_header_decodes_whatever_payload_follows() -> None:
    """The payload is not read: a garbage one is the payload decoder's to find."""
    data = with_imei(b"352093086403655", b"garbage")

    header = decode_udp_header(data)

    assert (header.imei, header.payload_start) == ("352093086403655", 23)
    with pytest.raises(UnknownCodecError):
        decode_udp_payload(data, header)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(by_id("wiki-c8-udp-1").data[:7], id="truncated"),
        pytest.param(by_id("wiki-c16-udp-published").data, id="length-field-wrong"),
        pytest.param(with_imei(b"35209308640365X"), id="imei-not-digits"),
        pytest.param(with_imei(b"1" * 33), id="imei-33-digits"),
        pytest.param(with_imei(b""), id="imei-empty"),
    ],
)
def test_a_bad_header_is_rejected_by_the_header_decoder(data: bytes) -> None:
    with pytest.raises(CodecError):
        decode_udp_header(data)
