# -*- test-case-name: tests.test_bench_hostile -*-
"""The gateway under hostile traffic: its memory, and whether a real tracker
still gets in, attack by attack.

For each attack it starts a fresh gateway (``python -m twisted teltonika`` on
its defaults, with a file sink, a UDP port and ``--allow-imeis``) on loopback,
and reads the server's resident memory before the attack, at its peak
(``VmHWM``) and after it. All through the attack a real tracker, connecting
from 127.0.0.2 while the attack comes from 127.0.0.1, connects, logs in and
sends one Codec 8 packet, over and over; each try counts as failed unless its
ACK arrives within ``--probe-timeout``. The attacks:

a. UDP layout-shape flood: Codec 8 datagrams, each record with an IO-group
   shape never seen before, from IMEIs not on the allowlist or implausible.
b. TCP layout-shape flood: Codec 8 Extended frames of records with new
   shapes, from a logged-in insider whose IMEI is on the allowlist.
c. Unfinished-frame trickle: logged-in connections each announce a 64 KiB
   frame and send it a KiB at a time, never finishing it.
d. Connection flood: 12,000 connections that never log in.
e. UDP flood with a stalled sink: real datagrams from an allowed IMEI while a
   webhook sink holds every request but the real tracker's unanswered.

Targets: RSS growth under 50 MiB, and every try of the tracker ACKed within
2 s. Run from a checkout (``PYTHONPATH=$PWD``) or with teltotwist installed:

    python bench/bench_hostile.py                 # all attacks, full scale
    python bench/bench_hostile.py --attacks c,d --duration 10 --json

Only loopback addresses are used. Every socket, thread, process and temporary
file is closed or removed on the way out, error or not.
"""

from __future__ import annotations

import argparse
import errno
import itertools
import json
import multiprocessing
import multiprocessing.connection
import multiprocessing.synchronize
import os
import re
import selectors
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from harness import (
    BASE_TIME_MS,
    BenchError,
    ensure_descriptors,
    fix_record,
    global_timeout,
    logged_port,
    receive_exactly,
    start_logged,
    terminate,
    tracker_frame,
    tracker_record,
)

from teltotwist.cli.arguments import positive
from teltotwist.codec import (
    DEFAULT_MAX_FRAME_SIZE,
    AvlPacket,
    AvlRecord,
    Codec,
    UdpDatagram,
    encode_avl_payload,
    encode_frame,
    encode_login,
    encode_udp,
    io_elements,
    tcp_ack,
)
from teltotwist.tap import LISTEN_BACKLOG

MiB = 1024 * 1024
RSS_GROWTH_TARGET = 50 * MiB
ACK_TARGET = 2.0
"""Seconds within which the real tracker must be ACKed during every attack."""

GATEWAY_HOST = "127.0.0.1"
FLOOD_SOURCE = "127.0.0.1"
TRACKER_SOURCE = "127.0.0.2"

TRACKER_IMEI = "356307042441013"
INSIDER_IMEI = "356307040000001"
"""The logged-in sender of attack b, on the allowlist."""
STALLED_IMEI = "356307040000002"
"""The allowed UDP sender of attack e."""
FIRST_TRICKLE_IMEI = 356_307_041_000_000
FIRST_STRANGER_IMEI = 352_000_000_000_000
"""Plausible IMEIs that are not on the allowlist (attack a)."""
IMPLAUSIBLE_IMEI = "1234567"
"""Digits, but too short for an IMEI (attack a)."""

SHAPE_ELEMENTS = 200
"""IO elements per shaped record: the wider a shape, the more its struct costs."""
TCP_FRAME_BUDGET = 60_000
"""Bytes of records per attack-b frame, under the 64 KiB frame cap."""
TRICKLE_CHUNK = 1024
LOGIN_ACCEPTED = b"\x01"
PING = b"\xff"
"""The keep-alive byte a tracker may send at any time, even before its login."""
SPARE_DESCRIPTORS = 256


@dataclass(frozen=True)
class Scale:
    """How big and how long each attack is."""

    duration: float
    settle: float
    probe_interval: float
    probe_timeout: float
    window: int
    udp_datagrams: int
    tcp_shapes: int
    trickle_connections: int
    trickle_interval: float
    flood_connections: int
    stalled_datagrams: int


# Frames, built with the project's encoders ----------------------------------


