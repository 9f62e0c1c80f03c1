# -*- test-case-name: tests.test_codec_acks -*-
"""What a server writes back: the login reply and the record-count ACKs."""

from __future__ import annotations

import struct

from teltotwist.codec.errors import ValueRangeError

_TCP_ACK = struct.Struct(">I")
_UDP_ACK = struct.Struct(">HHBBB")

LOGIN_ACCEPTED = b"\x01"
LOGIN_REJECTED = b"\x00"


def login_reply(accepted: bool) -> bytes:
    """The one-byte answer to an IMEI login: ``01`` accept, ``00`` reject."""
    return LOGIN_ACCEPTED if accepted else LOGIN_REJECTED


def tcp_ack(record_count: int) -> bytes:
    """The 4-byte ACK of a TCP AVL frame: its record count, big-endian."""
    if not 0 <= record_count <= 0xFF:
        raise ValueRangeError(f"record count {record_count} is not 0..255")
    return _TCP_ACK.pack(record_count)


def udp_ack(packet_id: int, avl_packet_id: int, record_count: int) -> bytes:
    """The 7-byte ACK of a UDP datagram, echoing both of its ids."""
    try:
        return _UDP_ACK.pack(5, packet_id, 0x01, avl_packet_id, record_count)
    except struct.error as error:
        raise ValueRangeError(f"UDP ACK field out of range: {error}") from None
