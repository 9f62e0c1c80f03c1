# -*- test-case-name: tests.test_codec_stream -*-
"""Incremental framing of a tracker's TCP stream (sans-IO).

Feed it whatever the socket delivered; it returns the complete logins, pings
and frames in order and keeps the rest for the next feed. Frame lengths are
checked against the cap from the 8-byte header, before the body is buffered.
"""

from __future__ import annotations

import attrs

from teltotwist.codec.errors import CodecError, FrameTooLargeError, FramingError
from teltotwist.codec.frame import FRAME_OVERHEAD, HEADER
from teltotwist.codec.imei import check_login_bytes, check_login_length

DEFAULT_MAX_FRAME_SIZE = 64 * 1024
"""Real frames exceed the documented 1,280 bytes; this leaves ample room."""
_PING = 0xFF


@attrs.frozen
class Login:
    """An IMEI login frame."""

    imei: str


@attrs.frozen
class Ping:
    """The one-byte ``0xFF`` keep-alive; it needs no reply."""


@attrs.frozen
class Frame:
    """A complete data or command frame, still encoded (see ``decode_frame``)."""

    data: bytes


StreamEvent = Login | Ping | Frame
PING = Ping()


class StreamFramer:
    """Splits a TCP byte stream into :class:`Login`, :class:`Ping`, :class:`Frame`.

    After a :class:`CodecError` the stream cannot be resynchronised: every
    later :meth:`feed` raises the same error, and the connection should close.
    """

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        if max_frame_size < FRAME_OVERHEAD + 3:
            raise ValueError(f"max_frame_size {max_frame_size!r} is too small")
        self.max_frame_size = max_frame_size
        self._buffer = bytearray()
        self._error: CodecError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete event."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[StreamEvent]:
        """Add *data* and return the events it completes, in order.

        :raises CodecError: when the stream holds something unframeable.
        """
        if self._error is not None:
            raise self._error
        buffer = self._buffer
        buffer += data
        events: list[StreamEvent] = []
        position = 0
        try:
            while position < len(buffer):
                found = self._next_event(buffer, position)
                if found is None:
                    break
                event, size = found
                events.append(event)
                position += size
        except CodecError as error:
            self._error = error
            raise
        finally:
            del buffer[:position]
        return events

    def _next_event(
        self, buffer: bytearray, position: int
    ) -> tuple[StreamEvent, int] | None:
        """The event at *position* and its size, or None while it is incomplete."""
        available = len(buffer) - position
        if buffer[position] == _PING:
            return PING, 1
        if available < 2:
            return None
        login_length = buffer[position] << 8 | buffer[position + 1]
        if login_length:
            return self._login(buffer, position, login_length, available)
        if available < HEADER.size:
            if any(buffer[position + 2 : position + 4]):
                raise FramingError(
                    "bytes 2-3 of a frame preamble are not zero", position
                )
            return None
        preamble, length = HEADER.unpack_from(buffer, position)
        if preamble:
            raise FramingError(f"preamble is {preamble:08x}, not 00000000", position)
        size = length + FRAME_OVERHEAD
        if size > self.max_frame_size:
            raise FrameTooLargeError(
                f"frame of {size} bytes exceeds the {self.max_frame_size}-byte cap",
                position,
            )
        if available < size:
            return None
        return Frame(bytes(buffer[position : position + size])), size

    @staticmethod
    def _login(
        buffer: bytearray, position: int, length: int, available: int
    ) -> tuple[Login, int] | None:
        check_login_length(length, position)
        received = bytes(buffer[position + 2 : position + 2 + length])
        check_login_bytes(received, position + 2)
        if available < length + 2:
            return None
        return Login(received.decode("ascii")), length + 2
