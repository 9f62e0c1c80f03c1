"""``twistd -n teltonika --workers 2``, for real: two worker processes share
the tracker port, each filing its own records; the parent restarts a killed
worker, drains them all on SIGTERM, and leaves none behind when it is killed
itself."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from teltotwist.cluster.worker import worker_sink_spec
from teltotwist.codec import (
    AvlPacket,
    CommandFrame,
    decode_frame,
    encode_frame,
    encode_login,
    encode_udp,
    tcp_ack,
    udp_ack,
)
from teltotwist.codec.udp import UdpDatagram
from tests.conftest import TWISTD, Twistd, running_twistd
from tests.net import receive_exactly
from tests.vectors import by_id

_VECTOR = decode_frame(by_id("wiki-c8-tcp-1").data)
assert isinstance(_VECTOR, AvlPacket)
RECORD = _VECTOR.records[0]
FIRST_IMEI = 356307042440000
TOKEN = "a-token-for-the-workers-tests"


@pytest.fixture(autouse=True)
def _api_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELTOTWIST_API_TOKEN", TOKEN)


def frame(timestamp_ms: int) -> bytes:
    """A Codec 8 frame of one record of its own (by its time)."""
    record = RECORD._replace(timestamp_ms=timestamp_ms)
    return encode_frame(AvlPacket(_VECTOR.codec, (record,)))


class Gateway:
    """A running ``--workers`` parent; its log (its workers' too) is read
    as it comes, so that a full pipe never blocks them."""

    def __init__(self, twistd: Twistd, directory: Path) -> None:
        self.twistd = twistd
        self.directory = directory
        self.lines = list(twistd.log)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.twistd.process.stdout is not None
        for line in self.twistd.process.stdout:
            self.lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, count: int = 1, seconds: float = 30) -> list[str]:
        """The first *count* matches of *pattern* in the log, once there."""
        deadline = time.monotonic() + seconds
        while True:
            found = [m.group(1) for m in re.finditer(pattern, self.log)]
            if len(found) >= count:
                return found[:count]
            assert time.monotonic() < deadline, f"no {pattern!r}:\n{self.log}"
            time.sleep(0.1)

    def worker_pids(self) -> list[int]:
        """The pids of the two workers, as the parent logs them."""
        return [
            int(pid) for pid in self.wait_for(r"Worker \d started \(pid (\d+)\)", 2)
        ]

    def filed(self) -> dict[int, set[str]]:
        """The records filed, by worker: each one's IMEI and device time."""
        filed = {}
        for number in (1, 2):
            path = self.directory / f"records.w{number}.jsonl"
            lines = path.read_text().splitlines() if path.exists() else []
            filed[number] = {
                ":".join(json.loads(line)["id"].split(":")[:2]) for line in lines
            }
        return filed


@contextmanager
def two_workers(directory: Path, *options: str) -> Iterator[Gateway]:
    with running_twistd(
        directory, "--workers", "2", "--api", "tcp:0:interface=127.0.0.1", *options
    ) as twistd:
        gateway = Gateway(twistd, directory)
        gateway.wait_for(r"(Listening for trackers on) .*sinks", 2)
        gateway.wait_for(r"HTTP API on (http://127.0.0.1:\d+/)", 2)
        # Both joined their parent's hub: a command can be parked.
        gateway.wait_for(r"Cluster: member\.(hello) from", 2)
        yield gateway


def api(gateway: Gateway, path: str, body: object = None) -> tuple[int, bytes]:
    """The status and body of an API request (one connection each, so any
    worker may answer it)."""
    (base,) = gateway.wait_for(r"HTTP API on (http://127.0.0.1:\d+/)")
    request = urllib.request.Request(
        base + path.lstrip("/"),
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read()


def logged_in(port: int, imei: int) -> socket.socket:
    """A tracker connected and logged in, one record ACKed."""
    tracker = socket.create_connection(("127.0.0.1", port), timeout=10)
    tracker.sendall(encode_login(str(imei)))
    assert receive_exactly(tracker, 1) == b"\x01"
    tracker.sendall(frame(1_700_000_000_000))
    assert receive_exactly(tracker, 4) == tcp_ack(1)
    return tracker


def alive(pid: int) -> bool:
    """True while *pid* runs (a zombie waiting for its reaper does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def send_records(port: int, imei: int, times: range) -> list[str]:
    """A tracker logs in and sends a record per time in *times*, one packet
    each; the records ACKed, as ``IMEI:TIME``."""
    acked = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as tracker:
        tracker.sendall(encode_login(str(imei)))
        assert receive_exactly(tracker, 1) == b"\x01"
        for timestamp in times:
            tracker.sendall(frame(timestamp))
            assert receive_exactly(tracker, 4) == tcp_ack(1)
            acked.append(f"{imei}:{timestamp}")
    return acked


class Fleet:
    """Trackers sending records on their own threads, reconnecting when
    their connection fails, until stopped; :attr:`acked` is what the gateway
    acknowledged."""

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.acked: set[str] = set()
        self.reconnects = 0
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(FIRST_IMEI + n,), daemon=True)
            for n in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def _run(self, imei: int) -> None:
        timestamp = 1_700_000_000_000
        while not self._stop.is_set():
            try:
                with socket.create_connection(
                    ("127.0.0.1", self.port), timeout=10
                ) as tracker:
                    tracker.sendall(encode_login(str(imei)))
                    if receive_exactly(tracker, 1) != b"\x01":
                        raise ConnectionError("login refused")
                    while not self._stop.is_set():
                        timestamp += 1000
                        tracker.sendall(frame(timestamp))
                        if receive_exactly(tracker, 4) != tcp_ack(1):
                            raise ConnectionError("bad ACK")
                        self.acked.add(f"{imei}:{timestamp}")
                        time.sleep(0.01)
            except (OSError, ConnectionError, AssertionError):
                self.reconnects += 1
                time.sleep(0.1)

    def wait_for_acks(self, count: int, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while len(self.acked) < count:
            assert time.monotonic() < deadline, f"only {len(self.acked)} ACKed"
            time.sleep(0.05)

    def stop(self) -> set[str]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        return set(self.acked)


def test_two_workers_share_the_port_each_filing_its_own_records(
    tmp_path: Path,
) -> None:
    with two_workers(tmp_path) as gateway:
        acked: list[str] = []
        # Until both workers filed records: the kernel picks a worker for
        # each connection.
        while len(acked) < 60 or not all(gateway.filed().values()):
            assert len(acked) < 600, "one worker got every tracker"
            imei = FIRST_IMEI + len(acked) // 3
            acked += send_records(gateway.twistd.port, imei, range(1000, 1003))
        gateway.twistd.process.send_signal(signal.SIGTERM)
        gateway.twistd.process.wait(timeout=60)

    filed = gateway.filed()
    assert filed[1] and filed[2], gateway.log
    assert filed[1] | filed[2] == set(acked)
    assert not filed[1] & filed[2]


def test_the_workers_share_the_udp_port(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        udp_port = probe.getsockname()[1]
    with (
        two_workers(tmp_path, "--udp-port", str(udp_port)) as gateway,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tracker,
    ):
        tracker.settimeout(10)
        acked = set()
        for n in range(20):
            imei = FIRST_IMEI + n
            record = RECORD._replace(timestamp_ms=1_700_000_000_000 + n)
            datagram = UdpDatagram(n, n, str(imei), AvlPacket(_VECTOR.codec, (record,)))
            tracker.sendto(encode_udp(datagram), ("127.0.0.1", udp_port))
            assert tracker.recv(64) == udp_ack(n, n, 1)
            acked.add(f"{imei}:{record.timestamp_ms}")
        gateway.twistd.process.send_signal(signal.SIGTERM)
        gateway.twistd.process.wait(timeout=60)

    filed = gateway.filed()
    assert filed[1] | filed[2] == acked


def test_any_worker_answers_the_api_for_every_worker(
    tmp_path: Path,
) -> None:
    with two_workers(tmp_path) as gateway, ExitStack() as trackers:
        connected: dict[int, socket.socket] = {}
        filed = gateway.filed()
        # Until both workers hold trackers: the kernel picks a worker for
        # each connection.
        while len(connected) < 6 or not (filed[1] and filed[2]):
            assert len(connected) < 100, "one worker got every tracker"
            imei = FIRST_IMEI + len(connected)
            connected[imei] = trackers.enter_context(
                logged_in(gateway.twistd.port, imei)
            )
            filed = gateway.filed()
        imeis = list(connected)

        for _ in range(4):
            status, body = api(gateway, "/v1/trackers")
            listed = {tracker["imei"] for tracker in json.loads(body)["trackers"]}
            assert (status, listed) == (200, {str(imei) for imei in imeis})
        for imei, tracker in connected.items():
            status, body = api(
                gateway,
                f"/v1/trackers/{imei}/commands",
                {"command": "getinfo", "wait": 0},
            )
            assert status == 202
            header = receive_exactly(tracker, 8)
            (size,) = struct.unpack(">I", header[4:])
            written = decode_frame(header + receive_exactly(tracker, size + 4))
            assert isinstance(written, CommandFrame)
            assert written.messages[0].payload == b"getinfo"
        _, exposition = api(gateway, "/metrics")

    tcp = connections_by_worker(exposition)
    assert set(tcp) == {"1", "2"}
    assert sum(tcp.values()) == len(imeis)


def connections_by_worker(exposition: bytes) -> dict[str, float]:
    """The TCP connections each worker holds, by its number, as the
    metrics of ``/metrics`` say."""
    return {
        sample.labels["worker"]: sample.value
        for family in text_string_to_metric_families(exposition.decode())
        for sample in family.samples
        if sample.name == "teltotwist_connections"
        and sample.labels["transport"] == "tcp"
    }


def test_trackers_connecting_at_once_are_shared_evenly_by_the_workers(
    tmp_path: Path,
) -> None:
    with two_workers(tmp_path) as gateway, ExitStack() as trackers:
        # As trackers back from a cell outage do: all connect at once.
        connecting = [trackers.enter_context(socket.socket()) for _ in range(200)]
        for tracker in connecting:
            tracker.setblocking(False)
            tracker.connect_ex(("127.0.0.1", gateway.twistd.port))
        for imei, tracker in enumerate(connecting, FIRST_IMEI):
            tracker.settimeout(10)
            tracker.sendall(encode_login(str(imei)))
        for tracker in connecting:
            assert receive_exactly(tracker, 1) == b"\x01"
        _, exposition = api(gateway, "/metrics")

    # A tracker port for each worker: the kernel spreads the connections by
    # a hash of their addresses, about half each.
    tcp = connections_by_worker(exposition)
    assert sum(tcp.values()) == 200
    assert min(tcp.values()) >= 70, tcp


def holder(client: socket.socket, pids: list[int], seconds: float = 10) -> int:
    """Which worker accepted *client*'s connection (as ``ss`` tells)."""
    local = f"127.0.0.1:{client.getsockname()[1]}"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        listed = subprocess.run(
            ["ss", "-tnpH", "state", "established"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for line in listed.splitlines():
            fields = line.split()
            if len(fields) > 3 and fields[3] == local:
                found = {int(pid) for pid in re.findall(r"pid=(\d+)", line)}
                if found & set(pids):
                    return (found & set(pids)).pop()
        time.sleep(0.05)
    raise AssertionError(f"no worker holds {local}")


def test_a_second_login_is_refused_by_either_worker(tmp_path: Path) -> None:
    imei = FIRST_IMEI
    with two_workers(tmp_path) as gateway:
        pids = gateway.worker_pids()
        with logged_in(gateway.twistd.port, imei) as first:
            held_by = holder(first, pids)
            for _ in range(50):
                with socket.create_connection(
                    ("127.0.0.1", gateway.twistd.port), timeout=10
                ) as second:
                    other = holder(second, pids) != held_by
                    second.sendall(encode_login(str(imei)))
                    assert receive_exactly(second, 1) == b"\x00"
                if other:
                    break
            else:
                pytest.fail("every second login went to the first one's worker")

            # The first connection goes on.
            first.sendall(frame(1_700_000_001_000))
            assert receive_exactly(first, 4) == tcp_ack(1)


def test_a_command_parked_by_the_workers_outlasts_a_restart_of_the_gateway(
    tmp_path: Path,
) -> None:
    imei = FIRST_IMEI
    with two_workers(tmp_path) as gateway:
        status, body = api(
            gateway,
            f"/v1/trackers/{imei}/commands",
            {"command": "getinfo", "ttl": 3600, "wait": 0},
        )
        assert status == 202, body
        gateway.twistd.process.send_signal(signal.SIGTERM)
        assert gateway.twistd.process.wait(timeout=60) == -signal.SIGTERM

    with (
        two_workers(tmp_path) as gateway,
        socket.create_connection(("127.0.0.1", gateway.twistd.port), 10) as tracker,
    ):
        tracker.sendall(encode_login(str(imei)))
        assert receive_exactly(tracker, 1) == b"\x01"
        header = receive_exactly(tracker, 8)
        (size,) = struct.unpack(">I", header[4:])
        written = decode_frame(header + receive_exactly(tracker, size + 4))

    assert isinstance(written, CommandFrame)
    assert written.messages[0].payload == b"getinfo"


def command_written(tracker: socket.socket) -> CommandFrame:
    """The command frame the gateway writes to *tracker* next."""
    header = receive_exactly(tracker, 8)
    (size,) = struct.unpack(">I", header[4:])
    written = decode_frame(header + receive_exactly(tracker, size + 4))
    assert isinstance(written, CommandFrame)
    return written


def test_a_command_queued_at_a_worker_goes_where_its_tracker_logs_in_next(
    tmp_path: Path,
) -> None:
    imei = FIRST_IMEI
    with two_workers(tmp_path) as gateway:
        pids = gateway.worker_pids()
        # Logged in, and gone before the quiet spell lets the command go.
        with socket.create_connection(("127.0.0.1", gateway.twistd.port), 10) as first:
            first.sendall(encode_login(str(imei)))
            assert receive_exactly(first, 1) == b"\x01"
            left = holder(first, pids)
            status, body = api(
                gateway,
                f"/v1/trackers/{imei}/commands",
                {"command": "getinfo", "ttl": 3600, "wait": 0},
            )
            assert status == 202 and json.loads(body)["status"] == "queued", body
        for _ in range(50):
            with socket.create_connection(
                ("127.0.0.1", gateway.twistd.port), timeout=10
            ) as tracker:
                if holder(tracker, pids) == left:
                    continue
                tracker.sendall(encode_login(str(imei)))
                assert receive_exactly(tracker, 1) == b"\x01"
                written = command_written(tracker)
                break
        else:
            pytest.fail("every login went to the first one's worker")

    assert written.messages[0].payload == b"getinfo"


def test_a_killed_worker_is_restarted_and_its_trackers_acked_again(
    tmp_path: Path,
) -> None:
    with two_workers(tmp_path) as gateway:
        first, second = gateway.worker_pids()
        fleet = Fleet(gateway.twistd.port, 20)
        fleet.wait_for_acks(100)
        os.kill(first, signal.SIGKILL)
        gateway.wait_for(r"Worker 1 \(pid \d+\) ended after [\d.]+ s: (signal 9);")
        restarted = int(gateway.wait_for(r"Worker 1 started \(pid (\d+)\)", 2)[1])
        before = len(fleet.acked)
        fleet.wait_for_acks(before + 200)
        acked = fleet.stop()
        # The new worker 1 takes trackers too.
        for attempt in range(100):
            with logged_in(gateway.twistd.port, FIRST_IMEI + 100 + attempt) as new:
                if holder(new, [second, restarted]) == restarted:
                    break
        else:
            pytest.fail("the restarted worker took no tracker")
        gateway.twistd.process.send_signal(signal.SIGTERM)
        gateway.twistd.process.wait(timeout=60)

    assert fleet.reconnects > 0
    assert restarted != first
    filed = gateway.filed()
    assert acked <= filed[1] | filed[2]


def test_sigterm_drains_every_worker_and_keeps_every_acked_record(
    tmp_path: Path,
) -> None:
    with two_workers(tmp_path) as gateway:
        pids = gateway.worker_pids()
        fleet = Fleet(gateway.twistd.port, 20)
        fleet.wait_for_acks(200)
        gateway.twistd.process.send_signal(signal.SIGTERM)
        status = gateway.twistd.process.wait(timeout=60)
        acked = fleet.stop()

    assert status == -signal.SIGTERM, gateway.log
    assert "Server Shut Down." in gateway.log
    assert not [pid for pid in pids if alive(pid)]
    filed = gateway.filed()
    assert acked <= filed[1] | filed[2]


def test_a_sighup_to_the_parent_reaches_every_worker(tmp_path: Path) -> None:
    with two_workers(tmp_path) as gateway:
        gateway.twistd.process.send_signal(signal.SIGHUP)

        # Each worker's lines name it.
        reloaded = gateway.wait_for(r"\[(w\d) teltotwist.tap#info\] SIGHUP", 2)
        assert sorted(reloaded) == ["w1", "w2"]


def test_workers_end_when_their_parent_is_killed(tmp_path: Path) -> None:
    with two_workers(tmp_path) as gateway:
        pids = gateway.worker_pids()
        gateway.twistd.process.kill()
        gateway.twistd.process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while any(alive(pid) for pid in pids):
            assert time.monotonic() < deadline, f"orphans: {pids}\n{gateway.log}"
            time.sleep(0.1)


def test_a_worker_that_cannot_start_stops_the_gateway_logged_to_its_file(
    tmp_path: Path,
) -> None:
    # Worker 1 cannot open its file; worker 2 runs.
    (tmp_path / "records.w1.jsonl").mkdir()
    started = time.monotonic()
    result = subprocess.run(
        [
            str(TWISTD),
            "--nodaemon",
            "--pidfile=",
            "--logfile=gateway.log",
            "teltonika",
            "--port",
            "tcp:0:interface=127.0.0.1",
            "--sink",
            "file:records.jsonl",
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    log = (tmp_path / "gateway.log").read_text()

    assert result.returncode == 1, log
    assert time.monotonic() - started < 60
    # Every worker's lines are in the file, its standard error's too.
    assert re.search(
        r"\[w2 teltotwist.gateway.service.GatewayService#info\] Listen", log
    )
    assert log.count("[w1 stderr] IsADirectoryError: ") == 5
    assert re.search(
        r"#error\] Worker 1 cannot start: it ended 5 times in a row within 60 s"
        r" of its start \((exit status 1 after [\d.]+ s(; )?){5}\)",
        log,
    )
    (pid,) = re.findall(r"Worker 2 started \(pid (\d+)\)", log)
    assert f"Worker 2 (pid {pid}) stopped" in log
    assert not alive(int(pid))
    assert not result.stdout


def test_a_port_workers_cannot_share_is_refused_at_start(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(TWISTD),
            "--nodaemon",
            "--pidfile=",
            "teltonika",
            "--workers",
            "2",
            "--port",
            f"unix:{tmp_path / 'trackers.sock'}",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    assert "worker processes share tcp:, tcp6:, ssl: and haproxy:tcp: ports" in (
        result.stdout + result.stderr
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("file:records.jsonl", "file:records.w2.jsonl"),
        ("file:/var/lib/teltotwist/records", "file:/var/lib/teltotwist/records.w2"),
        ("amqp:amqp://broker/", "amqp:amqp://broker/"),
        ("log", "log"),
    ],
)
def test_each_worker_has_a_file_of_its_own(spec: str, expected: str) -> None:
    assert worker_sink_spec(spec, 2) == expected


class EventSource:
    """A live stream of the API over a raw connection (any worker may
    serve it), read as Server-Sent Events."""

    def __init__(self, gateway: Gateway, path: str) -> None:
        (base,) = gateway.wait_for(r"HTTP API on (http://127.0.0.1:\d+/)")
        port = int(base.rstrip("/").rsplit(":", 1)[1])
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.socket.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {TOKEN}\r\n\r\n".encode()
        )
        self._file = self.socket.makefile("rb")
        status = self._file.readline()
        assert b" 200 " in status, status
        while self._file.readline().strip():
            pass  # the headers

    def next(self, name: str) -> Any:
        """The data of the next event named *name* (chunked framing and
        other events skipped)."""
        event = ""
        for raw in self._file:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: ") and event == name:
                return json.loads(line[len("data: ") :])
        raise AssertionError(f"the stream ended before a {name} event")

    def close(self) -> None:
        self._file.close()
        self.socket.close()


def member_pid(member: str) -> int:
    """The pid of a worker from its member id (``HOST:PID/wN``)."""
    return int(member.rsplit(":", 1)[1].split("/", maxsplit=1)[0])


def test_either_worker_serves_the_live_view_of_every_worker(tmp_path: Path) -> None:
    with two_workers(tmp_path) as gateway, ExitStack() as opened:
        pids = gateway.worker_pids()
        held_by: dict[int, int] = {}
        trackers: dict[int, socket.socket] = {}
        while set(held_by.values()) != set(pids):
            assert len(trackers) < 100, "one worker got every tracker"
            imei = FIRST_IMEI + len(trackers)
            trackers[imei] = opened.enter_context(logged_in(gateway.twistd.port, imei))
            held_by[imei] = holder(trackers[imei], pids)
        served: set[int] = set()
        for _ in range(100):  # the kernel picks a worker for each stream
            with ExitStack() as streams:
                served |= watched_elsewhere(gateway, streams, held_by, trackers)
            if served == set(pids):
                break

    assert served == set(pids)


def watched_elsewhere(
    gateway: Gateway,
    streams: ExitStack,
    held_by: dict[int, int],
    trackers: dict[int, socket.socket],
) -> set[int]:
    """Opens a stream of the trackers, which must list every tracker with
    its worker, then one of the traffic of a tracker the worker serving the
    first does not hold; the worker serving that one, when another worker
    holds its tracker and its traffic came (else none)."""
    pids = sorted(set(held_by.values()))
    roster = EventSource(gateway, "/v1/live/trackers")
    streams.callback(roster.close)
    trackers_listed = roster.next("trackers")["trackers"]
    assert {
        int(tracker["imei"]): member_pid(tracker["member"])
        for tracker in trackers_listed
    } == held_by
    serving = holder(roster.socket, pids)
    imei = next(i for i, pid in held_by.items() if pid != serving)
    traffic = EventSource(gateway, f"/v1/live/trackers/{imei}/traffic")
    streams.callback(traffic.close)
    serving = holder(traffic.socket, pids)
    if serving == held_by[imei]:
        return set()
    assert member_pid(traffic.next("holder")["member"]) == held_by[imei]
    trackers[imei].sendall(frame(1_700_000_100_000 + serving))
    assert receive_exactly(trackers[imei], 4) == tcp_ack(1)
    data = traffic.next("traffic")
    while data["kind"] != "data":
        data = traffic.next("traffic")
    assert (data["imei"], data["size"]) == (str(imei), len(frame(0)))
    return {serving}
