"""Shared pytest configuration: the Hypothesis profiles ("ci" when CI is set),
the real ``twistd -n teltonika`` as a fixture, and no object left frozen
between tests."""

from __future__ import annotations

import gc
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("dev", max_examples=200, deadline=None)
settings.register_profile(
    "ci", max_examples=200, deadline=None, derandomize=True, print_blob=True
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


TWISTD = Path(sys.executable).with_name("twistd")


@pytest.fixture(autouse=True)
def _collectable_between_tests() -> Iterator[None]:
    """A gateway from ``teltotwist.tap`` freezes what exists once it listens,
    and makes full collections rarer: in a test process, the tests' objects
    too, for the tests after. Hand them back to the garbage collector, and
    restore its thresholds, after each test."""
    thresholds = gc.get_threshold()
    yield
    if gc.get_freeze_count():
        gc.unfreeze()
    gc.set_threshold(*thresholds)


_STARTING = re.compile(r"TeltonikaTcpFactory(?: \([A-Z]+\))* starting on (\d+)")
"""The line saying where trackers connect; ``(PROXY)`` or ``(TLS)`` follow
the name on a ``haproxy:`` or ``ssl:`` port."""


def listening_port(process: subprocess.Popen[str]) -> tuple[int | None, list[str]]:
    """The port a gateway subprocess logs it listens on (None if it does not
    within 30 s), and the log lines read so far."""
    assert process.stdout is not None
    log: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        log.append(line)
        found = _STARTING.search(line)
        if found:
            return int(found.group(1)), log
    return None, log


class Twistd:
    """A running ``twistd -n teltonika`` filing records in ``records.jsonl``."""

    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.port = port
        self.log: list[str] = []


@contextmanager
def running_twistd(directory: Path, *options: str) -> Iterator[Twistd]:
    """``twistd -n teltonika`` with *options*, filing records in
    ``records.jsonl`` in *directory*, killed at the end if still running."""
    process = subprocess.Popen(
        [
            str(TWISTD),
            "--nodaemon",
            "--pidfile=",
            "teltonika",
            "--port",
            "tcp:0:interface=127.0.0.1",
            "--sink",
            f"file:{directory / 'records.jsonl'}",
            *options,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=directory,
    )
    try:
        port, log = listening_port(process)
        if port is None:
            process.kill()
            pytest.fail("twistd did not start listening:\n" + "".join(log))
        running = Twistd(process, port)
        running.log = log
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
def twistd(tmp_path: Path) -> Iterator[Twistd]:
    with running_twistd(tmp_path) as running:
        yield running
