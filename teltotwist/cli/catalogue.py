# -*- test-case-name: tests.test_cli_catalogue -*-
"""``teltotwist catalogue``: the IO names, types, units and ranges a consumer of
the records' ``attributes`` needs, for a model or for one id across models."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from teltotwist.catalogue import Definition, load_catalogue
from teltotwist.catalogue.definition import scale_of
from teltotwist.cli.tracker_model import tracker_model

JsonObject = dict[str, Any]

_COLUMNS = ("ID", "NAME", "TYPE", "BYTES", "MIN", "MAX", "MULTIPLIER", "UNITS")


def register(commands: Any) -> None:
    """Add the ``catalogue`` sub-command to *commands* (an argparse subparsers)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "catalogue",
        help="list IO names, units and scaling per tracker model",
        description=(
            "List the IO ids named in records' attributes: for --model, every id "
            "that model sends; without it, the ids every model reads alike. "
            "--id shows one id across models."
        ),
    )
    parser.add_argument("--model", type=tracker_model, help="a tracker model")
    parser.add_argument("--id", type=int, dest="io_id", help="one IO id across models")
    parser.add_argument("--json", action="store_true", help="print JSON, not a table")


def run(arguments: argparse.Namespace) -> int:
    """Print the listing; 1 when --id names an id the catalogue lacks."""
    catalogue = load_catalogue()
    if arguments.io_id is not None:
        rows = [
            row
            for row in catalogue.definitions(arguments.io_id)
            if arguments.model is None or arguments.model in row.models
        ]
        if not rows:
            print(f"IO id {arguments.io_id} is not in the catalogue", file=sys.stderr)
            return 1
        listing = [
            {**definition_json(row, row.attribute_name), "models": sorted(row.models)}
            for row in rows
        ]
    else:
        naming = catalogue.naming(arguments.model)
        listing = [
            definition_json(naming.definitions[io_id], naming.names[io_id])
            for io_id in sorted(naming.names)
        ]
    if arguments.json:
        print(json.dumps(listing, ensure_ascii=False))
    else:
        print_table(listing)
    return 0


def definition_json(row: Definition, name: str) -> JsonObject:
    """What a consumer needs to read the attribute *name* of *row*."""
    return {
        "id": row.io_id,
        "name": name,
        "catalogue_name": row.name,
        "type": row.type,
        "bytes": row.size,
        "min": row.minimum,
        "max": row.maximum,
        "multiplier": _number(scale_of(row.multiplier) or 1),
        "units": row.units,
        "description": row.description,
    }


def _number(factor: Decimal | int) -> int | float:
    return int(factor) if factor == int(factor) else float(factor)


def print_table(listing: Iterable[JsonObject]) -> None:
    """Aligned columns; with ``models``, a line listing them under each row."""
    lines = [
        (
            [
                str(entry["id"]),
                entry["name"],
                entry["type"],
                "variable" if entry["bytes"] is None else str(entry["bytes"]),
                str(entry["min"]),
                str(entry["max"]),
                str(entry["multiplier"]),
                entry["units"],
            ],
            entry.get("models"),
        )
        for entry in listing
    ]
    widths = [
        max(len(cells[column]) for cells in [list(_COLUMNS)] + [c for c, _ in lines])
        for column in range(len(_COLUMNS))
    ]
    print(_row(list(_COLUMNS), widths))
    for cells, models in lines:
        print(_row(cells, widths))
        if models is not None:
            print(f"    models: {', '.join(models)}")


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(
        cell.ljust(width) for cell, width in zip(cells, widths, strict=True)
    ).rstrip()
