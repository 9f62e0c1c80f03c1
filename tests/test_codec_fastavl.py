"""The C decoder of AVL payloads (``_fastavl.c``, built with
``TELTOTWIST_COMPILE=1``, optional) decodes what the Python decoder decodes in
the standard layout, exactly: the same packets, field for field and type for
type, IO dicts in the same order, the same wire bytes. Every payload the
Python decoder rejects it leaves to it (returns None), so the errors are the
Python decoder's; and the gateway decodes frames alike with it and without.

Where the extension is not built the module is skipped, unless
``TELTOTWIST_COMPILE=1`` says it should be (as in ``tox run -e compiled``):
then it fails.
"""

from __future__ import annotations

import gc
import os
import struct
import sys
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teltotwist.codec import (
    AvlPacket,
    AvlRecord,
    Codec,
    CodecError,
    CommandFrame,
    UdpDatagram,
    check_envelope,
    decode_udp,
    encode_avl_payload,
    encode_frame,
    encode_udp,
    io_elements,
)
from teltotwist.codec import frame as frame_module
from teltotwist.codec import udp as udp_module
from teltotwist.codec.avl import (
    MAX_TIMESTAMP_MS,
    compiled_decoder,
    decode_avl_payload_in_c,
)
from teltotwist.codec.frame import PAYLOAD_START, decode_checked_frame
from teltotwist.codec.udp import decode_udp_header
from teltotwist.device.capture import read_capture
from tests import strategies
from tests.pure_decoder import PURE
from tests.vectors import (
    ALL,
    TCP_AVL_VALID,
    TCP_FRAMES,
    UDP_DATAGRAMS,
    UDP_VALID,
    Vector,
    by_id,
    frame_payload,
    vector_id,
)

COMPILED = compiled_decoder()

if COMPILED is None and os.environ.get("TELTOTWIST_COMPILE") != "1":
    pytest.skip(
        "AVL payloads are decoded in Python here; build the C decoder with "
        "TELTOTWIST_COMPILE=1",
        allow_module_level=True,
    )

CODECS = (Codec.CODEC8, Codec.CODEC8E, Codec.CODEC16)
CAPTURE = Path(__file__).parent / "data" / "live-capture.txt"


def anatomy(value: object) -> object:
    """*value* down to its parts, each with its exact type: what ``==`` does
    not tell apart (1, 1.0 and True; dicts in another order; a tuple and a
    named tuple; a record's wire bytes) this does."""
    if isinstance(value, dict):
        return dict, [(anatomy(key), anatomy(item)) for key, item in value.items()]
    if isinstance(value, tuple):
        return type(value), [anatomy(item) for item in value]
    if isinstance(value, float):
        return float, value.hex()
    return type(value), value


def pure(buffer: bytes, start: int, end: int) -> AvlPacket | None:
    """The pure Python decoder's packet, or None where it raises."""
    try:
        packet: AvlPacket = PURE.decode_avl_payload(buffer, start, end)
    except CodecError:
        return None
    return packet


def assert_alike(
    buffer: bytes, start: int = 0, end: int | None = None
) -> AvlPacket | None:
    """The C decoder decodes ``buffer[start:end]`` exactly as the pure Python
    decoder does, and leaves it to Python exactly when Python rejects it.
    Returns the C decoder's packet."""
    end = len(buffer) if end is None else end
    made = decode_avl_payload_in_c(buffer, start, end)
    expected = pure(buffer, start, end)
    if expected is None:
        assert made is None, "the C decoder accepted a payload Python rejects"
        return None
    assert made is not None, "the C decoder left a valid payload to Python"
    assert anatomy(made) == anatomy(expected)
    assert made.codec is expected.codec
    # Dicts of ints and bytes only are not tracked by the cyclic collector
    # (which the compiled items rely on): not those of the C decoder either.
    assert [gc.is_tracked(record.io) for record in made.records] == [
        gc.is_tracked(record.io) for record in expected.records
    ]
    return made


def frame_bounds(vector: Vector) -> tuple[int, int]:
    """Where a vector's AVL payload would be, valid or not."""
    data = vector.data
    if vector.transport == "udp":
        try:
            return decode_udp_header(data).payload_start, len(data)
        except CodecError:
            return 0, len(data)
    return PAYLOAD_START, max(PAYLOAD_START, len(data) - 4)


def capture_frames() -> list[bytes]:
    """The data frames of the live capture in tests/data."""
    return list(read_capture(CAPTURE.read_text().splitlines()).frames)


