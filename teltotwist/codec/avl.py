# -*- test-case-name: tests.test_codec_avl -*-
"""AVL payloads (Codec 8, 8 Extended, 16): from the codec id byte to the second
record count, the part shared by TCP frames and UDP datagrams.

A record's fixed-size part is decoded with one ``struct.Struct`` compiled for
its *shape* (the element count of each IO group). A tracker sends the same few
shapes over and over, so after the first packet a record costs a walk over
four count bytes and a single C-level unpack.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import attrs

from teltotwist.codec.errors import (
    CountMismatchError,
    LengthMismatchError,
    TruncatedError,
    UnknownCodecError,
    ValueRangeError,
)
from teltotwist.codec.model import (
    AVL_CODECS,
    AvlPacket,
    AvlRecord,
    Codec,
    IoLayout,
    IoValue,
)

MAX_TIMESTAMP_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: the last instant a record timestamp may name."""

_GPS_FORMAT = "QBiihHBH"
_FIXED_VALUE_FORMATS = ("B", "H", "I", "Q")
_IO16_PAIR_FORMAT = "B16s"
_IO16_PAIR_SIZE = struct.calcsize(">" + _IO16_PAIR_FORMAT)
_NX_HEAD = struct.Struct(">HH")
_U16 = struct.Struct(">H")
_U8 = struct.Struct(">B")
_Shape = tuple[int, ...]


@attrs.define
class _Layout:
    """Where Codec 8, 8E and 16 differ, and the structs compiled per shape."""

    codec: Codec
    event_format: str
    """Event id, generation type (Codec 16) and N total."""
    id_format: str
    count_format: str
    has_generation_type: bool
    has_variable_group: bool
    decoders: dict[_Shape, tuple[struct.Struct, IoLayout]] = attrs.field(factory=dict)
    encoders: dict[_Shape, struct.Struct] = attrs.field(factory=dict)
    head: struct.Struct = attrs.field(init=False)
    head_fields: int = attrs.field(init=False)
    loop_constants: tuple[int, int, int, bool, bool] = attrs.field(init=False)
    count_width: int = attrs.field(init=False)
    pair_sizes: tuple[int, ...] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.head = struct.Struct(">" + _GPS_FORMAT + self.event_format)
        self.head_fields = len(self.head.unpack(bytes(self.head.size)))
        self.count_width = struct.calcsize(">" + self.count_format)
        self.pair_sizes = tuple(
            struct.calcsize(">" + self.id_format + value)
            for value in _FIXED_VALUE_FORMATS
        )
        self.loop_constants = (
            self.head.size,
            self.head_fields,
            self.count_width,
            self.has_generation_type,
            self.has_variable_group,
        )

    def _format(self, shape: _Shape, counts: str) -> str:
        groups = [
            counts + (self.id_format + value) * count
            for value, count in zip(_FIXED_VALUE_FORMATS, shape, strict=False)
        ]
        if len(shape) > len(_FIXED_VALUE_FORMATS):
            # Only Codec 8 has this group, so its count is as wide as the others.
            groups.append(counts + _IO16_PAIR_FORMAT * shape[-1])
        return ">" + _GPS_FORMAT + self.event_format + "".join(groups)

    def decoder(self, shape: _Shape) -> tuple[struct.Struct, IoLayout]:
        """The struct unpacking a record's fixed part (skipping the group
        counts), and the record's ``io_layout`` when it has no NX elements."""
        compiled = self.decoders.get(shape)
        if compiled is None:
            skip = "x" * self.count_width
            io16 = shape[4] if len(shape) > len(_FIXED_VALUE_FORMATS) else 0
            io_layout: IoLayout = (shape[0], shape[1], shape[2], shape[3], io16, 0)
            compiled = struct.Struct(self._format(shape, skip)), io_layout
            self.decoders[shape] = compiled
        return compiled

    def encoder(self, shape: _Shape) -> struct.Struct:
        """Packs a record's fixed part, group counts included."""
        compiled = self.encoders.get(shape)
        if compiled is None:
            compiled = struct.Struct(self._format(shape, self.count_format))
            self.encoders[shape] = compiled
        return compiled


