"""The items the C extension makes (``TELTOTWIST_COMPILE=1``, optional) are
the pure Python ones: the same fields, attributes of the same types and
values, the same ids and the same JSON lines, byte for byte; and what it does
not expect, it leaves to Python.

Where the extension is not built the module is skipped, unless
``TELTOTWIST_COMPILE=1`` says it should be (as in ``tox run -e compiled``):
then it fails.
"""

from __future__ import annotations

import calendar
import gc
import os
import sys
from collections.abc import Mapping
from typing import Any

import attrs
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from teltotwist.catalogue import Naming, load_catalogue
from teltotwist.codec import (
    AvlPacket,
    AvlRecord,
    Codec,
    decode_frame,
    encode_frame,
    format_timestamp_ms,
    io_elements,
)
from teltotwist.gateway.items import TrackerRecord, compiled_records, tracker_records
from tests import strategies
from tests.vectors import ALL, Vector, vector_id

COMPILED = compiled_records()

if COMPILED is None and os.environ.get("TELTOTWIST_COMPILE") != "1":
    pytest.skip(
        "the items are made in Python here; build them with TELTOTWIST_COMPILE=1",
        allow_module_level=True,
    )

IMEI = "356307042441013"
RECEIVED_AT_MS = 1_795_251_600_123
CATALOGUE = load_catalogue()
MODELS = ("FMB920", "FMC130", "FMM640", "FMU130")
NAMED: list[Naming] = [CATALOGUE.naming(None), *map(CATALOGUE.naming, MODELS)]
"""The naming shared by all models, and some models' own."""
NAMINGS: list[Naming | None] = [None, *NAMED]


def compiled(
    records: tuple[AvlRecord, ...],
    codec: Codec,
    table: Mapping[int, tuple[Any, ...]] | None,
) -> tuple[TrackerRecord, ...] | None:
    assert COMPILED is not None
    return COMPILED(
        TrackerRecord,
        records,
        IMEI,
        codec,
        codec.label,
        RECEIVED_AT_MS,
        format_timestamp_ms(RECEIVED_AT_MS),
        table,
    )


def pure(packet: AvlPacket, naming: Naming | None) -> tuple[TrackerRecord, ...]:
    return tuple(
        TrackerRecord.named(IMEI, packet.codec, record, RECEIVED_AT_MS, naming)
        for record in packet.records
    )


def everything(item: TrackerRecord) -> list[tuple[str, object, type]]:
    """Every field of *item* with its value's type, the attributes' each."""
    fields = [
        (field.name, getattr(item, field.name), type(getattr(item, field.name)))
        for field in attrs.fields(TrackerRecord)
    ]
    attributes = item.attributes or {}
    return fields + [(name, value, type(value)) for name, value in attributes.items()]


def assert_alike(packet: AvlPacket, naming: Naming | None) -> None:
    """The extension makes *packet*'s items exactly as Python does."""
    table = None if naming is None else naming.table
    made = compiled(packet.records, packet.codec, table)
    assert made is not None
    expected = pure(packet, naming)
    assert [everything(item) for item in made] == [
        everything(item) for item in expected
    ]
    assert [item.line for item in made] == [item.line for item in expected]


def as_sent(packet: AvlPacket) -> AvlPacket:
    """*packet* as the decoder gives it: its records carry their wire bytes."""
    decoded = decode_frame(encode_frame(packet))
    assert isinstance(decoded, AvlPacket)
    return decoded


def test_the_items_are_compiled() -> None:
    assert COMPILED is not None, (
        "the C extension teltotwist.gateway._fastitems is missing"
    )


AVL_VECTORS = [
    vector
    for vector in ALL
    if vector.valid and vector.transport == "tcp" and vector.kind == "avl"
]


@pytest.mark.parametrize("vector", AVL_VECTORS, ids=vector_id)
@pytest.mark.parametrize("naming", NAMINGS, ids=lambda n: n and (n.model or "shared"))
def test_every_vector_makes_alike_items(vector: Vector, naming: Naming | None) -> None:
    packet = decode_frame(vector.data)
    assert isinstance(packet, AvlPacket)
    assert_alike(packet, naming)


