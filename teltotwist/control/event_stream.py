# -*- test-case-name: tests.test_control_live -*-
"""A Server-Sent Events answer that never waits for its client.

Events are written at once while the client keeps up. When the connection's
send buffer is full, Twisted pauses this producer, and later events are held,
up to :data:`MAX_HELD_BYTES`; a client that falls further behind (a stalled
or very slow browser) is disconnected. Nothing a client does can block the
reactor or grow memory without bound.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from twisted.logger import Logger
from twisted.web.server import Request
from zope.interface import implementer

from teltotwist.codec import encode_json

MAX_HELD_BYTES = 1024 * 1024
"""Bytes of events held for a client that does not read; past it, it goes."""

KEEPALIVE_INTERVAL = 15.0
"""Seconds between comments that keep an idle stream (and its proxies) open."""

_log = Logger()


@implementer(IPushProducer)
class EventStream:
    """The ``text/event-stream`` body of *request*, open until either side
    closes it; *closed* is called once, when it ends.

    The HTTP idle timeout does not apply: the keep-alive comments show the
    stream is alive, and a client that stops reading is dropped by the bound.
    """

    def __init__(
        self,
        request: Request,
        clock: IReactorTime,
        closed: Callable[[], None],
        max_held_bytes: int = MAX_HELD_BYTES,
    ) -> None:
        self._request = request
        self._clock = clock
        self._closed = closed
        self._max_held_bytes = max_held_bytes
        self._held: deque[bytes] = deque()
        self._held_bytes = 0
        self._paused = False
        self._open = True
        request.setResponseCode(200)
        request.setHeader(b"content-type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        request.channel.setTimeout(None)
        request.registerProducer(self, True)
        request.notifyFinish().addBoth(self._finished)
        request.write(b": stream open\n\n")
        self._keepalive: IDelayedCall | None = clock.callLater(
            KEEPALIVE_INTERVAL, self._keep_alive
        )

    def send(self, event: str, data: Any) -> None:
        """Send one event named *event*, its data as JSON."""
        chunk = b"event: %s\ndata: %s\n\n" % (event.encode(), encode_json(data))
        self._write(chunk)

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        while self._held and not self._paused and self._open:
            chunk = self._held.popleft()
            self._held_bytes -= len(chunk)
            self._request.write(chunk)

    def stopProducing(self) -> None:
        self._end()

    def _write(self, chunk: bytes) -> None:
        if not self._open:
            return
        if not self._paused:
            self._request.write(chunk)
            return
        self._held.append(chunk)
        self._held_bytes += len(chunk)
        if self._held_bytes > self._max_held_bytes:
            _log.info(
                "Live view: dropping a client over {bytes} bytes behind",
                bytes=self._max_held_bytes,
            )
            self._end()
            transport = self._request.channel.transport
            if transport is not None:
                transport.abortConnection()  # type: ignore[attr-defined]

    def _keep_alive(self) -> None:
        self._keepalive = None
        if self._open:
            self._write(b": keep-alive\n\n")
            self._keepalive = self._clock.callLater(
                KEEPALIVE_INTERVAL, self._keep_alive
            )

    def _finished(self, _: object) -> None:
        self._end()

    def _end(self) -> None:
        if not self._open:
            return
        self._open = False
        self._held.clear()
        self._held_bytes = 0
        if self._keepalive is not None and self._keepalive.active():
            self._keepalive.cancel()
        self._keepalive = None
        self._closed()
