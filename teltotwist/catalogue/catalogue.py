# -*- test-case-name: tests.test_catalogue_catalogue -*-
"""The AVL catalogue shipped as package data, loaded once, lazily."""

from __future__ import annotations

import difflib
import gzip
import json
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from teltotwist.catalogue.definition import Definition
from teltotwist.catalogue.naming import Naming, unique_names

DATA_PATH = Path(__file__).resolve().parent / "avl_ids.json.gz"
"""The built catalogue (``python -m teltotwist.catalogue.build``)."""


class UnknownModelError(ValueError):
    """A model the catalogue does not know; :attr:`near` holds likely meant ones."""

    def __init__(self, model: str, near: Sequence[str]):
        self.model = model
        self.near = tuple(near)
        hint = f"near matches: {', '.join(self.near)}" if self.near else "no near match"
        super().__init__(f"unknown tracker model {model!r} ({hint})")


class Catalogue:
    """Every catalogue row, and a :class:`Naming` per model."""

    def __init__(self, definitions: Sequence[Definition]):
        self._by_id: defaultdict[int, list[Definition]] = defaultdict(list)
        for definition in definitions:
            self._by_id[definition.io_id].append(definition)
        self._models = tuple(sorted({m for d in definitions for m in d.models}))
        self._namings: dict[str | None, Naming] = {}

    def models(self) -> tuple[str, ...]:
        """The models the catalogue knows, sorted."""
        return self._models

    def definitions(self, io_id: int) -> tuple[Definition, ...]:
        """Every row for *io_id*, one per group of models that read it alike."""
        return tuple(self._by_id.get(io_id, ()))

    def model_named(self, model: str) -> str:
        """The catalogue's spelling of *model* (any case); raises
        :class:`UnknownModelError` with near matches."""
        wanted = model.strip().upper()
        if wanted in self._models:
            return wanted
        raise UnknownModelError(model, difflib.get_close_matches(wanted, self._models))

    def naming(self, model: str | None) -> Naming:
        """The naming for *model*; for ``None``, see :meth:`_shared_rows`."""
        key = None if model is None else self.model_named(model)
        naming = self._namings.get(key)
        if naming is None:
            if key is None:
                naming = Naming(None, *self._shared_rows())
            else:
                rows = self._rows_of(key)
                naming = Naming(key, rows, unique_names(rows.values()))
            self._namings[key] = naming
        return naming

    def _rows_of(self, model: str) -> dict[int, Definition]:
        """For each id *model* sends, the row whose model list holds it."""
        return {
            io_id: row
            for io_id, rows in self._by_id.items()
            for row in rows
            if model in row.models
        }

    def _shared_rows(self) -> tuple[dict[int, Definition], dict[int, str]]:
        """The ids every model that sends them reads alike, and their names: the
        name every such model gives, else (when some model appends the id, or
        two such ids would share a name) the name with ``_<id>`` appended."""
        names: defaultdict[int, set[str]] = defaultdict(set)
        for model in self._models:
            for io_id, name in unique_names(self._rows_of(model).values()).items():
                names[io_id].add(name)
        rows = {
            io_id: candidates[0]
            for io_id, candidates in self._by_id.items()
            if len({row.meaning for row in candidates}) == 1
        }
        agreed = {
            io_id: next(iter(names[io_id])) for io_id in rows if len(names[io_id]) == 1
        }
        taken = Counter(agreed.values())
        return rows, {
            io_id: (
                agreed[io_id]
                if io_id in agreed and taken[agreed[io_id]] == 1
                else f"{row.attribute_name}_{io_id}"
            )
            for io_id, row in rows.items()
        }


def parse(document: Mapping[str, Any]) -> Catalogue:
    """The catalogue from its package-data document (see ``build``)."""
    models: list[str] = document["models"]
    return Catalogue(
        [
            Definition(
                io_id=io_id,
                name=name,
                size=size,
                type=kind,
                minimum=minimum,
                maximum=maximum,
                multiplier=multiplier,
                units=units,
                description=description,
                models=frozenset(models[index] for index in model_indexes),
            )
            for (
                io_id,
                name,
                size,
                kind,
                minimum,
                maximum,
                multiplier,
                units,
                description,
                model_indexes,
            ) in document["rows"]
        ]
    )


@cache
def load_catalogue() -> Catalogue:
    """The shipped catalogue, read on first use."""
    return parse(json.loads(gzip.decompress(DATA_PATH.read_bytes())))
