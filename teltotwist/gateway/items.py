# -*- test-case-name: tests.test_gateway_items -*-
"""What sinks receive: decoded records with their tracker's IMEI, the raw
frames that could not be decoded but must still be kept (and ACKed), and the
outcomes of commands sent to trackers.

Every item has a deterministic ``id``: the same record resent by a tracker
(at-least-once delivery) gets the same id, so consumers can upsert.
"""

from __future__ import annotations

import hashlib
import time
import zlib
from collections.abc import Callable
from typing import Any, ClassVar

import attrs

from teltotwist.catalogue import Naming
from teltotwist.codec import (
    AvlPacket,
    AvlRecord,
    Codec,
    encode_avl_payload,
    encode_json,
    format_timestamp_ms,
    record_fields,
    record_to_json,
)

JsonObject = dict[str, Any]

CompiledRecords = Callable[..., tuple[Any, ...] | None]
"""The C extension's ``tracker_records`` (see :func:`tracker_records`)."""


def compiled_records() -> CompiledRecords | None:
    """The C extension's ``tracker_records``; ``None`` in a pure build."""
    try:
        from teltotwist.gateway._fastitems import (  # noqa: PLC0415 - optional
            tracker_records as compiled,
        )
    except ImportError:
        return None
    return compiled


_compiled_records = compiled_records()


def now_ms() -> int:
    """The current UTC time in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def record_id(imei: str, codec: Codec, record: AvlRecord) -> str:
    """``IMEI:TIMESTAMP_MS:HASH``, identical for a resent record.

    The 64-bit hash covers the record's bytes in *codec*: its
    :attr:`~teltotwist.codec.AvlRecord.wire` bytes, or for a record built in
    code the bytes *codec* encodes it as (the same, for a tracker's record).
    """
    wire = record.wire or _encoded(codec, record)
    digest = hashlib.blake2b(wire, digest_size=8).hexdigest()
    return f"{imei}:{record.timestamp_ms}:{digest}"


def _encoded(codec: Codec, record: AvlRecord) -> bytes:
    """*record* as *codec* carries it: its payload without the codec id and
    the record counts around it."""
    packet = AvlPacket(codec, (record,), io16=record.io_layout[4] > 0)
    return encode_avl_payload(packet)[2:-1]


@attrs.frozen
class TrackerRecord:
    """A decoded AVL record from one tracker, as delivered to the sinks.

    *attributes* is the record's IO named for its tracker's model, computed
    once when the item is built (every sink shares the item); ``None`` with
    naming off.

    The compiled items (``_fastitems.c``) set these fields themselves: a new
    field goes there too (``tests/test_items_compiled.py`` compares them all).
    """

    kind: ClassVar[str] = "records"
    """The item's kind in topic and routing-key templates (``{kind}``)."""

    imei: str
    codec: Codec
    record: AvlRecord
    received_at_ms: int
    id: str = attrs.field()
    attributes: JsonObject | None = attrs.field(default=None, kw_only=True, eq=False)
    line: bytes = attrs.field(init=False, eq=False, repr=False)
    """:meth:`to_json` as compact JSON, encoded once when the item is built:
    every sink writes these bytes."""

    @id.default
    def _id(self) -> str:
        return record_id(self.imei, self.codec, self.record)

    @line.default
    def _encode(self) -> bytes:
        fields = {**self._head(), **record_fields(self.record, self.codec)}
        if self.attributes is not None:
            fields["attributes"] = self.attributes
        return encode_json(fields)

    @classmethod
    def named(
        cls,
        imei: str,
        codec: Codec,
        record: AvlRecord,
        received_at_ms: int,
        naming: Naming | None,
    ) -> TrackerRecord:
        """The item for *record*, with its attributes by *naming* (none for
        ``None``)."""
        attributes = None if naming is None else naming.attributes(record.io)
        return cls(imei, codec, record, received_at_ms, attributes=attributes)

    def to_json(self) -> JsonObject:
        """The record object of the record JSON contract; ``attributes``
        after ``io``, only with naming on."""
        result = self._head()
        result.update(record_to_json(self.record, self.codec))
        if self.attributes is not None:
            result["attributes"] = self.attributes
        return result

    def _head(self) -> JsonObject:
        return {
            "id": self.id,
            "imei": self.imei,
            "received_at": format_timestamp_ms(self.received_at_ms),
        }


@attrs.frozen
class UnparsedFrame:
    """A frame with a valid CRC whose content could not be decoded.

    It is delivered (and then ACKed) so the tracker is not wedged resending
    it forever; ``raw`` keeps every byte for a later decoder.
    """

    kind: ClassVar[str] = "unparsed"

    imei: str
    raw: bytes
    error: str
    received_at_ms: int
    id: str = attrs.field()

    @id.default
    def _id(self) -> str:
        return f"{self.imei}:unparsed:{zlib.crc32(self.raw):08x}"

    def to_json(self) -> JsonObject:
        """``{"id", "imei", "received_at", "unparsed": true, "error", "hex"}``."""
        return {
            "id": self.id,
            "imei": self.imei,
            "received_at": format_timestamp_ms(self.received_at_ms),
            "unparsed": True,
            "error": self.error,
            "hex": self.raw.hex(),
        }


@attrs.frozen
class CommandResult:
    """The final outcome of a command to a tracker, delivered best effort.

    *command* is the command object of the HTTP API (``id``, ``status``,
    ``response`` ...); the item's ``id`` is the command's, prefixed.
    """

    kind: ClassVar[str] = "command_result"

    imei: str
    command: JsonObject
    received_at_ms: int

    @property
    def id(self) -> str:
        return f"{self.imei}:command:{self.command['id']}"

    def to_json(self) -> JsonObject:
        """``{"id", "imei", "received_at", "command_result": {...}}``."""
        return {
            "id": self.id,
            "imei": self.imei,
            "received_at": format_timestamp_ms(self.received_at_ms),
            "command_result": self.command,
        }


Item = TrackerRecord | UnparsedFrame | CommandResult
"""Anything a sink is asked to keep."""


def tracker_records(
    imei: str, packet: AvlPacket, received_at_ms: int, naming: Naming | None
) -> tuple[TrackerRecord, ...]:
    """The items of *packet*'s records from *imei*, named by *naming*: each
    :meth:`TrackerRecord.named`.

    Built with ``TELTOTWIST_COMPILE=1``, a C extension makes them in one call
    (docs/performance.rst, "Compiled items, and what a Twisted server
    costs"); what it does not expect, it leaves to the Python code here.
    """
    if _compiled_records is not None:
        items = _compiled_records(
            TrackerRecord,
            packet.records,
            imei,
            packet.codec,
            packet.codec.label,
            received_at_ms,
            format_timestamp_ms(received_at_ms),
            None if naming is None else naming.table,
        )
        if items is not None:
            return items
    return tuple(
        TrackerRecord.named(imei, packet.codec, record, received_at_ms, naming)
        for record in packet.records
    )


def records_not_made(error: Exception) -> str:
    """Why a packet whose records decoded has no items: :func:`tracker_records`
    raised *error* (a value nobody foresaw, or a bug). The packet is then
    handled as an undecodable one, not lost."""
    return f"records not made: {error!r}"


def json_line(item: Item) -> bytes:
    """The item's record JSON as one compact UTF-8 line, without the newline:
    the same bytes for every sink."""
    if isinstance(item, TrackerRecord):
        return item.line
    return encode_json(item.to_json())
