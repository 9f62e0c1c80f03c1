# -*- test-case-name: tests -*-
"""teltotwist: a Teltonika telematics gateway for Twisted.

``teltotwist.decode(frame)`` decodes one complete TCP frame and
``teltotwist.decode_udp(datagram)`` one UDP datagram; everything else of the
codec is in :mod:`teltotwist.codec`. ``teltotwist.makeService`` builds the
gateway for an existing Twisted application, with :class:`Limits` and your own
:class:`IRecordSink` providers, which receive :data:`Item` objects. Importing
this package imports no Twisted until a name that needs it is first used.
"""

import importlib
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
from teltotwist.gateway.items import Item, TrackerRecord, UnparsedFrame
from teltotwist.gateway.limits import Limits
from teltotwist.sinks import IRecordSink

if TYPE_CHECKING:
    from teltotwist.gateway.dispatch import DeliveryError
    from teltotwist.gateway.service import GatewayService, makeService

_NEED_TWISTED = {
    "DeliveryError": "teltotwist.gateway.dispatch",
    "GatewayService": "teltotwist.gateway.service",
    "makeService": "teltotwist.gateway.service",
}


def __getattr__(name: str) -> Any:
    module = _NEED_TWISTED.get(name)
    if module is None:
        raise AttributeError(f"module 'teltotwist' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "AvlPacket",
    "AvlRecord",
    "Codec",
    "CodecError",
    "CommandFrame",
    "CommandMessage",
    "DeliveryError",
    "GatewayService",
    "IRecordSink",
    "Item",
    "Limits",
    "TrackerRecord",
    "UdpDatagram",
    "UnparsedFrame",
    "decode",
    "decode_udp",
    "encode_frame",
    "encode_udp",
    "makeService",
]
