"""AVL payloads (Codec 8, 8 Extended, 16): vendor and Traccar frames decode right."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable, Iterable

import pytest

import teltotwist
from teltotwist.codec import (
    AvlPacket,
    AvlRecord,
    Codec,
    CountMismatchError,
    FixedIoEncoder,
    IoLayout,
    TruncatedError,
    UnknownCodecError,
    ValueRangeError,
    decode_avl_payload,
    encode_avl_payload,
    encode_frame,
    join_avl_records,
)
from tests.vectors import (
    TCP_AVL_VALID,
    Vector,
    assert_names_offset,
    build_record,
    by_id,
    codec_of,
    expected_record_fields,
    frame_payload,
    io_by_width,
    payload_of,
    record_fields,
    select,
    vector_id,
)

IO16_VECTORS = select(lambda v: bool(v.entry.get("traccar_decoder_state_extended")))
"""Traccar decodes these FMB130 frames only in its "extended" mode: their Codec 8
records carry a non-standard group of 16-byte IO values."""


def decode_packet(frame: bytes) -> AvlPacket:
    packet = teltotwist.decode(frame)
    assert isinstance(packet, AvlPacket)
    return packet


@pytest.mark.parametrize("vector", TCP_AVL_VALID, ids=vector_id)
def test_vector_decodes_like_the_reference(vector: Vector) -> None:
    packet = decode_packet(vector.data)

    codec = codec_of(vector)
    assert packet.codec is codec
    references = vector.reference["records"]
    assert len(packet.records) == vector.reference["count1"] == len(references)
    for record, reference in zip(packet.records, references, strict=True):
        expected = expected_record_fields(reference, codec)
        assert record_fields(record, with_io="io" in expected) == expected


@pytest.mark.parametrize("vector", TCP_AVL_VALID, ids=vector_id)
def test_encoder_reproduces_vector(vector: Vector) -> None:
    assert encode_frame(decode_packet(vector.data)) == vector.data


@pytest.mark.parametrize("vector", TCP_AVL_VALID, ids=vector_id)
def test_16_byte_group_is_found_where_traccar_needs_extended_mode(
    vector: Vector,
) -> None:
    packet = decode_packet(vector.data)

    assert packet.io16 is (vector in IO16_VECTORS)


@pytest.mark.parametrize("vector", IO16_VECTORS, ids=vector_id)
def test_16_byte_values_hold_16_bytes(vector: Vector) -> None:
    packet = decode_packet(vector.data)

    assert packet.codec is Codec.CODEC8
    for record in packet.records:
        wide = io_by_width(record)["16"].values()
        assert all(isinstance(value, bytes) and len(value) == 16 for value in wide)


def test_io16_values_are_counted_in_n_total() -> None:
    """In traccar 46 the 16-byte group is what makes N total add up."""
    vector = by_id("traccar-46-avl")
    packet = decode_packet(vector.data)

    for record, reference in zip(
        packet.records, vector.reference["records"], strict=True
    ):
        assert io_by_width(record)["16"]
        assert len(record.io) == reference["n_total_io"]


def test_codec16_generation_type_is_independent_of_event_id() -> None:
    """Real FM6320 records use generation type 7 (periodical) on event records."""
    packet = decode_packet(by_id("traccar-08-avl").data)

    assert {record.generation_type for record in packet.records} == {7}
    assert any(record.event_id != 0 for record in packet.records)


def test_nx_value_keeps_its_bytes() -> None:
    """The 2018 8E example carries a 17-byte VIN (id 256) in the NX group."""
    vector = by_id("wiki-c8e-tcp-2018-vin")
    (record,) = decode_packet(vector.data).records

    expected = vector.reference["records"][0]["io"]["256"]["value"]
    assert io_by_width(record)["X"] == {256: expected}
    assert record.io[256] == bytes.fromhex(expected)


@pytest.mark.parametrize("vector", TCP_AVL_VALID, ids=vector_id)
def test_records_carry_the_bytes_they_were_decoded_from(vector: Vector) -> None:
    packet = decode_packet(vector.data)

    assert b"".join(r.wire for r in packet.records) == payload_of(vector.data)[2:-1]
    for record in packet.records:
        alone = encode_avl_payload(AvlPacket(packet.codec, (record,), packet.io16))
        assert record.wire == alone[2:-1]
    assert len({record.wire for record in packet.records}) == len(packet.records)


def test_wire_bytes_leave_equality_and_repr_alone() -> None:
    record = build_record(io1={239: 1}, io2={66: 12_850})
    (as_codec8,) = decode_packet(
        encode_frame(AvlPacket(Codec.CODEC8, (record,)))
    ).records
    (as_codec8e,) = decode_packet(
        encode_frame(AvlPacket(Codec.CODEC8E, (record,)))
    ).records

    assert as_codec8 == as_codec8e == record
    assert as_codec8.wire != as_codec8e.wire
    assert record.wire == b""
    assert repr(as_codec8) == repr(record)


def test_io_merges_groups_in_wire_order() -> None:
    vector = by_id("wiki-c8-tcp-1")
    (record,) = decode_packet(vector.data).records

    reference_io = vector.reference["records"][0]["io"]
    assert list(record.io.items()) == [
        (int(io_id), element["value"]) for io_id, element in reference_io.items()
    ]


def test_decoded_values_cannot_be_changed() -> None:
    packet = decode_packet(by_id("wiki-c8-tcp-1").data)
    (record,) = packet.records

    with pytest.raises(AttributeError):
        record.speed = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        packet.records = ()  # type: ignore[misc]


def test_records_and_packets_equal_only_their_own_kind() -> None:
    packet = decode_packet(by_id("wiki-c8-tcp-1").data)
    (record,) = packet.records

    assert record == build_record()._replace(**record._asdict())
    assert packet == AvlPacket(Codec.CODEC8, (record,))
    assert record != tuple(record)
    assert packet != tuple(packet)
    assert tuple(packet) != packet


def test_records_and_packets_have_no_order() -> None:
    first = decode_packet(by_id("wiki-c8-tcp-1").data)
    second = decode_packet(by_id("wiki-c8-tcp-2").data)

    with pytest.raises(TypeError):
        assert first.records[0] < second.records[0]
    with pytest.raises(TypeError):
        assert first >= second


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("traccar-45-avl", "lon"),  # Chile: west and south
        ("traccar-45-avl", "lat"),
        ("traccar-32-avl", "altitude"),  # 6 m below sea level
    ],
)
def test_signed_fields_can_be_negative(name: str, field: str) -> None:
    vector = by_id(name)
    (reference, *_) = vector.reference["records"]
    record = decode_packet(vector.data).records[0]

    assert reference[field] < 0
    assert record_fields(record, with_io=False)[field] == pytest.approx(
        reference[field], abs=1e-9
    )


def test_count_mismatch_is_rejected() -> None:
    """Number of Data 2 must equal Number of Data 1 (protocol.md section 10)."""
    payload = bytearray(payload_of(by_id("wiki-c8-tcp-3").data))
    payload[-1] = 1
    frame = frame_payload(bytes(payload))

    with pytest.raises(CountMismatchError) as caught:
        teltotwist.decode(frame)
    assert_names_offset(caught.value, frame)


def test_n_total_mismatch_is_rejected() -> None:
    """c8-tcp-1 announces 5 IO elements; claim 4 instead (byte 35: N total)."""
    edited = bytearray(by_id("wiki-c8-tcp-1").data)
    assert edited[35] == 5
    edited[35] = 4
    frame = frame_payload(payload_of(bytes(edited)))

    with pytest.raises(CountMismatchError) as caught:
        teltotwist.decode(frame)
    assert_names_offset(caught.value, frame)


def test_io_value_cut_short_is_rejected() -> None:
    """c8-tcp-1 without the last byte of its 8-byte IO value (the CRC is redone)."""
    payload = payload_of(by_id("wiki-c8-tcp-1").data)
    frame = frame_payload(payload[:-2] + payload[-1:])

    with pytest.raises(TruncatedError) as caught:
        teltotwist.decode(frame)
    assert_names_offset(caught.value, frame)


def test_a_group_count_past_the_data_field_is_named() -> None:
    """c8-tcp-1 cut after its 1-byte group: the data field ends where the
    2-byte group's count would be, at payload offset 33."""
    payload = payload_of(by_id("wiki-c8-tcp-1").data)
    cut = payload[:33] + payload[-1:]

    with pytest.raises(TruncatedError, match="IO group count") as caught:
        decode_avl_payload(cut, 0, len(cut))
    assert caught.value.offset == 33


