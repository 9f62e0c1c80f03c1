# -*- test-case-name: tests.test_catalogue_definition -*-
"""One row of the AVL catalogue: what an IO id means for some models."""

from __future__ import annotations

import re
from decimal import Decimal

import attrs

_NOT_NAME = re.compile(r"[^a-z0-9]+")


def attribute_name(name: str) -> str:
    """The attribute key for a catalogue name: ``External Voltage`` ->
    ``external_voltage``."""
    return _NOT_NAME.sub("_", name.lower()).strip("_")


def scale_of(multiplier: str) -> Decimal | None:
    """The factor a multiplier applies, ``None`` for none (empty, 0 or 1)."""
    if not multiplier:
        return None
    factor = Decimal(multiplier)
    return None if factor in (0, 1) else factor


@attrs.frozen
class Definition:
    """What *io_id* means for each of *models*."""

    io_id: int
    name: str
    """The catalogue's name, as written there."""
    size: int | None
    """Bytes on the wire; ``None`` for variable length."""
    type: str
    """``Unsigned``, ``Signed``, ``Hex`` or ``ASCII``."""
    minimum: int | float
    maximum: int | float
    multiplier: str
    """As written in the catalogue: empty or 0 means none."""
    units: str
    description: str
    models: frozenset[str]

    @property
    def attribute_name(self) -> str:
        """The name in attributes, before the collision rule."""
        return attribute_name(self.name)

    @property
    def meaning(self) -> tuple[object, ...]:
        """What two rows must share to name an id the same way for any model."""
        return (
            self.attribute_name,
            self.type,
            self.size,
            scale_of(self.multiplier),
            self.units,
        )