REAL_FRAMES = [
    *(pytest.param(v.data, id=v.id) for v in TCP_AVL_VALID),
    *(pytest.param(data, id=f"capture-{n}") for n, data in enumerate(capture_frames())),
]
"""Every frame of a real tracker (or the vendor's documentation) in tests/data."""


ID_AND_COUNT_FORMATS = {
    Codec.CODEC8: ("B", "B"),
    Codec.CODEC8E: ("H", "H"),
    Codec.CODEC16: ("H", "B"),
}
Group = Sequence[tuple[int, int]]


def raw_record(
    codec: Codec,
    *,
    timestamp: int = 1_560_161_086_000,
    longitude: int = 252_562_916,
    latitude: int = 546_676_016,
    altitude: int = 138,
    event_id: int = 0,
    groups: Sequence[Group] = ((), (), (), ()),
    nx: Sequence[tuple[int, bytes]] = (),
    total: int | None = None,
) -> bytes:
    """A record as *codec* carries it, written field by field, whatever the
    decoder thinks of it: counts and ids are not checked."""
    id_format, count_format = ID_AND_COUNT_FORMATS[codec]
    elements = sum(map(len, groups)) + len(nx)
    head = struct.pack(
        ">QBiihHBH", timestamp, 1, longitude, latitude, altitude, 90, 7, 33
    )
    head += struct.pack(">" + id_format, event_id)
    if codec is Codec.CODEC16:
        head += b"\x07"
    head += struct.pack(">" + count_format, elements if total is None else total)
    body = b""
    for value_format, group in zip("BHIQ", groups, strict=True):
        body += struct.pack(">" + count_format, len(group))
        for io_id, value in group:
            body += struct.pack(">" + id_format + value_format, io_id, value)
    if codec is Codec.CODEC8E:
        body += struct.pack(">H", len(nx))
        for io_id, data in nx:
            body += struct.pack(">HH", io_id, len(data)) + data
    return head + body


def raw_payload(
    codec: int, records: Sequence[bytes], count: int | None = None
) -> bytes:
    count = len(records) if count is None else count
    return bytes((codec, count)) + b"".join(records) + bytes((count,))


C8, C8E, C16 = Codec.CODEC8, Codec.CODEC8E, Codec.CODEC16
SOME = ([(1, 1), (2, 0)], [(3, 0xFFFF)], [(4, 0xFFFFFFFF)], [(5, 2**64 - 1)])
SOME_WIDE = ([(300, 1), (2, 0)], [(3, 0xFFFF)], [(65535, 0xFFFFFFFF)], [(5, 2**64 - 1)])

