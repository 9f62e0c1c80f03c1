# -*- test-case-name: tests -*-
"""teltotwist: a Teltonika telematics gateway for Twisted.

``teltotwist.decode(frame)`` decodes one complete TCP frame and
``teltotwist.decode_udp(datagram)`` one UDP datagram; everything else of the
codec is in :mod:`teltotwist.codec`. Importing this package imports no Twisted.
"""

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
]
