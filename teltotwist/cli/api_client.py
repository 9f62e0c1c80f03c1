# -*- test-case-name: tests.test_cli_trackers,tests.test_cli_command -*-
"""A small client of the gateway's HTTP API for the sub-commands, on the
standard library only (no Twisted), so the command line stays light."""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.request
from typing import Any

DEFAULT_API_URL = "http://127.0.0.1:8027"
TOKEN_VARIABLE = "TELTOTWIST_API_TOKEN"
TIMEOUT = 30.0
"""Seconds to wait for the API."""


class ApiError(Exception):
    """The API could not be reached or refused the request; says why."""


def add_api_argument(parser: argparse.ArgumentParser) -> None:
    """``--api URL``: where the sub-command finds the gateway's HTTP API."""
    parser.add_argument(
        "--api",
        default=DEFAULT_API_URL,
        metavar="URL",
        help=f"the gateway's HTTP API (default {DEFAULT_API_URL})",
    )


def api_token() -> str:
    """The token from the environment.

    :raises ApiError: when it is not set.
    """
    token = os.environ.get(TOKEN_VARIABLE)
    if not token:
        raise ApiError(f"set {TOKEN_VARIABLE} to the gateway's API token")
    return token


def get_json(base_url: str, path: str, token: str) -> Any:
    """``GET`` *path* from the API at *base_url*; the decoded JSON body.

    :raises ApiError: when unreachable, or with the API's ``error``.
    """
    return _call(base_url, path, token, None, TIMEOUT)


def post_json(
    base_url: str, path: str, token: str, body: object, timeout: float = TIMEOUT
) -> Any:
    """``POST`` *body* as JSON to *path*; the decoded JSON answer, waiting
    for it up to *timeout* seconds.

    :raises ApiError: when unreachable, or with the API's ``error``.
    """
    return _call(base_url, path, token, json.dumps(body).encode(), timeout)


def _call(
    base_url: str, path: str, token: str, data: bytes | None, timeout: float
) -> Any:
    url = base_url.rstrip("/") + path
    headers = {"Authorization": f"Bearer {token}"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        raise ApiError(f"{url}: {error.code} {_error_of(error)}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ApiError(f"cannot reach the API at {url}: {reason}") from None


def _error_of(error: urllib.error.HTTPError) -> str:
    try:
        message = json.loads(error.read())["error"]
    except (ValueError, KeyError, TypeError):
        return str(error.reason)
    return str(message)
