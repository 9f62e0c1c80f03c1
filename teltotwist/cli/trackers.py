# -*- test-case-name: tests.test_cli_trackers -*-
"""``teltotwist trackers``: the trackers a running gateway holds, from its
HTTP API, as a table or as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from teltotwist.cli.api_client import (
    ApiError,
    add_api_argument,
    api_token,
    get_json,
)

_COLUMNS = (
    "IMEI",
    "TRANSPORT",
    "PEER",
    "CONNECTED",
    "LAST SEEN",
    "PACKETS",
    "RECORDS",
    "LAST POSITION",
)


def register(commands: Any) -> None:
    """Add the ``trackers`` sub-command to *commands* (an argparse subparsers)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "trackers",
        help="list the trackers a running gateway holds",
        description=(
            "List the trackers connected to a running gateway (TCP) or heard "
            "from over UDP within its idle timeout, from its HTTP API. The "
            "token comes from the TELTOTWIST_API_TOKEN environment variable."
        ),
    )
    add_api_argument(parser)
    parser.add_argument(
        "--json", action="store_true", help="print the API's JSON, for scripts"
    )


def run(arguments: argparse.Namespace) -> int:
    """Print the trackers; 1 when the API cannot answer, with why."""
    try:
        body = get_json(arguments.api, "/v1/trackers", api_token())
    except ApiError as error:
        print(f"teltotwist trackers: {error}", file=sys.stderr)
        return 1
    if arguments.json:
        print(json.dumps(body, indent=2))
    else:
        print(table(body["trackers"]))
    return 0


def table(trackers: list[dict[str, Any]]) -> str:
    """*trackers* (tracker objects of the API) as aligned columns."""
    rows = [_COLUMNS, *(_row(tracker) for tracker in trackers)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(_COLUMNS))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) for cell, width in zip(row, widths, strict=True)
        ).rstrip()
        for row in rows
    )


def _row(tracker: dict[str, Any]) -> tuple[str, ...]:
    return (
        tracker["imei"],
        tracker["transport"],
        tracker["peer"],
        tracker["connected_at"],
        tracker["last_seen"],
        str(tracker["packets"]),
        str(tracker["records"]),
        _position(tracker["last_record"]),
    )


def _position(record: dict[str, Any] | None) -> str:
    if record is None:
        return "-"
    return (
        f"{record['latitude']:.6f},{record['longitude']:.6f} "
        f"{record['speed']} km/h at {record['timestamp']}"
    )
