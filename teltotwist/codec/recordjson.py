# -*- test-case-name: tests.test_codec_recordjson -*-
"""The record JSON contract (DESIGN.md): one shape for every sink and the CLI.

Fixed-size IO values stay unsigned integers exactly as sent; variable-length
and 16-byte values become lowercase hex strings; IO keys are decimal strings.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from teltotwist.codec.model import (
    AvlPacket,
    AvlRecord,
    Codec,
    CommandFrame,
    CommandMessage,
    CommandType,
)

JsonObject = dict[str, Any]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_COMMAND_TYPE_NAMES: dict[int, str] = {
    CommandType.COMMAND: "command",
    CommandType.RESPONSE: "response",
    CommandType.NACK: "nack",
}


def format_timestamp_ms(timestamp_ms: int) -> str:
    """``2019-06-10T10:04:46.000Z`` for milliseconds since the epoch."""
    moment = _EPOCH + timedelta(milliseconds=timestamp_ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{timestamp_ms % 1000:03d}Z"


def record_to_json(record: AvlRecord, codec: Codec) -> JsonObject:
    """The record object without the server-side ``id``, ``imei`` and
    ``received_at``."""
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
    result["io"] = {
        str(io_id): value.hex() if isinstance(value, bytes) else value
        for io_id, value in record.io.items()
    }
    return result


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
