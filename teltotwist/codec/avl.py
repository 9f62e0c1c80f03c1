# -*- test-case-name: tests.test_codec_avl -*-
"""AVL payloads (Codec 8, 8 Extended, 16): from the codec id byte to the second
record count, the part shared by TCP frames and UDP datagrams.

A record's fixed-size part is decoded with one ``struct.Struct`` compiled for
its *shape* (the element count of each IO group). A tracker sends the same few
shapes over and over, so after the first packet a record costs a walk over
four count bytes, a single C-level unpack, and one generated dict display for
its IO elements.

Shapes come from the network, so the cache is kept safe from it: a record's
lengths and counts are checked before its shape is compiled; a packet's new
shapes are cached only once the whole packet decoded; shapes of more than
:data:`MAX_COMPILED_ELEMENTS` elements are unpacked group by group, compiling
nothing; and each codec's cache holds at most :data:`SHAPE_CACHE_BUDGET`,
dropping its oldest shapes first.

Built with ``TELTOTWIST_COMPILE=1``, this module is compiled with mypyc (see
``setup.py``), so it keeps to what mypyc compiles: plain classes, not attrs
ones. ``tests/test_codec_compiled.py`` checks that both decode alike. That
build also has a C decoder, ``_fastavl.c``, which
:func:`decode_standard_avl_payload` tries first; it decodes only what
:func:`decode_avl_payload` accepts, and leaves the rest to it
(``tests/test_codec_fastavl.py``).
"""

from __future__ import annotations

import functools
import operator
import struct
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, Generic, NoReturn, Protocol, TypeVar

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

MAX_COMPILED_ELEMENTS = 255
"""Shapes with more IO elements are (un)packed group by group, never compiled:
a compiled struct costs about 65 bytes per element. Only Codec 8 Extended
records are that large: N total is one byte in the others."""

IO_DISPLAY_ELEMENTS = 64
"""Records with up to this many fixed-size IO elements get their IO dict from
generated code (:func:`_io_display`), larger ones from ``dict(zip(...))``."""

SHAPE_CACHE_BUDGET = 8_192
"""What one codec's decoder (or encoder) cache may hold, in IO elements, each
shape counted as its elements plus :data:`_SHAPE_OVERHEAD`: about 550 KB."""

_SHAPE_OVERHEAD = 16
"""A compiled shape's fixed cost (struct, key, layout: about 1 KB) in elements."""

_GPS_FORMAT = "QBiihHBH"
_FIXED_VALUE_FORMATS = ("B", "H", "I", "Q")
_IO16_PAIR_FORMAT = "B16s"
_IO16_PAIR_SIZE = struct.calcsize(">" + _IO16_PAIR_FORMAT)
_NX_HEAD = struct.Struct(">HH")
_U16 = struct.Struct(">H")
_Shape = tuple[int, ...]
_IoBuilder = Callable[[tuple[Any, ...]], dict[int, IoValue]]
"""Makes a record's IO dict from the values its shape's unpacker returned."""

_new = tuple.__new__
"""Makes an :class:`AvlRecord` or :class:`AvlPacket` from a tuple of its
fields, without the argument handling of ``AvlRecord(...)``."""


class _Unpacker(Protocol):
    def unpack_from(self, buffer: bytes, offset: int = 0) -> tuple[Any, ...]: ...


class _Packer(Protocol):
    def pack(self, *values: Any) -> bytes: ...


_Compiled = TypeVar("_Compiled")
_Decoder = tuple[_Unpacker, IoLayout, _IoBuilder]
"""What decodes a record of one shape: see :meth:`_Layout.decoder`."""


def _worth_compiling(shape: _Shape) -> bool:
    return sum(shape) <= MAX_COMPILED_ELEMENTS


def _io_builder(first: int, elements: int) -> _IoBuilder:
    """What makes the IO dict of a record whose unpacked values hold
    *elements* (id, value) pairs from index *first* on."""
    if elements <= IO_DISPLAY_ELEMENTS:
        return _io_display(first, elements)
    return functools.partial(_io_from_pairs, first)


