# -*- test-case-name: tests.test_catalogue_naming -*-
"""The attributes of a record: its IO ids named, signed and scaled for one model."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from teltotwist.catalogue.definition import Definition
from teltotwist.catalogue.values import (
    Converter,
    IntegerConverter,
    IntegerRule,
    IoValue,
    converter,
    integer_converter,
    integer_rule,
)


def unique_names(definitions: Iterable[Definition]) -> dict[int, str]:
    """Each id's attribute name; ids of one model sharing a name get ``_<id>``."""
    by_name: defaultdict[str, list[int]] = defaultdict(list)
    for definition in definitions:
        by_name[definition.attribute_name].append(definition.io_id)
    return {
        io_id: name if len(io_ids) == 1 else f"{name}_{io_id}"
        for name, io_ids in by_name.items()
        for io_id in io_ids
    }


class Naming:
    """How one model (or, with *model* ``None``, any model) names its IO ids."""

    def __init__(
        self,
        model: str | None,
        definitions: Mapping[int, Definition],
        names: Mapping[int, str],
    ):
        self.model = model
        self.definitions = definitions
        """The row that decides, for each id this naming names."""
        self.names = names
        """Each id's attribute name (see :func:`unique_names`)."""
        self.table: dict[
            int, tuple[str, IntegerConverter | None, Converter, IntegerRule | None]
        ] = {
            io_id: (
                self.names[io_id],
                integer_converter(definition),
                converter(definition),
                integer_rule(definition),
            )
            for io_id, definition in definitions.items()
        }
        """Each named id's name, the converter of an integer value (``None``
        when the integer is its own value), the converter of any value, and
        the rule the integer converter follows (``None`` for text): what
        :meth:`attributes` applies, and the compiled items too."""

    def attributes(self, io: Mapping[int, IoValue]) -> dict[str, Any]:
        """``{name: value}`` for the ids of *io* this naming names; others are left
        out (they stay in the record's raw ``io``)."""
        table = self.table
        result: dict[str, Any] = {}
        for io_id, value in io.items():
            entry = table.get(io_id)
            if entry is None:
                continue
            name, of_integer, convert, _ = entry
            # Records are named by the thousand per second: an integer takes
            # one call at most, none when it is its own value.
            if type(value) is int:
                result[name] = value if of_integer is None else of_integer(value)
            else:
                result[name] = convert(value)
        return result
