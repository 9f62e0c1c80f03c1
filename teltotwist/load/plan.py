# -*- test-case-name: tests.test_load_plan -*-
"""What a load run does: how many trackers, how fast, for how long."""

from __future__ import annotations

import attrs

from teltotwist.codec import Codec

IMEI_DIGITS = 15


@attrs.frozen
class LoadPlan:
    """A checked load plan; times are in seconds.

    Tracker *n* (from 0) logs in as ``imei_base + n``, starts at
    ``n * ramp_up / devices`` and sends *records_per_packet* records every
    *interval* until *duration* after the first start.
    """

    devices: int
    duration: float
    interval: float = 1.0
    records_per_packet: int = 10
    imei_base: int = 350_000_000_000_000
    ramp_up: float = 0.0
    ack_timeout: float = 10.0
    codec: Codec = Codec.CODEC8

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
        """Records per second the trackers record, once all have started."""
        return self.devices * self.records_per_packet / self.interval


def interval_for_rate(devices: int, records_per_packet: int, rate: float) -> float:
    """The interval at which *devices* trackers send *rate* records/s in total."""
    if not rate > 0:
        raise ValueError(f"rate must be positive, not {rate:g}")
    return devices * records_per_packet / rate
