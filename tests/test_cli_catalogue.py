"""``teltotwist catalogue``: what a consumer of ``attributes`` looks up."""

from __future__ import annotations

import json
from typing import Any

import pytest

from teltotwist.cli import main


def run_catalogue(
    capsys: pytest.CaptureFixture[str], *arguments: str
) -> tuple[int, str]:
    status = main(["catalogue", *arguments])
    return status, capsys.readouterr().out


def json_listing(capsys: pytest.CaptureFixture[str], *arguments: str) -> Any:
    status, out = run_catalogue(capsys, "--json", *arguments)
    assert status == 0
    return json.loads(out)


def by_id(listing: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {entry["id"]: entry for entry in listing}


def test_model_json_lists_names_units_and_scaling(
    capsys: pytest.CaptureFixture[str],
) -> None:
    listing = by_id(json_listing(capsys, "--model", "FMB920"))

    assert listing[66] == {
        "id": 66,
        "name": "external_voltage",
        "catalogue_name": "External Voltage",
        "type": "Unsigned",
        "bytes": 2,
        "min": 0,
        "max": 65535,
        "multiplier": 0.001,
        "units": "V",
        "description": "Voltage",
    }
    assert listing[17]["type"] == "Signed"
    assert listing[67]["name"] == "battery_voltage_67"
    assert listing[256]["bytes"] == 17
    assert listing[264]["bytes"] is None


def test_fmb640_lists_its_own_meanings(capsys: pytest.CaptureFixture[str]) -> None:
    listing = by_id(json_listing(capsys, "--model", "FMB640"))

    assert listing[22]["name"] == "data_mode"
    assert listing[66]["units"] == "mV"
    assert listing[66]["multiplier"] == 1


def test_without_model_only_ids_every_model_reads_alike(
    capsys: pytest.CaptureFixture[str],
) -> None:
    listing = by_id(json_listing(capsys))

    assert listing[1]["name"] == "digital_input_1"
    assert not {22, 66, 69, 71, 80} & set(listing)


def test_table_for_people(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run_catalogue(capsys, "--model", "FMB920")

    header, *rows = out.splitlines()
    assert status == 0
    assert header.split() == [
        "ID",
        "NAME",
        "TYPE",
        "BYTES",
        "MIN",
        "MAX",
        "MULTIPLIER",
        "UNITS",
    ]
    [voltage] = [row for row in rows if row.startswith("66 ")]
    assert voltage.split() == [
        "66",
        "external_voltage",
        "Unsigned",
        "2",
        "0",
        "65535",
        "0.001",
        "V",
    ]


def test_one_id_across_models(capsys: pytest.CaptureFixture[str]) -> None:
    listing = json_listing(capsys, "--id", "66")

    assert [(entry["units"], entry["multiplier"]) for entry in listing] == [
        ("V", 0.001),
        ("mV", 1),
    ]
    assert "FMB920" in listing[0]["models"]
    assert "FMB640" in listing[1]["models"]


def test_one_id_for_one_model(capsys: pytest.CaptureFixture[str]) -> None:
    [entry] = json_listing(capsys, "--id", "22", "--model", "FMB640")

    assert entry["name"] == "data_mode"


def test_one_id_table_lists_models(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run_catalogue(capsys, "--id", "17")

    assert status == 0
    assert "fuel_consumed_counted" in out
    assert (
        "    models: FMB640, FMB641, FMC640, FMC650, FMM640, FMM650" in out.splitlines()
    )


def test_id_not_in_the_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["catalogue", "--id", "65000"])

    assert status == 1
    assert "65000 is not in the catalogue" in capsys.readouterr().err


def test_unknown_model_is_a_usage_error_with_near_matches(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["catalogue", "--model", "TAT10"])

    error = capsys.readouterr().err
    assert exited.value.code == 2
    assert "unknown tracker model 'TAT10' (near matches: " in error
    assert "TAT100" in error
