"""The shipped catalogue: its models, one id across models, the unknown-model
rule and unknown models."""

from __future__ import annotations

import pytest

from teltotwist.catalogue import UnknownModelError, load_catalogue


def test_loaded_once() -> None:
    assert load_catalogue() is load_catalogue()


def test_models_include_the_common_trackers() -> None:
    models = load_catalogue().models()

    assert {"FMB920", "FMC130", "FMB640", "TAT100"} <= set(models)
    assert list(models) == sorted(models)


def test_one_id_across_models() -> None:
    rows = load_catalogue().definitions(66)

    assert {(row.units, row.multiplier) for row in rows} == {
        ("V", "0.001"),
        ("mV", "0"),
    }
    assert any("FMB920" in row.models for row in rows)
    assert load_catalogue().definitions(65000) == ()


@pytest.mark.parametrize("model", ["FMB920", "fmb920", " FMB920 "])
def test_model_in_any_case(model: str) -> None:
    assert load_catalogue().naming(model).model == "FMB920"


def test_unknown_model_lists_near_matches() -> None:
    with pytest.raises(UnknownModelError) as caught:
        load_catalogue().naming("FMB92")

    assert "FMB920" in caught.value.near
    assert "'FMB92'" in str(caught.value)
    assert "FMB920" in str(caught.value)


def test_unknown_model_without_near_match() -> None:
    with pytest.raises(UnknownModelError, match="no near match"):
        load_catalogue().naming("QQQQQQQQQQ")


@pytest.mark.parametrize("io_id", [22, 71, 80, 69, 66, 17])
def test_without_a_model_ids_read_differently_by_some_model_stay_raw(
    io_id: int,
) -> None:
    """FMB64x send Data Mode as 22 and GNSS Status as 71; other FMB models use
    80 and 69 for them and 22, 71 for something else."""
    assert io_id not in load_catalogue().naming(None).names


@pytest.mark.parametrize(
    ("io_id", "name"),
    [(1, "digital_input_1"), (240, "movement"), (239, "ignition_239")],
)
def test_without_a_model_ids_every_model_reads_alike_are_named(
    io_id: int, name: str
) -> None:
    assert load_catalogue().naming(None).names[io_id] == name


def test_without_a_model_the_record_keeps_only_shared_meanings() -> None:
    attributes = (
        load_catalogue()
        .naming(None)
        .attributes({1: 1, 22: 3, 71: 3, 80: 84, 69: 1, 66: 24079})
    )

    assert attributes == {"digital_input_1": 1}


def test_without_a_model_a_name_is_each_models_or_carries_its_id() -> None:
    """239 is ``ignition`` for most models but ``ignition_239`` for those that
    also send another Ignition: without a model, the unambiguous form."""
    catalogue = load_catalogue()
    shared = catalogue.naming(None)
    for model in catalogue.models():
        names = catalogue.naming(model).names
        for io_id, name in shared.names.items():
            if io_id in names:
                base = shared.definitions[io_id].attribute_name
                assert name in (names[io_id], f"{base}_{io_id}")
