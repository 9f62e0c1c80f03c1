# -*- test-case-name: tests.test_device_telemetry -*-
"""AVL records from route positions, with the IO a car tracker reports."""

from __future__ import annotations

import random

from twisted.internet.interfaces import IReactorTime

from teltotwist.codec import AvlRecord, Codec, io_elements
from teltotwist.device.route import Position, RouteWalker

IGNITION = 239
MOVEMENT = 240
GSM_SIGNAL = 21
EXTERNAL_VOLTAGE = 66
TOTAL_ODOMETER = 16
PERIODICAL = 7
"""Codec 16 generation type of a periodic record."""


def build_record(
    position: Position,
    *,
    timestamp_ms: int,
    odometer_m: int,
    gsm_signal: int,
    voltage_mv: int,
    codec: Codec,
) -> AvlRecord:
    """A periodic record (event 0) of a car with its ignition on."""
    io, layout = io_elements(
        io1={
            IGNITION: 1,
            MOVEMENT: 1 if position.speed else 0,
            GSM_SIGNAL: gsm_signal,
        },
        io2={EXTERNAL_VOLTAGE: voltage_mv},
        io4={TOTAL_ODOMETER: odometer_m},
    )
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
    """Records of a tracker driving *walker*'s route, timed by *clock*."""

    def __init__(
        self,
        clock: IReactorTime,
        codec: Codec = Codec.CODEC8,
        walker: RouteWalker | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not codec.carries_records:
            raise ValueError(f"codec {codec.label} carries no AVL records")
        self.codec = codec
        self._clock = clock
        self._rng = rng or random.Random()
        self.walker = walker or RouteWalker(rng=self._rng)
        self._last = clock.seconds()

    def sample(self) -> AvlRecord:
        """The record for now: the walker advanced by the time since the last."""
        now = self._clock.seconds()
        position = self.walker.advance(now - self._last)
        self._last = now
        return build_record(
            position,
            timestamp_ms=round(now * 1000),
            odometer_m=int(self.walker.odometer_m) & 0xFFFFFFFF,
            gsm_signal=self._rng.randint(3, 5),
            voltage_mv=self._rng.randint(12_000, 14_000),
            codec=self.codec,
        )
