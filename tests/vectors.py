"""The Teltonika test vectors (``tests/data``, copied from the project's shared
vectors) and helpers to use them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from itertools import pairwise
from pathlib import Path
from typing import Any

import attrs
import pytest

from teltotwist.codec import (
    AvlRecord,
    Codec,
    CodecError,
    CommandMessage,
    crc16_ibm,
    io_elements,
)

VECTORS_DIR = Path(__file__).resolve().parent / "data"
"""The vectors live in the repository, so a fresh clone tests with nothing beside it."""

JsonObject = Mapping[str, Any]

FRAME_HEADER_SIZE = 8
"""Preamble (4 bytes) and data field length (4 bytes)."""
CRC_FIELD_SIZE = 4


@attrs.frozen
class Vector:
    """One vector: its bytes and the independent decode that came with it."""

    id: str
    """``wiki-<wiki id>`` or ``traccar-<index>-<kind>``: the pytest id."""
    entry: JsonObject
    """The JSON entry as stored."""
    reference: JsonObject
    """The independent decode: ``expected_decoded`` (wiki), ``reference_decode``."""

    @property
    def data(self) -> bytes:
        return bytes.fromhex(self.entry["hex"])

    @property
    def transport(self) -> str:
        transport: str = self.entry["transport"]
        return transport

    @property
    def kind(self) -> str:
        """Traccar's kind; for the wiki, guessed from the id prefix."""
        kind: str | None = self.entry.get("kind")
        if kind is not None:
            return kind
        if self.id.startswith(("wiki-c12", "wiki-c13", "wiki-c14", "wiki-c15")):
            return "command"
        return "avl" if "records" in self.reference else "other"

    @property
    def valid(self) -> bool:
        """The reference found the lengths (and, on TCP, the CRC) correct."""
        reference = self.reference
        crc_ok = reference.get("crc_ok", self.transport == "udp")
        return bool(reference.get("length_ok")) and bool(crc_ok)


def vector_id(vector: Vector) -> str:
    """The pytest id of a vector parameter."""
    return vector.id


def _load() -> tuple[Vector, ...]:
    with (VECTORS_DIR / "wiki.json").open(encoding="utf-8") as wiki_file:
        wiki = json.load(wiki_file)
    with (VECTORS_DIR / "traccar.json").open(encoding="utf-8") as traccar_file:
        traccar = json.load(traccar_file)
    loaded = [
        Vector(f"wiki-{entry['id']}", entry, entry.get("expected_decoded", {}))
        for entry in wiki
    ]
    loaded.extend(
        Vector(f"traccar-{index:02d}-{entry['kind']}", entry, entry["reference_decode"])
        for index, entry in enumerate(traccar)
    )
    return tuple(loaded)


ALL: tuple[Vector, ...] = _load()
_BY_ID = {vector.id: vector for vector in ALL}


def by_id(vector_id: str) -> Vector:
    """The vector with this pytest id, e.g. ``wiki-c8-tcp-1``, ``traccar-45-avl``."""
    return _BY_ID[vector_id]


def select(predicate: Callable[[Vector], bool]) -> list[Vector]:
    return [vector for vector in ALL if predicate(vector)]


COMMAND_KINDS = frozenset({"command", "codec12", "codec13", "server-command-codec12"})

TCP_AVL = select(lambda v: v.transport == "tcp" and v.kind == "avl")
"""Device-to-server Codec 8/8E/16 frames, including the broken ones."""
TCP_AVL_VALID = [vector for vector in TCP_AVL if vector.valid]
TCP_COMMANDS = select(lambda v: v.transport == "tcp" and v.kind in COMMAND_KINDS)
"""Codec 12/13/14/15 frames in both directions, including the broken ones."""
TCP_COMMANDS_DECODED = [
    vector for vector in TCP_COMMANDS if vector.valid and "messages" in vector.reference
]
"""Command frames the reference decoded (all but the Quantity 1 = 2 capture)."""
TCP_FRAMES = select(lambda v: v.transport == "tcp" and v.data[:4] == bytes(4))
"""Every vector that is a data or command frame (not a login or a ping)."""
UDP_DATAGRAMS = select(
    lambda v: v.transport == "udp" and v.entry.get("direction") != "server->device"
)
UDP_VALID = [vector for vector in UDP_DATAGRAMS if vector.valid]


WIKI_CODEC8_JSON: JsonObject = {
    "codec": "8",
    "records": [
        {
            "codec": "8",
            "timestamp": "2019-06-10T10:04:46.000Z",
            "priority": 1,
            "longitude": 0.0,
            "latitude": 0.0,
            "altitude": 0,
            "angle": 0,
            "satellites": 0,
            "speed": 0,
            "event_id": 1,
            "io": {"21": 3, "1": 1, "66": 24079, "241": 24602, "78": 0},
        }
    ],
}
"""The wiki's first Codec 8 example in the record JSON of DESIGN.md, by hand."""


def assert_names_offset(error: CodecError, data: bytes) -> None:
    """*error* points into *data* with an offset, and its message says where."""
    assert isinstance(error.offset, int)
    assert 0 <= error.offset < len(data)
    assert f"offset {error.offset}" in str(error)


