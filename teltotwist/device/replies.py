# -*- test-case-name: tests.test_device_replies -*-
"""What a tracker reads from the server (sans-IO): the one-byte login reply,
then 4-byte ACKs and command frames.

An ACK of 0 looks like the preamble of a frame: four zero bytes wait for a
frame header. A zero ACK is a wrong count anyway, so the tracker's ACK timeout
ends the wait and the packet is resent, as a real tracker would.
"""

from __future__ import annotations

import attrs

from teltotwist.codec import DEFAULT_MAX_FRAME_SIZE, FRAME_OVERHEAD, Frame, FramingError

_ACK_SIZE = 4
_HEADER_SIZE = 8


@attrs.frozen
class LoginReply:
    """``01`` (accepted) or ``00`` (rejected)."""

    accepted: bool


@attrs.frozen
class Ack:
    """The server's count of the records it accepted."""

    count: int


Reply = LoginReply | Ack | Frame


class ReplyReader:
    """Splits the server's byte stream into :data:`Reply` events."""

    def __init__(self) -> None:
        self._buffer = b""
        self._logged_in = False

    def feed(self, data: bytes) -> list[Reply]:
        """Add *data*; the complete replies, in order.

        :raises FramingError: for a login reply other than 00/01 or an
            oversized frame; the link should then be closed.
        """
        self._buffer += data
        replies: list[Reply] = []
        while (reply := self._next()) is not None:
            replies.append(reply)
        return replies

    def _next(self) -> Reply | None:
        if not self._logged_in:
            return self._login_reply()
        buffer = self._buffer
        if len(buffer) < _ACK_SIZE:
            return None
        count = int.from_bytes(buffer[:_ACK_SIZE], "big")
        if count:
            self._buffer = buffer[_ACK_SIZE:]
            return Ack(count)
        if len(buffer) < _HEADER_SIZE:
            return None
        size = int.from_bytes(buffer[_ACK_SIZE:_HEADER_SIZE], "big") + FRAME_OVERHEAD
        if size > DEFAULT_MAX_FRAME_SIZE:
            raise FramingError(f"frame of {size} bytes is too large", 0)
        if len(buffer) < size:
            return None
        self._buffer = buffer[size:]
        return Frame(buffer[:size])

    def _login_reply(self) -> LoginReply | None:
        buffer = self._buffer
        if not buffer:
            return None
        if buffer[0] > 1:
            raise FramingError(f"login reply is {buffer[0]:02x}, not 00 or 01", 0)
        self._buffer = buffer[1:]
        self._logged_in = buffer[0] == 1
        return LoginReply(self._logged_in)