_LAYOUTS = {
    Codec.CODEC8: _Layout(Codec.CODEC8, "BB", "B", "B", False, False),
    Codec.CODEC8E: _Layout(Codec.CODEC8E, "HH", "H", "H", False, True),
    Codec.CODEC16: _Layout(Codec.CODEC16, "HBB", "H", "B", True, False),
}
_LAYOUTS_BY_ID = {int(codec): layout for codec, layout in _LAYOUTS.items()}


def decode_avl_payload(
    buffer: bytes, start: int, end: int, *, io16: bool = False
) -> AvlPacket:
    """Decode the AVL payload in ``buffer[start:end]``.

    ``buffer[start]`` is the codec id and ``buffer[end - 1]`` the second record
    count. Offsets in errors are offsets into *buffer*. With *io16*, Codec 8
    records carry the non-standard 16-byte IO group after the 8-byte one.
    """
    if end - start < 3:
        raise TruncatedError(
            f"AVL payload of {end - start} bytes is shorter than 3", start
        )
    layout = _LAYOUTS_BY_ID.get(buffer[start])
    if layout is None:
        raise UnknownCodecError(
            f"codec 0x{buffer[start]:02x} carries no AVL records", start
        )
    if io16 and layout.codec is not Codec.CODEC8:
        raise UnknownCodecError("the 16-byte IO group exists only in Codec 8", start)
    count = buffer[start + 1]
    if buffer[end - 1] != count:
        raise CountMismatchError(
            f"record counts disagree: {count} first, {buffer[end - 1]} last", end - 1
        )
    end -= 1
    offset = start + 2
    records = []
    # The loop is the hot path of the whole gateway: it is kept flat on purpose.
    (head_size, head_fields, count_width, has_generation_type, has_variable_group) = (
        layout.loop_constants
    )
    wide = count_width == 2
    pair_sizes = (*layout.pair_sizes, _IO16_PAIR_SIZE) if io16 else layout.pair_sizes
    decoders = layout.decoders
    for _ in range(count):
        position = offset + head_size
        shape = []
        for pair_size in pair_sizes:
            if position + count_width > end:
                raise TruncatedError(
                    "IO group count runs past the data field", position
                )
            elements = (
                buffer[position] << 8 | buffer[position + 1]
                if wide
                else buffer[position]
            )
            position += count_width + elements * pair_size
            shape.append(elements)
        if position > end:
            raise TruncatedError("IO elements run past the data field", offset)
        key = tuple(shape)
        decoder, io_layout = decoders.get(key) or layout.decoder(key)
        values = decoder.unpack_from(buffer, offset)
        if values[0] > MAX_TIMESTAMP_MS:
            raise ValueRangeError(f"timestamp {values[0]} ms is past year 9999", offset)
        pairs = iter(values[head_fields:])
        io: dict[int, IoValue] = dict(zip(pairs, pairs))  # noqa: B905 - even by design
        fixed = len(io)
        variable = 0
        if has_variable_group:
            variable, position = _decode_variable(buffer, position, end, io)
            io_layout = (*io_layout[:5], variable)
        total = values[head_fields - 1]
        if total != fixed + variable or (len(values) - head_fields) >> 1 != fixed:
            raise _io_count_error(total, shape, fixed, variable, offset)
        records.append(
            AvlRecord(
                values[0],
                values[1],
                values[2] / 1e7,
                values[3] / 1e7,
                values[4],
                values[5],
                values[6],
                values[7],
                values[8],
                io,
                io_layout,
                values[9] if has_generation_type else None,
            )
        )
        offset = position
    if offset != end:
        raise LengthMismatchError(
            f"{end - offset} bytes left after {count} records", offset
        )
    return AvlPacket(layout.codec, tuple(records), io16)


def _io_count_error(
    total: int, shape: list[int], fixed: int, variable: int, offset: int
) -> CountMismatchError:
    if fixed != sum(shape):
        return CountMismatchError("an IO id appears twice in one record", offset)
    return CountMismatchError(
        f"record says it has {total} IO elements, its groups hold {fixed + variable}",
        offset,
    )