@functools.cache
def _io_display(first: int, elements: int) -> _IoBuilder:
    """A generated function returning one dict display, ``{v[first]:
    v[first + 1], ...}``: it builds the dict in half the time of
    ``dict(zip(...))``.

    Its code is made from the two integers alone. Input cannot make many:
    *first* is 10, or 11 for Codec 16, and :func:`_io_builder` asks for at
    most :data:`IO_DISPLAY_ELEMENTS` elements, so at most 65 for each *first*
    are ever compiled, taking 40 ms and 220 KB for all 65.
    """
    pairs = ", ".join(
        f"v[{index}]: v[{index + 1}]" for index in range(first, first + 2 * elements, 2)
    )
    namespace: dict[str, _IoBuilder] = {}
    exec(f"def io(v):\n    return {{{pairs}}}\n", namespace)
    return namespace["io"]


def _io_from_pairs(first: int, values: tuple[Any, ...]) -> dict[int, IoValue]:
    pairs = iter(values[first:])
    return dict(zip(pairs, pairs))  # noqa: B905 - even by design


class _ShapeCache(Generic[_Compiled]):
    """Compiled structs by shape, within :data:`SHAPE_CACHE_BUDGET`; the oldest
    go first. Reads go straight to :attr:`entries`, the hot path's dict."""

    __slots__ = ("entries", "weight")

    def __init__(self) -> None:
        self.entries: dict[_Shape, _Compiled] = {}
        self.weight = 0

    def add(self, shape: _Shape, compiled: _Compiled) -> None:
        """Keep *compiled* for *shape*, dropping the oldest shapes to make room."""
        self.weight += sum(shape) + _SHAPE_OVERHEAD
        self.entries[shape] = compiled
        while self.weight > SHAPE_CACHE_BUDGET:
            oldest = next(iter(self.entries))
            del self.entries[oldest]
            self.weight -= sum(oldest) + _SHAPE_OVERHEAD


