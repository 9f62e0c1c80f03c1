"""The machine's real brokers and servers, for the tests that use them.

Where one is not listening or not installed, its tests fail under CI
(``.ci/run`` starts or installs it, so absence is a fault) and are skipped
elsewhere, with the reason.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


def free_port() -> int:
    """A loopback TCP port that nothing listens on (for now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextmanager
def own_mosquitto(directory: Path, *settings: str) -> Iterator[int]:
    """A Mosquitto of the test's own, configured in *directory* with
    *settings* (lines of ``mosquitto.conf``): the port it listens on."""
    mosquitto = shutil.which("mosquitto")
    if mosquitto is None:
        pytest.skip("mosquitto is not installed")
    port = free_port()
    configuration = directory / "mosquitto.conf"
    configuration.write_text(
        "\n".join(
            (
                f"listener {port} 127.0.0.1",
                "persistence false",
                f"user {getpass.getuser()}",
                *settings,
                "",
            )
        ),
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [mosquitto, "-c", str(configuration)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, "mosquitto exited"
                assert time.monotonic() < deadline, "mosquitto did not listen"
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