def frame_payload(payload: bytes) -> bytes:
    """A TCP frame around *payload* (codec id .. second count): length, CRC right."""
    return (
        bytes(4)
        + len(payload).to_bytes(4, "big")
        + payload
        + crc16_ibm(payload).to_bytes(CRC_FIELD_SIZE, "big")
    )


def payload_of(frame: bytes) -> bytes:
    """The data field of a TCP frame: codec id .. second count."""
    return frame[FRAME_HEADER_SIZE:-CRC_FIELD_SIZE]


IO_GROUP_NAMES = ("1", "2", "4", "8", "16", "X")
"""The IO groups by value width, in wire order; "X" is Codec 8E's variable group."""


def io_by_width(record: AvlRecord) -> dict[str, dict[int, object]]:
    """The record's IO elements split by group; NX values as lowercase hex."""
    groups = dict(zip(IO_GROUP_NAMES, record.io_groups(), strict=True))
    return {
        name: {
            io_id: value.hex() if name == "X" and isinstance(value, bytes) else value
            for io_id, value in group.items()
        }
        for name, group in groups.items()
    }


def build_record(
    *,
    timestamp_ms: int = 1_560_161_086_000,
    priority: int = 1,
    longitude: float = 25.2562916,
    latitude: float = 54.6676016,
    altitude: int = 138,
    angle: int = 0,
    satellites: int = 6,
    speed: int = 0,
    event_id: int = 0,
    io1: Mapping[int, int] | None = None,
    io2: Mapping[int, int] | None = None,
    io4: Mapping[int, int] | None = None,
    io8: Mapping[int, int] | None = None,
    io16: Mapping[int, bytes] | None = None,
    iox: Mapping[int, bytes] | None = None,
    generation_type: int | None = None,
) -> AvlRecord:
    """An AVL record with its IO elements given by group."""
    io, io_layout = io_elements(
        io1=io1 or {},
        io2=io2 or {},
        io4=io4 or {},
        io8=io8 or {},
        io16=io16 or {},
        iox=iox or {},
    )
    return AvlRecord(
        timestamp_ms=timestamp_ms,
        priority=priority,
        longitude=longitude,
        latitude=latitude,
        altitude=altitude,
        angle=angle,
        satellites=satellites,
        speed=speed,
        event_id=event_id,
        io=io,
        io_layout=io_layout,
        generation_type=generation_type,
    )


def record_fields(record: AvlRecord, *, with_io: bool) -> dict[str, object]:
    """The fields of a decoded record, keyed like the references."""
    fields: dict[str, object] = {
        "timestamp_ms": record.timestamp_ms,
        "priority": record.priority,
        "lon": record.longitude,
        "lat": record.latitude,
        "altitude": record.altitude,
        "angle": record.angle,
        "satellites": record.satellites,
        "speed_kmh": record.speed,
        "event_io_id": record.event_id,
        "n_total_io": len(record.io),
        "generation_type": record.generation_type,
    }
    if with_io:
        fields["io"] = io_by_width(record)
    return fields


def expected_record_fields(reference: JsonObject, codec: Codec) -> dict[str, object]:
    """What :func:`record_fields` must give for a reference record."""
    fields: dict[str, object] = {
        "timestamp_ms": reference["timestamp_ms"],
        "priority": reference["priority"],
        "lon": pytest.approx(reference["lon"], abs=1e-9),
        "lat": pytest.approx(reference["lat"], abs=1e-9),
        "altitude": reference["altitude"],
        "angle": reference["angle"],
        "satellites": reference["satellites"],
        "speed_kmh": reference["speed_kmh"],
        "event_io_id": reference["event_io_id"],
        "n_total_io": reference["n_total_io"],
        "generation_type": (
            reference["generation_type"] if codec is Codec.CODEC16 else None
        ),
    }
    if "io" in reference:
        groups: dict[str, dict[int, object]] = {name: {} for name in IO_GROUP_NAMES}
        for io_id, element in reference["io"].items():
            value = element["value"]
            groups[str(element["size"])][int(io_id)] = (
                value.lower() if isinstance(value, str) else value
            )
        fields["io"] = groups
    return fields


def message_fields(message: CommandMessage) -> dict[str, object]:
    """The fields of a decoded command message, keyed like the references."""
    return {
        "type": message.type,
        "text": message.text,
        "hex": message.payload.hex(),
        "timestamp_s": message.timestamp,
        "imei": message.imei,
    }


def expected_message_fields(reference: JsonObject) -> dict[str, object]:
    """What :func:`message_fields` must give for a reference message."""
    imei_bcd: str | None = reference.get("imei_bcd")
    return {
        "type": reference["type"],
        "text": reference["text"],
        "hex": reference_payload(reference).hex(),
        "timestamp_s": reference.get("timestamp_s"),
        # The 16-nibble field holds the 15 digits after one pad zero.
        "imei": imei_bcd[1:] if imei_bcd is not None else None,
    }


def reference_payload(reference: JsonObject) -> bytes:
    """A reference message's payload: its ``hex`` when given, else its text."""
    if reference.get("hex") is not None:
        return bytes.fromhex(reference["hex"])
    text: str = reference["text"]
    return text.encode("ascii")


def codec_of(vector: Vector) -> Codec:
    return Codec(vector.reference["codec"])


def chunks(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """*data* split at the sorted offsets *cuts*."""
    bounds = [0, *sorted(set(cuts)), len(data)]
    return [data[start:end] for start, end in pairwise(bounds)]
