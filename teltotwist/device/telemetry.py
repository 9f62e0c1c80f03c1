# -*- test-case-name: tests.test_device_telemetry -*-
"""AVL records from route positions, with the IO a car tracker reports."""

from __future__ import annotations

import random

from twisted.internet.interfaces import IReactorTime

from teltotwist.codec import AvlRecord, Codec
from teltotwist.device.model_io import model_io
from teltotwist.device.route import Position, RouteWalker

DEFAULT_MODEL = "FMB920"
"""The model the virtual tracker imitates unless told otherwise."""
ICCID = (8937_0200_00, 12_3456_7890)
"""The SIM card's ICCID (8937020000 1234567890), as IO ``iccid1`` and ``iccid2``."""
PERIODICAL = 7
"""Codec 16 generation type of a periodic record."""


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
        self._encoder = self.model_io.encoder(codec)
        self._generation = (PERIODICAL,) if codec is Codec.CODEC16 else ()

    def sample(self, at: float | None = None) -> AvlRecord:
        """The periodic record (event 0) for now, or for clock time *at*: the
        walker advanced by the time since the last. It comes encoded: its
        ``wire`` holds its bytes in a payload of the codec, ready to pack."""
        now = self._clock.seconds() if at is None else at
        position = self.walker.advance(now - self._last)
        self._last = now
        return self._encoder.record(
            (
                round(now * 1000),
                0,
                round(position.longitude * 10_000_000),
                round(position.latitude * 10_000_000),
                position.altitude,
                position.angle,
                position.satellites,
                position.speed,
                0,
                *self._generation,
                *self.model_io.values(self._readings(position)),
            )
        )

    def _readings(self, position: Position) -> dict[str, int]:
        # One draw for all the noise: each reading takes its share of 64
        # random bits (their spans multiply to about 2**40, so the shares
        # are as good as uniform).
        bits = self._rng.getrandbits(64)
        bits, gsm_signal = divmod(bits, 3)
        bits, external_voltage = divmod(bits, 2_001)
        bits, battery_voltage = divmod(bits, 201)
        bits, axis_x = divmod(bits, 121)
        bits, axis_y = divmod(bits, 121)
        axis_z = bits % 81
        moving = 1 if position.speed else 0
        odometer_m = int(self.walker.odometer_m) & 0xFFFFFFFF
        readings = {
            "ignition": 1,
            "movement": moving,
            "gsm_signal": 3 + gsm_signal,
            "external_voltage": 12_000 + external_voltage,
            "total_odometer": odometer_m,
            "trip_odometer": odometer_m,
            "data_mode": moving,  # 0 home on stop, 1 home on moving
            "battery_voltage": 4_000 + battery_voltage,
            "axis_x": axis_x - 60,
            "axis_y": axis_y - 60,
            "axis_z": axis_z - 1_040,
            "iccid1": ICCID[0],
            "iccid2": ICCID[1],
        }
        if self.model_io.gnss_fix is not None:
            readings["gnss_status"] = self.model_io.gnss_fix
        return readings
