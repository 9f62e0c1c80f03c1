# -*- test-case-name: tests.test_cli_command -*-
"""``teltotwist command``: send a command to a tracker through a running
gateway's HTTP API, and print its answer or what became of it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any
from urllib.parse import quote

from teltotwist.cli.api_client import TIMEOUT, ApiError, api_token, post_json

NOT_ANSWERED = 2
"""The exit status when the tracker did not answer (yet)."""


def run(arguments: argparse.Namespace) -> int:
    """Send the command; 0 when answered, 1 when the API refused or cannot
    answer, :data:`NOT_ANSWERED` otherwise."""
    field = "hex" if arguments.hex else "command"
    request = {
        field: arguments.text,
        "codec": arguments.codec,
        "wait": arguments.wait,
        "ttl": arguments.ttl,
    }
    path = f"/v1/trackers/{quote(arguments.imei, safe='')}/commands"
    try:
        command = post_json(
            arguments.api, path, api_token(), request, timeout=arguments.wait + TIMEOUT
        )
    except ApiError as error:
        print(f"teltotwist command: {error}", file=sys.stderr)
        return 1
    print(json.dumps(command, indent=2) if arguments.json else summary(command))
    return 0 if command["status"] == "answered" else NOT_ANSWERED


def summary(command: dict[str, Any]) -> str:
    """The response of an answered command; else its status, and why."""
    if command["status"] == "answered":
        return str(command["response"])
    why = (
        {
            "queued": "not sent yet: the tracker is not connected or is busy",
            "sent": "sent, not answered yet",
        }.get(command["status"])
        or command["error"]
        or ""
    )
    return f"{command['status']}: {why} (command {command['id']})"
