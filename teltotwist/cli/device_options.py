# -*- test-case-name: tests.test_device_cli -*-
"""The options of ``teltotwist device``; light to import: no Twisted."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from teltotwist.cli.arguments import (
    add_codec_options,
    add_records_option,
    add_server_option,
    positive,
)


def register(commands: Any) -> None:
    """Add the ``device`` sub-command to *commands* (an argparse subparsers)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "device",
        help="run a virtual tracker against a gateway",
        description=(
            "Play a Teltonika tracker: log in, drive a route and send its records "
            "one packet at a time, resend unacknowledged packets, reconnect with "
            "backoff, answer Codec 12 and 14 commands. Prints one line per event."
        ),
    )
    add_server_option(parser)
    parser.add_argument(
        "--imei", help="the IMEI to log in with (with --replay: the capture's)"
    )
    parser.add_argument(
        "--replay",
        type=Path,
        metavar="FILE",
        help=(
            "send the tracker's frames of a capture file (the live view saves "
            "them) one at a time, each once the previous is ACKed, then exit"
        ),
    )
    add_codec_options(parser)
    add_records_option(parser, 1)
    parser.add_argument(
        "--interval",
        type=positive(float),
        default=10.0,
        metavar="SECONDS",
        help="send a packet every SECONDS (default 10)",
    )
    parser.add_argument(
        "--route", type=Path, help="a GPX or CSV (lat,lon) file; default: built in"
    )
    parser.add_argument(
        "--count",
        type=positive(int),
        metavar="N",
        help="exit after N packets are acknowledged (default: run forever)",
    )
    parser.add_argument(
        "--ack-timeout",
        type=positive(float),
        default=10.0,
        metavar="SECONDS",
        help="close, reconnect and resend when no ACK comes in time (default 10)",
    )
    parser.add_argument(
        "--ping",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="send a 0xFF ping after SECONDS idle; 0: never (default 60)",
    )
    parser.add_argument(
        "--answer-delay",
        type=seconds_range,
        metavar="SECONDS|MIN-MAX",
        help=(
            "answer a command after SECONDS, or after a random time from MIN to "
            "MAX seconds (default 0.3-1.0); never while a packet waits for its ACK"
        ),
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="print every frame in hex"
    )


def seconds_range(text: str) -> tuple[float, float]:
    """An argparse type: ``0.3`` (always 0.3 s) or ``0.2-1.5`` (from 0.2 to
    1.5 s); the bounds are checked by the tracker's settings."""
    shortest, dash, longest = text.partition("-")
    try:
        return float(shortest), float(longest if dash else shortest)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected SECONDS or MIN-MAX, e.g. 0.3 or 0.2-1.5, not {text!r}"
        ) from None