def test_a_group_count_past_the_whole_buffer_is_named() -> None:
    """c8-tcp-1 with 200 1-byte elements announced: the next count would be
    at payload offset 429, far past the buffer (as in a UDP datagram)."""
    payload = bytearray(payload_of(by_id("wiki-c8-tcp-1").data))
    payload[28] = 200

    with pytest.raises(TruncatedError, match="IO group count") as caught:
        decode_avl_payload(bytes(payload), 0, len(payload))
    assert caught.value.offset == 429


def test_timestamp_past_year_9999_is_rejected() -> None:
    edited = bytearray(by_id("wiki-c8-tcp-1").data)
    edited[10:18] = (253_402_300_800_000).to_bytes(8, "big")  # 10000-01-01
    frame = frame_payload(payload_of(bytes(edited)))

    with pytest.raises(ValueRangeError) as caught:
        teltotwist.decode(frame)
    assert_names_offset(caught.value, frame)


@pytest.mark.parametrize(
    ("codec", "record"),
    [
        pytest.param(Codec.CODEC8, build_record(io1={256: 1}), id="codec8-id-256"),
        pytest.param(Codec.CODEC8, build_record(event_id=256), id="codec8-event-256"),
        pytest.param(Codec.CODEC8, build_record(iox={256: b"x"}), id="codec8-nx"),
        pytest.param(Codec.CODEC16, build_record(iox={256: b"x"}), id="codec16-nx"),
        pytest.param(Codec.CODEC16, build_record(), id="codec16-no-generation"),
        pytest.param(
            Codec.CODEC8E, build_record(generation_type=7), id="codec8e-generation"
        ),
        pytest.param(Codec.CODEC8E, build_record(io1={1: 256}), id="value-too-wide"),
        pytest.param(Codec.CODEC8E, build_record(altitude=40_000), id="altitude"),
        pytest.param(Codec.CODEC8E, build_record(longitude=215.0), id="longitude"),
    ],
)
def test_encoder_rejects_what_the_codec_cannot_carry(
    codec: Codec, record: AvlRecord
) -> None:
    with pytest.raises(ValueRangeError):
        encode_frame(AvlPacket(codec, (record,)))


