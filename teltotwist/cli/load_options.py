# -*- test-case-name: tests.test_load_cli,tests.test_load_plan -*-
"""The options of ``teltotwist load``; light to import: no Twisted."""

from __future__ import annotations

import argparse
from typing import Any

from teltotwist.cli.arguments import (
    add_codec_options,
    add_records_option,
    add_server_option,
    positive,
)

CONNECTS_PER_SECOND = 500
"""The default ramp-up starts this many trackers a second."""


def register(commands: Any) -> None:
    """Add the ``load`` sub-command to *commands* (an argparse subparsers)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "load",
        help="run many virtual trackers against a gateway and measure it",
        description=(
            "Start many virtual trackers, each with its own IMEI, spread over a "
            "ramp-up; let them send packets for a while; stop them once their "
            "last packet is ACKed; print what was ACKed and how fast."
        ),
    )
    add_server_option(parser)
    parser.add_argument(
        "--devices",
        type=positive(int),
        required=True,
        metavar="N",
        help="how many trackers",
    )
    parser.add_argument(
        "--duration",
        type=positive(float),
        default=60.0,
        metavar="SECONDS",
        help="stop the trackers SECONDS after the first starts (default 60)",
    )
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument(
        "--interval",
        type=positive(float),
        default=1.0,
        metavar="SECONDS",
        help="each tracker sends a packet every SECONDS (default 1)",
    )
    pace.add_argument(
        "--rate",
        type=positive(float),
        metavar="RECORDS",
        help="instead of --interval: RECORDS per second from all trackers",
    )
    pace.add_argument(
        "--flat-out",
        action="store_true",
        help=(
            "instead of --interval: each tracker sends its next packet as soon "
            "as the previous one is ACKed"
        ),
    )
    parser.add_argument(
        "--burst",
        action="store_true",
        help=(
            "all trackers send at the same instants: one interval after the "
            "ramp-up ends, then every interval"
        ),
    )
    add_records_option(parser, 10)
    parser.add_argument(
        "--imei-base",
        type=int,
        default=350_000_000_000_000,
        metavar="IMEI",
        help="tracker n logs in as IMEI + n (default 350000000000000)",
    )
    parser.add_argument(
        "--ramp-up",
        type=float,
        metavar="SECONDS",
        help=(
            f"spread the trackers' starts over SECONDS (default: "
            f"{CONNECTS_PER_SECOND} a second, at most half the duration)"
        ),
    )
    parser.add_argument(
        "--ack-timeout",
        type=positive(float),
        default=10.0,
        metavar="SECONDS",
        help=(
            "a tracker reconnects and resends when no ACK comes in time; also "
            "the longest wait for the last ACKs at the end (default 10)"
        ),
    )
    add_codec_options(parser)
    parser.add_argument(
        "--processes",
        type=positive(int),
        default=1,
        metavar="N",
        help="share the trackers among N worker processes (default 1)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the summary as one JSON object"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
