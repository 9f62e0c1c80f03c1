"""Command frames (Codec 12, 13, 14, 15): vendor and Traccar examples, both ways."""

from __future__ import annotations

import pytest

import teltotwist
from teltotwist.codec import (
    Codec,
    CommandFrame,
    CommandMessage,
    CommandType,
    LengthMismatchError,
    TruncatedError,
    ValueRangeError,
    encode_frame,
)
from tests.vectors import (
    TCP_COMMANDS_DECODED,
    Vector,
    assert_names_offset,
    by_id,
    codec_of,
    expected_message_fields,
    frame_payload,
    message_fields,
    reference_payload,
    select,
    vector_id,
)

QUANTITY_MISMATCH = by_id("traccar-60-codec12")
"""A CRC-valid Codec 12 response: Quantity 1 = 2 but only one message."""

SERVER_COMMANDS = [
    *(by_id(name) for name in ("wiki-c12-getinfo-cmd", "wiki-c12-getio-cmd")),
    *select(lambda v: v.kind == "server-command-codec12"),
]
"""Codec 12 commands a server sends: the wiki's and those Traccar's encoder wrote."""


def decode_commands(frame: bytes) -> CommandFrame:
    decoded = teltotwist.decode(frame)
    assert isinstance(decoded, CommandFrame)
    return decoded


@pytest.mark.parametrize("vector", TCP_COMMANDS_DECODED, ids=vector_id)
def test_vector_decodes_like_the_reference(vector: Vector) -> None:
    frame = decode_commands(vector.data)

    assert frame.codec is codec_of(vector)
    references = vector.reference["messages"]
    assert len(frame.messages) == vector.reference["count1"] == len(references)
    assert [message_fields(message) for message in frame.messages] == [
        expected_message_fields(reference) for reference in references
    ]


@pytest.mark.parametrize(
    "vector",
    [
        *TCP_COMMANDS_DECODED,
        pytest.param(
            QUANTITY_MISMATCH,
            marks=pytest.mark.skip(
                reason="Quantity 1 = 2 with one message: re-encoding writes 1"
            ),
        ),
    ],
    ids=vector_id,
)
def test_encoder_reproduces_vector(vector: Vector) -> None:
    assert encode_frame(decode_commands(vector.data)) == vector.data


def test_quantity_above_the_messages_present_reads_only_the_data_field() -> None:
    frame = decode_commands(QUANTITY_MISMATCH.data)

    assert frame.codec is Codec.CODEC12
    assert [(message.type, message.text) for message in frame.messages] == [
        (CommandType.RESPONSE, "\r\n")
    ]


@pytest.mark.parametrize("vector", SERVER_COMMANDS, ids=vector_id)
def test_codec12_command_encodes_like_the_vendor(vector: Vector) -> None:
    (reference,) = vector.reference["messages"]
    command = CommandMessage(CommandType.COMMAND, reference_payload(reference))

    assert encode_frame(CommandFrame(Codec.CODEC12, (command,))) == vector.data


@pytest.mark.parametrize(
    "vector", select(lambda v: "command_data" in v.entry), ids=vector_id
)
def test_traccar_command_data_is_what_the_frame_carries(vector: Vector) -> None:
    """Traccar sends command data as text, or as bytes when it is all hex."""
    (message,) = decode_commands(vector.data).messages
    data: str = vector.entry["command_data"]

    assert data in (message.text, message.payload.hex().upper())


def test_codec14_command_encodes_like_the_vendor() -> None:
    vector = by_id("wiki-c14-getver-cmd")
    (reference,) = vector.reference["messages"]
    command = CommandMessage(
        CommandType.COMMAND,
        reference["text"].encode("ascii"),
        imei=reference["imei_bcd"][1:],
    )

    assert encode_frame(CommandFrame(Codec.CODEC14, (command,))) == vector.data


