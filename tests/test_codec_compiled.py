"""The AVL decoder compiled with mypyc (``TELTOTWIST_COMPILE=1``, optional)
decodes exactly like its pure-Python source: the same packets, the same wire
bytes, the same errors with the same messages and offsets.

Where the decoder is not compiled there is nothing to compare and the module
is skipped, unless ``TELTOTWIST_COMPILE=1`` says it should be compiled (as in
``tox run -e compiled``): then it fails.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from teltotwist.codec import AvlPacket, CodecError, avl, encode_avl_payload
from teltotwist.codec.udp import decode_udp_header
from tests import strategies
from tests.pure_decoder import PURE
from tests.vectors import ALL, CRC_FIELD_SIZE, FRAME_HEADER_SIZE, Vector, vector_id

COMPILED = Path(avl.__file__ or "").suffix != ".py"
"""Whether ``teltotwist.codec.avl`` was imported from a compiled extension."""

if not COMPILED and os.environ.get("TELTOTWIST_COMPILE") != "1":
    pytest.skip(
        "the AVL decoder is pure Python here; build it with TELTOTWIST_COMPILE=1",
        allow_module_level=True,
    )

Outcome = tuple[AvlPacket, list[bytes]] | tuple[type[CodecError], str, int | None]
PayloadDecoder = Callable[..., AvlPacket]


def outcome(decode: PayloadDecoder, payload: bytes, *, io16: bool) -> Outcome:
    """What decoding *payload* gives: the packet and its records' wire bytes,
    or the error's class, message and offset."""
    try:
        packet = decode(payload, 0, len(payload), io16=io16)
    except CodecError as error:
        return type(error), str(error), error.offset
    return packet, [record.wire for record in packet.records]


def assert_alike(payload: bytes) -> None:
    for io16 in (False, True):
        compiled = outcome(avl.decode_avl_payload, payload, io16=io16)
        assert compiled == outcome(PURE.decode_avl_payload, payload, io16=io16)


def avl_payload(vector: Vector) -> bytes:
    """The bytes a vector's AVL payload would be in, valid or not."""
    data = vector.data
    if vector.transport == "udp":
        try:
            return data[decode_udp_header(data).payload_start :]
        except CodecError:
            return data
    return data[FRAME_HEADER_SIZE:-CRC_FIELD_SIZE]


def test_the_decoder_is_compiled() -> None:
    assert COMPILED, f"{avl.__file__} is pure Python: the mypyc build did not take"


@pytest.mark.parametrize("vector", ALL, ids=vector_id)
def test_every_vector_decodes_alike(vector: Vector) -> None:
    assert_alike(avl_payload(vector))


@given(strategies.mutated(st.sampled_from([avl_payload(vector) for vector in ALL])))
def test_mutated_vectors_decode_alike(payload: bytes) -> None:
    assert_alike(payload)


@given(strategies.mutated(strategies.avl_packets().map(encode_avl_payload)))
def test_mutated_packets_decode_alike(payload: bytes) -> None:
    assert_alike(payload)