def test_only_codec8_carries_the_16_byte_group() -> None:
    with pytest.raises(ValueRangeError):
        encode_frame(AvlPacket(Codec.CODEC8E, (build_record(),), io16=True))


def test_16_byte_values_need_the_16_byte_group() -> None:
    record = build_record(io16={1: bytes(16)})

    with pytest.raises(ValueRangeError):
        encode_frame(AvlPacket(Codec.CODEC8, (record,)))


def test_16_byte_group_values_must_hold_16_bytes() -> None:
    record = build_record(io16={1: bytes(15)})

    with pytest.raises(ValueRangeError):
        encode_frame(AvlPacket(Codec.CODEC8, (record,), io16=True))


def test_encoder_rejects_more_than_255_records() -> None:
    """Number of Data is one byte."""
    with pytest.raises(ValueRangeError):
        encode_frame(AvlPacket(Codec.CODEC8, (build_record(),) * 256))


def distinct_shapes(count: int, fours: int) -> Iterable[AvlRecord]:
    """*count* Codec 8E records of about 100 IO elements, no two of one shape;
    each test takes its own *fours* so that no test finds the shapes cached."""
    for index in range(count):
        ones, twos = index % 50, index // 50
        yield build_record(
            io1=dict.fromkeys(range(ones), 1),
            io2=dict.fromkeys(range(1000, 1000 + twos), 2),
            io4=dict.fromkeys(range(2000, 2000 + fours), 4),
            io8=dict.fromkeys(range(3000, 3008), 8),
        )


def memory_growth(work: Callable[[], object]) -> int:
    """Bytes still allocated after *work*, by tracemalloc."""
    gc.collect()
    tracemalloc.start()
    try:
        work()
        gc.collect()
        return tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()


def test_a_flood_of_new_shapes_leaves_memory_bounded() -> None:
    """Each IO shape's compiled struct is cached, but not without bound."""
    frames = [
        encode_frame(AvlPacket(Codec.CODEC8E, (record,)))
        for record in distinct_shapes(5_000, fours=8)
    ]

    def decode_all() -> None:
        for frame in frames:
            decode_packet(frame)

    assert memory_growth(decode_all) < 2_000_000
    assert decode_packet(by_id("traccar-01-avl").data).codec is Codec.CODEC8E


def test_encoding_a_flood_of_new_shapes_leaves_memory_bounded() -> None:
    records = list(distinct_shapes(5_000, fours=9))

    def encode_all() -> None:
        for record in records:
            encode_frame(AvlPacket(Codec.CODEC8E, (record,)))

    assert memory_growth(encode_all) < 2_000_000


def edit_n_total(frame: bytes) -> bytes:
    """One IO element fewer in N total (bytes 36-37 of a one-record 8E frame)."""
    edited = bytearray(frame)
    edited[37] -= 1
    return frame_payload(payload_of(bytes(edited)))


def edit_timestamp(frame: bytes) -> bytes:
    edited = bytearray(frame)
    edited[10:18] = (253_402_300_800_000).to_bytes(8, "big")  # 10000-01-01
    return frame_payload(payload_of(bytes(edited)))


@pytest.mark.parametrize(
    ("edit", "error", "fours"),
    [(edit_n_total, CountMismatchError, 10), (edit_timestamp, ValueRangeError, 11)],
    ids=["n-total", "timestamp"],
)
def test_records_that_fail_to_decode_leave_no_memory_behind(
    edit: Callable[[bytes], bytes], error: type[Exception], fours: int
) -> None:
    """A sender cannot grow the cache with packets that are rejected anyway."""
    frames = [
        edit(encode_frame(AvlPacket(Codec.CODEC8E, (record,))))
        for record in distinct_shapes(2_000, fours)
    ]

    def decode_all() -> None:
        for frame in frames:
            with pytest.raises(error):
                teltotwist.decode(frame)

    assert memory_growth(decode_all) < 100_000


