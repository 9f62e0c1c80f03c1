# -*- test-case-name: tests.test_device_telemetry -*-
"""AVL records from route positions, with the IO a car tracker reports."""

from __future__ import annotations

import random
from collections.abc import Mapping

from twisted.internet.interfaces import IReactorTime

from teltotwist.codec import AvlRecord, Codec
from teltotwist.device.model_io import ModelIo, model_io
from teltotwist.device.route import Position, RouteWalker

DEFAULT_MODEL = "FMB920"
"""The model the virtual tracker imitates unless told otherwise."""
ICCID = (8937_0200_00, 12_3456_7890)
"""The SIM card's ICCID (8937020000 1234567890), as IO ``iccid1`` and ``iccid2``."""
PERIODICAL = 7
"""Codec 16 generation type of a periodic record."""


def build_record(
    position: Position,
    *,
    timestamp_ms: int,
    readings: Mapping[str, int],
    model_io: ModelIo,
    codec: Codec,
) -> AvlRecord:
    """A periodic record (event 0) with *readings* as *model_io* sends them."""
    io, layout = model_io.elements(readings)
    return AvlRecord(
        timestamp_ms=timestamp_ms,
        priority=0,
        longitude=round(position.longitude, 7),
        latitude=round(position.latitude, 7),
        altitude=position.altitude,
        angle=position.angle,
        satellites=position.satellites,
        speed=position.speed,
        event_id=0,
        io=io,
        io_layout=layout,
        generation_type=PERIODICAL if codec is Codec.CODEC16 else None,
    )


class TelemetrySource:
    """Records of a *model* tracker in a car driving *walker*'s route, timed by
    *clock*: ignition on, external power, the accelerometer at rest."""

    def __init__(
        self,
        clock: IReactorTime,
        codec: Codec = Codec.CODEC8,
        walker: RouteWalker | None = None,
        rng: random.Random | None = None,
        model: str = DEFAULT_MODEL,
    ) -> None:
        if not codec.carries_records:
            raise ValueError(f"codec {codec.label} carries no AVL records")
        self.model_io = model_io(model)
        self.codec = codec
        self._clock = clock
        self._rng = rng or random.Random()
        self.walker = walker or RouteWalker(rng=self._rng)
        self._last = clock.seconds()

    def sample(self, at: float | None = None) -> AvlRecord:
        """The record for now, or for clock time *at*: the walker advanced by
        the time since the last."""
        now = self._clock.seconds() if at is None else at
        position = self.walker.advance(now - self._last)
        self._last = now
        return build_record(
            position,
            timestamp_ms=round(now * 1000),
            readings=self._readings(position),
            model_io=self.model_io,
            codec=self.codec,
        )

    def _readings(self, position: Position) -> dict[str, int]:
        draw = self._rng.randint
        moving = 1 if position.speed else 0
        odometer_m = int(self.walker.odometer_m) & 0xFFFFFFFF
        readings = {
            "ignition": 1,
            "movement": moving,
            "gsm_signal": draw(3, 5),
            "external_voltage": draw(12_000, 14_000),
            "total_odometer": odometer_m,
            "trip_odometer": odometer_m,
            "data_mode": moving,  # 0 home on stop, 1 home on moving
            "battery_voltage": draw(4_000, 4_200),
            "axis_x": draw(-60, 60),
            "axis_y": draw(-60, 60),
            "axis_z": draw(-1_040, -960),
            "iccid1": ICCID[0],
            "iccid2": ICCID[1],
        }
        if self.model_io.gnss_fix is not None:
            readings["gnss_status"] = self.model_io.gnss_fix
        return readings
