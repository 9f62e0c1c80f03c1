"""What the virtual tracker reads: login reply, ACKs and command frames."""

from __future__ import annotations

import pytest

from teltotwist.codec import Frame, FramingError, tcp_ack
from teltotwist.device import Ack, LoginReply, ReplyReader

GETINFO = bytes.fromhex("000000000000000F0C010500000007676574696E666F0100004312")


def test_replies_split_and_glued() -> None:
    reader = ReplyReader()
    stream = b"\x01" + tcp_ack(2) + GETINFO + tcp_ack(1)

    replies = [reply for byte in stream for reply in reader.feed(bytes([byte]))]

    assert replies == [LoginReply(True), Ack(2), Frame(GETINFO), Ack(1)]


def test_a_rejected_login() -> None:
    assert ReplyReader().feed(b"\x00") == [LoginReply(False)]


def test_a_zero_ack_waits_to_see_whether_a_frame_follows() -> None:
    reader = ReplyReader()

    assert reader.feed(b"\x01" + tcp_ack(0)) == [LoginReply(True)]
    assert reader.feed(GETINFO[4:]) == [Frame(GETINFO)]


def test_a_login_reply_other_than_00_or_01() -> None:
    with pytest.raises(FramingError, match="login reply is 02"):
        ReplyReader().feed(b"\x02")