@st.composite
def named_packets(draw: st.DrawFn) -> tuple[AvlPacket, Naming]:
    """Packets whose records carry IO ids a naming names, with any values."""
    naming = draw(st.sampled_from(NAMED))
    codec = draw(st.sampled_from([Codec.CODEC8, Codec.CODEC8E, Codec.CODEC16]))
    usable = sorted(i for i in naming.table if codec is not Codec.CODEC8 or i < 256)
    records = []
    for _ in range(draw(st.integers(1, 4))):
        ids = iter(draw(st.lists(st.sampled_from(usable), max_size=24, unique=True)))
        counts = [draw(st.integers(0, 6)) for _ in range(5)]
        groups = [
            {i: draw(strategies.unsigned(width)) for i in ids_of(ids, count)}
            for width, count in zip((1, 2, 4, 8), counts, strict=False)
        ]
        variable = {}
        if codec is Codec.CODEC8E:
            variable = {i: draw(st.binary(max_size=20)) for i in ids_of(ids, counts[4])}
        io, layout = io_elements(
            io1=groups[0], io2=groups[1], io4=groups[2], io8=groups[3], iox=variable
        )
        base = draw(strategies.avl_records(codec))
        records.append(base._replace(io=io, io_layout=layout))
    return as_sent(AvlPacket(codec, tuple(records))), naming


def ids_of(ids: Any, count: int) -> list[int]:
    return [i for _, i in zip(range(count), ids, strict=False)]


@settings(max_examples=300)
@given(named_packets())
def test_named_records_make_alike_items(
    named: tuple[AvlPacket, Naming],
) -> None:
    packet, naming = named
    assert_alike(packet, naming)


@given(strategies.avl_packets().map(as_sent), st.sampled_from(NAMINGS))
def test_any_records_make_alike_items(packet: AvlPacket, naming: Naming | None) -> None:
    assert_alike(packet, naming)


def with_wire(record: AvlRecord) -> AvlRecord:
    """*record* with wire bytes, so that the extension takes it whatever it
    holds (its id then hashes bytes that are not its encoding)."""
    return record._replace(wire=b"\x00")


@pytest.mark.parametrize("size", [1, 16, 127, 128, 129, 255, 256, 257, 1000])
def test_ids_are_alike_whatever_the_size_of_the_record(size: int) -> None:
    """The id's BLAKE2b, in C, is ``hashlib``'s, on either side of its
    128-byte blocks."""
    wire = bytes(range(256)) * 4
    io, layout = io_elements()
    record = AvlRecord(1, 0, 0.0, 0.0, 0, 0, 0, 0, 0, io, layout, None, wire[:size])
    made = compiled((record,), Codec.CODEC8, None)

    assert made is not None
    assert [item.id for item in made] == [
        item.id for item in pure(AvlPacket(Codec.CODEC8, (record,)), None)
    ]


def test_a_value_scaled_past_64_bits_makes_alike_items() -> None:
    """FMB920's IO 45 is scaled by 10: a raw value larger than its catalogue
    size goes past JSON's 64-bit integers, and becomes a float in both."""
    io, layout = io_elements(io8={45: 1844674407370955162})
    record = AvlRecord(1, 0, 0.0, 0.0, 0, 0, 0, 0, 0, io, layout, None)
    packet = as_sent(AvlPacket(Codec.CODEC8, (record,)))

    assert_alike(packet, CATALOGUE.naming("FMB920"))
    [item] = pure(packet, CATALOGUE.naming("FMB920"))
    assert item.attributes == {"direct_fuel_rail_pressure": 1.8446744073709552e19}


@given(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(allow_nan=False, allow_infinity=False),
)
@example(1e-5, -1.5e-05)
@example(1e-7, 1e16)
@example(-0.0, 0.0)
@example(9.999999999999998e15, 123456789.1234567)
def test_floats_are_written_as_orjson_writes_them(
    longitude: float, latitude: float
) -> None:
    io, layout = io_elements()
    record = AvlRecord(
        1, 0, longitude, latitude, 0, 0, 0, 0, 0, io, layout, None, b"\x00"
    )
    packet = AvlPacket(Codec.CODEC8, (record,))
    assert_alike(packet, None)


