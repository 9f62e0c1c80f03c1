"""The least a Teltonika server can do: accept every login, ACK every frame.

It stores nothing and checks nothing (no CRC, no decoding): it finds each
frame's end from its length field and at once writes the record count from
its header back, once per read. ``bench_durable.py`` drives it like the real
servers, so that its figures show what the load generator and the loopback
connections take by themselves: the floor under every other server's latency.
With ``--twisted`` the same server runs on Twisted's default reactor (epoll on
Linux) instead of asyncio's loop: what any Twisted server pays before its
own work.

    python bench/ackonly.py [--twisted] PORT
"""

from __future__ import annotations

import argparse
import asyncio
from typing import cast

HOST = "127.0.0.1"
BACKLOG = 4096
PING = 0xFF
"""A keep-alive byte between frames."""
HEADER = 10
"""Preamble (4), data length (4), codec id (1), record count (1)."""
OVERHEAD = 12
"""Preamble, data length and CRC around a frame's data."""


def login_end(buffer: bytes) -> int | None:
    """Where the login at the start of *buffer* ends; None until it is whole."""
    if len(buffer) < 2:
        return None
    end = 2 + int.from_bytes(buffer[:2])
    return end if len(buffer) >= end else None


def frame_spans(buffer: bytes) -> tuple[list[tuple[int, int]], int]:
    """Where each whole frame at the start of *buffer* starts and ends (the
    keep-alive bytes between them skipped), and where the rest starts."""
    spans = []
    start, size = 0, len(buffer)
    while start < size:
        if buffer[start] == PING:
            start += 1
            continue
        if size - start < HEADER:
            break
        end = start + OVERHEAD + int.from_bytes(buffer[start + 4 : start + 8])
        if end > size:
            break
        spans.append((start, end))
        start = end
    return spans, start


class AckStream:
    """One tracker's bytes: the login gets ``01``, each frame its record count."""

    def __init__(self) -> None:
        self._buffer = b""
        self._logged_in = False

    def replies(self, data: bytes) -> bytes:
        """What to write back for *data*, which follows the bytes before it."""
        buffer = self._buffer + data if self._buffer else data
        replies = []
        if not self._logged_in:
            end = login_end(buffer)
            if end is None:
                self._buffer = buffer
                return b""
            buffer = buffer[end:]
            replies.append(b"\x01")
            self._logged_in = True
        spans, rest = frame_spans(buffer)
        replies.extend(buffer[start + 9].to_bytes(4) for start, _ in spans)
        self._buffer = buffer[rest:]
        return b"".join(replies)


class AsyncioAckOnly(asyncio.Protocol):
    """An :class:`AckStream` on an asyncio transport."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._stream = AckStream()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        replies = self._stream.replies(data)
        if replies:
            self._transport.write(replies)


async def serve_asyncio(port: int) -> None:
    """Listen on *port* until killed."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(AsyncioAckOnly, HOST, port, backlog=BACKLOG)
    async with server:
        await server.serve_forever()


def serve_twisted(port: int) -> None:
    """Listen on *port* with Twisted's default reactor (epoll on Linux) until
    killed."""
    # Imported here: the asyncio server needs none of it.
    from twisted.internet import protocol, reactor  # noqa: PLC0415
    from twisted.internet.interfaces import IReactorCore, IReactorTCP  # noqa: PLC0415

    class TwistedAckOnly(protocol.Protocol):
        """An :class:`AckStream` on a Twisted transport."""

        def __init__(self) -> None:
            self._stream = AckStream()

        def dataReceived(self, data: bytes) -> None:
            replies = self._stream.replies(data)
            if replies:
                assert self.transport is not None
                self.transport.write(replies)

    factory = protocol.ServerFactory()
    factory.protocol = TwistedAckOnly
    cast(IReactorTCP, reactor).listenTCP(port, factory, backlog=BACKLOG, interface=HOST)
    cast(IReactorCore, reactor).run()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--twisted", action="store_true", help="on Twisted's reactor")
    parser.add_argument("port", type=int)
    arguments = parser.parse_args()
    if arguments.twisted:
        serve_twisted(arguments.port)
    else:
        asyncio.run(serve_asyncio(arguments.port))


if __name__ == "__main__":
    main()
