# -*- test-case-name: tests.test_codec_errors -*-
"""The codec's exceptions: one public base class, one subclass per kind of fault.

Every decoder in :mod:`teltotwist.codec` raises only :class:`CodecError` (or a
subclass) on bad input, never ``IndexError`` or ``struct.error``.
"""

from __future__ import annotations


class CodecError(ValueError):
    """Input that is not a valid Teltonika frame, packet or datagram.

    :ivar offset: byte offset into the input where the fault was found, or
        ``None`` when the fault concerns the input as a whole.
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        if offset is not None:
            message = f"{message} (at offset {offset})"
        super().__init__(message)
        self.offset = offset


class TruncatedError(CodecError):
    """The input ends before a field it announces."""


class LengthMismatchError(CodecError):
    """A declared length disagrees with the bytes actually present."""


class CountMismatchError(CodecError):
    """The two record counts, or an IO element count, disagree."""


class CRCMismatchError(CodecError):
    """The CRC-16/IBM over the frame's data field is not the one it carries."""


class UnknownCodecError(CodecError):
    """The codec id is not one this library decodes."""


class FrameTooLargeError(CodecError):
    """A frame declares a length above the configured cap."""


class InvalidLoginError(CodecError):
    """An IMEI login frame with an implausible length or non-digit IMEI."""


class FramingError(CodecError):
    """Bytes on a TCP stream that are neither a ping, a login nor a frame."""


class ValueRangeError(CodecError):
    """A field holds a value the protocol cannot carry (for encoders) or that
    cannot be represented (for decoders, e.g. a timestamp past year 9999)."""
