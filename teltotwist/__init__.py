# -*- test-case-name: tests -*-
"""teltotwist: a Teltonika telematics gateway for Twisted.

``teltotwist.decode(frame)`` decodes one complete TCP frame and
``teltotwist.decode_udp(datagram)`` one UDP datagram; everything else of the
codec is in :mod:`teltotwist.codec`. ``teltotwist.makeService`` builds the
gateway for an existing Twisted application. Importing this package imports no
Twisted until ``makeService`` is first used.
"""

from typing import TYPE_CHECKING, Any

from teltotwist.codec import (
    AvlPacket,
    AvlRecord,
    Codec,
    CodecError,
    CommandFrame,
    CommandMessage,
    UdpDatagram,
    decode_udp,
    encode_frame,
    encode_udp,
)
from teltotwist.codec import decode_frame as decode

if TYPE_CHECKING:
    from teltotwist.service import makeService


def __getattr__(name: str) -> Any:
    if name == "makeService":
        from teltotwist.service import makeService  # noqa: PLC0415

        return makeService
    raise AttributeError(f"module 'teltotwist' has no attribute {name!r}")


__all__ = [
    "AvlPacket",
    "AvlRecord",
    "Codec",
    "CodecError",
    "CommandFrame",
    "CommandMessage",
    "UdpDatagram",
    "decode",
    "decode_udp",
    "encode_frame",
    "encode_udp",
    "makeService",
]
