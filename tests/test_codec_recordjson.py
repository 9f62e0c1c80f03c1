"""The record JSON contract of DESIGN.md, on the vendor's and Traccar's frames."""

from __future__ import annotations

import json

import pytest

import teltotwist
from teltotwist.codec import (
    AvlPacket,
    Codec,
    CommandFrame,
    command_frame_to_json,
    decode_udp,
    format_timestamp_ms,
    packet_to_json,
)
from tests.vectors import (
    TCP_COMMANDS_DECODED,
    WIKI_CODEC8_JSON,
    Vector,
    build_record,
    by_id,
    codec_of,
    select,
    vector_id,
)

WIKI_AVL = select(
    lambda v: v.id.startswith("wiki-") and v.valid and "records" in v.reference
)
"""The wiki's AVL examples, TCP and UDP: their references list every IO element."""


def packet_of(vector: Vector) -> AvlPacket:
    if vector.transport == "udp":
        return decode_udp(vector.data).packet
    packet = teltotwist.decode(vector.data)
    assert isinstance(packet, AvlPacket)
    return packet


def design_timestamp(utc: str) -> str:
    """A reference's ``2013-07-17T06:34:09.140000Z`` as ``...09.140Z``."""
    milliseconds = utc[20:23] if utc[19] == "." else "000"
    return f"{utc[:19]}.{milliseconds}Z"


def test_codec8_example_has_the_design_shape() -> None:
    packet = packet_of(by_id("wiki-c8-tcp-1"))

    assert packet_to_json(packet) == WIKI_CODEC8_JSON


@pytest.mark.parametrize("vector", WIKI_AVL, ids=vector_id)
def test_records_match_the_reference(vector: Vector) -> None:
    codec = codec_of(vector)
    document = packet_to_json(packet_of(vector))

    assert document["codec"] == codec.label
    for record, reference in zip(
        document["records"], vector.reference["records"], strict=True
    ):
        assert record["codec"] == codec.label
        assert record["timestamp"] == design_timestamp(reference["utc"])
        assert record["speed"] == reference["speed_kmh"]
        assert record["event_id"] == reference["event_io_id"]
        assert ("generation_type" in record) == (codec is Codec.CODEC16)
        assert record.get("generation_type") == reference.get("generation_type")
        assert list(record["io"].items()) == [
            (io_id, element["value"]) for io_id, element in reference["io"].items()
        ]


@pytest.mark.parametrize("vector", WIKI_AVL, ids=vector_id)
def test_output_survives_json(vector: Vector) -> None:
    document = packet_to_json(packet_of(vector))

    assert json.loads(json.dumps(document)) == document


def test_nx_value_is_lowercase_hex() -> None:
    """DESIGN.md's VIN (IO 256) reads "57304c30303030..."."""
    record = build_record(iox={256: b"W0L00000000000000"})

    (document,) = packet_to_json(AvlPacket(Codec.CODEC8E, (record,)))["records"]

    assert document["io"] == {"256": "57304c3030303030303030303030303030"}


def test_vin_example_nx_value_is_hex() -> None:
    vector = by_id("wiki-c8e-tcp-2018-vin")

    (document,) = packet_to_json(packet_of(vector))["records"]

    assert document["io"]["256"] == vector.reference["records"][0]["io"]["256"]["value"]


def test_sixteen_byte_values_are_hex() -> None:
    packet = packet_of(by_id("traccar-46-avl"))

    for document in packet_to_json(packet)["records"]:
        texts = [value for value in document["io"].values() if isinstance(value, str)]
        assert texts
        assert all(len(text) == 32 and text == text.lower() for text in texts)
        int_values = [value for value in document["io"].values() if value not in texts]
        assert all(isinstance(value, int) and value >= 0 for value in int_values)


def test_coordinates_are_signed_degrees() -> None:
    vector = by_id("traccar-45-avl")

    document = packet_to_json(packet_of(vector))["records"][0]

    reference = vector.reference["records"][0]
    assert document["longitude"] == pytest.approx(reference["lon"], abs=1e-9)
    assert document["latitude"] == pytest.approx(reference["lat"], abs=1e-9)
    assert document["altitude"] == reference["altitude"]


def test_milliseconds_are_kept() -> None:
    """The FMB920 PDF example is stamped 06:34:09.140."""
    vector = by_id("wiki-fmb920pdf-tcp")

    document = packet_to_json(packet_of(vector))["records"][0]

    assert document["timestamp"] == "2013-07-17T06:34:09.140Z"


@pytest.mark.parametrize(
    ("timestamp_ms", "text"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1_560_161_086_001, "2019-06-10T10:04:46.001Z"),
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
    ],
)
def test_timestamp_format(timestamp_ms: int, text: str) -> None:
    assert format_timestamp_ms(timestamp_ms) == text


@pytest.mark.parametrize("vector", TCP_COMMANDS_DECODED, ids=vector_id)
def test_command_frames_give_json_with_their_text(vector: Vector) -> None:
    frame = teltotwist.decode(vector.data)
    assert isinstance(frame, CommandFrame)

    document = command_frame_to_json(frame)

    assert json.loads(json.dumps(document)) == document
    assert document["codec"] == codec_of(vector).label
    assert [message["text"] for message in document["messages"]] == [
        message["text"] for message in vector.reference["messages"]
    ]
