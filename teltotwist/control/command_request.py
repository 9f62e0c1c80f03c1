# -*- test-case-name: tests.test_control_commands_api -*-
"""The body of ``POST /v1/trackers/{imei}/commands``, read and checked.

Only the JSON's shape, types and the API's own bounds are checked here; what
makes a command valid (its text, length and codec) is the
:class:`~teltotwist.gateway.commands.CommandCenter`'s to say.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import attrs

DEFAULT_WAIT = 30.0
"""Seconds a request waits for the answer unless it says otherwise."""
MAX_WAIT = 300.0
MAX_TTL = 30 * 24 * 3600.0
"""Seconds a command may wait for its tracker at most: 30 days."""

_FIELDS = frozenset({"command", "hex", "codec", "wait", "ttl"})
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")


class CommandRequestError(ValueError):
    """A body that is not a command request; the message says why."""


@attrs.frozen
class CommandRequest:
    """What a client asked for: *text* or *payload*, and how to send it."""

    text: str | None
    payload: bytes | None
    codec: int
    wait: float
    ttl: float


def parse_command_request(body: bytes) -> CommandRequest:
    """The request in *body* (JSON).

    :raises CommandRequestError: for anything but an object with either
        ``command`` (a string) or ``hex`` (hex digits), and optional
        ``codec`` (an integer), ``wait`` (0 to :data:`MAX_WAIT` seconds) and
        ``ttl`` (0 to :data:`MAX_TTL` seconds).
    """
    try:
        fields = json.loads(body)
    except (ValueError, RecursionError):
        raise CommandRequestError("the body is not JSON") from None
    if not isinstance(fields, dict):
        raise CommandRequestError("the body is not a JSON object")
    unknown = sorted(set(fields) - _FIELDS)
    if unknown:
        raise CommandRequestError(f"unknown field {unknown[0]!r}")
    if ("command" in fields) == ("hex" in fields):
        raise CommandRequestError('give either "command" or "hex"')
    text = _optional(fields, "command", str, "a string")
    hex_digits = _optional(fields, "hex", str, "a string")
    if hex_digits is not None and not _HEX.fullmatch(hex_digits):
        raise CommandRequestError('"hex" must be pairs of hex digits')
    codec = _optional(fields, "codec", int, "12 or 14")
    return CommandRequest(
        text=text,
        payload=None if hex_digits is None else bytes.fromhex(hex_digits),
        codec=12 if codec is None else codec,
        wait=_seconds(fields, "wait", DEFAULT_WAIT, MAX_WAIT),
        ttl=_seconds(fields, "ttl", 0.0, MAX_TTL),
    )


def _optional(fields: dict[str, Any], name: str, kind: type[Any], what: str) -> Any:
    """The field *name*, a *kind*, or None when it is absent."""
    if name not in fields:
        return None
    value = fields[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise CommandRequestError(f'"{name}" must be {what}, not {value!r}')
    return value


def _seconds(fields: dict[str, Any], name: str, default: float, most: float) -> float:
    value = fields.get(name, default)
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not (math.isfinite(value) and 0 <= value <= most)
    ):
        raise CommandRequestError(
            f'"{name}" must be 0 to {most:g} seconds, not {value!r}'
        )
    return float(value)
