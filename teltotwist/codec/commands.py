# -*- test-case-name: tests.test_codec_commands -*-
"""Command payloads: Codec 12, 13, 14 and 15, from the codec id byte to the
second quantity.

Quantity 2 "will not be parsed" (vendor), and a real Codec 12 capture says 2
messages but holds one: messages are read while the data field has room, up to
Quantity 1, and never past the data field.
"""

from __future__ import annotations

import struct

from teltotwist.codec.errors import (
    LengthMismatchError,
    TruncatedError,
    UnknownCodecError,
    ValueRangeError,
)
from teltotwist.codec.imei import is_digits
from teltotwist.codec.model import COMMAND_CODECS, Codec, CommandFrame, CommandMessage

_TYPE_AND_SIZE = struct.Struct(">BI")
_TIMESTAMP = struct.Struct(">I")
_IMEI_BYTES = 8


def _prefix_width(codec: Codec) -> int:
    """Bytes of timestamp and IMEI that precede the text, counted in Size."""
    return {
        Codec.CODEC12: 0,
        Codec.CODEC13: _TIMESTAMP.size,
        Codec.CODEC14: _IMEI_BYTES,
        Codec.CODEC15: _TIMESTAMP.size + _IMEI_BYTES,
    }[codec]


def decode_imei_field(field: bytes) -> str:
    """The 15-digit IMEI from its 8-byte Codec 14/15 form (hex nibbles, one pad)."""
    digits = field.hex()
    if not digits.isdigit():
        raise ValueRangeError(f"IMEI field {digits} holds non-decimal nibbles")
    return digits[1:] if digits.startswith("0") else digits


def encode_imei_field(imei: str) -> bytes:
    """The 8-byte Codec 14/15 form of a 15-digit IMEI."""
    if not (is_digits(imei) and len(imei) <= 2 * _IMEI_BYTES):
        raise ValueRangeError(f"IMEI must be at most 16 digits, not {imei!r}")
    return bytes.fromhex(imei.rjust(2 * _IMEI_BYTES, "0"))


def decode_command_payload(buffer: bytes, start: int, end: int) -> CommandFrame:
    """Decode the command payload in ``buffer[start:end]`` (codec id .. Quantity 2)."""
    if end - start < 3:
        raise TruncatedError(
            f"command payload of {end - start} bytes is too short", start
        )
    codec_id = buffer[start]
    if codec_id not in COMMAND_CODECS:
        raise UnknownCodecError(f"codec 0x{codec_id:02x} is no command codec", start)
    codec = Codec(codec_id)
    announced = buffer[start + 1]
    prefix = _prefix_width(codec)
    messages_end = end - 1
    offset = start + 2
    messages: list[CommandMessage] = []
    while len(messages) < announced and offset < messages_end:
        if offset + _TYPE_AND_SIZE.size > messages_end:
            raise TruncatedError("command header runs past the data field", offset)
        message_type, size = _TYPE_AND_SIZE.unpack_from(buffer, offset)
        offset += _TYPE_AND_SIZE.size
        if size < prefix:
            raise LengthMismatchError(
                f"message size {size} is below its {prefix}-byte prefix",
                offset - 4,
            )
        if offset + size > messages_end:
            raise TruncatedError(
                f"command of {size} bytes runs past the data field", offset
            )
        messages.append(_message(codec, message_type, buffer[offset : offset + size]))
        offset += size
    if not messages:
        raise TruncatedError("command frame holds no message", offset)
    if offset != messages_end:
        raise LengthMismatchError(
            f"{messages_end - offset} bytes left after {len(messages)} messages", offset
        )
    return CommandFrame(codec, tuple(messages))


def _message(codec: Codec, message_type: int, body: bytes) -> CommandMessage:
    timestamp = None
    imei = None
    if codec in (Codec.CODEC13, Codec.CODEC15):
        timestamp = _TIMESTAMP.unpack_from(body)[0]
        body = body[_TIMESTAMP.size :]
    if codec in (Codec.CODEC14, Codec.CODEC15):
        imei = decode_imei_field(body[:_IMEI_BYTES])
        body = body[_IMEI_BYTES:]
    return CommandMessage(message_type, bytes(body), timestamp, imei)


def encode_command_payload(frame: CommandFrame) -> bytes:
    """Encode *frame* from the codec id byte to Quantity 2."""
    codec = frame.codec
    if codec not in COMMAND_CODECS:
        raise UnknownCodecError(f"codec {codec!r} is no command codec")
    count = len(frame.messages)
    if not 1 <= count <= 0xFF:
        raise ValueRangeError(f"a command frame holds 1 to 255 messages, not {count}")
    parts = [bytes((codec, count))]
    for message in frame.messages:
        body = _message_body(codec, message)
        try:
            parts.append(_TYPE_AND_SIZE.pack(message.type, len(body)))
        except struct.error as error:
            raise ValueRangeError(
                f"message type or size out of range: {error}"
            ) from None
        parts.append(body)
    parts.append(bytes((count,)))
    return b"".join(parts)


def _message_body(codec: Codec, message: CommandMessage) -> bytes:
    wants_timestamp = codec in (Codec.CODEC13, Codec.CODEC15)
    wants_imei = codec in (Codec.CODEC14, Codec.CODEC15)
    if (message.timestamp is not None) != wants_timestamp:
        raise ValueRangeError(f"codec {codec.label} timestamp presence is wrong")
    if (message.imei is not None) != wants_imei:
        raise ValueRangeError(f"codec {codec.label} IMEI presence is wrong")
    prefix = b""
    if message.timestamp is not None:
        if not 0 <= message.timestamp <= 0xFFFFFFFF:
            raise ValueRangeError(f"timestamp {message.timestamp} does not fit 4 bytes")
        prefix += _TIMESTAMP.pack(message.timestamp)
    if message.imei is not None:
        prefix += encode_imei_field(message.imei)
    return prefix + message.payload