def _decode_variable(
    buffer: bytes, offset: int, end: int, io: dict[int, IoValue]
) -> tuple[int, int]:
    """Add the Codec 8E NX group to *io*: u16 count, then (u16 id, u16 length,
    bytes). Returns the element count and the offset past the group."""
    if offset + 2 > end:
        raise TruncatedError(
            "variable-length IO count runs past the data field", offset
        )
    count = _U16.unpack_from(buffer, offset)[0]
    offset += 2
    before = len(io)
    for _ in range(count):
        if offset + 4 > end:
            raise TruncatedError(
                "variable-length IO header runs past the data field", offset
            )
        io_id, length = _NX_HEAD.unpack_from(buffer, offset)
        offset += 4
        if offset + length > end:
            raise TruncatedError(
                f"IO {io_id} of {length} bytes runs past the data field", offset
            )
        io[io_id] = buffer[offset : offset + length]
        offset += length
    if len(io) != before + count:
        raise CountMismatchError("an IO id appears twice in one record", offset)
    return count, offset


def encode_avl_payload(packet: AvlPacket) -> bytes:
    """Encode *packet* from the codec id byte to the second record count."""
    codec = packet.codec
    if codec not in AVL_CODECS:
        raise UnknownCodecError(f"codec {codec!r} carries no AVL records")
    count = len(packet.records)
    if count > 0xFF:
        raise ValueRangeError(f"{count} records do not fit in one packet (max 255)")
    io16 = packet.io16
    if io16 and codec is not Codec.CODEC8:
        raise ValueRangeError("only Codec 8 can carry the 16-byte IO group")
    if not io16 and any(record.io_layout[4] for record in packet.records):
        raise ValueRangeError("records with 16-byte IO elements need io16=True")
    layout = _LAYOUTS[codec]
    parts = [bytes((codec, count))]
    parts.extend(_encode_record(record, layout, io16) for record in packet.records)
    parts.append(bytes((count,)))
    return b"".join(parts)


def _encode_record(record: AvlRecord, layout: _Layout, io16: bool) -> bytes:
    io_layout = record.io_layout
    if len(io_layout) != 6 or sum(io_layout) != len(record.io):
        raise ValueRangeError(
            f"io_layout {io_layout} does not account for the {len(record.io)} IO "
            "elements; build both with io_elements()"
        )
    if io_layout[5] and not layout.has_variable_group:
        raise ValueRangeError("only Codec 8 Extended has a variable-length IO group")
    if (record.generation_type is not None) != layout.has_generation_type:
        raise ValueRangeError("generation_type is set for Codec 16 and only for it")
    shape = io_layout[:5] if io16 else io_layout[:4]
    items = iter(record.io.items())
    arguments: list[IoValue] = [
        record.timestamp_ms,
        record.priority,
        round(record.longitude * 1e7),
        round(record.latitude * 1e7),
        record.altitude,
        record.angle,
        record.satellites,
        record.speed,
        record.event_id,
    ]
    if record.generation_type is not None:
        arguments.append(record.generation_type)
    arguments.append(len(record.io))
    for group_count in shape:
        arguments.append(group_count)
        arguments.extend(_flat_pairs(items, group_count))
    try:
        fixed = layout.encoder(shape).pack(*arguments)
        variable = (
            _encode_variable(items, io_layout[5]) if layout.has_variable_group else b""
        )
    except struct.error as error:
        raise ValueRangeError(f"record does not fit its codec: {error}") from None
    return fixed + variable


def _flat_pairs(items: Iterator[tuple[int, IoValue]], count: int) -> list[IoValue]:
    flat: list[IoValue] = []
    for _ in range(count):
        io_id, value = next(items)
        if isinstance(value, bytes) and len(value) != 16:
            raise ValueRangeError(
                f"IO {io_id} of the 16-byte group holds {len(value)} bytes"
            )
        flat += (io_id, value)
    return flat


def _encode_variable(items: Iterator[tuple[int, IoValue]], count: int) -> bytes:
    parts = [_U16.pack(count)]
    for io_id, value in items:
        if not isinstance(value, bytes):
            raise ValueRangeError(f"variable-length IO {io_id} must be bytes")
        parts.append(_NX_HEAD.pack(io_id, len(value)) + value)
    return b"".join(parts)
