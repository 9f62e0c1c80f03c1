"""Two ``twistd -n teltonika`` instances behind a real HAProxy run from
``docs/examples/haproxy.cfg``: trackers connect through HAProxy, their
records are ACKed and filed, and each instance knows the tracker's own
address from the PROXY header, not HAProxy's."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest

from teltotwist.codec import encode_login, tcp_ack
from tests.conftest import Twistd, running_twistd
from tests.net import receive_exactly
from tests.services import free_port, require_program
from tests.vectors import by_id

CONFIG = Path(__file__).resolve().parent.parent / "docs" / "examples" / "haproxy.cfg"
TOKEN = "a-token-for-the-haproxy-tests"
BEHIND_HAPROXY = (
    "--port",
    "haproxy:tcp:0:interface=127.0.0.1",
    "--api",
    "tcp:0:interface=127.0.0.1",
)
CODEC8 = by_id("wiki-c8-tcp-1").data
IMEIS = ["356307042441013", "352093081452251", "356307042441021", "356307042441039"]


@attrs.frozen
class Instance:
    """One gateway: its process, its API port and where it files records."""

    twistd: Twistd
    api_port: int
    directory: Path

    def trackers(self) -> list[dict[str, Any]]:
        """``GET /v1/trackers``: the trackers connected to this instance."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.api_port}/v1/trackers",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            listed: list[dict[str, Any]] = json.load(response)["trackers"]
        return listed

    def stop(self) -> tuple[list[dict[str, Any]], str]:
        """Stop the gateway; the records it filed, and its whole log."""
        process = self.twistd.process
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
        lines = (self.directory / "records.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines], "".join(self.twistd.log) + output


class HAProxy:
    """A running HAProxy; its log is read as it comes, so it never blocks."""

    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.port = port
        self.log: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def wait_for(self, pattern: str, seconds: float = 30) -> None:
        """Wait until a log line matches *pattern*."""
        deadline = time.monotonic() + seconds
        while not any(re.search(pattern, line) for line in list(self.log)):
            assert time.monotonic() < deadline, f"no {pattern!r}:\n{self.output}"
            assert self.process.poll() is None, f"HAProxy exited:\n{self.output}"
            time.sleep(0.1)

    @property
    def output(self) -> str:
        return "".join(self.log)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.log.append(line)


@pytest.fixture
def haproxy_program() -> Path:
    return require_program("HAProxy", Path("/usr/sbin/haproxy"), "haproxy")


@pytest.fixture(autouse=True)
def _api_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELTOTWIST_API_TOKEN", TOKEN)


@contextmanager
def instance(directory: Path, *options: str) -> Iterator[Instance]:
    """A gateway listening behind the PROXY protocol, with its API."""
    directory.mkdir()
    with running_twistd(directory, *BEHIND_HAPROXY, *options) as twistd:
        yield Instance(twistd, logged_api_port(twistd), directory)


def logged_api_port(twistd: Twistd) -> int:
    """The API port *twistd* logs, reading its log further if need be."""
    assert twistd.process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in twistd.log:
            found = re.search(r"HTTP API on http://127\.0\.0\.1:(\d+)/", line)
            if found:
                return int(found.group(1))
        line = twistd.process.stdout.readline()
        if not line:
            break
        twistd.log.append(line)
    pytest.fail("no API port in the log:\n" + "".join(twistd.log))


@contextmanager
def haproxy(
    program: Path, gateways: Sequence[Instance], config: Path = CONFIG
) -> Iterator[HAProxy]:
    """HAProxy run from *config* (the documented one), in front of *gateways*."""
    port = free_port()
    environment = {**os.environ, "TRACKERS": f"127.0.0.1:{port}"}
    for number, gateway in enumerate(gateways, start=1):
        environment[f"GATEWAY_{number}"] = f"127.0.0.1:{gateway.twistd.port}"
        environment[f"API_{number}"] = str(gateway.api_port)
    process = subprocess.Popen(
        [str(program), "-db", "-f", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
    )
    try:
        running = HAProxy(process, port)
        deadline = time.monotonic() + 30
        while not accepts(port):
            assert time.monotonic() < deadline, "HAProxy did not listen:\n" + (
                running.output
            )
            assert process.poll() is None, f"HAProxy exited:\n{running.output}"
            time.sleep(0.1)
        yield running
    finally:
        process.terminate()
        process.wait(timeout=30)


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def connect_tracker(port: int, imei: str) -> socket.socket:
    """A tracker through HAProxy: logged in, one packet sent and ACKed."""
    tracker = socket.create_connection(("127.0.0.1", port), timeout=10)
    tracker.sendall(encode_login(imei))
    assert receive_exactly(tracker, 1) == b"\x01"
    tracker.sendall(CODEC8)
    assert receive_exactly(tracker, 4) == tcp_ack(1)
    return tracker


def test_trackers_through_haproxy_are_acked_filed_and_listed_with_their_address(
    haproxy_program: Path, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        gateways = [
            stack.enter_context(instance(tmp_path / f"gateway-{n}")) for n in (1, 2)
        ]
        balancer = stack.enter_context(haproxy(haproxy_program, gateways))
        trackers = [
            stack.enter_context(connect_tracker(balancer.port, imei)) for imei in IMEIS
        ]
        # What each tracker's own socket is: HAProxy's connection to a
        # gateway has another port, so only the PROXY header can tell this.
        addresses = {
            imei: f"127.0.0.1:{tracker.getsockname()[1]}"
            for imei, tracker in zip(IMEIS, trackers, strict=True)
        }
        # A bad header straight to a gateway is closed, without a traceback.
        direct = ("127.0.0.1", gateways[0].twistd.port)
        with socket.create_connection(direct, timeout=10) as bad:
            bad.sendall(b"PROXY TCP4 192.0.2.1 127.0.0.1 eleven 5027\r\n")
            assert bad.recv(1) == b""

        listed = [gateway.trackers() for gateway in gateways]
        stopped = [gateway.stop() for gateway in gateways]

    assert [len(trackers) for trackers in listed] == [2, 2]  # leastconn
    peers = {
        tracker["imei"]: tracker["peer"] for trackers in listed for tracker in trackers
    }
    assert peers == addresses
    filed = [record["imei"] for records, _ in stopped for record in records]
    assert sorted(filed) == sorted(IMEIS)
    logs = "".join(log for _, log in stopped)
    assert "Traceback" not in logs
    assert re.search(r"unknown IMEI at proxy 127\.0\.0\.1:\d+: disconnected", logs)


def test_an_instance_whose_readyz_fails_gets_no_trackers(
    haproxy_program: Path, tmp_path: Path
) -> None:
    """A sink that cannot take records makes ``/readyz`` fail: HAProxy's
    health check takes that instance out, and every tracker goes to the
    other one."""
    unready = ("--sink", f"mqtt:mqtt://127.0.0.1:{free_port()}")
    with ExitStack() as stack:
        ready = stack.enter_context(instance(tmp_path / "ready"))
        broken = stack.enter_context(
            instance(tmp_path / "broken", *unready, "--sink-ready-timeout", "0.5")
        )
        balancer = stack.enter_context(haproxy(haproxy_program, [ready, broken]))
        balancer.wait_for(r"gateway-2 is DOWN.*Layer7 wrong status, code: 503")
        for imei in IMEIS:
            stack.enter_context(connect_tracker(balancer.port, imei))

        listed = [
            sorted(tracker["imei"] for tracker in gateway.trackers())
            for gateway in (ready, broken)
        ]

    assert listed == [sorted(IMEIS), []]
    assert "gateway-1 is DOWN" not in balancer.output