def shapes(elements: int) -> Iterator[tuple[int, int, int, int]]:
    """Distinct IO shapes (1, 2, 4, 8-byte group counts) of *elements* in all."""
    for one in range(elements + 1):
        for two in range(elements + 1 - one):
            for four in range(elements + 1 - one - two):
                yield one, two, four, elements - one - two - four


def shaped_record(shape: tuple[int, int, int, int], timestamp_ms: int) -> AvlRecord:
    """A record whose IO groups hold *shape* elements, ids 1, 2, ..."""
    ids = itertools.count(1)
    groups = [{next(ids): 0 for _ in range(count)} for count in shape]
    io, layout = io_elements(io1=groups[0], io2=groups[1], io4=groups[2], io8=groups[3])
    return fix_record(timestamp_ms, io, layout)


def shape_datagrams() -> Iterator[bytes]:
    """Attack a: Codec 8 datagrams, a new shape each, from IMEIs not on the
    allowlist, every other one implausible."""
    for number, shape in enumerate(shapes(SHAPE_ELEMENTS)):
        imei = IMPLAUSIBLE_IMEI if number % 2 else str(FIRST_STRANGER_IMEI + number)
        packet = AvlPacket(Codec.CODEC8, (shaped_record(shape, BASE_TIME_MS),))
        yield encode_udp(UdpDatagram(number & 0xFFFF, number & 0xFF, imei, packet))


def shape_frames() -> Iterator[tuple[bytes, int]]:
    """Attack b: Codec 8E frames of records with new shapes, and their counts."""
    batch: list[AvlRecord] = []
    size = 0
    for number, shape in enumerate(shapes(SHAPE_ELEMENTS)):
        record = shaped_record(shape, BASE_TIME_MS + number)
        record_size = len(encode_avl_payload(AvlPacket(Codec.CODEC8E, (record,))))
        if batch and (size + record_size > TCP_FRAME_BUDGET or len(batch) == 255):
            yield encode_frame(AvlPacket(Codec.CODEC8E, tuple(batch))), len(batch)
            batch, size = [], 0
        batch.append(record)
        size += record_size


def unfinished_frame() -> bytes:
    """Attack c: a valid Codec 8E frame of exactly the default frame cap."""

    def frame(padding: int) -> bytes:
        io, layout = io_elements(iox={380: bytes(padding)})
        record = fix_record(BASE_TIME_MS, io, layout)
        return encode_frame(AvlPacket(Codec.CODEC8E, (record,)))

    return frame(DEFAULT_MAX_FRAME_SIZE - len(frame(0)))


def stalled_datagrams() -> Iterator[bytes]:
    """Attack e: real datagrams from an allowed IMEI, each with a new record."""
    for number in itertools.count():
        packet = AvlPacket(Codec.CODEC8, (tracker_record(number),))
        datagram = UdpDatagram(number & 0xFFFF, number & 0xFF, STALLED_IMEI, packet)
        yield encode_udp(datagram)


# The gateway process ---------------------------------------------------------


