# -*- test-case-name: tests.test_cli_decode -*-
"""``teltotwist decode``: make captured hex frames readable, one JSON line each."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from typing import Any, TextIO

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
    parser.add_argument("hex", nargs="*", metavar="HEX", help="a frame in hex")


def run(arguments: argparse.Namespace) -> int:
    """Decode every input and print the results; 1 when any failed."""
    inputs: Iterable[str] = arguments.hex or _stdin_lines(sys.stdin)
    failed = False
    for text in inputs:
        result = decode_hex(text, udp=arguments.udp)
        failed = failed or "error" in result
        print(json.dumps(result), flush=True)
    return 1 if failed else 0


def _stdin_lines(stream: TextIO) -> Iterable[str]:
    """Non-blank lines, skipping ``#`` comments."""
    for line in stream:
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            yield stripped


def decode_hex(text: str, *, udp: bool = False) -> JsonObject:
    """The JSON line for one hex input (white space inside is ignored)."""
    compact = "".join(text.split())
    try:
        data = bytes.fromhex(compact)
    except ValueError:
        return {"error": f"not hexadecimal: {_excerpt(compact)}"}
    if not data:
        return {"error": "empty input"}
    try:
        return decode_datagram(data) if udp else decode_tcp(data)
    except CodecError as error:
        return {"error": str(error)}


def decode_datagram(data: bytes) -> JsonObject:
    """A UDP datagram: its ids and IMEI, then the AVL payload."""
    datagram = decode_udp(data)
    return {
        "imei": datagram.imei,
        "packet_id": datagram.packet_id,
        "avl_packet_id": datagram.avl_packet_id,
        **packet_to_json(datagram.packet),
    }


def decode_tcp(data: bytes) -> JsonObject:
    """One TCP frame: a data or command frame, a login or a ping."""
    if data[0] != _PING and data[:2] == b"\x00\x00":
        content = decode_frame(data)
        if isinstance(content, AvlPacket):
            return packet_to_json(content)
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


def _excerpt(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
