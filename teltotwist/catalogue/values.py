# -*- test-case-name: tests.test_catalogue_values -*-
"""IO values as a catalogue row reads them: signed, scaled, hex or text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from teltotwist.catalogue.definition import Definition, scale_of

IoValue = int | bytes
Converter = Callable[[IoValue], Any]


def converter(definition: Definition) -> Converter:
    """The function giving the attribute value for a raw IO value of *definition*.

    ``Hex`` and variable-length values become lowercase hex; ``ASCII`` becomes
    text where it is printable (trailing NULs dropped), else hex; ``Signed``
    integers are read as two's complement of the catalogue size; then the
    multiplier is applied, rounded to its decimals.
    """
    size = definition.size
    if definition.type == "Hex":
        return lambda value: _as_bytes(value, size).hex()
    if definition.type == "ASCII":
        return lambda value: _text(_as_bytes(value, size))
    number = _scaled(definition.multiplier)
    if definition.type == "Signed" and size is not None:
        signed = _signed(size)
        return lambda value: (
            value.hex() if isinstance(value, bytes) else number(signed(value))
        )
    return lambda value: value.hex() if isinstance(value, bytes) else number(value)


def is_plain(definition: Definition) -> bool:
    """Whether an integer value of *definition* is its own attribute value:
    unsigned and not scaled (most IO elements are)."""
    return definition.type == "Unsigned" and scale_of(definition.multiplier) is None


def _as_bytes(value: IoValue, size: int | None) -> bytes:
    if isinstance(value, bytes):
        return value
    length = max(size or 0, (value.bit_length() + 7) // 8, 1)
    return value.to_bytes(length, "big")


def _text(data: bytes) -> str:
    text = data.rstrip(b"\x00").decode("ascii", errors="replace")
    return text if text.isprintable() and "\ufffd" not in text else data.hex()


def _signed(size: int) -> Callable[[int], int]:
    bits = 8 * size
    sign_bit, span = 1 << (bits - 1), 1 << bits

    def read(value: int) -> int:
        return value - span if sign_bit <= value < span else value

    return read


def _scaled(multiplier: str) -> Callable[[int], int | float]:
    factor = scale_of(multiplier)
    if factor is None:
        return lambda value: value
    exponent = factor.normalize().as_tuple().exponent
    decimals = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if decimals == 0:
        whole = int(factor)
        return lambda value: value * whole
    multiply = float(factor)
    return lambda value: round(value * multiply, decimals)
