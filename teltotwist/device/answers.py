# -*- test-case-name: tests.test_device_answers -*-
"""The response frame a tracker writes for a command frame (sans-IO).

Codec 12 commands are answered with Codec 12 responses (type 6). Codec 14
commands carry the IMEI they are meant for: the tracker runs the command and
answers with a Codec 14 type 6 response when that IMEI is its own, and with a
type 0x11 nACK ("not executed", IMEI only, no text) when it is not. The nACK
carries the tracker's own IMEI, as in the vendor's example, where it differs
from the addressed one.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from teltotwist.codec import (
    Codec,
    CommandFrame,
    CommandMessage,
    CommandType,
    ValueRangeError,
)
from teltotwist.codec.commands import encode_imei_field

ANSWERED_CODECS = frozenset({Codec.CODEC12, Codec.CODEC14})
"""The command codecs a tracker answers; 13 and 15 go from tracker to server."""


@attrs.frozen
class Answer:
    """A response frame, with one line per message saying what was done."""

    frame: CommandFrame
    outcomes: tuple[str, ...]


def answer_commands(
    commands: CommandFrame, imei: str, respond: Callable[[str], str]
) -> Answer:
    """Run each message of *commands* (Codec 12 or 14) on the tracker *imei*
    through *respond* (command text to response text); the response frame.

    :raises ValueError: for a codec the tracker does not answer.
    """
    if commands.codec not in ANSWERED_CODECS:
        raise ValueError(f"codec {commands.codec.label} carries no commands to answer")
    messages: list[CommandMessage] = []
    outcomes: list[str] = []
    for message in commands.messages:
        text = message.payload.decode("ascii", "replace")
        addressed = message.imei
        if addressed is not None and addressed != imei:
            messages.append(_not_executed(imei, addressed))
            outcomes.append(
                f"command {text!r} for IMEI {addressed} not executed (nACK)"
            )
            continue
        response = respond(text)
        messages.append(
            CommandMessage(CommandType.RESPONSE, response.encode(), imei=addressed)
        )
        outcomes.append(f"command {text!r} answered {response!r}")
    return Answer(CommandFrame(commands.codec, tuple(messages)), tuple(outcomes))


def _not_executed(imei: str, addressed: str) -> CommandMessage:
    """The nACK; a test IMEI too long for the 8-byte field echoes *addressed*."""
    try:
        encode_imei_field(imei)
    except ValueRangeError:
        imei = addressed
    return CommandMessage(CommandType.NACK, b"", imei=imei)