def read_memory(pid: int) -> tuple[int, int]:
    """VmRSS and VmHWM (the peak RSS so far) of process *pid*, in bytes."""
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    values = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.MULTILINE))
    if len(values) != 2:
        raise BenchError(f"no VmRSS/VmHWM for process {pid}")
    return int(values["VmRSS"]) * 1024, int(values["VmHWM"]) * 1024


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((GATEWAY_HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class Gateway:
    """``python -m twisted teltonika`` on loopback, on its default limits."""

    def __init__(self, workdir: Path, allowed: Sequence[str], sinks: Sequence[str]):
        allowlist = workdir / "allowed-imeis.txt"
        allowlist.write_text("".join(f"{imei}\n" for imei in allowed), "ascii")
        self.udp_port = _free_udp_port()
        self.log_path = workdir / "gateway.log"
        self.command = [
            sys.executable,
            "-m",
            "twisted",
            "--log-format=text",
            "teltonika",
            "--port",
            # The accept queue of a plain ``--port 5027``.
            f"tcp:0:interface={GATEWAY_HOST}:backlog={LISTEN_BACKLOG}",
            "--udp-port",
            str(self.udp_port),
            "--udp-interface",
            GATEWAY_HOST,
            "--allow-imeis",
            str(allowlist),
            "--sink",
            f"file:{workdir / 'records.jsonl'}",
        ]
        for sink in sinks:
            self.command += ["--sink", sink]
        self.process = start_logged(self.command, self.log_path)
        self.pid = self.process.pid
        self.port = 0

    def wait_until_listening(self, deadline: float) -> None:
        """Read the TCP port from the log once both listeners are up."""
        udp_line = f"TeltonikaUdpProtocol starting on {self.udp_port}"
        self.port = logged_port(
            self.process, self.log_path, deadline, "the gateway", udp_line
        )

    def memory(self) -> tuple[int, int]:
        """Its VmRSS and VmHWM; fails if it has exited."""
        if self.process.poll() is not None:
            raise BenchError(f"the gateway exited with {self.process.returncode}")
        return read_memory(self.pid)

    def stop(self) -> None:
        """SIGTERM, a grace period, then SIGKILL."""
        terminate(self.process, grace=15)


# The real tracker -------------------------------------------------------------


def _reason(error: Exception) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, OSError) and error.errno is not None:
        return errno.errorcode.get(error.errno, str(error.errno))
    return str(error)


class VisitError(Exception):
    """The real tracker did not get its packet ACKed; says at which step."""


def visit(port: int, number: int, timeout: float) -> None:
    """One visit of the real tracker: connect from 127.0.0.2, log in, send one
    packet, get it ACKed.

    :raises VisitError: naming the step and what went wrong.
    """
    step = "connect"
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.bind((TRACKER_SOURCE, 0))
            sock.connect((GATEWAY_HOST, port))
            step = "login"
            sock.sendall(encode_login(TRACKER_IMEI))
            reply = receive_exactly(sock, 1)
            if reply != LOGIN_ACCEPTED:
                raise ConnectionError(f"answered {reply.hex()}")
            step = "ACK"
            sock.sendall(tracker_frame(number))
            ack = receive_exactly(sock, 4)
            if ack != tcp_ack(1):
                raise ConnectionError(f"{ack.hex()}, not {tcp_ack(1).hex()}")
    except OSError as error:
        raise VisitError(f"{step}: {_reason(error)}") from error


@dataclass
class ProbeResults:
    """The real tracker's visits during one attack."""

    tries: int = 0
    failures: int = 0
    worst: float = 0.0
    """Seconds, from connecting to the ACK (or to the failure)."""
    reasons: Counter[str] = field(default_factory=Counter)


class TrackerProbe:
    """Visits of the real tracker every *interval* seconds, from a process of
    its own: a real tracker is a device of its own, and the attack's busy
    threads in this process must not delay its visits through the GIL."""

    def __init__(self, port: int, interval: float, timeout: float) -> None:
        context = multiprocessing.get_context("fork")
        self._stopping = context.Event()
        self._results, sender = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_visit_until_stopped,
            args=(port, interval, timeout, self._stopping, sender),
            name="tracker",
            daemon=True,
        )
        self._process.start()
        sender.close()

    def stop(self) -> ProbeResults:
        """Stop after the visit in progress; the results."""
        self._stopping.set()
        results: ProbeResults = self._results.recv()
        self._process.join()
        return results


def _visit_until_stopped(
    port: int,
    interval: float,
    timeout: float,
    stopping: multiprocessing.synchronize.Event,
    sender: multiprocessing.connection.Connection,
) -> None:
    results = ProbeResults()
    while not stopping.is_set():
        started = time.monotonic()
        try:
            visit(port, results.tries, timeout)
        except VisitError as failure:
            results.failures += 1
            results.reasons[str(failure)] += 1
        took = time.monotonic() - started
        results.tries += 1
        results.worst = max(results.worst, took)
        stopping.wait(max(0.0, interval - took))
    sender.send(results)


# Attack helpers ---------------------------------------------------------------


