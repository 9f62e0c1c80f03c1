# -*- test-case-name: tests.test_load_summary -*-
"""The figures of a load run, as text or JSON, mergeable across processes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from teltotwist.load.stats import LatencyHistogram

PERCENTILES = (50, 95, 99)


@attrs.define
class Summary:
    """What the trackers of a run counted; *duration* in seconds."""

    devices: int = 0
    duration: float = 0.0
    packets_sent: int = 0
    """Packets sent for the first time (resends are counted apart)."""
    packets_acked: int = 0
    records_acked: int = 0
    resends: int = 0
    reconnects: int = 0
    unacked: int = 0
    """Packets still waiting for their ACK when their tracker stopped."""
    errors: Counter[str] = attrs.field(factory=Counter)
    latency: LatencyHistogram = attrs.field(factory=LatencyHistogram)

    @property
    def records_per_second(self) -> float:
        """Records ACKed per second of the run."""
        return self.records_acked / self.duration if self.duration else 0.0

    def latency_ms(self) -> dict[str, float]:
        """ACK latency percentiles and maximum, in milliseconds."""
        figures = {f"p{p}": self.latency.percentile(p) for p in PERCENTILES}
        figures["max"] = self.latency.maximum
        return {name: round(seconds * 1000, 3) for name, seconds in figures.items()}

    @classmethod
    def merge(cls, parts: Iterable[Summary]) -> Summary:
        """One summary of runs that went on side by side (one per process)."""
        total = cls()
        for part in parts:
            total.devices += part.devices
            total.duration = max(total.duration, part.duration)
            total.packets_sent += part.packets_sent
            total.packets_acked += part.packets_acked
            total.records_acked += part.records_acked
            total.resends += part.resends
            total.reconnects += part.reconnects
            total.unacked += part.unacked
            total.errors.update(part.errors)
            total.latency.merge(part.latency)
        return total

    def to_json(self, *, histogram: bool = False) -> dict[str, Any]:
        """The summary as a JSON object; with the raw *histogram* for merging."""
        data: dict[str, Any] = {
            "duration": round(self.duration, 3),
            "devices": self.devices,
            "packets_sent": self.packets_sent,
            "packets_acked": self.packets_acked,
            "records_acked": self.records_acked,
            "records_per_second": round(self.records_per_second, 1),
            "latency_ms": self.latency_ms(),
            "errors": dict(sorted(self.errors.items())),
            "reconnects": self.reconnects,
            "resends": self.resends,
            "unacked": self.unacked,
        }
        if histogram:
            data["latency_histogram"] = self.latency.to_json()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Summary:
        """The summary :meth:`to_json` wrote with its histogram."""
        return cls(
            devices=int(data["devices"]),
            duration=float(data["duration"]),
            packets_sent=int(data["packets_sent"]),
            packets_acked=int(data["packets_acked"]),
            records_acked=int(data["records_acked"]),
            resends=int(data["resends"]),
            reconnects=int(data["reconnects"]),
            unacked=int(data["unacked"]),
            errors=Counter({str(k): int(v) for k, v in data["errors"].items()}),
            latency=LatencyHistogram.from_json(data["latency_histogram"]),
        )

    def render(self) -> str:
        """The summary as aligned lines of text."""
        latency = "  ".join(
            f"{name} {value:.1f} ms" for name, value in self.latency_ms().items()
        )
        errors = f"{sum(self.errors.values()):,}"
        if self.errors:
            kinds = sorted(self.errors.items())
            errors += " (" + ", ".join(f"{kind} {n:,}" for kind, n in kinds) + ")"
        lines = [
            ("duration", f"{self.duration:.1f} s"),
            ("devices", f"{self.devices:,}"),
            ("packets ACKed", f"{self.packets_acked:,} of {self.packets_sent:,} sent"),
            ("records ACKed", f"{self.records_acked:,}"),
            ("records/s ACKed", f"{self.records_per_second:,.1f}"),
            ("ACK latency", latency),
            ("errors", errors),
            ("reconnects", f"{self.reconnects:,}"),
            ("resends", f"{self.resends:,}"),
            ("unACKed at stop", f"{self.unacked:,}"),
        ]
        return "\n".join(f"{name:<16} {value}" for name, value in lines)
