"""What a server writes back: the login reply and the TCP and UDP ACKs."""

from __future__ import annotations

import re

import pytest

from teltotwist.codec import ValueRangeError, login_reply, tcp_ack, udp_ack
from tests.vectors import UDP_VALID, Vector, by_id, select, vector_id

TCP_WITH_ACK = select(
    lambda v: v.transport == "tcp" and "expected_server_response_hex" in v.entry
)


@pytest.mark.parametrize("vector", TCP_WITH_ACK, ids=vector_id)
def test_tcp_ack_is_the_record_count(vector: Vector) -> None:
    expected = bytes.fromhex(vector.entry["expected_server_response_hex"])

    assert tcp_ack(vector.reference["count1"]) == expected


@pytest.mark.parametrize("vector", UDP_VALID, ids=vector_id)
def test_udp_ack_echoes_both_ids(vector: Vector) -> None:
    reference = vector.reference
    # The wiki gives the server's answer beside the datagram, Traccar in its decode.
    expected = vector.entry.get("expected_server_response_hex")
    if expected is None:
        expected = reference["expected_ack"]

    ack = udp_ack(
        int(reference["packet_id"], 16), reference["avl_packet_id"], reference["count1"]
    )
    assert ack == bytes.fromhex(expected)


def test_udp_ack_echoes_the_request_packet_id_not_the_docs_abcd() -> None:
    """The FMB920 PDF answers packet id CAFE with ABCD; a device wants CAFE back."""
    vector = by_id("wiki-udp-ack-example")
    request = re.search(
        r'datagram "([0-9A-F]{10}) ([0-9A-F]{2})', vector.entry["notes"]
    )
    assert request is not None
    header = bytes.fromhex(request[1] + request[2])
    packet_id = int.from_bytes(header[2:4], "big")
    avl_packet_id = header[5]
    documented = vector.data

    ack = udp_ack(packet_id, avl_packet_id, documented[-1])

    assert packet_id == 0xCAFE
    assert ack == documented[:2] + header[2:4] + documented[4:]
    assert ack != documented


def test_login_reply_is_one_byte() -> None:
    assert login_reply(True) == b"\x01"
    assert login_reply(False) == b"\x00"


@pytest.mark.parametrize("count", [-1, 256])
def test_tcp_ack_count_outside_a_byte_is_rejected(count: int) -> None:
    """Number of Data is one byte: at most 255 records per packet."""
    with pytest.raises(ValueRangeError):
        tcp_ack(count)


@pytest.mark.parametrize(
    ("packet_id", "avl_packet_id", "count"),
    [(0x10000, 1, 1), (-1, 1, 1), (1, 256, 1), (1, 1, 256)],
)
def test_udp_ack_field_outside_its_width_is_rejected(
    packet_id: int, avl_packet_id: int, count: int
) -> None:
    with pytest.raises(ValueRangeError):
        udp_ack(packet_id, avl_packet_id, count)