def connect_many(
    port: int,
    count: int,
    window: int,
    deadline: float,
    *,
    hello: Callable[[int], bytes],
    answer: bytes | None,
) -> tuple[list[socket.socket], int]:
    """Up to *count* connections from 127.0.0.1, at most *window* opening at
    once, each sending ``hello(n)`` and, unless *answer* is None, awaiting
    *answer*. The sockets that got so far, and how many failed.

    Sending at once matters: a connection the gateway's full accept queue
    dropped the handshake of is only completed by the client's next segment."""
    selector = selectors.DefaultSelector()
    pending: dict[socket.socket, int] = {}
    opened: list[socket.socket] = []
    failed = 0
    numbers = iter(range(count))
    exhausted = False
    try:
        while (pending or not exhausted) and time.monotonic() < deadline:
            while not exhausted and len(pending) < window:
                number = next(numbers, None)
                if number is None:
                    exhausted = True
                    break
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                try:
                    sock.bind((FLOOD_SOURCE, 0))
                    code = sock.connect_ex((GATEWAY_HOST, port))
                except OSError as error:
                    code = error.errno or errno.EIO
                if code not in (0, errno.EINPROGRESS):
                    sock.close()
                    failed += 1
                    continue
                selector.register(sock, selectors.EVENT_WRITE)
                pending[sock] = number
            for key, events in selector.select(timeout=0.2):
                ready = key.fileobj
                assert isinstance(ready, socket.socket)
                done = _advance(
                    ready,
                    events,
                    pending[ready],
                    selector=selector,
                    hello=hello,
                    answer=answer,
                )
                if done is None:
                    continue
                selector.unregister(ready)
                del pending[ready]
                if done:
                    opened.append(ready)
                else:
                    ready.close()
                    failed += 1
    finally:
        for sock in pending:
            sock.close()
        selector.close()
    return opened, failed


def _advance(
    sock: socket.socket,
    events: int,
    number: int,
    *,
    selector: selectors.BaseSelector,
    hello: Callable[[int], bytes],
    answer: bytes | None,
) -> bool | None:
    """Move a connection on: True when done, False when it failed, None while
    under way."""
    try:
        if events & selectors.EVENT_WRITE:
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                return False
            sock.send(hello(number))
            if answer is None:
                return True
            selector.modify(sock, selectors.EVENT_READ)
            return None
        return sock.recv(16) == answer
    except OSError:
        return False


def paced(items: Iterator[bytes], count: int, until: float) -> Iterator[bytes]:
    """*count* of *items*, spread evenly until *until* (monotonic)."""
    started = time.monotonic()
    spacing = max(0.0, until - started) / max(count, 1)
    for number, item in enumerate(itertools.islice(items, count)):
        delay = started + number * spacing - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if time.monotonic() >= until:
            return
        yield item


def send_datagrams(
    port: int, datagrams: Iterator[bytes], count: int, until: float
) -> int:
    """Send *count* datagrams from 127.0.0.1 until *until*; how many went."""
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((FLOOD_SOURCE, 0))
        for datagram in paced(datagrams, count, until):
            try:
                sock.sendto(datagram, (GATEWAY_HOST, port))
                sent += 1
            except OSError:  # the gateway's port may refuse for a while
                continue
    return sent


