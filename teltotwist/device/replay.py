# -*- test-case-name: tests.test_device_replay -*-
"""Replays a capture's frames against a gateway, as its tracker sent them:
the login first, then each data frame once the previous one is ACKed."""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import connectProtocol
from twisted.internet.interfaces import (
    IDelayedCall,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

from teltotwist.codec import CodecError, encode_login
from teltotwist.device.capture import Capture
from teltotwist.device.replies import Ack, LoginReply, ReplyReader

_RECORD_COUNT_OFFSET = 9


class ReplayError(Exception):
    """The gateway refused the login, sent a wrong or no ACK, or closed."""


async def replay(
    endpoint: IStreamClientEndpoint,
    clock: IReactorTime,
    capture: Capture,
    reply_timeout: float,
    report: Callable[[str], None] = lambda line: None,
) -> int:
    """Send *capture* through *endpoint*; the number of frames ACKed (all of
    them), each step told to *report*.

    :raises ReplayError: when the gateway does not take a frame; the
        frames before it were ACKed.
    """
    link = _ReplayLink(capture, clock, reply_timeout, report)
    await connectProtocol(endpoint, link)
    return await link.done


class _ReplayLink(Protocol):
    def __init__(
        self,
        capture: Capture,
        clock: IReactorTime,
        reply_timeout: float,
        report: Callable[[str], None],
    ) -> None:
        self._capture = capture
        self._clock = clock
        self._reply_timeout = reply_timeout
        self._report = report
        self._reader = ReplyReader()
        self._next = 0
        self._timer: IDelayedCall | None = None
        self.done: Deferred[int] = Deferred()

    def connectionMade(self) -> None:
        self._write(encode_login(self._capture.imei), f"login {self._capture.imei}")

    def dataReceived(self, data: bytes) -> None:
        try:
            replies = self._reader.feed(data)
        except CodecError as error:
            self._fail(f"unreadable reply: {error}")
            return
        for reply in replies:
            if self.done.called:
                return
            match reply:
                case LoginReply(accepted=True):
                    self._report("login accepted")
                    self._send_next()
                case LoginReply():
                    self._fail("the gateway refused the login")
                case Ack(count=count):
                    self._acked(count)
                case _:
                    self._report("a command frame from the gateway, not answered")

    def connectionLost(self, reason: Failure | None = None) -> None:
        self._cancel_timer()
        if not self.done.called:
            self.done.errback(
                ReplayError(
                    f"the gateway closed the connection after {self._next} ACKs"
                )
            )

    def _acked(self, count: int) -> None:
        frame = self._capture.frames[self._next - 1]
        expected = frame[_RECORD_COUNT_OFFSET]
        if count != expected:
            self._fail(f"frame {self._next}: ACK of {count}, expected {expected}")
            return
        self._report(f"frame {self._next}: acked, {count} records")
        self._send_next()

    def _send_next(self) -> None:
        frames = self._capture.frames
        if self._next == len(frames):
            self._cancel_timer()
            self.done.callback(self._next)
            self.transport.loseConnection()  # type: ignore[union-attr]
            return
        frame = frames[self._next]
        self._next += 1
        self._write(frame, f"frame {self._next}: sent, {len(frame)} bytes")

    def _write(self, data: bytes, what: str) -> None:
        self._cancel_timer()
        self.transport.write(data)  # type: ignore[union-attr]
        self._report(what)
        self._timer = self._clock.callLater(self._reply_timeout, self._timed_out)

    def _timed_out(self) -> None:
        self._timer = None
        self._fail(f"no reply within {self._reply_timeout:g} s")

    def _fail(self, reason: str) -> None:
        self._cancel_timer()
        if not self.done.called:
            self.done.errback(ReplayError(reason))
        self.transport.loseConnection()  # type: ignore[union-attr]

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
