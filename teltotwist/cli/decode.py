# -*- test-case-name: tests.test_cli_decode -*-
"""``teltotwist decode``: make captured hex frames readable, one JSON line each."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from teltotwist.catalogue import Naming, load_catalogue
from teltotwist.cli.tracker_model import tracker_model
from teltotwist.codec import (
    CodecError,
    Login,
    Ping,
    StreamFramer,
    command_frame_to_json,
    decode_frame,
    decode_udp,
    packet_to_json,
)
from teltotwist.codec.model import AvlPacket

JsonObject = dict[str, Any]

_PING = 0xFF


def register(commands: Any) -> None:
    """Add the ``decode`` sub-command to *commands* (an argparse subparsers)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "decode",
        help="decode hex frames to JSON lines",
        description=(
            "Decode Teltonika frames given as hex, one per argument or, without "
            "arguments, one per line of standard input. Prints one JSON object per "
            "input; exits 1 when any input does not decode."
        ),
    )
    parser.add_argument(
        "--udp", action="store_true", help="inputs are UDP datagrams, not TCP frames"
    )
    parser.add_argument(
        "--model",
        type=tracker_model,
        help='add "attributes" (IO named and scaled for this tracker model)',
    )
    parser.add_argument("hex", nargs="*", metavar="HEX", help="a frame in hex")


def run(arguments: argparse.Namespace) -> int:
    """Decode every input and print the results; 1 when any failed."""
    inputs: Iterable[str] = arguments.hex or _stdin_lines(sys.stdin)
    naming = (
        None if arguments.model is None else load_catalogue().naming(arguments.model)
    )
    failed = False
    for text in inputs:
        result = decode_hex(text, udp=arguments.udp, naming=naming)
        failed = failed or "error" in result
        print(json.dumps(result), flush=True)
    return 1 if failed else 0


def _stdin_lines(stream: TextIO) -> Iterable[str]:
    """Non-blank lines, skipping ``#`` comments."""
    for line in stream:
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            yield stripped


def decode_hex(
    text: str, *, udp: bool = False, naming: Naming | None = None
) -> JsonObject:
    """The JSON line for one hex input (white space inside is ignored); with a
    *naming*, each record gains its ``attributes``."""
    compact = "".join(text.split())
    try:
        data = bytes.fromhex(compact)
    except ValueError:
        return {"error": f"not hexadecimal: {_excerpt(compact)}"}
    if not data:
        return {"error": "empty input"}
    try:
        return decode_datagram(data, naming) if udp else decode_tcp(data, naming)
    except CodecError as error:
        return {"error": str(error)}


def decode_datagram(data: bytes, naming: Naming | None = None) -> JsonObject:
    """A UDP datagram: its ids and IMEI, then the AVL payload."""
    datagram = decode_udp(data)
    return {
        "imei": datagram.imei,
        "packet_id": datagram.packet_id,
        "avl_packet_id": datagram.avl_packet_id,
        **_packet_json(datagram.packet, naming),
    }


def decode_tcp(data: bytes, naming: Naming | None = None) -> JsonObject:
    """One TCP frame: a data or command frame, a login or a ping."""
    if data[0] != _PING and data[:2] == b"\x00\x00":
        content = decode_frame(data)
        if isinstance(content, AvlPacket):
            return _packet_json(content, naming)
        return command_frame_to_json(content)
    framer = StreamFramer()
    events = framer.feed(data)
    if framer.buffered:
        return {
            "error": f"truncated: the input ends {framer.buffered} bytes into a login"
        }
    match events:
        case [Login(imei=imei)]:
            return {"imei": imei}
        case [Ping()]:
            return {"ping": True}
    names = ", ".join(type(event).__name__.lower() for event in events)
    return {"error": f"input holds {len(events)} frames ({names}); give one per input"}


def _packet_json(packet: AvlPacket, naming: Naming | None) -> JsonObject:
    result = packet_to_json(packet)
    if naming is not None:
        for record_json, record in zip(result["records"], packet.records, strict=True):
            record_json["attributes"] = naming.attributes(record.io)
    return result


def _excerpt(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
