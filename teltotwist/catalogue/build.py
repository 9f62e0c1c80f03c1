# -*- test-case-name: tests.test_catalogue_build -*-
"""Build the catalogue's package data from the AVL id CSV; run by hand.

    python -m teltotwist.catalogue.build ../shared/avl_ids.csv

writes ``teltotwist/catalogue/avl_ids.json.gz``: the rows a naming needs
(id, name, bytes, type, min, max, multiplier, units, description, models),
with each model named once in a sorted list and rows pointing into it.
"""

from __future__ import annotations

import csv
import gzip
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from teltotwist.catalogue.catalogue import DATA_PATH

_VARIABLE = "variable"


def build(rows: Iterable[Mapping[str, str]]) -> dict[str, Any]:
    """The catalogue document for the CSV *rows* (dicts keyed by its header)."""
    rows = list(rows)
    models = sorted({model for row in rows for model in _models_of(row)})
    index = {model: position for position, model in enumerate(models)}
    return {
        "models": models,
        "rows": [
            [
                int(row["id"]),
                row["name"].strip(),
                None if row["bytes"] == _VARIABLE else int(row["bytes"]),
                row["type"],
                _number(row["min"]),
                _number(row["max"]),
                row["multiplier"].strip(),
                row["units"].strip(),
                row["description"].strip(),
                sorted(index[model] for model in _models_of(row)),
            ]
            for row in rows
        ],
    }


def encode(document: Mapping[str, Any]) -> bytes:
    """The gzipped, compact JSON form; the same bytes for the same document."""
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return gzip.compress(text.encode("utf-8"), mtime=0)


def _models_of(row: Mapping[str, str]) -> set[str]:
    return {model.strip() for model in row["supported_models"].split(",")} - {""}


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def main(argv: Sequence[str]) -> int:
    """Read the CSV named in *argv*, write :data:`DATA_PATH`."""
    if len(argv) != 1:
        print(
            "usage: python -m teltotwist.catalogue.build AVL_IDS_CSV", file=sys.stderr
        )
        return 2
    with open(argv[0], encoding="utf-8", newline="") as csv_file:
        data = encode(build(csv.DictReader(csv_file)))
    DATA_PATH.write_bytes(data)
    print(f"wrote {DATA_PATH} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
