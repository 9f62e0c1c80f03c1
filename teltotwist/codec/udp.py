# -*- test-case-name: tests.test_codec_udp -*-
"""UDP datagrams: the IMEI and AVL payload in one packet, with no CRC."""

from __future__ import annotations

import struct

import attrs

from teltotwist.codec.avl import decode_standard_avl_payload, encode_avl_payload
from teltotwist.codec.errors import (
    LengthMismatchError,
    TruncatedError,
    ValueRangeError,
)
from teltotwist.codec.imei import check_login_bytes, check_login_length, encode_login
from teltotwist.codec.model import AvlPacket

_HEADER = struct.Struct(">HHBBH")
"""Length, packet id, the "not usable" byte, AVL packet id, IMEI length."""
_NOT_USABLE = 0x01


@attrs.frozen
class UdpHeader:
    """What precedes a datagram's AVL payload: its ids, the sender's IMEI, and
    where the payload starts. Enough to decide whether to read the rest."""

    packet_id: int
    avl_packet_id: int
    imei: str
    payload_start: int


@attrs.frozen
class UdpDatagram:
    """A decoded UDP datagram: its ids (echoed in the ACK), IMEI and records."""

    packet_id: int
    avl_packet_id: int
    imei: str
    packet: AvlPacket


def decode_udp_header(datagram: bytes) -> UdpHeader:
    """Decode the header of one UDP datagram, without touching its payload.

    :raises CodecError: when the length field disagrees with the datagram's
        size, or the IMEI is no login (see :mod:`teltotwist.codec.imei`).
    """
    if len(datagram) < _HEADER.size:
        raise TruncatedError(
            f"a datagram has at least {_HEADER.size} bytes, this one {len(datagram)}"
        )
    length, packet_id, _, avl_packet_id, imei_length = _HEADER.unpack_from(datagram)
    if length != len(datagram) - 2:
        raise LengthMismatchError(
            f"length field says {length} bytes follow it, {len(datagram) - 2} do", 0
        )
    check_login_length(imei_length, 6)
    payload_start = _HEADER.size + imei_length
    if payload_start > len(datagram):
        raise TruncatedError("the IMEI runs past the datagram", _HEADER.size)
    imei = bytes(datagram[_HEADER.size : payload_start])
    check_login_bytes(imei, _HEADER.size)
    return UdpHeader(packet_id, avl_packet_id, imei.decode("ascii"), payload_start)


def decode_udp_payload(datagram: bytes, header: UdpHeader) -> UdpDatagram:
    """Decode the records of *datagram*, whose *header* decoded already.

    :raises CodecError: (a subclass saying what is wrong, and where).
    """
    packet = decode_standard_avl_payload(
        bytes(datagram), header.payload_start, len(datagram)
    )
    return UdpDatagram(header.packet_id, header.avl_packet_id, header.imei, packet)


def decode_udp(datagram: bytes) -> UdpDatagram:
    """Decode one UDP datagram.

    :raises CodecError: (a subclass saying what is wrong, and where).
    """
    return decode_udp_payload(datagram, decode_udp_header(datagram))


def encode_udp(datagram: UdpDatagram) -> bytes:
    """Encode a UDP datagram as a tracker sends it."""
    login = encode_login(datagram.imei)
    payload = encode_avl_payload(datagram.packet)
    length = _HEADER.size - 4 + len(login) + len(payload)
    try:
        header = _HEADER.pack(
            length, datagram.packet_id, _NOT_USABLE, datagram.avl_packet_id, 0
        )
    except struct.error as error:
        raise ValueRangeError(f"UDP header field out of range: {error}") from None
    return header[:-2] + login + payload