def test_records_of_hundreds_of_io_elements_round_trip() -> None:
    """Too large to compile a struct for: (un)packed group by group."""
    record = build_record(
        io1=dict.fromkeys(range(300), 1),
        io2=dict.fromkeys(range(300, 600), 0xBEEF),
        io8={600: 2**64 - 1},
        iox={601: b"VIN"},
    )
    frame = encode_frame(AvlPacket(Codec.CODEC8E, (record, record)))

    decoded = decode_packet(frame)

    assert [(r.io, r.io_layout) for r in decoded.records] == [
        (record.io, record.io_layout)
    ] * 2
    assert encode_frame(decoded) == frame


FIXED_IDS = (239, 240, 66, 67, 16, 11)
FIXED_LAYOUT = (2, 2, 1, 1, 0, 0)


def fixed_fields(codec: Codec, timestamp_ms: int, *values: int) -> tuple[int, ...]:
    """What :meth:`FixedIoEncoder.record` takes: the head, then the values."""
    generation = (7,) if codec is Codec.CODEC16 else ()
    head = (timestamp_ms, 0, 252_562_916, -546_676_016, -12, 359, 9, 47, 0)
    return (*head, *generation, *values)


@pytest.mark.parametrize("codec", [Codec.CODEC8, Codec.CODEC8E, Codec.CODEC16])
def test_records_of_fixed_ids_are_what_the_decoder_gives(codec: Codec) -> None:
    encoder = FixedIoEncoder(codec, FIXED_IDS, FIXED_LAYOUT)
    records = [
        encoder.record(
            fixed_fields(codec, 1_795_000_000_000 + n, 1, n, 0xFFFF, n, n, 2**64 - 1)
        )
        for n in range(3)
    ]

    payload = join_avl_records(codec, [record.wire for record in records])
    decoded = decode_avl_payload(payload, 0, len(payload))

    assert payload == encode_avl_payload(AvlPacket(codec, tuple(records)))
    assert decoded == AvlPacket(codec, tuple(records))
    assert [record.wire for record in decoded.records] == [r.wire for r in records]
    assert records[1].io == {239: 1, 240: 1, 66: 0xFFFF, 67: 1, 16: 1, 11: 2**64 - 1}
    assert (records[0].longitude, records[0].latitude) == (25.2562916, -54.6676016)
    assert records[0].generation_type == (7 if codec is Codec.CODEC16 else None)


@pytest.mark.parametrize(
    ("io_ids", "io_layout", "message"),
    [
        ((1, 2), (1, 0, 0, 0, 0, 1), "fixed-size elements only"),
        ((1, 2), (1, 0, 0, 0, 1, 0), "fixed-size elements only"),
        ((1, 2), (1, 0, 0, 0, 0, 0), "does not account for the IO ids"),
        ((1, 1), (2, 0, 0, 0, 0, 0), "does not account for the IO ids"),
    ],
)
def test_fixed_ids_must_match_their_layout(
    io_ids: tuple[int, ...], io_layout: IoLayout, message: str
) -> None:
    with pytest.raises(ValueRangeError, match=message):
        FixedIoEncoder(Codec.CODEC8E, io_ids, io_layout)


def test_a_record_of_fixed_ids_takes_every_field_and_values_that_fit() -> None:
    encoder = FixedIoEncoder(Codec.CODEC8, FIXED_IDS, FIXED_LAYOUT)

    with pytest.raises(ValueRangeError, match="16 fields given, a record takes 15"):
        encoder.record(fixed_fields(Codec.CODEC8, 0, 1, 1, 1, 1, 1, 1, 1))
    with pytest.raises(ValueRangeError, match="14 fields given"):
        encoder.record(fixed_fields(Codec.CODEC8, 0, 1, 1, 1, 1, 1))
    with pytest.raises(ValueRangeError, match="does not fit its codec"):
        encoder.record(fixed_fields(Codec.CODEC8, 0, 256, 1, 1, 1, 1, 1))
    with pytest.raises(UnknownCodecError):
        FixedIoEncoder(Codec.CODEC12, FIXED_IDS, FIXED_LAYOUT)


def test_joining_records_counts_them() -> None:
    with pytest.raises(ValueRangeError, match="256 records do not fit"):
        join_avl_records(Codec.CODEC8, [b""] * 256)
    with pytest.raises(UnknownCodecError):
        join_avl_records(Codec.CODEC14, [])
