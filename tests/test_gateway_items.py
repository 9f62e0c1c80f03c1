"""Items as sinks see them: the record JSON with id, imei and received_at."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import teltotwist
from teltotwist.catalogue import load_catalogue
from teltotwist.codec import AvlPacket, Codec
from teltotwist.gateway.items import TrackerRecord, UnparsedFrame, json_line, record_id
from tests.strategies import AVL_CODECS, avl_records
from tests.vectors import (
    TCP_AVL,
    WIKI_CODEC8_JSON,
    Vector,
    build_record,
    by_id,
    vector_id,
)

IMEI = "356307042441013"
RECEIVED_AT = 1_795_251_600_123  # 2026-11-21T09:00:00.123Z


def test_record_json_is_the_contract_with_server_fields_first() -> None:
    """The wiki's first Codec 8 record, field by field."""
    record = build_record(
        timestamp_ms=1_560_161_086_000,
        priority=1,
        longitude=0.0,
        latitude=0.0,
        altitude=0,
        satellites=0,
        event_id=1,
        io1={21: 3, 1: 1},
        io2={66: 24079},
        io4={241: 24602},
        io8={78: 0},
    )
    document = TrackerRecord(IMEI, Codec.CODEC8, record, RECEIVED_AT).to_json()

    assert list(document)[:3] == ["id", "imei", "received_at"]
    assert document["imei"] == IMEI
    assert document["received_at"] == "2026-11-21T09:00:00.123Z"
    assert document["id"].startswith(f"{IMEI}:1560161086000:")
    body = {key: document[key] for key in list(document)[3:]}
    assert body == WIKI_CODEC8_JSON["records"][0]


def test_named_records_carry_attributes_after_the_raw_io() -> None:
    record = build_record(io1={1: 1}, io2={66: 24079})
    naming = load_catalogue().naming("FMB920")

    document = TrackerRecord.named(
        IMEI, Codec.CODEC8, record, RECEIVED_AT, naming
    ).to_json()

    assert list(document)[-2:] == ["io", "attributes"]
    assert document["io"] == {"1": 1, "66": 24079}
    assert document["attributes"] == {"digital_input_1": 1, "external_voltage": 24.079}


def test_without_naming_records_have_no_attributes_key() -> None:
    item = TrackerRecord.named(IMEI, Codec.CODEC8, build_record(), RECEIVED_AT, None)

    assert "attributes" not in item.to_json()


def test_id_is_the_same_for_a_resent_record() -> None:
    frame = by_id("wiki-c8e-tcp-1").data
    first, resent = (teltotwist.decode(frame) for _ in range(2))
    assert isinstance(first, AvlPacket) and isinstance(resent, AvlPacket)

    ids = [
        TrackerRecord(IMEI, packet.codec, packet.records[0], received_at).id
        for packet, received_at in (
            (first, RECEIVED_AT),
            (resent, RECEIVED_AT + 60_000),
        )
    ]

    assert ids[0] == ids[1]
    assert ids[0].startswith(f"{IMEI}:{first.records[0].timestamp_ms}:")


VALID_TCP_AVL = [vector for vector in TCP_AVL if vector.valid]


@pytest.mark.parametrize("vector", VALID_TCP_AVL, ids=vector_id)
def test_a_record_built_in_code_gets_the_id_of_the_same_record_decoded(
    vector: Vector,
) -> None:
    """The id hashes the bytes the codec carries a record as: those it came
    in, or for a record built in code, those it is encoded as (the same, but
    for an empty 16-byte group, which a record built in code cannot have)."""
    packet = teltotwist.decode(vector.data)
    assert isinstance(packet, AvlPacket)

    for record in packet.records:
        if packet.io16 and not record.io_layout[4]:
            continue
        built = record._replace(wire=b"")
        assert record_id(IMEI, packet.codec, built) == record_id(
            IMEI, packet.codec, record
        )


def test_id_changes_with_any_field_imei_codec_or_io_value() -> None:
    record = build_record(io1={239: 1})
    variants = [
        record._replace(latitude=record.latitude + 1e-7),
        record._replace(speed=1),
        record._replace(priority=2),
        build_record(io1={239: 0}),
        build_record(io1={240: 1}),
    ]
    ids = {record_id(IMEI, Codec.CODEC8, variant) for variant in variants}

    assert len(ids | {record_id(IMEI, Codec.CODEC8, record)}) == len(variants) + 1
    assert record_id("352093081452251", Codec.CODEC8, record) != record_id(
        IMEI, Codec.CODEC8, record
    )
    assert record_id(IMEI, Codec.CODEC8E, record) != record_id(
        IMEI, Codec.CODEC8, record
    )


def test_unparsed_frame_keeps_every_byte() -> None:
    raw = by_id("traccar-31-avl-gh3000").data
    item = UnparsedFrame(IMEI, raw, "unknown codec 0x07", RECEIVED_AT)

    document = json.loads(json_line(item))

    assert document["unparsed"] is True
    assert bytes.fromhex(document["hex"]) == raw
    assert document["error"] == "unknown codec 0x07"
    assert document["id"] == UnparsedFrame(IMEI, raw, "other", 0).id


def test_json_line_is_one_compact_line() -> None:
    item = TrackerRecord(IMEI, Codec.CODEC8, build_record(), RECEIVED_AT)

    line = json_line(item)

    assert b"\n" not in line and b", " not in line
    assert json.loads(line) == item.to_json()


@st.composite
def tracker_records(draw: st.DrawFn) -> TrackerRecord:
    """Items of any record any codec carries, named or not."""
    codec = draw(st.sampled_from(AVL_CODECS))
    record = draw(avl_records(codec, io16=codec is Codec.CODEC8))
    received_at = draw(st.integers(0, 253_402_300_799_999))
    naming = draw(st.sampled_from([None, load_catalogue().naming("FMB920")]))
    return TrackerRecord.named(IMEI, codec, record, received_at, naming)


@given(tracker_records())
def test_the_line_sinks_store_says_what_the_record_json_says(
    item: TrackerRecord,
) -> None:
    """The line is encoded straight from the decoded IO (integer keys, bytes),
    the record JSON converts it first: both must be the contract's."""
    assert list(json.loads(json_line(item)).items()) == list(item.to_json().items())
