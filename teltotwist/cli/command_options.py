# -*- test-case-name: tests.test_cli_command -*-
"""The options of ``teltotwist command``."""

from __future__ import annotations

import argparse
from typing import Any

from teltotwist.cli.api_client import add_api_argument


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, not {text}")
    return value


def register(commands: Any) -> None:
    """Add the ``command`` sub-command to *commands* (an argparse subparsers)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "command",
        help="send a command to a tracker through a running gateway",
        description=(
            "Send a command (Codec 12, or 14) to a tracker through a running "
            "gateway's HTTP API and print its answer. The exit status is 0 "
            "only when the tracker answered; 1 when the API refused the "
            "request or could not be reached; 2 for any other outcome (still "
            "queued or sent, not executed, timed out, expired, failed). The "
            "token comes from the TELTOTWIST_API_TOKEN environment variable."
        ),
    )
    parser.add_argument("imei", metavar="IMEI", help="the tracker")
    parser.add_argument(
        "text", metavar="TEXT", help="the command, such as getinfo (see --hex)"
    )
    parser.add_argument(
        "--hex", action="store_true", help="TEXT is the raw payload, in hex"
    )
    parser.add_argument(
        "--wait",
        type=_seconds,
        default=30.0,
        metavar="S",
        help="seconds to wait for the answer (default 30, at most 300)",
    )
    parser.add_argument(
        "--ttl",
        type=_seconds,
        default=0.0,
        metavar="S",
        help="seconds the command may wait for a tracker that is not "
        "connected (default 0: send only to a connected tracker)",
    )
    parser.add_argument(
        "--codec",
        type=int,
        choices=(12, 14),
        default=12,
        help="12 (default) or 14 (IMEI-addressed: the tracker checks its IMEI)",
    )
    add_api_argument(parser)
    parser.add_argument(
        "--json", action="store_true", help="print the command object, for scripts"
    )
