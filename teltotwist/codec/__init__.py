# -*- test-case-name: tests -*-
"""The Teltonika codec: pure Python, no I/O, no Twisted.

Decoders and encoders for TCP stream framing, AVL Codec 8 / 8 Extended / 16,
command Codecs 12 / 13 / 14 / 15, UDP datagrams, ACKs, and the record JSON.
"""

from teltotwist.codec.acks import login_reply, tcp_ack, udp_ack
from teltotwist.codec.avl import (
    FixedIoEncoder,
    decode_avl_payload,
    encode_avl_payload,
    join_avl_records,
)
from teltotwist.codec.crc import crc16_ibm, crc16_ibm_pure
from teltotwist.codec.errors import (
    CodecError,
    CountMismatchError,
    CRCMismatchError,
    FrameTooLargeError,
    FramingError,
    InvalidLoginError,
    LengthMismatchError,
    TruncatedError,
    UnknownCodecError,
    ValueRangeError,
)
from teltotwist.codec.frame import (
    FRAME_OVERHEAD,
    check_envelope,
    decode_checked_frame,
    decode_frame,
    encode_avl_frame,
    encode_frame,
)
from teltotwist.codec.imei import (
    IMEI_LENGTH,
    MAX_LOGIN_LENGTH,
    ImeiPolicy,
    encode_login,
    is_digits,
)
from teltotwist.codec.model import (
    AVL_CODECS,
    COMMAND_CODECS,
    AvlPacket,
    AvlRecord,
    Codec,
    CommandFrame,
    CommandMessage,
    CommandType,
    IoLayout,
    IoValue,
    io_elements,
)
from teltotwist.codec.recordjson import (
    command_frame_to_json,
    encode_json,
    format_timestamp_ms,
    packet_to_json,
    record_fields,
    record_to_json,
)
from teltotwist.codec.stream import (
    DEFAULT_MAX_FRAME_SIZE,
    Frame,
    Login,
    Ping,
    StreamEvent,
    StreamFramer,
)
from teltotwist.codec.udp import UdpDatagram, decode_udp, encode_udp

__all__ = [
    "AVL_CODECS",
    "COMMAND_CODECS",
    "DEFAULT_MAX_FRAME_SIZE",
    "FRAME_OVERHEAD",
    "IMEI_LENGTH",
    "MAX_LOGIN_LENGTH",
    "AvlPacket",
    "AvlRecord",
    "CRCMismatchError",
    "Codec",
    "CodecError",
    "CommandFrame",
    "CommandMessage",
    "CommandType",
    "CountMismatchError",
    "FixedIoEncoder",
    "Frame",
    "FrameTooLargeError",
    "FramingError",
    "ImeiPolicy",
    "InvalidLoginError",
    "IoLayout",
    "IoValue",
    "LengthMismatchError",
    "Login",
    "Ping",
    "StreamEvent",
    "StreamFramer",
    "TruncatedError",
    "UdpDatagram",
    "UnknownCodecError",
    "ValueRangeError",
    "check_envelope",
    "command_frame_to_json",
    "crc16_ibm",
    "crc16_ibm_pure",
    "decode_avl_payload",
    "decode_checked_frame",
    "decode_frame",
    "decode_udp",
    "encode_avl_frame",
    "encode_avl_payload",
    "encode_frame",
    "encode_json",
    "encode_login",
    "encode_udp",
    "format_timestamp_ms",
    "io_elements",
    "is_digits",
    "join_avl_records",
    "login_reply",
    "packet_to_json",
    "record_fields",
    "record_to_json",
    "tcp_ack",
    "udp_ack",
]
