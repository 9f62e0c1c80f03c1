# -*- test-case-name: tests.test_codec_recordjson -*-
"""The record JSON contract (DESIGN.md): one shape for every sink and the CLI.

Fixed-size IO values stay unsigned integers exactly as sent; variable-length
and 16-byte values become lowercase hex strings; IO keys are decimal strings.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from typing import Any

import orjson

from teltotwist.codec.model import (
    AvlPacket,
    AvlRecord,
    Codec,
    CommandFrame,
    CommandMessage,
    CommandType,
)

JsonObject = dict[str, Any]

_COMMAND_TYPE_NAMES: dict[int, str] = {
    CommandType.COMMAND: "command",
    CommandType.RESPONSE: "response",
    CommandType.NACK: "nack",
}


def format_timestamp_ms(timestamp_ms: int) -> str:
    """``2019-06-10T10:04:46.000Z`` for milliseconds since the epoch (up to
    the end of year 9999)."""
    seconds, milliseconds = divmod(timestamp_ms, 1000)
    return _format_second(seconds) + _MILLISECONDS[milliseconds]


# Records arrive about a second apart and many trackers share a second, so a
# small cache formats most timestamps without touching the calendar, and the
# milliseconds are looked up rather than formatted.
@functools.lru_cache(maxsize=4096)
def _format_second(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(seconds))


_MILLISECONDS = tuple(f"{milliseconds:03d}Z" for milliseconds in range(1000))


def record_to_json(record: AvlRecord, codec: Codec) -> JsonObject:
    """The record object without the server-side ``id``, ``imei`` and
    ``received_at``."""
    result = record_fields(record, codec)
    result["io"] = {
        str(io_id): value.hex() if isinstance(value, bytes) else value
        for io_id, value in record.io.items()
    }
    return result


def record_fields(record: AvlRecord, codec: Codec) -> JsonObject:
    """The record object of :func:`record_to_json`, but with ``io`` as
    decoded: integer keys, bytes values.

    :func:`encode_json` writes it as :func:`record_to_json`'s object, without
    converting the IO element by element first.
    """
    result: JsonObject = {
        "codec": codec.label,
        "timestamp": format_timestamp_ms(record.timestamp_ms),
        "priority": record.priority,
        "longitude": record.longitude,
        "latitude": record.latitude,
        "altitude": record.altitude,
        "angle": record.angle,
        "satellites": record.satellites,
        "speed": record.speed,
        "event_id": record.event_id,
    }
    if record.generation_type is not None:
        result["generation_type"] = record.generation_type
    result["io"] = record.io
    return result


def encode_json(value: Mapping[str, Any]) -> bytes:
    """*value* as compact UTF-8 JSON: integer keys as decimal strings, bytes
    as lowercase hex strings (so the record objects of :func:`record_fields`
    come out as :func:`record_to_json`'s)."""
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_NON_STR_KEYS)


def _json_default(value: object) -> str | dict[Any, Any]:
    """What orjson cannot write itself: bytes, and IO mappings that are not
    dicts."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def packet_to_json(packet: AvlPacket) -> JsonObject:
    """``{"codec": "8E", "records": [...]}``."""
    return {
        "codec": packet.codec.label,
        "records": [record_to_json(record, packet.codec) for record in packet.records],
    }


def command_message_to_json(message: CommandMessage) -> JsonObject:
    """A command message: its type, text (or null) and raw hex."""
    result: JsonObject = {
        "type": _COMMAND_TYPE_NAMES.get(message.type, f"0x{message.type:02x}"),
        "text": message.text,
        "hex": message.payload.hex(),
    }
    if message.timestamp is not None:
        result["timestamp"] = format_timestamp_ms(message.timestamp * 1000)
    if message.imei is not None:
        result["imei"] = message.imei
    return result


def command_frame_to_json(frame: CommandFrame) -> JsonObject:
    """``{"codec": "12", "messages": [{"type": "response", "text": ...}]}``."""
    return {
        "codec": frame.codec.label,
        "messages": [command_message_to_json(message) for message in frame.messages],
    }