EDGE_CASES = {
    # What decodes.
    "codec 8": (raw_payload(C8, [raw_record(C8, groups=SOME)]), True),
    "codec 8E": (
        raw_payload(C8E, [raw_record(C8E, groups=SOME_WIDE, nx=[(7, b"VIN")])]),
        True,
    ),
    "codec 16": (
        raw_payload(C16, [raw_record(C16, groups=SOME_WIDE, event_id=65535)]),
        True,
    ),
    "no records": (raw_payload(C8, []), True),
    "no IO": (raw_payload(C8E, [raw_record(C8E)] * 3), True),
    "last timestamp": (
        raw_payload(C8, [raw_record(C8, timestamp=MAX_TIMESTAMP_MS)]),
        True,
    ),
    "extreme coordinates": (
        raw_payload(
            C8,
            [raw_record(C8, longitude=-(2**31), latitude=2**31 - 1, altitude=-(2**15))],
        ),
        True,
    ),
    "empty NX value": (
        raw_payload(C8E, [raw_record(C8E, nx=[(1, b""), (2, b"")])]),
        True,
    ),
    "NX value of 65535 bytes": (
        raw_payload(C8E, [raw_record(C8E, nx=[(1, bytes(65535))])]),
        True,
    ),
    "255 records": (raw_payload(C8, [raw_record(C8, groups=SOME)] * 255), True),
    "records of two shapes": (
        raw_payload(
            C8E, [raw_record(C8E), raw_record(C8E, groups=SOME_WIDE), raw_record(C8E)]
        ),
        True,
    ),
    # What Python rejects.
    "past the last timestamp": (
        raw_payload(C8, [raw_record(C8, timestamp=MAX_TIMESTAMP_MS + 1)]),
        False,
    ),
    "largest timestamp": (
        raw_payload(C8, [raw_record(C8, timestamp=2**64 - 1)]),
        False,
    ),
    "an id twice in a group": (
        raw_payload(C8, [raw_record(C8, groups=([(1, 1), (1, 2)], [], [], []))]),
        False,
    ),
    "an id in two groups": (
        raw_payload(C16, [raw_record(C16, groups=([(1, 1)], [(1, 2)], [], []))]),
        False,
    ),
    "an id fixed and NX": (
        raw_payload(
            C8E, [raw_record(C8E, groups=([(1, 1)], [], [], []), nx=[(1, b"x")])]
        ),
        False,
    ),
    "an id twice in NX": (
        raw_payload(C8E, [raw_record(C8E, nx=[(9, b"a"), (9, b"b")])]),
        False,
    ),
    "N total one more": (
        raw_payload(C8, [raw_record(C8, groups=SOME, total=6)]),
        False,
    ),
    "N total one less": (
        raw_payload(C8E, [raw_record(C8E, groups=SOME, nx=[(9, b"")], total=5)]),
        False,
    ),
    "N total without NX": (
        raw_payload(C8E, [raw_record(C8E, nx=[(9, b"")], total=0)]),
        False,
    ),
    "too many for codec 8": (
        raw_payload(
            C8,
            [
                raw_record(
                    C8,
                    groups=(
                        [(i, 0) for i in range(200)],
                        [(i, 0) for i in range(200, 256)],
                        [],
                        [],
                    ),
                    total=0,
                )
            ],
        ),
        False,
    ),
    "record counts disagree": (
        raw_payload(C8, [raw_record(C8)], count=2)[:-1] + b"\x01",
        False,
    ),
    "one record missing": (raw_payload(C8, [raw_record(C8)], count=2), False),
    "a byte left over": (raw_payload(C8, [raw_record(C8) + b"\x00"]), False),
    "unknown codec": (raw_payload(0x07, [raw_record(C8)]), False),
    "command codec": (raw_payload(0x0C, [raw_record(C8)]), False),
    "NX value past the end": (
        raw_payload(C8E, [raw_record(C8E, nx=[(1, b"abc")])[:-1]]),
        False,
    ),
    "NX head past the end": (
        raw_payload(C8E, [raw_record(C8E, nx=[(1, b"")])[:-2]]),
        False,
    ),
    "65535 NX elements announced": (
        raw_payload(C8E, [raw_record(C8E, total=65535)[:-2] + b"\xff\xff"]),
        False,
    ),
    "65535 8-byte elements announced": (
        raw_payload(C8E, [raw_record(C8E, total=65535)[:-8] + b"\xff\xff" + bytes(6)]),
        False,
    ),
    "group count past the end": (raw_payload(C8, [raw_record(C8)[:-1]]), False),
    "head past the end": (raw_payload(C16, [raw_record(C16)[:20]]), False),
    "shorter than 3 bytes": (b"\x08\x00", False),
}


def test_the_c_decoder_is_built() -> None:
    assert COMPILED is not None, "the C extension teltotwist.codec._fastavl is missing"


@pytest.mark.parametrize("data", REAL_FRAMES)
def test_real_frames_are_decoded_in_c(data: bytes) -> None:
    """The fast path is the one real trackers' frames take; only the frames
    with Codec 8's non-standard 16-byte group are left to Python."""
    end = check_envelope(data)
    made = assert_alike(data, PAYLOAD_START, end)
    packet = decode_checked_frame(data, end)
    assert isinstance(packet, AvlPacket)
    assert (made is None) == packet.io16


@pytest.mark.parametrize("vector", UDP_VALID, ids=vector_id)
def test_real_datagrams_are_decoded_in_c(vector: Vector) -> None:
    start, end = frame_bounds(vector)
    assert assert_alike(vector.data, start, end) is not None


@pytest.mark.parametrize("vector", ALL, ids=vector_id)
def test_every_vector_decodes_alike(vector: Vector) -> None:
    start, end = frame_bounds(vector)
    assert_alike(vector.data, start, end)
    payload = vector.data[start:end]
    assert_alike(payload)


def every_single_byte_edit(payload: bytes) -> Iterator[bytes]:
    """*payload* with one byte changed in a few ways, at every position:
    counts one more or one less, lengths and ids changed, bits flipped."""
    for position, byte in enumerate(payload):
        for value in {
            byte ^ 0x01,
            byte ^ 0x80,
            (byte + 1) & 0xFF,
            (byte - 1) & 0xFF,
            0,
            0xFF,
        }:
            if value != byte:
                yield payload[:position] + bytes((value,)) + payload[position + 1 :]


