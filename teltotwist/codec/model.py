# -*- test-case-name: tests.test_codec_avl -*-
"""Decoded Teltonika data: codec ids, AVL records and packets, command messages.

Small immutable classes: named tuples for the records and packets that the
decoder builds by the thousand, frozen attrs classes for the rest. A record's
IO elements are one dict in wire order; its ``io_layout`` says how many each
group (by value width) holds, so that encoding reproduces the original bytes.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple, TypeVar

import attrs

EMPTY_IO: Mapping[int, int] = MappingProxyType({})
EMPTY_IO_BYTES: Mapping[int, bytes] = MappingProxyType({})


class Codec(enum.IntEnum):
    """The codec id byte of a frame."""

    CODEC8 = 0x08
    CODEC8E = 0x8E
    CODEC16 = 0x10
    CODEC12 = 0x0C
    CODEC13 = 0x0D
    CODEC14 = 0x0E
    CODEC15 = 0x0F

    @property
    def label(self) -> str:
        """The codec's name in the record JSON: ``"8"``, ``"8E"``, ``"16"`` ..."""
        return _LABELS[self]

    @property
    def carries_records(self) -> bool:
        """True for the AVL data codecs (8, 8E, 16)."""
        return self in AVL_CODECS


_LABELS = {
    Codec.CODEC8: "8",
    Codec.CODEC8E: "8E",
    Codec.CODEC16: "16",
    Codec.CODEC12: "12",
    Codec.CODEC13: "13",
    Codec.CODEC14: "14",
    Codec.CODEC15: "15",
}

AVL_CODECS = frozenset({Codec.CODEC8, Codec.CODEC8E, Codec.CODEC16})
COMMAND_CODECS = frozenset({Codec.CODEC12, Codec.CODEC13, Codec.CODEC14, Codec.CODEC15})


IoValue = int | bytes
IoLayout = tuple[int, int, int, int, int, int]
"""Element counts per IO group, in wire order: 1, 2, 4, 8, 16 bytes, variable."""

IO_GROUP_WIDTHS = (1, 2, 4, 8, 16, None)
"""The value width of each group of :data:`IoLayout`; None for variable."""

ValueTuple = TypeVar("ValueTuple", bound=tuple[object, ...])


def _unlike(other: object) -> bool:
    """What a record or packet's ``==`` gives for *other* of another class:
    False for any tuple (a plain tuple's ``==`` would compare the fields
    alone), else whatever *other* says."""
    return False if isinstance(other, tuple) else NotImplemented


def _not_equal(self: tuple[object, ...], other: object) -> object:
    equal = self.__eq__(other)
    return equal if equal is NotImplemented else not equal


def _no_order(self: tuple[object, ...], other: object) -> object:
    return NotImplemented


def _unordered(cls: type[ValueTuple]) -> type[ValueTuple]:
    """Finish a named tuple whose ``__eq__`` compares like with like: ``!=``
    says the opposite, and there is no order (a tuple's would compare the
    fields, IO dicts included)."""
    methods = {"__ne__": _not_equal}
    methods.update(dict.fromkeys(("__lt__", "__le__", "__gt__", "__ge__"), _no_order))
    for name, method in methods.items():
        setattr(cls, name, method)
    return cls


def io_elements(
    *,
    io1: Mapping[int, int] = EMPTY_IO,
    io2: Mapping[int, int] = EMPTY_IO,
    io4: Mapping[int, int] = EMPTY_IO,
    io8: Mapping[int, int] = EMPTY_IO,
    io16: Mapping[int, bytes] = EMPTY_IO_BYTES,
    iox: Mapping[int, bytes] = EMPTY_IO_BYTES,
) -> tuple[dict[int, IoValue], IoLayout]:
    """The ``io`` and ``io_layout`` of a record, from elements grouped by width.

    ``io16`` is the non-standard 16-byte group (Codec 8 only) and ``iox`` the
    variable-length group (Codec 8 Extended only).
    """
    groups: tuple[Mapping[int, IoValue], ...] = (io1, io2, io4, io8, io16, iox)
    merged: dict[int, IoValue] = {}
    for group in groups:
        merged.update(group)
    if len(merged) != sum(map(len, groups)):
        raise ValueError("an IO id may appear in only one group")
    layout: IoLayout = (len(io1), len(io2), len(io4), len(io8), len(io16), len(iox))
    return merged, layout


