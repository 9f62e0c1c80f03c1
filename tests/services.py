"""The machine's real brokers, for the tests that talk to them.

Where one is not listening, its tests fail under CI (``.ci/run`` starts it,
so absence is a fault) and are skipped elsewhere, with the reason.
"""

from __future__ import annotations

import os
import socket

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
