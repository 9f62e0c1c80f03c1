"""The least a durable Twisted server that files the gateway's records does.

It accepts every login and finds each frame's end from its length field;
each frame is CRC-checked, decoded and made into the gateway's items
(``tracker_records``: the IO named as the gateway names it for a tracker of
no known model, each record's id and JSON line; in C in a build with
``TELTOTWIST_COMPILE=1``), and its JSON lines kept. Once per reactor turn the
kept lines are appended to the file and fsynced, in the reactor's thread,
and then every frame of that turn is ACKed with its record count, straight
to the socket as the gateway does. Nothing else: no session, dispatcher,
Deferreds, timeouts, metrics or registry, and no care for bad input.
``bench_durable.py`` drives it like the real servers (the ``records-tw``
rows): what the gateway's records cost a Twisted server before any of the
gateway's own plumbing.

With ``--processes N`` it runs in N processes sharing the port, each on a
socket of its own (``SO_REUSEPORT``), as the gateway's ``--workers N`` do;
process *k* files where worker *k*'s file sink would.

    python bench/recordsfloor.py [--processes N] PORT FILE
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from ackonly import frame_spans, login_end
from harness import worker_file
from twisted.internet.interfaces import (
    IAddress,
    IReactorCore,
    IReactorSocket,
    IReactorTime,
)
from twisted.internet.protocol import Protocol, ServerFactory

from teltotwist.catalogue import Naming, load_catalogue
from teltotwist.codec import AvlPacket, check_envelope
from teltotwist.codec.frame import decode_checked_frame
from teltotwist.gateway.immediate import ImmediateWriter
from teltotwist.gateway.items import tracker_records

HOST = "127.0.0.1"
BACKLOG = 4096
LOGIN_REPLY = b"\x01"


class Filer:
    """Keeps the JSON lines and ACKs of a reactor turn; at its end, appends
    the lines to *path*, fsyncs it, and then sends the ACKs."""

    def __init__(self, path: Path, clock: IReactorTime) -> None:
        self._descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._clock = clock
        self._lines: list[bytes] = []
        self._acks: list[tuple[ImmediateWriter, bytes]] = []
        self._due = False

    def keep(self, lines: bytes, writer: ImmediateWriter, ack: bytes) -> None:
        """File *lines* at the end of this turn, then send *ack* to *writer*."""
        self._lines.append(lines)
        self._acks.append((writer, ack))
        if not self._due:
            self._due = True
            self._clock.callLater(0, self._file)

    def _file(self) -> None:
        self._due = False
        data = memoryview(b"".join(self._lines))
        while data:
            data = data[os.write(self._descriptor, data) :]
        os.fsync(self._descriptor)
        self._lines.clear()
        acks, self._acks = self._acks, []
        for writer, ack in acks:
            writer.write(ack)


class RecordsFloor(Protocol):
    """One tracker: its login, then its frames filed by *filer*."""

    def __init__(self, filer: Filer, naming: Naming) -> None:
        self._filer = filer
        self._naming = naming
        self._buffer = b""
        self._imei: str | None = None
        self._writer: ImmediateWriter | None = None

    def connectionMade(self) -> None:
        assert self.transport is not None
        self._writer = ImmediateWriter(self.transport)

    def dataReceived(self, data: bytes) -> None:
        writer = self._writer
        assert writer is not None
        buffer = self._buffer + data if self._buffer else data
        if self._imei is None:
            end = login_end(buffer)
            if end is None:
                self._buffer = buffer
                return
            self._imei = buffer[2:end].decode("ascii")
            buffer = buffer[end:]
            writer.write(LOGIN_REPLY)
        spans, rest = frame_spans(buffer)
        for start, end in spans:
            frame = buffer[start:end]
            packet = decode_checked_frame(frame, check_envelope(frame))
            assert isinstance(packet, AvlPacket), "not an AVL frame"
            items = tracker_records(
                self._imei, packet, time.time_ns() // 1_000_000, self._naming
            )
            lines = b"".join([item.line + b"\n" for item in items])
            self._filer.keep(lines, writer, len(items).to_bytes(4))
        self._buffer = buffer[rest:]


class RecordsFloorFactory(ServerFactory):
    """Makes each tracker's :class:`RecordsFloor`, all filing with *filer*."""

    def __init__(self, filer: Filer, naming: Naming) -> None:
        self._filer = filer
        self._naming = naming

    def buildProtocol(self, addr: IAddress | None) -> RecordsFloor:
        protocol = RecordsFloor(self._filer, self._naming)
        protocol.factory = self
        return protocol


def process_file(path: Path, number: int, processes: int) -> Path:
    """Where process *number* (from 1) of *processes* files: *path* alone,
    else worker *number*'s file beside it."""
    if processes == 1:
        return path
    return worker_file(path, number)


def listening_socket(port: int) -> socket.socket:
    """A socket listening on *port*, which other sockets may share."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((HOST, port))
    listener.listen(BACKLOG)
    listener.setblocking(False)
    return listener


def serve(listener: socket.socket, path: Path, children: Sequence[int] = ()) -> None:
    """Serve on *listener*, filing into *path*, until told to stop; then
    stop the *children* processes and wait for them."""
    # Imported once forked: each process has its own reactor.
    from twisted.internet import reactor  # noqa: PLC0415

    naming = load_catalogue().naming(None)
    filer = Filer(path, cast(IReactorTime, reactor))
    factory = RecordsFloorFactory(filer, naming)
    cast(IReactorSocket, reactor).adoptStreamPort(
        listener.fileno(), socket.AF_INET, factory
    )
    listener.close()  # the reactor holds a copy

    def stop_children() -> None:
        for child in children:
            os.kill(child, signal.SIGTERM)
        for child in children:
            os.waitpid(child, 0)

    core = cast(IReactorCore, reactor)
    core.addSystemEventTrigger("before", "shutdown", stop_children)
    core.run()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--processes", type=int, default=1, metavar="N", help="default 1"
    )
    parser.add_argument("port", type=int)
    parser.add_argument("file", type=Path)
    arguments = parser.parse_args(argv)
    processes = arguments.processes
    if processes < 1:
        parser.error(f"--processes must be at least 1, not {processes}")
    # Every socket listens before any process serves: no early tracker
    # lands on the first process alone.
    listeners = [listening_socket(arguments.port) for _ in range(processes)]
    children = []
    for number in range(2, processes + 1):
        child = os.fork()
        if child == 0:
            for other in listeners[: number - 1] + listeners[number:]:
                other.close()
            path = process_file(arguments.file, number, processes)
            serve(listeners[number - 1], path)
            os._exit(0)
        children.append(child)
    for listener in listeners[1:]:
        listener.close()
    serve(listeners[0], process_file(arguments.file, 1, processes), children)


if __name__ == "__main__":
    main()