class _Layout:
    """Where Codec 8, 8E and 16 differ, and the structs compiled per shape.

    *event_format* covers the event id, the generation type (Codec 16) and
    N total.
    """

    __slots__ = (
        "codec",
        "count",
        "count_format",
        "decoders",
        "encoders",
        "event_format",
        "has_generation_type",
        "has_variable_group",
        "head",
        "head_fields",
        "id_format",
        "loop_constants",
        "pair_sizes",
        "pairs",
    )

    def __init__(
        self,
        codec: Codec,
        event_format: str,
        id_format: str,
        count_format: str,
        *,
        has_generation_type: bool,
        has_variable_group: bool,
    ) -> None:
        self.codec = codec
        self.event_format = event_format
        self.id_format = id_format
        self.count_format = count_format
        self.has_generation_type = has_generation_type
        self.has_variable_group = has_variable_group
        self.decoders: _ShapeCache[_Decoder] = _ShapeCache()
        self.encoders: _ShapeCache[_Packer] = _ShapeCache()
        self.head = struct.Struct(">" + _GPS_FORMAT + event_format)
        self.head_fields = len(self.head.unpack(bytes(self.head.size)))
        self.count = struct.Struct(">" + count_format)
        self.pairs = tuple(
            struct.Struct(">" + id_format + value) for value in _FIXED_VALUE_FORMATS
        )
        self.pair_sizes = tuple(pair.size for pair in self.pairs)
        size1, size2, size4, size8 = self.pair_sizes
        # What the decoding loop reads from its layout, in one tuple: head
        # size, whether counts are two bytes wide, where N total is from a
        # record's start, the width of the NX group's count, the two codec
        # features, pair sizes.
        self.loop_constants: tuple[int, bool, int, int, bool, bool, int, int, int, int]
        self.loop_constants = (
            self.head.size,
            self.count.size == 2,
            self.head.size - self.count.size,
            2 if has_variable_group else 0,
            has_generation_type,
            has_variable_group,
            size1,
            size2,
            size4,
            size8,
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

    def fixed_groups(self, shape: _Shape) -> Iterator[tuple[struct.Struct, int]]:
        """Each fixed-size IO group's (id, value) struct and element count."""
        return zip(self.pairs, shape, strict=True)

    def decoder(self, shape: _Shape) -> _Decoder:
        """The unpacker of a record's fixed part (skipping the group counts),
        the record's ``io_layout`` when it has no NX elements, and what makes
        its IO dict from the unpacked values.

        Nothing is kept: :meth:`learn` caches what a valid packet used.
        """
        io16 = shape[4] if len(shape) > len(_FIXED_VALUE_FORMATS) else 0
        io_layout: IoLayout = (shape[0], shape[1], shape[2], shape[3], io16, 0)
        build_io = functools.partial(_io_from_pairs, self.head_fields)
        if not _worth_compiling(shape):
            return _GroupUnpacker(self, shape), io_layout, build_io
        skip = "x" * self.count.size
        return struct.Struct(self._format(shape, skip)), io_layout, build_io

    def learn(self, decoders: dict[_Shape, _Decoder]) -> None:
        """Cache the structs compiled for new shapes of a packet that decoded,
        each with its faster IO builder (:func:`_io_builder`)."""
        for shape, (unpacker, io_layout, _) in decoders.items():
            if isinstance(unpacker, struct.Struct):
                build_io = _io_builder(self.head_fields, sum(shape))
                self.decoders.add(shape, (unpacker, io_layout, build_io))

    def encoder(self, shape: _Shape) -> _Packer:
        """Packs a record's fixed part, group counts included."""
        compiled = self.encoders.entries.get(shape)
        if compiled is not None:
            return compiled
        if not _worth_compiling(shape):
            return _GroupPacker(self, shape)
        compiled = struct.Struct(self._format(shape, self.count_format))
        self.encoders.add(shape, compiled)
        return compiled


class _GroupUnpacker:
    """Unpacks a record's fixed part group by group, compiling nothing: the
    same values as the shape's compiled struct."""

    __slots__ = ("layout", "shape")

    def __init__(self, layout: _Layout, shape: _Shape) -> None:
        self.layout = layout
        self.shape = shape

    def unpack_from(self, buffer: bytes, offset: int = 0) -> tuple[Any, ...]:
        layout = self.layout
        values = list(layout.head.unpack_from(buffer, offset))
        position = offset + layout.head.size
        view = memoryview(buffer)
        for pair, count in layout.fixed_groups(self.shape):
            position += layout.count.size
            size = pair.size * count
            for fields in pair.iter_unpack(view[position : position + size]):
                values += fields
            position += size
        return tuple(values)


class _GroupPacker:
    """Packs a record's fixed part group by group, compiling nothing: the same
    bytes as the shape's compiled struct."""

    __slots__ = ("layout", "shape")

    def __init__(self, layout: _Layout, shape: _Shape) -> None:
        self.layout = layout
        self.shape = shape

    def pack(self, *values: Any) -> bytes:
        layout = self.layout
        parts = [layout.head.pack(*values[: layout.head_fields])]
        index = layout.head_fields
        for pair, count in layout.fixed_groups(self.shape):
            parts.append(layout.count.pack(values[index]))
            index += 1
            for _ in range(count):
                parts.append(pair.pack(values[index], values[index + 1]))
                index += 2
        return b"".join(parts)


_LAYOUTS = {
    Codec.CODEC8: _Layout(
        Codec.CODEC8,
        "BB",
        "B",
        "B",
        has_generation_type=False,
        has_variable_group=False,
    ),
    Codec.CODEC8E: _Layout(
        Codec.CODEC8E,
        "HH",
        "H",
        "H",
        has_generation_type=False,
        has_variable_group=True,
    ),
    Codec.CODEC16: _Layout(
        Codec.CODEC16,
        "HBB",
        "H",
        "B",
        has_generation_type=True,
        has_variable_group=False,
    ),
}
_AVL_CODEC_IDS = {int(codec): layout for codec, layout in _LAYOUTS.items()}
_LAYOUTS_BY_ID = tuple(map(_AVL_CODEC_IDS.get, range(256)))
"""The layout of each codec id byte, None for those that carry no records."""


# The hot path of the whole gateway: one flat function on purpose, since every
# call saved is time saved per packet (docs/performance.rst, "Decoding").
def decode_avl_payload(  # noqa: PLR0912, PLR0915
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
    layout = _LAYOUTS_BY_ID[buffer[start]]
    if layout is None:
        raise UnknownCodecError(
            f"codec 0x{buffer[start]:02x} carries no AVL records", start
        )
    if io16 and layout.codec is not Codec.CODEC8:
        raise UnknownCodecError("the 16-byte IO group exists only in Codec 8", start)
    count = buffer[start + 1]
    end -= 1
    if buffer[end] != count:
        raise CountMismatchError(
            f"record counts disagree: {count} first, {buffer[end]} last", end
        )
    offset = start + 2
    records = []
    # A record's group counts are read without a bound check each, then where
    # they end is checked: positions only grow, so that one check covers every
    # read, and _explain_overrun then says which one ran past.
    (
        head_size,
        wide,
        total_at,
        variable_count_width,
        has_generation_type,
        has_variable_group,
        size1,
        size2,
        size4,
        size8,
    ) = layout.loop_constants
    decoders = layout.decoders.entries
    new_shapes: dict[_Shape, _Decoder] | None = None
    for _ in range(count):
        position = offset + head_size
        try:
            if wide:
                ones = buffer[position] << 8 | buffer[position + 1]
                position += 2 + ones * size1
                twos = buffer[position] << 8 | buffer[position + 1]
                position += 2 + twos * size2
                fours = buffer[position] << 8 | buffer[position + 1]
                position += 2 + fours * size4
                eights = buffer[position] << 8 | buffer[position + 1]
                position += 2 + eights * size8
                total = buffer[offset + total_at] << 8 | buffer[offset + total_at + 1]
            else:
                ones = buffer[position]
                position += 1 + ones * size1
                twos = buffer[position]
                position += 1 + twos * size2
                fours = buffer[position]
                position += 1 + fours * size4
                eights = buffer[position]
                position += 1 + eights * size8
                total = buffer[offset + total_at]
            shape: _Shape = (ones, twos, fours, eights)
            fixed = ones + twos + fours + eights
            if io16:
                sixteens = buffer[position]
                position += 1 + sixteens * _IO16_PAIR_SIZE
                shape = (ones, twos, fours, eights, sixteens)
                fixed += sixteens
        except IndexError:
            position = len(buffer)
        if position + variable_count_width > end:
            _explain_overrun(layout, buffer, offset, end, io16)
        variable = (
            buffer[position] << 8 | buffer[position + 1] if has_variable_group else 0
        )
        if total != fixed + variable:
            raise CountMismatchError(
                f"record says it has {total} IO elements, "
                f"its groups hold {fixed + variable}",
                offset + total_at,
            )
        decoder = decoders.get(shape)
        if decoder is None:
            new_shapes = new_shapes or {}
            decoder = new_shapes.get(shape) or layout.decoder(shape)
            new_shapes[shape] = decoder
        unpacker, io_layout, build_io = decoder
        values = unpacker.unpack_from(buffer, offset)
        if values[0] > MAX_TIMESTAMP_MS:
            raise ValueRangeError(f"timestamp {values[0]} ms is past year 9999", offset)
        io = build_io(values)
        if len(io) != fixed:
            raise CountMismatchError("an IO id appears twice in one record", offset)
        if has_variable_group:
            position = _decode_variable(buffer, position + 2, end, io, variable)
            io_layout = (*io_layout[:5], variable)
        records.append(
            _new(
                AvlRecord,
                (
                    values[0],
                    values[1],
                    # int / int: the float of / 1e7, without mixed types.
                    values[2] / 10_000_000,
                    values[3] / 10_000_000,
                    values[4],
                    values[5],
                    values[6],
                    values[7],
                    values[8],
                    io,
                    io_layout,
                    values[9] if has_generation_type else None,
                    buffer[offset:position],
                ),
            )
        )
        offset = position
    if offset != end:
        raise LengthMismatchError(
            f"{end - offset} bytes left after {count} records", offset
        )
    if new_shapes:
        layout.learn(new_shapes)
    return _new(AvlPacket, (layout.codec, tuple(records), io16))


def _explain_overrun(
    layout: _Layout, buffer: bytes, offset: int, end: int, io16: bool
) -> NoReturn:
    """Raise the error for the record at *offset* whose IO groups run past
    *end*: the first group count that does, or else its elements."""
    position = offset + layout.head.size
    width = layout.count.size
    pair_sizes = (*layout.pair_sizes, _IO16_PAIR_SIZE) if io16 else layout.pair_sizes
    for pair_size in pair_sizes:
        if position + width > end:
            raise TruncatedError("IO group count runs past the data field", position)
        elements = int.from_bytes(buffer[position : position + width], "big")
        position += width + elements * pair_size
    raise TruncatedError("IO elements run past the data field", offset)


def _decode_variable(
    buffer: bytes, offset: int, end: int, io: dict[int, IoValue], count: int
) -> int:
    """Add the Codec 8E NX group's *count* elements, (u16 id, u16 length,
    bytes) from *offset* on, to *io*. Returns the offset past the group."""
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
    return offset


CompiledDecoder = Callable[
    [bytes, int, int, type[AvlRecord], type[AvlPacket], tuple[Codec, ...]],
    AvlPacket | None,
]
"""The C extension's ``decode_avl_payload`` (see :func:`compiled_decoder`)."""


def compiled_decoder() -> CompiledDecoder | None:
    """The C extension's decoder, ``_fastavl.decode_avl_payload(buffer, start,
    end, AvlRecord, AvlPacket, codecs)``; ``None`` in a pure build."""
    try:
        from teltotwist.codec._fastavl import (  # noqa: PLC0415 - optional
            decode_avl_payload as compiled,
        )
    except ImportError:
        return None
    return compiled


_COMPILED_DECODER: Final = compiled_decoder()
_COMPILED_CODECS: Final = (Codec.CODEC8, Codec.CODEC8E, Codec.CODEC16)
"""The codecs the C decoder returns, in the order of its layouts."""


def decode_avl_payload_in_c(buffer: bytes, start: int, end: int) -> AvlPacket | None:
    """The packet :func:`decode_avl_payload` returns for ``buffer[start:end]``
    in the standard layout, decoded by the C extension. ``None`` where that
    is not built, or leaves the payload to Python: it leaves every payload
    that does not decode in the standard layout."""
    if _COMPILED_DECODER is None:
        return None
    return _COMPILED_DECODER(buffer, start, end, AvlRecord, AvlPacket, _COMPILED_CODECS)


def decode_standard_avl_payload(buffer: bytes, start: int, end: int) -> AvlPacket:
    """:func:`decode_avl_payload` in the standard layout (without *io16*): by
    the C extension where it is built and decodes the payload, else in
    Python, which also raises the errors."""
    packet = decode_avl_payload_in_c(buffer, start, end)
    if packet is not None:
        return packet
    return decode_avl_payload(buffer, start, end)


def encode_avl_payload(packet: AvlPacket) -> bytes:
    """Encode *packet* from the codec id byte to the second record count."""
    codec = packet.codec
    layout = _layout_of(codec)
    io16 = packet.io16
    if io16 and codec is not Codec.CODEC8:
        raise ValueRangeError("only Codec 8 can carry the 16-byte IO group")
    if not io16 and any(record.io_layout[4] for record in packet.records):
        raise ValueRangeError("records with 16-byte IO elements need io16=True")
    return join_avl_records(
        codec, [_encode_record(record, layout, io16) for record in packet.records]
    )


def join_avl_records(codec: Codec, records: Sequence[bytes]) -> bytes:
    """The AVL payload, from the codec id byte to the second record count, of
    *records* already encoded for *codec*: each one's :attr:`AvlRecord.wire`
    (as :class:`FixedIoEncoder` makes it, or the decoder keeps it)."""
    _layout_of(codec)
    count = len(records)
    if count > 0xFF:
        raise ValueRangeError(f"{count} records do not fit in one packet (max 255)")
    return b"".join((bytes((codec, count)), *records, bytes((count,))))


def _layout_of(codec: Codec) -> _Layout:
    if codec not in AVL_CODECS:
        raise UnknownCodecError(f"codec {codec!r} carries no AVL records")
    return _LAYOUTS[codec]


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


class FixedIoEncoder:
    """Builds and encodes records of *codec* that all carry the IO ids
    *io_ids*, in this order, grouped as *io_layout* says: fixed-size elements
    only.

    A tracker sends the same ids in every record, so the struct, the ids and
    the counts are prepared once, and a record costs one C-level reordering
    and one pack: what a load generator needs to encode each record once,
    when it is recorded (:meth:`record`), and to send packets of them with
    :func:`join_avl_records`.
    """

    __slots__ = (
        "_constants",
        "_fields",
        "_has_generation_type",
        "_head",
        "_io_ids",
        "_io_layout",
        "_packer",
        "_pick",
        "_suffix",
    )

    def __init__(self, codec: Codec, io_ids: Sequence[int], io_layout: IoLayout):
        layout = _layout_of(codec)
        if len(io_layout) != 6 or io_layout[4] or io_layout[5]:
            raise ValueRangeError(
                f"io_layout {io_layout} must count fixed-size elements only"
            )
        if sum(io_layout) != len(io_ids) or len(set(io_ids)) != len(io_ids):
            raise ValueRangeError(
                f"io_layout {io_layout} does not account for the IO ids {io_ids}"
            )
        shape = io_layout[:4]
        self._head = head = layout.head_fields - 1  # all but N total
        self._fields = head + len(io_ids)
        self._has_generation_type = layout.has_generation_type
        self._io_ids = tuple(io_ids)
        self._io_layout = io_layout
        # The packer's arguments are taken from the fields followed by the
        # constants: N total, then each group's count and its ids.
        constants: list[int] = [len(io_ids)]
        order = [*range(head), self._fields]
        ids = iter(enumerate(io_ids))
        for count in shape:
            order.append(self._fields + len(constants))
            constants.append(count)
            for _ in range(count):
                index, io_id = next(ids)
                order += (self._fields + len(constants), head + index)
                constants.append(io_id)
        self._constants = tuple(constants)
        self._pick = operator.itemgetter(*order)
        self._packer = layout.encoder(shape)
        self._suffix = bytes(2) if layout.has_variable_group else b""

    def record(self, fields: tuple[int, ...]) -> AvlRecord:
        """The record with *fields*, encoded: what decoding its
        :attr:`~AvlRecord.wire` gives. The fields are the timestamp in ms,
        priority, longitude and latitude in units of 1e-7 degrees, altitude,
        angle, satellites, speed, event id, the generation type (Codec 16
        only), then the IO values as unsigned integers, in the order of the
        ids."""
        if len(fields) != self._fields:
            raise ValueRangeError(
                f"{len(fields)} fields given, a record takes {self._fields}"
            )
        try:
            wire = self._packer.pack(*self._pick(fields + self._constants))
        except struct.error as error:
            raise ValueRangeError(f"record does not fit its codec: {error}") from None
        return _new(
            AvlRecord,
            (
                fields[0],
                fields[1],
                fields[2] / 10_000_000,
                fields[3] / 10_000_000,
                fields[4],
                fields[5],
                fields[6],
                fields[7],
                fields[8],
                dict(zip(self._io_ids, fields[self._head :])),  # noqa: B905 - as many
                self._io_layout,
                fields[9] if self._has_generation_type else None,
                wire + self._suffix,
            ),
        )