@pytest.mark.parametrize("vector", TCP_AVL_VALID, ids=vector_id)
def test_every_single_byte_edit_of_a_real_frame_decodes_alike(vector: Vector) -> None:
    payload = vector.data[PAYLOAD_START:-4]
    for edited in every_single_byte_edit(payload):
        assert_alike(edited)


@pytest.mark.parametrize("vector", TCP_AVL_VALID, ids=vector_id)
def test_every_truncation_of_a_real_frame_decodes_alike(vector: Vector) -> None:
    """Truncated at every byte, the payload's end moved before the CRC, and
    past it: the bytes after *end* must not be read."""
    data = vector.data
    for end in range(len(data) + 1):
        assert_alike(data, PAYLOAD_START, end)
        assert_alike(data[:end], PAYLOAD_START, end)


@given(
    strategies.mutated(st.sampled_from([v.data[slice(*frame_bounds(v))] for v in ALL]))
)
def test_mutated_vectors_decode_alike(payload: bytes) -> None:
    assert_alike(payload)


@given(strategies.avl_packets())
def test_any_packet_is_decoded_in_c(packet: AvlPacket) -> None:
    payload = encode_avl_payload(packet)
    made = assert_alike(payload)
    assert made == packet
    framed = encode_frame(packet)
    assert assert_alike(framed, PAYLOAD_START, len(framed) - 4) is not None


@given(strategies.mutated(strategies.avl_packets().map(encode_avl_payload)))
def test_mutated_packets_decode_alike(payload: bytes) -> None:
    assert_alike(payload)


@st.composite
def large_records(draw: st.DrawFn) -> AvlRecord:
    """Codec 8E records with groups far larger than trackers send: past the
    Python decoder's dict displays (64 elements) and compiled structs (255),
    NX values up to a few hundred bytes, and values at their limits."""
    rng = draw(st.randoms(use_true_random=False))
    counts = [
        draw(st.sampled_from([0, 1, 63, 64, 65, 255, 256, 300])) for _ in range(4)
    ]
    variable = draw(st.integers(0, 8))
    ids = iter(rng.sample(range(0x10000), sum(counts) + variable))
    extremes = st.sampled_from([0, 1])
    groups = [
        {
            next(ids): draw(
                st.one_of(
                    extremes,
                    st.just(2 ** (8 * width) - 1),
                    st.integers(0, 2 ** (8 * width) - 1),
                )
            )
            for _ in range(count)
        }
        for width, count in zip((1, 2, 4, 8), counts, strict=True)
    ]
    iox = {next(ids): draw(st.binary(max_size=400)) for _ in range(variable)}
    io, io_layout = io_elements(
        io1=groups[0], io2=groups[1], io4=groups[2], io8=groups[3], iox=iox
    )
    base = draw(strategies.avl_records(Codec.CODEC8E))
    return base._replace(io=io, io_layout=io_layout)


@settings(max_examples=60)
@given(st.lists(large_records(), min_size=1, max_size=3))
def test_large_records_are_decoded_in_c(records: list[AvlRecord]) -> None:
    packet = AvlPacket(Codec.CODEC8E, tuple(records))
    made = assert_alike(encode_avl_payload(packet))
    assert made == packet


@given(st.integers(-(2**31), 2**31 - 1), st.integers(-(2**31), 2**31 - 1))
def test_coordinates_are_python_s_int_division(longitude: int, latitude: int) -> None:
    """``raw / 10_000_000`` in Python, ``(double)raw / 1e7`` in C: the same
    float, to the last bit."""
    payload = raw_payload(
        Codec.CODEC8, [raw_record(Codec.CODEC8, longitude=longitude, latitude=latitude)]
    )
    made = assert_alike(payload)
    assert made is not None
    [record] = made.records
    assert record.longitude.hex() == (longitude / 10_000_000).hex()
    assert record.latitude.hex() == (latitude / 10_000_000).hex()


@pytest.mark.parametrize(
    ("payload", "valid"), EDGE_CASES.values(), ids=EDGE_CASES.keys()
)
def test_edge_cases_decode_alike(payload: bytes, valid: bool) -> None:
    made = assert_alike(payload)
    assert (made is not None) == valid
    assert_alike(b"\x00" * 9 + payload + b"\xff" * 5, 9, 9 + len(payload))