@_unordered
class AvlRecord(NamedTuple):
    """One AVL record: a GPS fix with its IO elements.

    IO values are the raw unsigned integers (or bytes) exactly as sent; sign,
    scale and names depend on the device model and belong to a naming layer.
    Build ``io`` and ``io_layout`` with :func:`io_elements`.

    Immutable. Equality, hashing and ``repr`` cover every field but
    :attr:`wire`, so a record equals the same record carried by another codec,
    or built in code. Records are not ordered.
    """

    # A named tuple, not a frozen attrs class: the decoder builds one per
    # record, and a tuple builds in a third of the time (see the performance
    # docs).

    timestamp_ms: int
    """Device time, milliseconds since the Unix epoch (UTC)."""
    priority: int
    """0 low, 1 high, 2 panic."""
    longitude: float
    """Signed degrees."""
    latitude: float
    """Signed degrees."""
    altitude: int
    """Signed metres."""
    angle: int
    """Degrees from north, clockwise."""
    satellites: int
    """GNSS satellites in use."""
    speed: int
    """km/h; 0 when the fix is invalid."""
    event_id: int
    """The IO id that triggered the record; 0 for a periodic record."""
    io: Mapping[int, IoValue]
    """All IO elements in wire order: fixed-size values as unsigned integers,
    16-byte and variable-length values as bytes."""
    io_layout: IoLayout
    """How many of the elements of :attr:`io`, in order, each group holds."""
    generation_type: int | None = None
    """Codec 16 only: why the record was generated (7 = periodical, ...)."""
    wire: bytes = b""
    """The exact bytes the record was decoded from: its slice of the AVL
    payload, from the timestamp to its last IO byte (Codec 16's generation
    type included), the same in a TCP frame and a UDP datagram. Empty for a
    record built in code, unless given."""

    def io_groups(self) -> list[dict[int, IoValue]]:
        """The IO elements split by group, in the order of :data:`IoLayout`."""
        items = iter(self.io.items())
        return [dict(next(items) for _ in range(count)) for count in self.io_layout]

    def __eq__(self, other: object) -> bool:
        if type(other) is not AvlRecord:
            return _unlike(other)
        return self[:_MEANING] == other[:_MEANING]

    def __hash__(self) -> int:
        return hash(self[:_MEANING])

    def __repr__(self) -> str:
        fields = zip(self._fields[:_MEANING], self, strict=False)
        return f"AvlRecord({', '.join(f'{name}={value!r}' for name, value in fields)})"


_MEANING = len(AvlRecord._fields) - 1
"""The fields of :class:`AvlRecord` that equality covers: all but ``wire``."""


@_unordered
class AvlPacket(NamedTuple):
    """The payload of an AVL data frame or UDP datagram: codec and records.

    Immutable; equal to another packet with equal fields. Not ordered.
    """

    codec: Codec
    """The codec that carried the records."""
    records: tuple[AvlRecord, ...]
    """The records in the order sent (trackers may send newest first)."""
    io16: bool = False
    """Whether every record carries the non-standard 16-byte IO group (Codec 8
    from some FM devices), even when it is empty."""

    def __eq__(self, other: object) -> bool:
        if type(other) is not AvlPacket:
            return _unlike(other)
        return tuple.__eq__(self, other)

    def __hash__(self) -> int:
        return tuple.__hash__(self)


class CommandType(enum.IntEnum):
    """The type byte of a command message (other values occur and are kept)."""

    COMMAND = 0x05
    RESPONSE = 0x06
    NACK = 0x11


@attrs.frozen
class CommandMessage:
    """One message of a Codec 12/13/14/15 frame.

    :ivar timestamp: seconds since the epoch (Codec 13 and 15), else ``None``.
    :ivar imei: the addressed or answering IMEI (Codec 14 and 15), else ``None``.
    """

    type: int
    payload: bytes
    timestamp: int | None = None
    imei: str | None = None

    @property
    def text(self) -> str | None:
        """The payload as text when it is printable ASCII, else ``None``."""
        try:
            text = self.payload.decode("ascii")
        except UnicodeDecodeError:
            return None
        if (
            text.isprintable()
            or text.replace("\r", "").replace("\n", "").replace("\t", "").isprintable()
        ):
            return text
        return None


@attrs.frozen
class CommandFrame:
    """A Codec 12/13/14/15 frame: GPRS commands and their responses."""

    codec: Codec
    messages: tuple[CommandMessage, ...]
