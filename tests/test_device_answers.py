"""What the virtual tracker answers to Codec 12 and 14 command frames, byte for
byte against the vendor's examples."""

from __future__ import annotations

import pytest

from teltotwist.codec import (
    Codec,
    CommandFrame,
    CommandMessage,
    CommandType,
    crc16_ibm,
    decode_frame,
    encode_frame,
)
from teltotwist.device.answers import answer_commands
from tests.vectors import by_id

ADDRESSED = "352093081452251"
"""The IMEI the wiki's Codec 14 getver command is meant for."""
OTHER = "352093081452468"
"""The IMEI in the wiki's nACK example."""


def command_frame(vector_id: str) -> CommandFrame:
    frame = decode_frame(by_id(vector_id).data)
    assert isinstance(frame, CommandFrame)
    return frame


def echo(text: str) -> str:
    return f"did {text}"


def test_codec14_for_this_tracker_is_run_and_answered_with_type_6() -> None:
    answer = answer_commands(command_frame("wiki-c14-getver-cmd"), ADDRESSED, echo)

    response = decode_frame(encode_frame(answer.frame))
    assert response == CommandFrame(
        Codec.CODEC14,
        (CommandMessage(CommandType.RESPONSE, b"did getver", imei=ADDRESSED),),
    )
    assert answer.outcomes == ("command 'getver' answered 'did getver'",)


def test_codec14_for_another_imei_is_not_run_and_gets_the_wikis_nack() -> None:
    ran: list[str] = []

    def run(text: str) -> str:
        ran.append(text)
        return text

    answer = answer_commands(command_frame("wiki-c14-getver-cmd"), OTHER, run)

    nack = by_id("wiki-c14-nack").data
    corrected = nack[:-4] + crc16_ibm(nack[8:-4]).to_bytes(4, "big")  # wiki CRC is off
    assert encode_frame(answer.frame) == corrected
    assert ran == []
    assert answer.outcomes == (
        f"command 'getver' for IMEI {ADDRESSED} not executed (nACK)",
    )


def test_codec14_messages_are_matched_one_by_one() -> None:
    commands = CommandFrame(
        Codec.CODEC14,
        (
            CommandMessage(CommandType.COMMAND, b"getio", imei=OTHER),
            CommandMessage(CommandType.COMMAND, b"getgps", imei=ADDRESSED),
        ),
    )

    answer = answer_commands(commands, ADDRESSED, echo)

    assert [(m.type, m.payload, m.imei) for m in answer.frame.messages] == [
        (CommandType.NACK, b"", ADDRESSED),
        (CommandType.RESPONSE, b"did getgps", ADDRESSED),
    ]


def test_a_test_imei_too_long_for_the_field_nacks_with_the_addressed_one() -> None:
    answer = answer_commands(command_frame("wiki-c14-getver-cmd"), "1" * 20, echo)

    [nack] = answer.frame.messages
    assert (nack.type, nack.imei) == (CommandType.NACK, ADDRESSED)
    encode_frame(answer.frame)


def test_codec12_is_answered_with_codec12() -> None:
    getinfo = command_frame("wiki-c12-getinfo-cmd")

    answer = answer_commands(getinfo, ADDRESSED, echo)

    assert answer.frame == CommandFrame(
        Codec.CODEC12, (CommandMessage(CommandType.RESPONSE, b"did getinfo"),)
    )


def test_codecs_13_and_15_are_not_answered() -> None:
    frame = CommandFrame(
        Codec.CODEC13, (CommandMessage(CommandType.RESPONSE, b"x", timestamp=1),)
    )
    with pytest.raises(ValueError, match="codec 13 carries no commands"):
        answer_commands(frame, ADDRESSED, echo)
