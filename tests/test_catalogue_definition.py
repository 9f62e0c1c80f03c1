"""Catalogue names become attribute keys; multipliers become factors."""

from __future__ import annotations

from decimal import Decimal

import pytest

from teltotwist.catalogue import attribute_name
from teltotwist.catalogue.definition import scale_of


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("External Voltage", "external_voltage"),
        ("Digital Input 1", "digital_input_1"),
        ("BLE Battery #3", "ble_battery_3"),
        ("  GNSS PDOP ", "gnss_pdop"),
        ("Driver 1 Cumulative Driving Time", "driver_1_cumulative_driving_time"),
        ("Beacon ID's", "beacon_id_s"),
        ("(Temp.) °C -- max!", "temp_c_max"),
    ],
)
def test_attribute_name(name: str, key: str) -> None:
    assert attribute_name(name) == key


@pytest.mark.parametrize(
    ("multiplier", "factor"),
    [
        ("", None),
        ("0", None),
        ("1", None),
        ("0.001", Decimal("0.001")),
        ("10", Decimal(10)),
    ],
)
def test_scale_of(multiplier: str, factor: Decimal | None) -> None:
    assert scale_of(multiplier) == factor