@given(
    st.text(),
    st.one_of(
        st.integers(-(2**63), 2**64 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(),
        st.binary(),
    ),
)
def test_any_names_and_values_are_written_alike(name: str, value: object) -> None:
    naming = Naming(None, {}, {})
    naming.table = {1: (name, lambda _: value, lambda _: value, None)}
    io, layout = io_elements(io1={1: 7})
    record = AvlRecord(1, 0, 1.0, 2.0, 0, 0, 0, 0, 0, io, layout, None, b"\x00")
    assert_alike(AvlPacket(Codec.CODEC8, (record,)), naming)


def test_records_built_in_code_are_left_to_python() -> None:
    io, layout = io_elements(io1={21: 3})
    record = AvlRecord(1, 0, 1.0, 2.0, 0, 0, 0, 0, 0, io, layout)  # no wire
    packet = AvlPacket(Codec.CODEC8, (record,))
    naming = CATALOGUE.naming("FMB920")

    assert compiled(packet.records, packet.codec, naming.table) is None
    made = tracker_records(IMEI, packet, RECEIVED_AT_MS, naming)
    assert [everything(item) for item in made] == [
        everything(item) for item in pure(packet, naming)
    ]


def test_a_failing_converter_fails_as_in_python() -> None:
    def convert(value: object) -> object:
        raise ValueError(f"cannot convert {value!r}")

    naming = Naming(None, {}, {})
    naming.table = {1: ("broken", convert, convert, None)}
    io, layout = io_elements(io1={1: 7})
    record = AvlRecord(1, 0, 1.0, 2.0, 0, 0, 0, 0, 0, io, layout, None, b"\x00")
    packet = AvlPacket(Codec.CODEC8, (record,))

    assert compiled(packet.records, packet.codec, naming.table) is None
    with pytest.raises(ValueError, match="cannot convert 7"):
        tracker_records(IMEI, packet, RECEIVED_AT_MS, naming)


@pytest.mark.parametrize("naming", NAMINGS, ids=lambda n: n and (n.model or "shared"))
def test_the_collector_does_not_walk_items_waiting_for_their_ack(
    naming: Naming | None,
) -> None:
    """Items and records of plain values cannot be part of a reference
    cycle; thousands wait at once under a burst, so the cyclic collector is
    spared them (as CPython spares tuples of such values)."""
    packet = decode_frame(AVL_VECTORS[0].data)
    assert isinstance(packet, AvlPacket)
    made = compiled(packet.records, packet.codec, naming.table if naming else None)

    assert made is not None
    assert not any(gc.is_tracked(item) for item in made)
    assert not any(gc.is_tracked(record) for record in packet.records)


def test_items_whose_dicts_the_collector_tracks_stay_tracked() -> None:
    """A dict that once held a container stays tracked, and could hold one
    again: an item or record holding it stays with the collector."""
    io, layout = io_elements(io1={21: 3})
    io_dict: dict[int, Any] = dict(io)
    io_dict[21] = []
    io_dict[21] = 3
    assert gc.is_tracked(io_dict)
    record = AvlRecord(1, 0, 1.0, 2.0, 0, 0, 0, 0, 0, io_dict, layout, None, b"\x00")
    made = compiled((record,), Codec.CODEC8, None)

    assert made is not None
    assert gc.is_tracked(made[0])
    assert gc.is_tracked(record)


def made_by_both(
    records: tuple[AvlRecord, ...],
    naming: Naming | None,
    imei: str = IMEI,
    cls: type = TrackerRecord,
    python_naming: Naming | None = None,
) -> tuple[tuple[Any, ...] | None, tuple[TrackerRecord, ...]]:
    """*records*' Codec 8 items made by the extension, as *cls*, and by
    Python (named by *python_naming* where given, else by *naming*)."""
    assert COMPILED is not None
    made = COMPILED(
        cls,
        records,
        imei,
        Codec.CODEC8,
        Codec.CODEC8.label,
        RECEIVED_AT_MS,
        format_timestamp_ms(RECEIVED_AT_MS),
        None if naming is None else naming.table,
    )
    by = naming if python_naming is None else python_naming
    expected = tuple(
        TrackerRecord.named(imei, Codec.CODEC8, record, RECEIVED_AT_MS, by)
        for record in records
    )
    return made, expected


def assert_made_alike(
    records: tuple[AvlRecord, ...], naming: Naming | None, imei: str = IMEI
) -> None:
    made, expected = made_by_both(records, naming, imei)
    assert made is not None
    assert [everything(item) for item in made] == [
        everything(item) for item in expected
    ]
    assert [item.line for item in made] == [item.line for item in expected]


def record_of(io: dict[int, Any], timestamp_ms: int = 1) -> AvlRecord:
    """A record of *io*, with wire bytes so that the extension takes it."""
    layout = (len(io), 0, 0, 0, 0, 0)
    return AvlRecord(
        timestamp_ms, 0, 1.0, 2.0, 0, 0, 0, 0, 0, io, layout, None, b"\x01"
    )


def naming_of(table: dict[int, tuple[Any, ...]]) -> Naming:
    naming = Naming(None, {}, {})
    naming.table = table
    return naming


@pytest.mark.parametrize(
    "imei",
    [
        "356307042441013",
        "35630704244101\u00e9",
        'quote" backslash\\ tab\t',
        "\U0001f4e1",
    ],
)
def test_ids_and_lines_are_alike_whatever_the_imei(imei: str) -> None:
    """A tracker's IMEI is ASCII digits, and the extension writes its ids
    from them; any other IMEI makes the same ids and lines as in Python,
    escaped in the JSON where it must be."""
    packet = decode_frame(AVL_VECTORS[0].data)
    assert isinstance(packet, AvlPacket)
    assert_made_alike(packet.records, CATALOGUE.naming("FMB920"), imei)


def test_an_imei_orjson_cannot_write_is_left_to_python() -> None:
    """An IMEI that is no UTF-8 (a lone surrogate) leaves the items to
    Python, which fails as a pure install does."""
    assert COMPILED is not None
    made = COMPILED(
        TrackerRecord,
        (record_of({}),),
        "\ud800",
        Codec.CODEC8,
        Codec.CODEC8.label,
        RECEIVED_AT_MS,
        format_timestamp_ms(RECEIVED_AT_MS),
        None,
    )
    assert made is None


@pytest.mark.parametrize(
    "text",
    [
        "plain_name",
        'a "quoted" name',
        "back\\slash",
        "\b\f\n\r\t",
        "\x00\x01\x1f\x7f",
        "caf\u00e9\n",
        "\U0001f4e1",
        "long " * 50 + "\\",
    ],
)
def test_names_and_texts_are_escaped_alike(text: str) -> None:
    """Names and text values are escaped as orjson escapes them, ASCII (read
    straight from the str) or not."""
    naming = naming_of(
        {
            1: (text, None, lambda _: text, None),
            2: ("text", None, lambda _: text, None),
        }
    )
    assert_made_alike((record_of({1: b"\x00", 2: b"\x01"}),), naming)


@pytest.mark.parametrize("name", [None, 1.5, True, "\ud800"])
def test_names_of_other_types_are_left_to_python(name: object) -> None:
    """A name the extension does not write (not a str or an int, or a str
    orjson refuses) leaves the items to Python, remembered or not."""
    naming = naming_of({1: (name, None, str, None), 2: ("two", None, str, None)})
    records = (record_of({2: 2, 1: 1}),) * 2
    assert compiled(records, Codec.CODEC8, naming.table) is None


POWERS = {10**digits for digits in range(21)} | {2**bits for bits in range(65)}
NUMBERS = sorted(
    {
        number
        for power in POWERS
        for number in (power - 1, power, power + 1, 1 - power, -power, -power - 1)
        if -(2**63) <= number < 2**64
    }
)
"""Integers around those where a digit or a bit is added, in orjson's range."""


def test_integers_are_written_alike_whatever_their_digits() -> None:
    """Integer names and values are written as orjson writes them, with as
    many digits as they have."""
    naming = naming_of(
        {
            io_id: (number, (lambda _, n=number: n), (lambda _, n=number: n), None)
            for io_id, number in enumerate(NUMBERS)
        }
    )
    io = {io_id: io_id for io_id in range(len(NUMBERS))}
    assert_made_alike((record_of(io),), naming)


@pytest.mark.parametrize(
    "ids",
    [(5, 133, 261), (133, 5), (2**40, 2**40 + 128), (-1, -129, -(2**40))],
    ids=["sharing a place", "sharing it the other way", "large", "negative"],
)
def test_ids_are_named_alike_whatever_their_values(ids: tuple[int, ...]) -> None:
    """What the extension remembers of a table, for a packet, holds an id
    in the place of its value modulo 128, and ids that are not small
    non-negative ints not at all: ids sharing a place, or not remembered,
    are named as Python names them, record after record."""
    naming = naming_of({io_id: (f"id {io_id}", None, str, None) for io_id in ids})
    io = {io_id: index for index, io_id in enumerate(ids)}
    assert_made_alike(tuple(record_of(io) for _ in range(3)), naming)


@pytest.mark.parametrize("first", [2, [2]], ids=["written", "not written"])
def test_ids_of_one_name_make_one_attribute(first: object) -> None:
    """Two ids of one name make one attribute, in the place of the first,
    with the value of the last, as Python's dict holds them; whatever the
    first value was."""
    naming = naming_of(
        {
            1: ("twice", lambda _: first, str, None),
            2: ("once", None, str, None),
            3: ("twice", None, str, None),
        }
    )
    assert_made_alike((record_of({1: 1, 2: 2, 3: 3}),) * 2, naming)
    [item] = pure(AvlPacket(Codec.CODEC8, (record_of({1: 1, 2: 2, 3: 3}),)), naming)
    assert item.attributes == {"twice": 3, "once": 2}


def renaming() -> Naming:
    """A naming whose converter of id 1 renames id 2, once it has run (its
    names made at run time, as a catalogue's are: not immortal constants)."""
    text, before, after = (
        " ".join(words) for words in [("as", "hex"), ("id", "before"), ("id", "after")]
    )
    naming = Naming(None, {}, {})
    renamed = (after, None, str, None)

    def rename(value: object) -> str:
        naming.table[2] = renamed
        assert isinstance(value, bytes)
        return value.hex()

    naming.table = {1: (text, None, rename, None), 2: (before, None, str, None)}
    return naming


def test_what_a_converter_changes_in_the_table_names_the_next_ids() -> None:
    """A converter is Python code, which could change the table: the ids
    after it are named by the table as it then is, as in Python, though the
    extension looked them up before in the packet."""
    records = (record_of({2: 5, 1: b"\x01"}),) * 2
    made, expected = made_by_both(records, renaming(), python_naming=renaming())

    assert made is not None
    assert [item.attributes for item in expected] == [
        {"id before": 5, "as hex": "01"},
        {"id after": 5, "as hex": "01"},
    ]
    assert [everything(item) for item in made] == [
        everything(item) for item in expected
    ]
    assert [item.line for item in made] == [item.line for item in expected]


@pytest.mark.parametrize("naming", [CATALOGUE.naming("FMB920"), renaming()])
def test_the_table_is_left_as_it_was(naming: Naming) -> None:
    """The extension holds the entries of the table it names records by
    while it makes them, and no longer."""
    records = (record_of({2: 5, 1: b"\x01", 21: 3, 149: 7}),) * 3
    made = compiled(records, Codec.CODEC8, naming.table)  # renames, once for all
    del made
    entries = list(naming.table.values())
    held = [sys.getrefcount(entry) for entry in entries]
    named = [sys.getrefcount(entry[0]) for entry in entries]
    made = compiled(records, Codec.CODEC8, naming.table)

    assert made is not None
    assert [sys.getrefcount(entry[0]) for entry in entries] != named
    del made
    assert [sys.getrefcount(entry) for entry in entries] == held
    assert [sys.getrefcount(entry[0]) for entry in entries] == named


def milliseconds(*moment: int) -> int:
    *calendar_moment, millisecond = moment
    return calendar.timegm((*calendar_moment, 0, 0, 0)) * 1000 + millisecond


@pytest.mark.parametrize(
    "timestamp_ms",
    [
        0,
        milliseconds(1972, 2, 29, 12, 0, 0, 1),
        milliseconds(1999, 12, 31, 23, 59, 59, 999),
        milliseconds(2000, 2, 29, 23, 59, 59, 999),
        milliseconds(2000, 3, 1, 0, 0, 0, 0),
        milliseconds(2100, 2, 28, 23, 59, 59, 999),
        milliseconds(2100, 3, 1, 0, 0, 0, 0),
        milliseconds(2400, 2, 29, 0, 0, 0, 0),
        milliseconds(9999, 12, 31, 23, 59, 59, 999),
    ],
)
def test_timestamps_are_written_alike_around_leap_days(timestamp_ms: int) -> None:
    """The extension computes the date of a timestamp itself: leap years,
    centuries and 400 years are Python's."""
    assert_made_alike((record_of({}, timestamp_ms),), None)


@attrs.frozen(slots=False)
class DictItem:
    """TrackerRecord's fields, in a dict rather than slots."""

    imei: str
    codec: Codec
    record: AvlRecord
    received_at_ms: int
    id: str
    attributes: Any
    line: bytes


@attrs.frozen
class SubItem(TrackerRecord):
    """TrackerRecord's slots, in its base."""


@pytest.mark.parametrize("cls", [DictItem, SubItem])
def test_items_of_any_frozen_class_hold_the_fields(cls: type) -> None:
    """The extension sets an item's fields straight into their slots, its
    class's or a base's; in a class without them, by object.__setattr__ (as
    attrs' __init__ sets them)."""
    packet = decode_frame(AVL_VECTORS[0].data)
    assert isinstance(packet, AvlPacket)
    naming = CATALOGUE.naming("FMB920")
    made, expected = made_by_both(packet.records, naming, cls=cls)

    assert made is not None
    assert all(type(item) is cls for item in made)
    assert [attrs.asdict(item, recurse=False) for item in made] == [
        attrs.asdict(item, recurse=False) for item in expected
    ]