def test_codec14_nack_with_its_crc_corrected_names_the_wrong_imei() -> None:
    """The wiki nACK: Size 8 (the IMEI only), type 0x11, for IMEI ...468."""
    vector = by_id("wiki-c14-nack")
    corrected = vector.data[:-2] + bytes.fromhex(vector.reference["crc_calc"])

    (message,) = decode_commands(corrected).messages
    (reference,) = vector.reference["messages"]
    assert message.type == CommandType.NACK == reference["type"]
    assert message.imei == reference["imei_bcd"][1:]
    assert message.payload == b""


def command_payload(codec: Codec, *messages: tuple[int, bytes], quantity: int) -> bytes:
    """Codec id, Quantity 1, (type, u32 size, body) messages, Quantity 2."""
    body = b"".join(
        bytes((kind,)) + len(data).to_bytes(4, "big") + data for kind, data in messages
    )
    return bytes((codec, quantity)) + body + bytes((quantity,))


def test_size_below_the_codec14_imei_is_rejected() -> None:
    frame = frame_payload(command_payload(Codec.CODEC14, (6, bytes(7)), quantity=1))

    with pytest.raises(LengthMismatchError) as caught:
        teltotwist.decode(frame)
    assert_names_offset(caught.value, frame)


def test_size_below_the_codec13_timestamp_is_rejected() -> None:
    frame = frame_payload(command_payload(Codec.CODEC13, (6, bytes(3)), quantity=1))

    with pytest.raises(LengthMismatchError) as caught:
        teltotwist.decode(frame)
    assert_names_offset(caught.value, frame)


def test_message_running_past_the_data_field_is_truncated() -> None:
    payload = bytearray(command_payload(Codec.CODEC12, (5, b"getinfo"), quantity=1))
    payload[6] = 8  # Size 8 for a 7-byte text
    frame = frame_payload(bytes(payload))

    with pytest.raises(TruncatedError) as caught:
        teltotwist.decode(frame)
    assert_names_offset(caught.value, frame)


def test_messages_beyond_quantity_are_a_length_mismatch() -> None:
    """Quantity 1 bounds the messages read; a second one is left over."""
    frame = frame_payload(
        command_payload(Codec.CODEC12, (5, b"getinfo"), (5, b"getio"), quantity=1)
    )

    with pytest.raises(LengthMismatchError) as caught:
        teltotwist.decode(frame)
    assert_names_offset(caught.value, frame)


def test_imei_field_with_non_decimal_nibbles_is_rejected() -> None:
    imei_field = bytes.fromhex("035209308145225A")
    frame = frame_payload(
        command_payload(Codec.CODEC14, (5, imei_field + b"getver"), quantity=1)
    )

    with pytest.raises(ValueRangeError):
        teltotwist.decode(frame)


@pytest.mark.parametrize(
    ("codec", "message"),
    [
        pytest.param(Codec.CODEC12, CommandMessage(5, b"x", timestamp=1), id="12-ts"),
        pytest.param(Codec.CODEC13, CommandMessage(5, b"x"), id="13-no-ts"),
        pytest.param(Codec.CODEC14, CommandMessage(5, b"x"), id="14-no-imei"),
        pytest.param(
            Codec.CODEC14, CommandMessage(5, b"x", imei="35209308145225X"), id="imei"
        ),
        pytest.param(
            Codec.CODEC15, CommandMessage(5, b"x", timestamp=1), id="15-no-imei"
        ),
        pytest.param(
            Codec.CODEC13, CommandMessage(5, b"x", timestamp=2**32), id="ts-too-big"
        ),
        pytest.param(Codec.CODEC12, CommandMessage(256, b"x"), id="type-too-big"),
    ],
)
def test_encoder_rejects_what_the_codec_cannot_carry(
    codec: Codec, message: CommandMessage
) -> None:
    with pytest.raises(ValueRangeError):
        encode_frame(CommandFrame(codec, (message,)))


def test_encoder_rejects_a_frame_without_messages() -> None:
    with pytest.raises(ValueRangeError):
        encode_frame(CommandFrame(Codec.CODEC12, ()))
