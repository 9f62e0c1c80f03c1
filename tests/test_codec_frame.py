"""TCP frames: preamble, data field length, CRC, and which codec decodes the rest."""

from __future__ import annotations

import pytest

import teltotwist
from teltotwist.codec import (
    AvlPacket,
    CodecError,
    CommandFrame,
    CRCMismatchError,
    FramingError,
    LengthMismatchError,
    TruncatedError,
    UnknownCodecError,
    check_envelope,
    encode_avl_frame,
)
from tests.vectors import (
    ALL,
    TCP_AVL_VALID,
    TCP_COMMANDS_DECODED,
    TCP_FRAMES,
    Vector,
    assert_names_offset,
    by_id,
    frame_payload,
    payload_of,
    vector_id,
)

REJECTED: dict[str, type[CodecError]] = {
    # CRC 32AC belongs to IMEI ...251; with the printed IMEI ...468 it is 635E.
    "wiki-c14-nack": CRCMismatchError,
    # Timestamp shortened to 4 bytes without updating Data Size: 31 bytes, not 35.
    "wiki-c13-getinfo-4byte-ts-broken": LengthMismatchError,
    # Codec 13 whose CRC does not verify (field 4990, computed 4715).
    "traccar-14-codec13": CRCMismatchError,
    # Old Codec 16 PDF example: CRC field 09A5, the real CRC is A6DE.
    "traccar-20-avl": CRCMismatchError,
    # FMB920 PDF example with two IO ids edited and the CRC left unchanged.
    "traccar-22-avl": CRCMismatchError,
    # Data Field Length 0 and no CRC: 56 bytes where 12 are announced.
    "traccar-28-avl": LengthMismatchError,
    # FM4xxx vendor example with only 2 of the 4 CRC bytes.
    "traccar-33-avl": LengthMismatchError,
    # Data Field Length 166 but only 33 body bytes follow.
    "traccar-40-avl": LengthMismatchError,
    # Camera/photo Codec 12 frames with synthetic CRCs.
    "traccar-49-codec12": CRCMismatchError,
    "traccar-50-codec12": CRCMismatchError,
    # Legacy GH3000 Codec 7: not decoded; one of them is also a byte short.
    "traccar-31-avl-gh3000": UnknownCodecError,
    "traccar-36-avl-gh3000": LengthMismatchError,
    "traccar-37-avl-gh3000": UnknownCodecError,
}
"""Frames the vectors' notes and references call broken, and how they must fail."""


def test_vector_files_hold_every_example() -> None:
    """26 wiki examples and 61 Traccar frames: a missing file or entry is loud."""
    sources = [vector.id.split("-")[0] for vector in ALL]

    assert (sources.count("wiki"), sources.count("traccar")) == (26, 61)


def test_rejection_table_lists_every_frame_the_references_call_broken() -> None:
    flagged = {
        vector.id
        for vector in TCP_FRAMES
        if not vector.valid or vector.reference.get("codec") == 7
    }
    assert flagged == set(REJECTED)


@pytest.mark.parametrize(
    ("vector", "error"),
    [pytest.param(by_id(name), error, id=name) for name, error in REJECTED.items()],
)
def test_broken_vector_is_rejected(vector: Vector, error: type[CodecError]) -> None:
    with pytest.raises(error) as caught:
        teltotwist.decode(vector.data)
    assert_names_offset(caught.value, vector.data)


@pytest.mark.parametrize("vector", TCP_AVL_VALID, ids=vector_id)
def test_avl_codecs_decode_to_packets(vector: Vector) -> None:
    assert isinstance(teltotwist.decode(vector.data), AvlPacket)


@pytest.mark.parametrize("vector", TCP_COMMANDS_DECODED, ids=vector_id)
def test_command_codecs_decode_to_command_frames(vector: Vector) -> None:
    assert isinstance(teltotwist.decode(vector.data), CommandFrame)


