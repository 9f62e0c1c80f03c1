"""The machine's real brokers and servers, for the tests that use them.

Where one is not listening or not installed, its tests fail under CI
(``.ci/run`` starts or installs it, so absence is a fault) and are skipped
elsewhere, with the reason.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

RABBITMQ = ("127.0.0.1", 5672)
MOSQUITTO = ("127.0.0.1", 1883)
POSTGRESQL = ("127.0.0.1", 5432)


def require(name: str, address: tuple[str, int]) -> tuple[str, int]:
    """*address* if something listens there; else fail (CI) or skip."""
    try:
        socket.create_connection(address, timeout=2).close()
    except OSError as error:
        reason = f"{name} is not listening on {address[0]}:{address[1]}: {error}"
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI must start it: see .ci/run)")
        pytest.skip(reason)
    return address


def require_program(name: str, path: Path, package: str) -> Path:
    """*path* if it is installed; else fail (CI) or skip."""
    if path.exists():
        return path
    reason = f"{name} is not installed ({path}; Debian package {package})"
    if os.environ.get("CI"):
        pytest.fail(reason + " (CI must install it: see .ci/run)")
    pytest.skip(reason)
