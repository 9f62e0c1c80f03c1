# -*- test-case-name: tests.test_catalogue_values -*-
"""IO values as a catalogue row reads them: signed, scaled, hex or text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from teltotwist.catalogue.definition import Definition, scale_of

IoValue = int | bytes
Converter = Callable[[IoValue], Any]
IntegerConverter = Callable[[int], Any]


def converter(definition: Definition) -> Converter:
    """The function giving the attribute value for a raw IO value of *definition*.

    ``Hex`` and variable-length values become lowercase hex; ``ASCII`` becomes
    text where it is printable (trailing NULs dropped), else hex; ``Signed``
    integers are read as two's complement of the catalogue size; then the
    multiplier is applied: the nearest float to the exact product, or an
    integer when the multiplier is whole and the product is within
    :data:`JSON_INTEGERS` (a float beyond: a value larger than its catalogue
    size, scaled, would not fit a record's JSON otherwise).
    """
    size = definition.size
    if definition.type == "Hex":
        return lambda value: _as_bytes(value, size).hex()
    if definition.type == "ASCII":
        return lambda value: _text(_as_bytes(value, size))
    number = integer_converter(definition) or _unchanged
    return lambda value: value.hex() if isinstance(value, bytes) else number(value)


JSON_INTEGERS = range(-(1 << 63), 1 << 64)
"""The integers a record's JSON writes as they are (orjson's range)."""

IntegerRule = tuple[int, int, int]
"""How an integer IO value becomes its attribute value, as numbers: the width
in bits of its two's complement (0 when unsigned), then the numerator and the
denominator of its multiplier."""


def integer_rule(definition: Definition) -> IntegerRule | None:
    """The :data:`IntegerRule` of an integer IO value of *definition*;
    ``None`` for ``Hex`` and ``ASCII``, whose values become text."""
    if definition.type in ("Hex", "ASCII"):
        return None
    factor = scale_of(definition.multiplier)
    numerator, denominator = (1, 1) if factor is None else factor.as_integer_ratio()
    size = definition.size
    bits = 8 * size if definition.type == "Signed" and size is not None else 0
    return bits, numerator, denominator


def integer_converter(definition: Definition) -> IntegerConverter | None:
    """The attribute value of an integer IO value of *definition*, as
    :func:`converter` gives it but in one call; ``None`` when the integer is
    its own value (unsigned and not scaled, as most IO elements are)."""
    rule = integer_rule(definition)
    if rule is None:
        return converter(definition)
    bits, numerator, denominator = rule
    if bits:
        return _signed(bits, numerator, denominator)
    if numerator == denominator == 1:
        return None
    if denominator == 1:
        return lambda value: _whole(value * numerator)
    return lambda value: value * numerator / denominator


def _unchanged(value: int) -> int:
    return value


def _whole(product: int) -> int | float:
    """A product by a whole multiplier: itself, or the nearest float when
    beyond :data:`JSON_INTEGERS`."""
    return product if product in JSON_INTEGERS else float(product)


def _signed(bits: int, numerator: int, denominator: int) -> IntegerConverter:
    sign_bit, span = 1 << (bits - 1), 1 << bits
    if denominator == 1:
        return lambda value: _whole(
            (value - span if sign_bit <= value < span else value) * numerator
        )
    return lambda value: (
        (value - span if sign_bit <= value < span else value) * numerator / denominator
    )


def _as_bytes(value: IoValue, size: int | None) -> bytes:
    if isinstance(value, bytes):
        return value
    length = max(size or 0, (value.bit_length() + 7) // 8, 1)
    return value.to_bytes(length, "big")


def _text(data: bytes) -> str:
    text = data.rstrip(b"\x00").decode("ascii", errors="replace")
    return text if text.isprintable() and "\ufffd" not in text else data.hex()
