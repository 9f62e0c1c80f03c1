# -*- test-case-name: tests.test_load_plan,tests.test_load_burst -*-
"""What a load run does: how many trackers, how fast, for how long."""

from __future__ import annotations

import enum
import math

import attrs

from teltotwist.codec import Codec
from teltotwist.device.telemetry import DEFAULT_MODEL

IMEI_DIGITS = 15


class Pace(enum.Enum):
    """When the trackers of a load send their packets."""

    STEADY = "steady"
    """Each sends a packet as soon as it has recorded one: as the trackers
    start one after another, their sends are spread over the interval."""
    BURST = "burst"
    """All send at the same instants, one interval apart, from one interval
    after the ramp-up ends."""
    FLAT_OUT = "flat out"
    """Each sends its next packet the moment the previous one is ACKed."""


@attrs.frozen
class LoadPlan:
    """A checked load plan; times are in seconds.

    Tracker *n* (from 0) logs in as ``imei_base + n``, starts at
    ``n * ramp_up / devices`` and sends *records_per_packet* records every
    *interval* until *duration* after the first start; *pace* says when.
    """

    devices: int
    duration: float
    interval: float = 1.0
    records_per_packet: int = 10
    imei_base: int = 350_000_000_000_000
    ramp_up: float = 0.0
    ack_timeout: float = 10.0
    codec: Codec = Codec.CODEC8
    model: str = DEFAULT_MODEL
    """The tracker model whose IO the trackers send."""
    pace: Pace = Pace.STEADY

    def __attrs_post_init__(self) -> None:
        if self.devices < 1:
            raise ValueError(f"devices must be at least 1, not {self.devices}")
        for name in ("duration", "interval", "ack_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)}")
        if not 1 <= self.records_per_packet <= 255:
            raise ValueError(
                f"records per packet must be 1..255, not {self.records_per_packet}"
            )
        if not 0 <= self.ramp_up < self.duration:
            raise ValueError(
                f"ramp-up must be at least 0 and shorter than the duration "
                f"({self.duration:g} s), not {self.ramp_up:g}"
            )
        if self.pace is Pace.BURST and not self.burst_at(1) < self.duration:
            raise ValueError(
                f"bursts need a duration longer than the ramp-up plus one "
                f"interval (the first burst comes at {self.burst_at(1):g} s), "
                f"not {self.duration:g} s"
            )
        last = self.imei_base + self.devices - 1
        if self.imei_base < 0 or len(str(last)) > IMEI_DIGITS:
            raise ValueError(
                f"IMEIs from {self.imei_base} for {self.devices} devices "
                f"do not fit in {IMEI_DIGITS} digits"
            )

    def imei(self, index: int) -> str:
        """The IMEI of tracker *index*, 15 digits."""
        return str(self.imei_base + index).zfill(IMEI_DIGITS)

    def start_delay(self, index: int) -> float:
        """When tracker *index* starts, after the first."""
        return index * self.ramp_up / self.devices

    def burst_at(self, number: int) -> float:
        """BURST: when every tracker sends its *number*-th packet (from 1),
        after the first start: one interval after the ramp-up ends, then
        every interval."""
        return self.ramp_up + number * self.interval

    def split(self, parts: int) -> list[LoadPlan]:
        """*parts* plans sharing the trackers (and IMEIs) of this one.

        Each keeps the whole ramp-up, so together they start trackers as
        fast as this plan does.
        """
        if not 1 <= parts <= self.devices:
            raise ValueError(
                f"processes must be 1..{self.devices} (the devices), not {parts}"
            )
        plans, base = [], self.imei_base
        for part in range(parts):
            devices = self.devices // parts + (part < self.devices % parts)
            plans.append(attrs.evolve(self, devices=devices, imei_base=base))
            base += devices
        return plans

    @property
    def offered_rate(self) -> float:
        """Records per second the trackers record, once all have started;
        infinite when flat out."""
        if self.pace is Pace.FLAT_OUT:
            return math.inf
        return self.devices * self.records_per_packet / self.interval


def interval_for_rate(devices: int, records_per_packet: int, rate: float) -> float:
    """The interval at which *devices* trackers send *rate* records/s in total."""
    if not rate > 0:
        raise ValueError(f"rate must be positive, not {rate:g}")
    return devices * records_per_packet / rate