def test_io16_payloads_are_left_to_python() -> None:
    io, layout = io_elements(io1={1: 1}, io16={2: bytes(range(16))})
    record = AvlRecord(1, 0, 0.0, 0.0, 0, 0, 0, 0, 0, io, layout)
    payload = encode_avl_payload(AvlPacket(Codec.CODEC8, (record,), io16=True))

    assert decode_avl_payload_in_c(payload, 0, len(payload)) is None
    assert_alike(payload)


VALID = EDGE_CASES["codec 8E"][0]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (-1, len(VALID)),
        (0, len(VALID) + 1),
        (1, 0),
        (0, -1),
        (2**63, 2**64),
        (-(2**70), 3),
        (10, -(2**63)),
        (True, len(VALID)),
    ],
)
def test_offsets_outside_the_buffer_are_left_to_python(start: int, end: int) -> None:
    assert COMPILED is not None
    assert COMPILED(VALID, start, end, AvlRecord, AvlPacket, CODECS) is None


@pytest.mark.parametrize("buffer", [bytearray(VALID), memoryview(VALID), VALID.hex()])
def test_buffers_other_than_bytes_are_left_to_python(buffer: object) -> None:
    assert COMPILED is not None
    assert COMPILED(buffer, 0, len(VALID), AvlRecord, AvlPacket, CODECS) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "arguments",
    [
        (VALID, 0, len(VALID), dict, AvlPacket, CODECS),
        (VALID, 0, len(VALID), AvlRecord, 3, CODECS),
        (VALID, 0, len(VALID), AvlRecord, AvlPacket, list(CODECS)),
        (VALID, 0, len(VALID), AvlRecord, AvlPacket, CODECS[:2]),
        (VALID, 0, len(VALID), AvlRecord, AvlPacket),
    ],
)
def test_wrong_arguments_raise(arguments: tuple[object, ...]) -> None:
    assert COMPILED is not None
    with pytest.raises(TypeError):
        COMPILED(*arguments)  # type: ignore[arg-type]


def test_the_classes_passed_are_those_made() -> None:
    """The records and packet are instances of the classes passed in: the
    named tuples' own, or any tuple subclass."""

    class Record(tuple[object, ...]):
        __slots__ = ()

    class Packet(tuple[object, ...]):
        __slots__ = ()

    assert COMPILED is not None
    decode: Callable[..., object] = COMPILED
    made = decode(VALID, 0, len(VALID), Record, Packet, CODECS)
    expected = PURE.decode_avl_payload(VALID, 0, len(VALID))

    assert type(made) is Packet
    codec, records, io16 = made
    assert codec is expected.codec
    assert io16 is False
    assert isinstance(records, tuple)
    assert [type(record) for record in records] == [Record]
    assert tuple(records[0]) == tuple(expected.records[0])
    assert gc.is_tracked(made)


def payloads_of_every_outcome() -> list[bytes]:
    """Valid payloads, and payloads the C decoder gives up on at every step."""
    valid = [payload for payload, ok in EDGE_CASES.values() if ok]
    valid += [v.data[PAYLOAD_START:-4] for v in TCP_AVL_VALID]
    edited = [e for p in valid[:3] for e in every_single_byte_edit(p)]
    truncated = [p[:end] for p in valid[:3] for end in range(len(p))]
    return valid + edited + truncated + [p for p, ok in EDGE_CASES.values() if not ok]


def test_nothing_is_kept_from_call_to_call() -> None:
    """Every reference taken is released, on every path out: what decodes,
    what is left to Python at any step."""
    payloads = payloads_of_every_outcome()
    shared = [*CODECS, AvlRecord, AvlPacket, None, False, *payloads]

    def run() -> None:
        for payload in payloads:
            decode_avl_payload_in_c(payload, 0, len(payload))

    run()
    counts = [sys.getrefcount(value) for value in shared]
    tracemalloc.start()
    try:
        run()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(5):
            run()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert [sys.getrefcount(value) for value in shared] == counts
    assert grown < 20_000, f"{grown} bytes kept over five runs"


