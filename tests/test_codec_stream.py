"""The TCP stream framer: logins, pings and frames out of arbitrary reads."""

from __future__ import annotations

import pytest

from teltotwist.codec import (
    DEFAULT_MAX_FRAME_SIZE,
    CodecError,
    Frame,
    FrameTooLargeError,
    FramingError,
    InvalidLoginError,
    Login,
    Ping,
    StreamEvent,
    StreamFramer,
)
from tests.vectors import by_id

LOGIN = by_id("traccar-00-imei")
"""``000F`` and the 15 ASCII digits of IMEI 123456789012345."""
PING = by_id("traccar-43-ping")
FRAMES = [
    by_id(name).data
    for name in ("wiki-c8-tcp-1", "wiki-c8e-tcp-2018-vin", "wiki-c12-getinfo-resp")
]


def feed_all(framer: StreamFramer, *reads: bytes) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    for data in reads:
        events += framer.feed(data)
    return events


def test_login() -> None:
    framer = StreamFramer()

    assert framer.feed(LOGIN.data) == [Login(LOGIN.reference["imei"])]
    assert framer.buffered == 0


def test_ping_glued_before_the_login() -> None:
    """Traccar's frame decoder test: the first frame of ``FF000F...`` is ``FF``."""
    vector = by_id("traccar-52-frame-decoder-input")
    assert vector.data == PING.data + LOGIN.data
    assert vector.reference["expected_first_frame"] == PING.data.hex()

    assert StreamFramer().feed(vector.data) == [Ping(), Login(LOGIN.reference["imei"])]


def test_pings_between_frames_and_several_frames_in_one_read() -> None:
    ping = PING.data
    stream = LOGIN.data + ping + FRAMES[0] + ping + ping + FRAMES[1] + FRAMES[2] + ping
    framer = StreamFramer()

    assert framer.feed(stream) == [
        Login(LOGIN.reference["imei"]),
        Ping(),
        Frame(FRAMES[0]),
        Ping(),
        Ping(),
        Frame(FRAMES[1]),
        Frame(FRAMES[2]),
        Ping(),
    ]
    assert framer.buffered == 0


def test_frame_byte_by_byte_completes_on_its_last_byte() -> None:
    frame = FRAMES[1]
    framer = StreamFramer()

    for position in range(len(frame) - 1):
        assert framer.feed(frame[position : position + 1]) == []
        assert framer.buffered == position + 1
    assert framer.feed(frame[-1:]) == [Frame(frame)]
    assert framer.buffered == 0


def test_login_byte_by_byte() -> None:
    framer = StreamFramer()

    events = feed_all(framer, *(bytes((byte,)) for byte in LOGIN.data))

    assert events == [Login(LOGIN.reference["imei"])]


def test_frame_split_between_reads_keeps_the_rest() -> None:
    frame, after = FRAMES[0], FRAMES[2]
    framer = StreamFramer()

    assert framer.feed(frame[:30]) == []
    assert framer.feed(frame[30:] + after[:9]) == [Frame(frame)]
    assert framer.buffered == 9
    assert framer.feed(after[9:]) == [Frame(after)]


def test_frame_larger_than_the_documented_1280_bytes_passes() -> None:
    """A real 2,079-byte camera frame: the default cap leaves room for it."""
    frame = by_id("traccar-50-codec12").data
    assert len(frame) > 1280

    assert StreamFramer().feed(frame) == [Frame(frame)]
    assert DEFAULT_MAX_FRAME_SIZE == 64 * 1024  # DESIGN.md: a generous 64 KiB


def test_frame_over_the_cap_is_refused_from_its_header_alone() -> None:
    header = bytes(4) + (0xFFFFFFF0).to_bytes(4, "big")
    framer = StreamFramer()

    with pytest.raises(FrameTooLargeError):
        framer.feed(header)
    assert framer.buffered <= len(header)


def test_cap_counts_the_whole_frame() -> None:
    frame = FRAMES[0]

    assert StreamFramer(max_frame_size=len(frame)).feed(frame) == [Frame(frame)]
    with pytest.raises(FrameTooLargeError):
        StreamFramer(max_frame_size=len(frame) - 1).feed(frame[:8])


def test_login_longer_than_32_is_refused_before_its_digits() -> None:
    with pytest.raises(InvalidLoginError):
        StreamFramer().feed(b"\x00\x21")


def test_login_of_32_digits_is_accepted() -> None:
    imei = "1" * 32

    assert StreamFramer().feed(b"\x00\x20" + imei.encode()) == [Login(imei)]


def test_non_digit_login_is_refused_as_soon_as_it_arrives() -> None:
    framer = StreamFramer()

    assert framer.feed(LOGIN.data[:6]) == []
    with pytest.raises(InvalidLoginError):
        framer.feed(b"x")


@pytest.mark.parametrize("start", [b"\x00\x00\x01", b"\x00\x00\x00\x01"])
def test_nonzero_preamble_is_refused_at_once(start: bytes) -> None:
    """Bytes 0-1 zero make it a frame, so bytes 2-3 must be zero too."""
    with pytest.raises(FramingError):
        StreamFramer().feed(start)


@pytest.mark.parametrize(
    "bad", [b"\x00\x21", LOGIN.data[:5] + b"x", bytes(4) + bytes.fromhex("ffffffff")]
)
def test_after_an_error_every_feed_raises(bad: bytes) -> None:
    framer = StreamFramer()
    with pytest.raises(CodecError) as first:
        framer.feed(bad)

    for data in (LOGIN.data, PING.data, b""):
        with pytest.raises(type(first.value)):
            framer.feed(data)


def test_cap_below_the_smallest_frame_is_refused() -> None:
    with pytest.raises(ValueError, match="max_frame_size"):
        StreamFramer(max_frame_size=12)
