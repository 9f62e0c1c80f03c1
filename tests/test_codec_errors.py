"""The codec's exceptions: one ValueError family, each saying where it went wrong."""

from __future__ import annotations

import pytest

import teltotwist
from teltotwist import codec
from teltotwist.codec import CodecError, errors


def error_classes() -> list[type[CodecError]]:
    """Every exception class defined in the errors module."""
    return [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, CodecError)
    ]


def test_every_error_class_is_exported() -> None:
    classes = error_classes()

    assert len(classes) > 1
    for error in classes:
        assert getattr(codec, error.__name__) is error
        assert error.__name__ in codec.__all__
    assert teltotwist.CodecError is CodecError


@pytest.mark.parametrize("error", error_classes(), ids=lambda error: error.__name__)
def test_every_codec_error_is_a_value_error(error: type[CodecError]) -> None:
    assert issubclass(error, ValueError)
    with pytest.raises(ValueError, match="bad"):
        raise error("bad", 3)


def test_message_names_the_offset() -> None:
    error = CodecError("CRC field is wrong", 62)

    assert error.offset == 62
    assert str(error) == "CRC field is wrong (at offset 62)"


def test_error_about_the_whole_input_has_no_offset() -> None:
    error = CodecError("too short")

    assert error.offset is None
    assert str(error) == "too short"


def test_decode_errors_can_be_caught_as_value_errors() -> None:
    with pytest.raises(ValueError):
        teltotwist.decode(b"\x00" * 3)