def close_all(sockets: Sequence[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


class StalledWebhook:
    """An HTTP server for the webhook sink that answers 204 to requests
    carrying the real tracker's IMEI and never answers any other one."""

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind((GATEWAY_HOST, 0))
        self._listener.listen(512)
        self._listener.setblocking(False)
        self.url = f"http://{GATEWAY_HOST}:{self._listener.getsockname()[1]}/hook"
        self.held = 0
        """Requests received and never answered."""
        self._buffers: dict[socket.socket, bytearray | None] = {}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="webhook", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select(timeout=0.2):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if sock is self._listener:
                        self._accept(selector)
                    else:
                        self._read(sock, selector)

    def _accept(self, selector: selectors.BaseSelector) -> None:
        try:
            connection, _ = self._listener.accept()
        except BlockingIOError:
            return
        connection.setblocking(False)
        self._buffers[connection] = bytearray()
        selector.register(connection, selectors.EVENT_READ)

    def _read(self, sock: socket.socket, selector: selectors.BaseSelector) -> None:
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            selector.unregister(sock)
            sock.close()
            del self._buffers[sock]
            return
        buffer = self._buffers[sock]
        if buffer is None:  # stalled: read and drop
            return
        buffer += data
        while (head_end := buffer.find(b"\r\n\r\n")) >= 0:
            length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", buffer[:head_end])
            end = head_end + 4 + (int(length.group(1)) if length else 0)
            if len(buffer) < end:
                return
            if TRACKER_IMEI.encode() in buffer[head_end:end]:
                sock.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
                del buffer[:end]
            else:
                self.held += 1
                self._buffers[sock] = None
                return

    def close(self) -> None:
        """Stop serving and close every connection."""
        self._stopping.set()
        self._thread.join()
        close_all(list(self._buffers))
        self._listener.close()


# The attacks --------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What an attack is aimed at: the gateway's process and ports."""

    pid: int
    port: int
    udp_port: int

    def descriptors(self) -> int:
        """How many files and sockets the gateway has open."""
        return len(os.listdir(f"/proc/{self.pid}/fd"))


AttackRun = Callable[[Target, Scale, float], str]
"""Runs an attack until the monotonic time given; a summary of what it sent."""


def udp_shape_flood(target: Target, scale: Scale, until: float) -> str:
    sent = send_datagrams(
        target.udp_port, shape_datagrams(), scale.udp_datagrams, until
    )
    return f"{sent:,} datagrams, as many new shapes"


def tcp_shape_flood(target: Target, scale: Scale, until: float) -> str:
    frames = records = 0
    outcome = "ACKed"
    started = time.monotonic()
    spacing = max(0.0, until - started) / scale.tcp_shapes
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.bind((FLOOD_SOURCE, 0))
        sock.connect((GATEWAY_HOST, target.port))
        sock.sendall(encode_login(INSIDER_IMEI))
        if receive_exactly(sock, 1) != LOGIN_ACCEPTED:
            raise BenchError("the gateway refused the insider's login")
        for frame, count in shape_frames():
            time.sleep(max(0.0, started + records * spacing - time.monotonic()))
            if records >= scale.tcp_shapes or time.monotonic() >= until:
                break
            try:
                sock.sendall(frame)
                if receive_exactly(sock, 4) != tcp_ack(count):
                    outcome = "stopped: wrong ACK"
                    break
            except OSError as error:
                outcome = f"stopped: {_reason(error)}"
                break
            frames += 1
            records += count
    return f"{frames:,} frames, {records:,} new shapes, {outcome}"


def trickle(target: Target, scale: Scale, until: float) -> str:
    frame = unfinished_frame()
    sockets, failed = connect_many(
        target.port,
        scale.trickle_connections,
        scale.window,
        until,
        hello=lambda number: encode_login(str(FIRST_TRICKLE_IMEI + number)),
        answer=LOGIN_ACCEPTED,
    )
    sent = dict.fromkeys(sockets, 0)
    try:
        while time.monotonic() < until:
            started = time.monotonic()
            for sock, offset in list(sent.items()):
                end = 8 if offset == 0 else min(offset + TRICKLE_CHUNK, len(frame) - 1)
                if end <= offset:
                    continue
                try:
                    sent[sock] += sock.send(frame[offset:end])
                except BlockingIOError:
                    continue
                except OSError:
                    del sent[sock]
            time.sleep(max(0.0, started + scale.trickle_interval - time.monotonic()))
        still_open = len(sent)
        held = sum(sent.values())
        descriptors = target.descriptors()
    finally:
        close_all(sockets)
    return (
        f"{len(sockets):,} logged in ({failed:,} failed), {still_open:,} kept, "
        f"{held / MiB:,.0f} MiB of unfinished frames; the gateway had "
        f"{descriptors:,} descriptors open at the end"
    )


def _ping(number: int) -> bytes:
    return PING


def connection_flood(target: Target, scale: Scale, until: float) -> str:
    first, failed = connect_many(
        target.port,
        scale.flood_connections,
        scale.window,
        until,
        hello=_ping,
        answer=None,
    )
    held = set(first)
    opened = len(held)
    closed_by_gateway = 0
    try:
        with selectors.DefaultSelector() as selector:
            for sock in held:
                selector.register(sock, selectors.EVENT_READ)
            while (remaining := until - time.monotonic()) > 0:
                closed = [key.fileobj for key, _ in selector.select(min(remaining, 1))]
                for gone in closed:
                    assert isinstance(gone, socket.socket)
                    selector.unregister(gone)
                    held.discard(gone)
                    gone.close()
                closed_by_gateway += len(closed)
                # Those closed are opened again, once a second at most.
                more, more_failed = connect_many(
                    target.port,
                    len(closed),
                    scale.window,
                    until,
                    hello=_ping,
                    answer=None,
                )
                for sock in more:
                    selector.register(sock, selectors.EVENT_READ)
                held.update(more)
                opened += len(more)
                failed += more_failed
                time.sleep(max(0.0, min(1.0, until - time.monotonic())))
        descriptors = target.descriptors()
    finally:
        close_all(list(held))
    return (
        f"{opened:,} connections opened, {closed_by_gateway:,} closed by the "
        f"gateway, {failed:,} failed; the gateway had {descriptors:,} "
        "descriptors open at the end"
    )


def stalled_sink_flood(target: Target, scale: Scale, until: float) -> str:
    datagrams = stalled_datagrams()
    sent = send_datagrams(target.udp_port, datagrams, scale.stalled_datagrams, until)
    return f"{sent:,} datagrams"


@dataclass(frozen=True)
class Attack:
    """One attack: its key, what it is, who it logs in as, and its sinks."""

    key: str
    title: str
    run: AttackRun
    allowed: Callable[[Scale], list[str]] = lambda scale: []
    stalled_webhook: bool = False


ATTACKS = {
    attack.key: attack
    for attack in [
        Attack("a", "UDP layout-shape flood", udp_shape_flood),
        Attack(
            "b",
            "TCP layout-shape flood (insider)",
            tcp_shape_flood,
            lambda scale: [INSIDER_IMEI],
        ),
        Attack(
            "c",
            "unfinished-frame trickle",
            trickle,
            lambda scale: [
                str(FIRST_TRICKLE_IMEI + n) for n in range(scale.trickle_connections)
            ],
        ),
        Attack("d", "connection flood, no login", connection_flood),
        Attack(
            "e",
            "UDP flood, stalled sink",
            stalled_sink_flood,
            lambda scale: [STALLED_IMEI],
            stalled_webhook=True,
        ),
    ]
}


# Running and reporting ---------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one attack did to the gateway, and what the tracker saw."""

    attack: str
    title: str
    load: str
    rss_before: int
    rss_peak: int
    rss_after: int
    tracker_tries: int
    tracker_failures: int
    tracker_worst: float
    tracker_failure_reasons: dict[str, int]

    @property
    def rss_growth(self) -> int:
        return self.rss_peak - self.rss_before

    @property
    def memory_met(self) -> bool:
        return self.rss_growth < RSS_GROWTH_TARGET

    @property
    def tracker_met(self) -> bool:
        return (
            self.tracker_tries > 0
            and not self.tracker_failures
            and self.tracker_worst <= ACK_TARGET
        )


def run_attack(attack: Attack, scale: Scale, deadline: float) -> Outcome:
    """Start a gateway, attack it while the tracker visits, and measure."""
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-hostile-{attack.key}-"))
    webhook = StalledWebhook() if attack.stalled_webhook else None
    gateway: Gateway | None = None
    probe: TrackerProbe | None = None
    try:
        sinks = [f"webhook:{webhook.url}"] if webhook is not None else []
        allowed = [TRACKER_IMEI, *attack.allowed(scale)]
        gateway = Gateway(workdir, allowed, sinks)
        gateway.wait_until_listening(min(deadline, time.monotonic() + 60))
        try:
            visit(gateway.port, 0, scale.probe_timeout)
        except VisitError as error:
            raise BenchError(
                f"the tracker cannot get in before the attack: {error}"
            ) from error
        time.sleep(scale.settle)
        before, _ = gateway.memory()
        probe = TrackerProbe(gateway.port, scale.probe_interval, scale.probe_timeout)
        until = min(deadline, time.monotonic() + scale.duration)
        load = attack.run(
            Target(gateway.pid, gateway.port, gateway.udp_port), scale, until
        )
        time.sleep(max(0.0, until - time.monotonic()))
        results = probe.stop()
        probe = None
        if webhook is not None:
            load += f", {webhook.held:,} webhook requests held"
        time.sleep(scale.settle)
        after, peak = gateway.memory()
        return Outcome(
            attack.key,
            attack.title,
            load,
            before,
            peak,
            after,
            results.tries,
            results.failures,
            results.worst,
            dict(results.reasons),
        )
    finally:
        if probe is not None:
            probe.stop()
        if gateway is not None:
            gateway.stop()
        if webhook is not None:
            webhook.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _mib(size: int) -> str:
    return f"{size / MiB:,.1f}"


def report_table(outcomes: Sequence[Outcome]) -> str:
    """The outcomes side by side, with the targets."""
    lines = [
        f"Targets: RSS growth < {RSS_GROWTH_TARGET // MiB} MiB; every try of the "
        f"tracker (from {TRACKER_SOURCE}) ACKed within {ACK_TARGET:g} s.",
        "",
        f"{'attack':<36} {'RSS MiB: before':>15} {'peak':>7} {'after':>7} "
        f"{'growth':>7}  {'tries':>5} {'failed':>6} {'worst s':>7}  verdict",
    ]
    for outcome in outcomes:
        verdicts = [
            "memory ok" if outcome.memory_met else "MEMORY",
            "tracker ok" if outcome.tracker_met else "TRACKER",
        ]
        lines.append(
            f"{outcome.attack + '. ' + outcome.title:<36} "
            f"{_mib(outcome.rss_before):>15} {_mib(outcome.rss_peak):>7} "
            f"{_mib(outcome.rss_after):>7} {_mib(outcome.rss_growth):>7}  "
            f"{outcome.tracker_tries:>5} {outcome.tracker_failures:>6} "
            f"{outcome.tracker_worst:>7.2f}  {', '.join(verdicts)}"
        )
    lines.append("")
    for outcome in outcomes:
        lines.append(f"{outcome.attack}. {outcome.load}")
        if outcome.tracker_failure_reasons:
            reasons = ", ".join(
                f"{reason} x{count}"
                for reason, count in sorted(outcome.tracker_failure_reasons.items())
            )
            lines.append(f"   tracker failures: {reasons}")
    return "\n".join(lines)


def report_json(outcomes: Sequence[Outcome], scale: Scale) -> str:
    """The outcomes as one JSON document."""
    return json.dumps(
        {
            "targets": {
                "rss_growth_bytes": RSS_GROWTH_TARGET,
                "tracker_ack_seconds": ACK_TARGET,
            },
            "scale": asdict(scale),
            "attacks": [
                {
                    **asdict(outcome),
                    "rss_growth": outcome.rss_growth,
                    "memory_met": outcome.memory_met,
                    "tracker_met": outcome.tracker_met,
                }
                for outcome in outcomes
            ],
        },
        indent=2,
    )


def _attack_keys(text: str) -> list[str]:
    keys = [key.strip() for key in text.split(",") if key.strip()]
    unknown = sorted(set(keys) - ATTACKS.keys())
    if unknown or not keys:
        raise argparse.ArgumentTypeError(
            f"attacks are some of {','.join(ATTACKS)}, not {text!r}"
        )
    return keys


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--attacks",
        type=_attack_keys,
        default=list(ATTACKS),
        help="comma-separated, of a,b,c,d,e (default: all)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON, not a table")
    number = positive(int)
    seconds = positive(float)
    scale = parser.add_argument_group("scale")
    scale.add_argument("--duration", type=seconds, default=30.0, help="s per attack")
    scale.add_argument(
        "--settle", type=seconds, default=3.0, help="s before measuring, each side"
    )
    scale.add_argument("--probe-interval", type=seconds, default=0.5)
    scale.add_argument(
        "--probe-timeout", type=seconds, default=5.0, help="s a visit may take"
    )
    scale.add_argument(
        "--window", type=number, default=500, help="most connections opening at once"
    )
    scale.add_argument("--udp-datagrams", type=number, default=10_000, help="(a)")
    scale.add_argument("--tcp-shapes", type=number, default=10_000, help="(b)")
    scale.add_argument("--trickle-connections", type=number, default=2_000, help="(c)")
    scale.add_argument(
        "--trickle-interval", type=seconds, default=0.25, help="s between KiBs (c)"
    )
    scale.add_argument("--flood-connections", type=number, default=12_000, help="(d)")
    scale.add_argument("--stalled-datagrams", type=number, default=20_000, help="(e)")
    scale.add_argument(
        "--timeout", type=seconds, default=900.0, help="s for the whole run"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen attacks; 0 if every target is met, 1 if not, 2 on error."""
    arguments = parse_arguments(argv)
    scale = Scale(
        **{item.name: getattr(arguments, item.name) for item in fields(Scale)}
    )
    outcomes: list[Outcome] = []
    try:
        needed = SPARE_DESCRIPTORS + max(
            scale.flood_connections, scale.trickle_connections
        )
        ensure_descriptors(needed)
        with global_timeout(arguments.timeout, grace=60) as deadline:
            for key in arguments.attacks:
                attack = ATTACKS[key]
                print(f"attack {key}: {attack.title} ...", file=sys.stderr)
                outcomes.append(run_attack(attack, scale, deadline))
    except (BenchError, OSError) as error:
        print(f"bench_hostile: {error}", file=sys.stderr)
        return 2
    print(report_json(outcomes, scale) if arguments.json else report_table(outcomes))
    met = all(outcome.memory_met and outcome.tracker_met for outcome in outcomes)
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
