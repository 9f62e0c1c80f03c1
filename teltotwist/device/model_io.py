# -*- test-case-name: tests.test_device_model_io -*-
"""The IO ids and sizes one tracker model reports its readings with.

Taken from :mod:`teltotwist.catalogue`, so the virtual tracker and the naming
of what it sends cannot drift apart.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType

from teltotwist.catalogue import Definition, load_catalogue
from teltotwist.catalogue.definition import scale_of
from teltotwist.codec import Codec, FixedIoEncoder, IoLayout, IoValue, io_elements

READINGS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "ignition": frozenset({""}),
        "movement": frozenset({""}),
        "gsm_signal": frozenset({""}),
        "data_mode": frozenset({""}),
        "gnss_status": frozenset({""}),
        "external_voltage": frozenset({"mV"}),
        "battery_voltage": frozenset({"mV"}),
        "total_odometer": frozenset({"m", ""}),
        "trip_odometer": frozenset({"m"}),
        "axis_x": frozenset({"mG"}),
        "axis_y": frozenset({"mG"}),
        "axis_z": frozenset({"mG"}),
        "iccid1": frozenset({""}),
        "iccid2": frozenset({""}),
    }
)
"""What the virtual tracker reports: each reading's catalogue name (as an
attribute name, before the collision rule) and the raw units it sends it in."""

_FIXED_SIZES = (1, 2, 4, 8)
_MILLI = Decimal("0.001")
_GNSS_FIX = re.compile(r"(\d+)\s*[-\u2013]\s*GNSS ON,? with fix", re.IGNORECASE)


def raw_units(definition: Definition) -> str:
    """The units of the integer on the wire: ``V`` scaled by 0.001 is ``mV``."""
    scale = scale_of(definition.multiplier)
    if scale is None:
        return definition.units
    if scale == _MILLI and definition.units in {"V", "G"}:
        return "m" + definition.units
    return f"{scale} {definition.units}"


class ModelIo:
    """How *model* sends the :data:`READINGS` it has: a reading the model lacks,
    or sends in other units, is left out. Where several of its ids share a
    reading's name, the lowest (the tracker's own, not a vehicle bus's) is it."""

    def __init__(self, model: str):
        self.model = load_catalogue().model_named(model)
        definitions = load_catalogue().naming(self.model).definitions
        found: dict[str, Definition] = {}
        for io_id in sorted(definitions):
            definition = definitions[io_id]
            name = definition.attribute_name
            units = READINGS.get(name)
            if (
                units
                and name not in found
                and definition.size in _FIXED_SIZES
                and raw_units(definition) in units
            ):
                found[name] = definition
        gnss = found.get("gnss_status")
        fix = _GNSS_FIX.search(gnss.description) if gnss else None
        self.gnss_fix = int(fix.group(1)) if fix else None
        """The GNSS status value meaning "on, with a fix"; ``None`` if unknown."""
        if self.gnss_fix is None:
            found.pop("gnss_status", None)  # it has no value to send
        self.definitions: Mapping[str, Definition] = MappingProxyType(found)
        """The catalogue row of each reading this model sends."""
        order = list(READINGS)
        names = sorted(found, key=lambda name: (found[name].size, order.index(name)))
        self.names = tuple(names)
        """The readings it sends, in the order of their IO elements."""
        self.io_ids = tuple(found[name].io_id for name in names)
        """Their IO ids, in the same order."""
        sizes = [found[name].size for name in names]
        ones, twos, fours, eights = map(sizes.count, _FIXED_SIZES)
        self.io_layout: IoLayout = (ones, twos, fours, eights, 0, 0)
        """How many of them each IO group holds."""
        self._masks = tuple((1 << 8 * (size or 0)) - 1 for size in sizes)
        self._signed = tuple(
            (index, self._masks[index])
            for index, name in enumerate(names)
            if found[name].type == "Signed"
        )
        """Where the values that can be negative are, and their masks."""
        self._encoders: dict[Codec, FixedIoEncoder] = {}

    def values(self, readings: Mapping[str, int]) -> list[int]:
        """The IO values of *readings*, which must hold every one of
        :attr:`names`: in the order of :attr:`io_ids`, signed ones as two's
        complement of their size."""
        values = list(map(readings.__getitem__, self.names))
        for index, mask in self._signed:
            values[index] &= mask
        return values

    def elements(
        self, readings: Mapping[str, int]
    ) -> tuple[dict[int, IoValue], IoLayout]:
        """The ``io`` and ``io_layout`` of *readings*: ids and sizes of this
        model, signed values as two's complement; readings it lacks are dropped."""
        groups: dict[int, dict[int, int]] = {size: {} for size in _FIXED_SIZES}
        sent = zip(self.names, self.io_ids, self._masks, strict=True)
        for name, io_id, mask in sent:
            if name in readings:
                size = self.definitions[name].size or 0
                groups[size][io_id] = readings[name] & mask
        return io_elements(io1=groups[1], io2=groups[2], io4=groups[4], io8=groups[8])

    def encoder(self, codec: Codec) -> FixedIoEncoder:
        """Encodes records of *codec* carrying this model's :attr:`io_ids`."""
        encoder = self._encoders.get(codec)
        if encoder is None:
            encoder = FixedIoEncoder(codec, self.io_ids, self.io_layout)
            self._encoders[codec] = encoder
        return encoder


@functools.cache
def model_io(model: str) -> ModelIo:
    """The :class:`ModelIo` of *model*, built once and shared by every tracker
    of that model (building one reads the whole catalogue)."""
    return ModelIo(model)
