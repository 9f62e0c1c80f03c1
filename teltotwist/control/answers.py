# -*- test-case-name: tests.test_control_api -*-
"""What an API handler answers: a status, a body and its headers."""

from __future__ import annotations

import json

import attrs

JSON = b"application/json"


@attrs.frozen
class Answer:
    """One HTTP answer; a 204 has no body and no ``Content-Type``."""

    status: int
    body: bytes = b""
    content_type: bytes = JSON
    headers: tuple[tuple[bytes, bytes], ...] = ()


def json_answer(status: int, value: object) -> Answer:
    """*value* as a compact JSON body."""
    return Answer(status, json.dumps(value, separators=(",", ":")).encode())


def error_answer(status: int, message: str, *headers: tuple[bytes, bytes]) -> Answer:
    """``{"error": message}``, with *headers*."""
    return attrs.evolve(json_answer(status, {"error": message}), headers=headers)
