"""The least a Teltonika server can do: accept every login, ACK every frame.

It stores nothing and checks nothing (no CRC, no decoding): it finds each
frame's end from its length field and at once writes the record count from
its header back, one asyncio callback per read. ``bench_durable.py`` drives
it like the real servers, so that its figures show what the load generator
and the loopback connections take by themselves: the floor under every other
server's latency.

    python bench/ackonly.py PORT
"""

from __future__ import annotations

import asyncio
import sys

HOST = "127.0.0.1"
BACKLOG = 4096
PING = 0xFF
"""A keep-alive byte between frames."""
HEADER = 10
"""Preamble (4), data length (4), codec id (1), record count (1)."""
OVERHEAD = 12
"""Preamble, data length and CRC around a frame's data."""


class AckOnly(asyncio.Protocol):
    """One tracker: the login gets ``01``, each frame its record count."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._logged_in = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        buffer = self._buffer + data if self._buffer else data
        replies = []
        if not self._logged_in:
            if len(buffer) < 2 or len(buffer) < 2 + int.from_bytes(buffer[:2]):
                self._buffer = buffer
                return
            buffer = buffer[2 + int.from_bytes(buffer[:2]) :]
            replies.append(b"\x01")
            self._logged_in = True
        while buffer:
            if buffer[0] == PING:
                buffer = buffer[1:]
                continue
            if len(buffer) < HEADER:
                break
            end = OVERHEAD + int.from_bytes(buffer[4:8])
            if len(buffer) < end:
                break
            replies.append(buffer[9].to_bytes(4))
            buffer = buffer[end:]
        self._buffer = buffer
        if replies:
            self._transport.write(b"".join(replies))


async def serve(port: int) -> None:
    """Listen on *port* until killed."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(AckOnly, HOST, port, backlog=BACKLOG)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