@pytest.mark.parametrize(
    "data", [by_id("wiki-c8e-tcp-2018-vin").data, by_id("wiki-c16-tcp-1").data]
)
def test_a_failed_allocation_raises_memory_error(data: bytes) -> None:
    """Allocations failing from the first on, then the second on, ...: the
    call raises MemoryError (never returns None, which would hide it) until
    enough succeed, and then decodes the payload."""
    testcapi = pytest.importorskip("_testcapi")
    assert COMPILED is not None
    end = len(data) - 4
    expected = anatomy(PURE.decode_avl_payload(data, PAYLOAD_START, end))
    failures = 0
    for first_failing in range(1000):
        testcapi.set_nomemory(first_failing, 0)
        try:
            made = COMPILED(data, PAYLOAD_START, end, AvlRecord, AvlPacket, CODECS)
        except MemoryError:
            testcapi.remove_mem_hooks()
            failures += 1
            continue
        testcapi.remove_mem_hooks()
        assert anatomy(made) == expected
        break
    else:
        pytest.fail("the payload never decoded")
    assert failures > 0


@contextmanager
def without_c() -> Iterator[None]:
    """Frames and datagrams decoded by the Python decoder alone."""

    def in_python(buffer: bytes, start: int, end: int) -> AvlPacket:
        packet: AvlPacket = PURE.decode_avl_payload(buffer, start, end)
        return packet

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(frame_module, "decode_standard_avl_payload", in_python)
        patch.setattr(udp_module, "decode_standard_avl_payload", in_python)
        yield


def outcome(decode: Callable[[bytes], object], data: bytes) -> object:
    """What decoding *data* gives: the content, every part with its type, or
    the error's class, message and offset."""
    try:
        content = decode(data)
    except CodecError as error:
        return type(error), str(error), error.offset
    if isinstance(content, CommandFrame):
        return content
    if isinstance(content, UdpDatagram):
        return content.packet_id, content.imei, anatomy(content.packet)
    return anatomy(content)


def decode_gateway_frame(data: bytes) -> AvlPacket | CommandFrame:
    """What the gateway's session does with a frame."""
    return decode_checked_frame(data, check_envelope(data))


def assert_gateway_alike(data: bytes) -> None:
    with_c = outcome(decode_gateway_frame, data)
    with without_c():
        assert outcome(decode_gateway_frame, data) == with_c


def assert_datagrams_alike(data: bytes) -> None:
    with_c = outcome(decode_udp, data)
    with without_c():
        assert outcome(decode_udp, data) == with_c


def check_envelope_passes(data: bytes) -> bool:
    try:
        check_envelope(data)
    except CodecError:
        return False
    return True


@pytest.mark.parametrize(
    "vector", [v for v in TCP_FRAMES if check_envelope_passes(v.data)], ids=vector_id
)
def test_the_gateway_decodes_every_frame_alike_with_and_without_c(
    vector: Vector,
) -> None:
    """decode_checked_frame, io16 retry included, gives the same packets and
    the same errors with the C decoder as with the Python one alone."""
    assert_gateway_alike(vector.data)


@given(
    strategies.mutated(
        st.sampled_from([v.data[PAYLOAD_START:-4] for v in TCP_AVL_VALID])
    )
)
def test_the_gateway_decodes_mutated_frames_alike_with_and_without_c(
    payload: bytes,
) -> None:
    """Mutated payloads in frames with a right CRC: past the envelope."""
    if len(payload) >= 3:
        assert_gateway_alike(frame_payload(payload))


@given(st.one_of(strategies.avl_packets(), strategies.io16_packets()))
def test_the_gateway_decodes_any_packet_alike_with_and_without_c(
    packet: AvlPacket,
) -> None:
    assert_gateway_alike(encode_frame(packet))


@pytest.mark.parametrize("vector", UDP_DATAGRAMS, ids=vector_id)
def test_every_datagram_decodes_alike_with_and_without_c(vector: Vector) -> None:
    assert_datagrams_alike(vector.data)


@given(strategies.udp_datagrams().map(encode_udp))
def test_any_datagram_decodes_alike_with_and_without_c(datagram: bytes) -> None:
    assert_datagrams_alike(datagram)


def test_without_c_is_the_python_decoder() -> None:
    """The comparisons above compare two decoders: without_c() puts the pure
    Python decoder in the gateway's path, which otherwise does not call it."""
    data = TCP_AVL_VALID[0].data
    calls: list[bytes] = []
    original = PURE.decode_avl_payload

    def counting(buffer: bytes, start: int, end: int, **options: bool) -> AvlPacket:
        calls.append(buffer)
        packet: AvlPacket = original(buffer, start, end, **options)
        return packet

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(PURE, "decode_avl_payload", counting)
        decode_gateway_frame(data)
        assert calls == []
        with without_c():
            decode_gateway_frame(data)
        assert calls == [data]