@pytest.mark.parametrize("position", range(4))
def test_nonzero_preamble_is_a_framing_error(position: int) -> None:
    frame = bytearray(by_id("wiki-c8-tcp-1").data)
    frame[position] = 0x01

    with pytest.raises(FramingError) as caught:
        teltotwist.decode(bytes(frame))
    assert_names_offset(caught.value, bytes(frame))


@pytest.mark.parametrize("trailing", [b"\x00", b"\xff", bytes(12)])
def test_trailing_bytes_after_the_frame_are_a_length_mismatch(trailing: bytes) -> None:
    frame = by_id("wiki-c8-tcp-1").data + trailing

    with pytest.raises(LengthMismatchError) as caught:
        teltotwist.decode(frame)
    assert_names_offset(caught.value, frame)


def test_every_truncation_is_rejected() -> None:
    """Shorter than preamble + length + CRC: truncated; else the length disagrees."""
    frame = by_id("wiki-c8e-tcp-2018-vin").data
    for size in range(len(frame)):
        with pytest.raises(TruncatedError if size < 12 else LengthMismatchError):
            teltotwist.decode(frame[:size])


def test_frame_too_short_for_its_header_has_no_offset() -> None:
    """Nothing in a 5-byte input can be pointed at: the input as a whole is short."""
    with pytest.raises(TruncatedError) as caught:
        teltotwist.decode(bytes(5))
    assert caught.value.offset is None


@pytest.mark.parametrize("data", [b"", b"\x08", b"\x08\x01"], ids=len)
def test_data_field_without_codec_id_and_counts_fails_the_envelope(
    data: bytes,
) -> None:
    """CRC-valid, but too short to be content: a framing fault. With no data,
    length 0 and CRC 0 (the CRC of nothing) make the 12-byte all-zero frame."""
    frame = frame_payload(data)

    with pytest.raises(TruncatedError) as caught:
        check_envelope(frame)
    assert_names_offset(caught.value, frame)
    assert "codec id and two counts" in str(caught.value)


def test_codec_id_and_two_counts_pass_the_envelope() -> None:
    """The shortest content: it is the decoder's to judge, not the envelope's."""
    frame = frame_payload(b"\x07\x00\x00")

    assert check_envelope(frame) == len(frame) - 4
    with pytest.raises(UnknownCodecError):
        teltotwist.decode(frame)


@pytest.mark.parametrize("codec_id", [0x00, 0x07, 0x09, 0x11, 0x8F, 0xFF])
def test_unknown_codec_is_rejected(codec_id: int) -> None:
    payload = bytes((codec_id,)) + payload_of(by_id("wiki-c8-tcp-1").data)[1:]
    frame = frame_payload(payload)

    with pytest.raises(UnknownCodecError) as caught:
        teltotwist.decode(frame)
    assert_names_offset(caught.value, frame)


def test_bytes_left_inside_the_data_field_are_a_length_mismatch() -> None:
    """A byte between the last 8E record and Number of Data 2."""
    payload = payload_of(by_id("wiki-c8e-tcp-1").data)
    frame = frame_payload(payload[:-1] + b"\x00" + payload[-1:])

    with pytest.raises(LengthMismatchError) as caught:
        teltotwist.decode(frame)
    assert_names_offset(caught.value, frame)


def test_crc_field_high_bytes_must_be_zero() -> None:
    """The CRC is 16 bits in a 4-byte field: 0001C7CF is not C7CF."""
    frame = bytearray(by_id("wiki-c8-tcp-1").data)
    assert frame[-4:] == bytes.fromhex(by_id("wiki-c8-tcp-1").reference["crc_field"])
    frame[-3] = 0x01

    with pytest.raises(CRCMismatchError):
        teltotwist.decode(bytes(frame))


@pytest.mark.parametrize("vector", TCP_AVL_VALID, ids=vector_id)
def test_a_frame_of_encoded_records_is_the_frame_they_came_in(vector: Vector) -> None:
    packet = teltotwist.decode(vector.data)
    assert isinstance(packet, AvlPacket)
    frame = encode_avl_frame(packet.codec, [record.wire for record in packet.records])

    assert frame == vector.data
