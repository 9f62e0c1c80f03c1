"""The shipped catalogue is the build of the CSV in ``tests/data``."""

from __future__ import annotations

import csv
import gzip
import json

import pytest

from teltotwist.catalogue.build import build, encode, main
from teltotwist.catalogue.catalogue import DATA_PATH
from tests.vectors import VECTORS_DIR

CSV_PATH = VECTORS_DIR / "avl_ids.csv"


def csv_rows() -> list[dict[str, str]]:
    with CSV_PATH.open(encoding="utf-8", newline="") as csv_file:
        return list(csv.DictReader(csv_file))


def test_shipped_data_is_the_build_of_the_csv() -> None:
    assert DATA_PATH.read_bytes() == encode(build(csv_rows()))


def test_shipped_data_keeps_every_row_and_model() -> None:
    document = json.loads(gzip.decompress(DATA_PATH.read_bytes()))
    rows = csv_rows()
    models = {m.strip() for row in rows for m in row["supported_models"].split(",")}

    assert len(document["rows"]) == len(rows)
    assert set(document["models"]) == models


def test_one_row_as_built() -> None:
    row = next(row for row in csv_rows() if row["id"] == "66")
    [built] = build([row])["rows"]

    assert built[:9] == [
        66,
        "External Voltage",
        2,
        "Unsigned",
        0,
        65535,
        "0.001",
        "V",
        "Voltage",
    ]
    assert len(built[9]) == len(row["supported_models"].split(","))


def test_variable_length_has_no_size() -> None:
    row = next(row for row in csv_rows() if row["bytes"] == "variable")

    assert build([row])["rows"][0][2] is None


def test_build_without_the_csv_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([]) == 2
    assert "usage: python -m teltotwist.catalogue.build" in capsys.readouterr().err
