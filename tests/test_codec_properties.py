"""Properties of the whole codec: round trips, chunking, and bad input."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import teltotwist
from teltotwist.codec import (
    AvlPacket,
    CodecError,
    CommandFrame,
    CRCMismatchError,
    FramingError,
    LengthMismatchError,
    StreamEvent,
    StreamFramer,
    UdpDatagram,
    decode_avl_payload,
    decode_udp,
    encode_avl_payload,
    encode_frame,
    encode_udp,
)
from tests import strategies
from tests.vectors import (
    TCP_AVL_VALID,
    TCP_COMMANDS_DECODED,
    UDP_VALID,
    Vector,
    by_id,
    chunks,
    frame_payload,
    payload_of,
    vector_id,
)

FUZZ = settings(deadline=timedelta(seconds=2))
"""Bad input must fail fast: two seconds is ample for a few kilobytes."""

VALID_FRAMES = st.sampled_from([v.data for v in TCP_AVL_VALID + TCP_COMMANDS_DECODED])
VALID_DATAGRAMS = st.sampled_from([v.data for v in UDP_VALID])


@given(strategies.avl_packets())
def test_avl_frame_round_trip(packet: AvlPacket) -> None:
    assert teltotwist.decode(encode_frame(packet)) == packet


@given(strategies.io16_packets())
def test_io16_payload_round_trip(packet: AvlPacket) -> None:
    payload = encode_avl_payload(packet)

    assert decode_avl_payload(payload, 0, len(payload), io16=True) == packet


@given(strategies.udp_datagrams())
def test_udp_round_trip(datagram: UdpDatagram) -> None:
    assert decode_udp(encode_udp(datagram)) == datagram


@given(strategies.command_frames())
def test_command_frame_round_trip(frame: CommandFrame) -> None:
    assert teltotwist.decode(encode_frame(frame)) == frame


@given(strategies.stream_events, st.data())
def test_any_chunking_gives_the_events_of_one_read(
    events: list[StreamEvent], data: st.DataObject
) -> None:
    stream = b"".join(strategies.event_bytes(event) for event in events)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
    framer = StreamFramer()

    received: list[StreamEvent] = []
    for chunk in chunks(stream, cuts):
        received += framer.feed(chunk)

    assert received == events == StreamFramer().feed(stream)
    assert framer.buffered == 0


def raises_only_codec_errors(decoder: Callable[[bytes], object], data: bytes) -> None:
    """*decoder* returns or raises a CodecError; anything else fails the test."""
    with contextlib.suppress(CodecError):
        decoder(data)


def feed_once(data: bytes) -> object:
    return StreamFramer().feed(data)


def each_decoder_raises_only_codec_errors(data: bytes) -> None:
    # One test for all three, not a parametrized one: pytest-twisted wraps the
    # test function once per parameter, and a @given test wrapped twice fails.
    for decoder in (teltotwist.decode, decode_udp, feed_once):
        raises_only_codec_errors(decoder, data)


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes_raise_only_codec_errors(data: bytes) -> None:
    each_decoder_raises_only_codec_errors(data)


@FUZZ
@given(strategies.mutated(st.one_of(VALID_FRAMES, strategies.frames, VALID_DATAGRAMS)))
def test_mutated_input_raises_only_codec_errors(data: bytes) -> None:
    each_decoder_raises_only_codec_errors(data)


@FUZZ
@given(
    strategies.mutated(VALID_FRAMES.map(payload_of) | strategies.frames.map(payload_of))
)
def test_mutated_payload_with_a_valid_crc_raises_only_codec_errors(
    payload: bytes,
) -> None:
    """The CRC no longer stops the damage: the codec parsers see it all."""
    raises_only_codec_errors(teltotwist.decode, frame_payload(payload))


@FUZZ
@given(strategies.mutated(VALID_DATAGRAMS | strategies.udp_datagrams().map(encode_udp)))
def test_mutated_datagram_with_a_valid_length_raises_only_codec_errors(
    datagram: bytes,
) -> None:
    """UDP has no CRC: with its length field fixed the AVL parser sees the damage."""
    fixed = (max(len(datagram) - 2, 0) % 0x10000).to_bytes(2, "big") + datagram[2:]
    raises_only_codec_errors(decode_udp, fixed)


@FUZZ
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_stream_of_random_reads_raises_only_codec_errors(reads: list[bytes]) -> None:
    framer = StreamFramer()
    failed: type[CodecError] | None = None
    for data in reads:
        try:
            framer.feed(data)
        except CodecError as error:
            assert failed in (None, type(error))
            failed = type(error)


def expected_bit_flip_error(position: int) -> type[CodecError]:
    """Preamble: framing; data field length: length; data field or CRC: CRC."""
    if position < 4:
        return FramingError
    if position < 8:
        return LengthMismatchError
    return CRCMismatchError


def assert_every_bit_flip_is_detected(frame: bytes) -> None:
    for position in range(len(frame)):
        for bit in range(8):
            damaged = bytearray(frame)
            damaged[position] ^= 1 << bit
            with pytest.raises(expected_bit_flip_error(position)):
                teltotwist.decode(bytes(damaged))


BIT_FLIP_VECTORS = [
    by_id(name)
    for name in (
        "wiki-c8-tcp-1",
        "wiki-c8e-tcp-2018-vin",
        "wiki-c16-tcp-1",
        "wiki-c12-getio-cmd",
        "wiki-c15-hello",
        "traccar-46-avl",
    )
]


@pytest.mark.parametrize("vector", BIT_FLIP_VECTORS, ids=vector_id)
def test_every_bit_flip_in_a_vector_is_detected(vector: Vector) -> None:
    assert_every_bit_flip_is_detected(vector.data)


@given(strategies.avl_packets(max_records=2) | strategies.command_frames())
def test_every_bit_flip_in_a_generated_frame_is_detected(
    content: AvlPacket | CommandFrame,
) -> None:
    assert_every_bit_flip_is_detected(encode_frame(content))
