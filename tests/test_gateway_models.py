"""``--models`` and ``--default-model``: which model names a tracker's records,
and how edits to the models file take effect."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from twisted.internet.testing import MemoryReactorClock

from teltotwist.catalogue import load_catalogue
from teltotwist.gateway.models import ModelsError, TrackerModels, parse_models

FIRST = "356307042441013"
SECOND = "352093081452251"
VOLTAGE = {66: 24079}


def test_imei_model_lines_with_comments_and_any_case() -> None:
    text = f"# trucks\n{FIRST},FMB640  # truck 3\n\n {SECOND} , fmb920\n"

    assert parse_models(text, "models.csv", load_catalogue()) == {
        FIRST: "FMB640",
        SECOND: "FMB920",
    }


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (f"{FIRST}", "is not imei,model"),
        (f"{FIRST},FMB920,x", "is not imei,model"),
        ("35630704244101x,FMB920", "is not an IMEI"),
        (f"{FIRST},FMB9200", r"unknown tracker model 'FMB9200' \(near matches: FMB920"),
    ],
)
def test_a_bad_line_names_its_line(line: str, problem: str) -> None:
    with pytest.raises(ModelsError, match=rf"models.csv:2: .*{problem}"):
        parse_models(f"{SECOND},FMB920\n{line}\n", "models.csv", load_catalogue())


def test_an_imei_listed_twice_is_an_error() -> None:
    with pytest.raises(ModelsError, match=r"models.csv:2: IMEI .* listed twice"):
        text = f"{FIRST},FMB920\n{FIRST},FMB640\n"
        parse_models(text, "models.csv", load_catalogue())


def write(path: Path, text: str, mtime: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(mtime, mtime))


@pytest.fixture
def models_file(tmp_path: Path) -> Path:
    path = tmp_path / "models.csv"
    write(path, f"{FIRST},FMB640\n", 1_000_000_000)
    return path


def test_listed_trackers_get_their_model_others_the_default(
    models_file: Path,
) -> None:
    models = TrackerModels(
        load_catalogue(), MemoryReactorClock(), models_file, default_model="FMB920"
    )

    assert models(FIRST).attributes(VOLTAGE) == {"external_voltage": 24079}
    assert models(SECOND).attributes(VOLTAGE) == {"external_voltage": 24.079}


def test_without_any_model_only_ids_all_models_read_alike_are_named() -> None:
    models = TrackerModels(load_catalogue(), MemoryReactorClock())

    assert models(FIRST).attributes({66: 24079, 1: 1}) == {"digital_input_1": 1}


def test_an_unknown_default_model_lists_near_matches() -> None:
    with pytest.raises(ModelsError, match=r"--default-model: .*near matches: .*FMB920"):
        TrackerModels(load_catalogue(), MemoryReactorClock(), default_model="FMB92")


def test_a_changed_file_is_picked_up_by_the_poll(models_file: Path) -> None:
    clock = MemoryReactorClock()
    models = TrackerModels(load_catalogue(), clock, models_file)
    models.startService()

    write(models_file, f"{FIRST},FMB920\n", 2_000_000_000)
    clock.advance(5)

    assert models(FIRST).model == "FMB920"
    models.stopService()


def test_a_broken_edit_keeps_the_previous_map(models_file: Path) -> None:
    models = TrackerModels(load_catalogue(), MemoryReactorClock(), models_file)

    write(models_file, f"{FIRST},FMB920\n{SECOND},NOSUCH\n", 2_000_000_000)
    models.reload()

    assert models(FIRST).model == "FMB640"
    assert models(SECOND).model is None


def test_unreadable_file_at_start_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ModelsError, match="cannot read"):
        TrackerModels(load_catalogue(), MemoryReactorClock(), tmp_path / "none.csv")
