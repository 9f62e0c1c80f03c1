# -*- test-case-name: tests.test_codec_frame -*-
"""Complete TCP data and command frames: preamble, data length, payload, CRC."""

from __future__ import annotations

import struct
from collections.abc import Sequence

from teltotwist.codec.avl import (
    decode_avl_payload,
    decode_standard_avl_payload,
    encode_avl_payload,
    join_avl_records,
)
from teltotwist.codec.commands import decode_command_payload, encode_command_payload
from teltotwist.codec.crc import crc16_ibm
from teltotwist.codec.errors import (
    CodecError,
    CRCMismatchError,
    FramingError,
    LengthMismatchError,
    TruncatedError,
    UnknownCodecError,
)
from teltotwist.codec.model import (
    AVL_CODECS,
    COMMAND_CODECS,
    AvlPacket,
    Codec,
    CommandFrame,
)

HEADER = struct.Struct(">II")
"""Preamble (zero) and data field length."""
PAYLOAD_START = HEADER.size
"""Where the data field (codec id .. second count) starts."""
_CRC_FIELD = struct.Struct(">I")
FRAME_OVERHEAD = HEADER.size + _CRC_FIELD.size
MIN_DATA_LENGTH = 3
"""The codec id and the two record (or message) counts: a data field that
cannot hold them is a framing fault, not content."""


def check_envelope(frame: bytes) -> int:
    """Check a TCP frame's preamble, data field length and CRC-16/IBM, and
    that the data field holds at least :data:`MIN_DATA_LENGTH` bytes.

    A frame that passes arrived intact: if its content then fails to decode,
    the fault is in what the tracker sent, not in the transfer.

    :returns: the end offset of the data field (where the CRC starts).
    :raises CodecError: (a subclass saying what is wrong, and where).
    """
    size = len(frame)
    if size < FRAME_OVERHEAD:
        raise TruncatedError(f"a frame has at least 12 bytes, this one {size}")
    preamble, length = HEADER.unpack_from(frame)
    if preamble:
        raise FramingError(f"preamble is {preamble:08x}, not 00000000", 0)
    if size != length + FRAME_OVERHEAD:
        raise LengthMismatchError(
            f"data field length {length} needs a {length + FRAME_OVERHEAD}-byte frame, "
            f"got {size} bytes",
            4,
        )
    if length < MIN_DATA_LENGTH:
        raise TruncatedError(
            f"a data field of {length} bytes cannot hold a codec id and two counts",
            4,
        )
    end: int = PAYLOAD_START + length
    carried = _CRC_FIELD.unpack_from(frame, end)[0]
    computed = crc16_ibm(frame[PAYLOAD_START:end])
    if carried != computed:
        raise CRCMismatchError(
            f"CRC field is {carried:08x}, the data's CRC-16/IBM is {computed:04x}",
            end,
        )
    return end


def decode_frame(frame: bytes) -> AvlPacket | CommandFrame:
    """Decode one complete TCP data or command frame.

    Checks the envelope (:func:`check_envelope`), then the record or message
    counts and every length inside.

    :raises CodecError: (a subclass saying what is wrong, and where).
    """
    if type(frame) is not bytes:
        frame = bytes(frame)
    return decode_checked_frame(frame, check_envelope(frame))


def decode_checked_frame(frame: bytes, end: int) -> AvlPacket | CommandFrame:
    """Decode a frame whose envelope :func:`check_envelope` already passed;
    *end* is what it returned. Spares computing the CRC twice.

    :raises CodecError: (a subclass saying what is wrong, and where).
    """
    codec_id = frame[PAYLOAD_START]
    if codec_id in AVL_CODECS:
        try:
            return decode_standard_avl_payload(frame, PAYLOAD_START, end)
        except CodecError as standard_error:
            # Some FM devices add a group of 16-byte values after the 8-byte
            # group of Codec 8. A CRC-valid frame that parses exactly only that
            # way is one of theirs; when neither layout fits, the standard
            # layout's error is the one reported.
            if codec_id != Codec.CODEC8:
                raise
            try:
                return decode_avl_payload(frame, PAYLOAD_START, end, io16=True)
            except CodecError:
                raise standard_error from None
    if codec_id in COMMAND_CODECS:
        return decode_command_payload(frame, PAYLOAD_START, end)
    raise UnknownCodecError(f"unknown codec 0x{codec_id:02x}", PAYLOAD_START)


def wrap_payload(payload: bytes) -> bytes:
    """Frame a payload (codec id .. second count) with preamble, length and CRC."""
    return b"".join(
        (HEADER.pack(0, len(payload)), payload, _CRC_FIELD.pack(crc16_ibm(payload)))
    )


def encode_frame(content: AvlPacket | CommandFrame) -> bytes:
    """Encode an AVL packet or a command frame as a complete TCP frame."""
    if isinstance(content, AvlPacket):
        return wrap_payload(encode_avl_payload(content))
    return wrap_payload(encode_command_payload(content))


def encode_avl_frame(codec: Codec, records: Sequence[bytes]) -> bytes:
    """A complete TCP AVL data frame of *records* already encoded for *codec*
    (see :func:`~teltotwist.codec.avl.join_avl_records`): they are joined,
    not encoded again."""
    return wrap_payload(join_avl_records(codec, records))
