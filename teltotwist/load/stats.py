# -*- test-case-name: tests.test_load_stats -*-
"""ACK latencies in a mergeable histogram of 1 % wide buckets."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping

_GROWTH = 1.01
"""Each bucket is 1 % wider than the one below: percentiles within 1 %."""
_FLOOR = 1e-6
"""Latencies below a microsecond share the lowest bucket."""


def _bucket(seconds: float) -> int:
    return math.floor(math.log(max(seconds, _FLOOR) / _FLOOR, _GROWTH))


def _upper_edge(bucket: int) -> float:
    return _FLOOR * _GROWTH ** (bucket + 1)


class LatencyHistogram:
    """Latencies in seconds; merging two gives the histogram of both."""

    def __init__(self) -> None:
        self.buckets: Counter[int] = Counter()
        self.count = 0
        self.maximum = 0.0

    def add(self, seconds: float) -> None:
        """Count one latency."""
        self.buckets[_bucket(seconds)] += 1
        self.count += 1
        self.maximum = max(self.maximum, seconds)

    def merge(self, other: LatencyHistogram) -> None:
        """Add every latency counted in *other*."""
        self.buckets.update(other.buckets)
        self.count += other.count
        self.maximum = max(self.maximum, other.maximum)

    def percentile(self, percent: float) -> float:
        """The latency *percent* % of the samples do not exceed; 0 when empty.

        It is the upper edge of the sample's bucket (never more than the
        maximum), so it overstates by under 1 %.
        """
        if not self.count:
            return 0.0
        rank = max(1, math.ceil(self.count * percent / 100))
        seen = 0
        for bucket in sorted(self.buckets):
            seen += self.buckets[bucket]
            if seen >= rank:
                return min(_upper_edge(bucket), self.maximum)
        raise AssertionError("the bucket counts do not add up")  # pragma: no cover

    def to_json(self) -> dict[str, object]:
        """A JSON-ready form, for :meth:`from_json` in another process."""
        return {
            "buckets": {str(bucket): n for bucket, n in sorted(self.buckets.items())},
            "max": self.maximum,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> LatencyHistogram:
        """The histogram :meth:`to_json` wrote."""
        histogram = cls()
        buckets = data["buckets"]
        maximum = data["max"]
        if not isinstance(buckets, dict) or not isinstance(maximum, int | float):
            raise ValueError("not a latency histogram")
        for bucket, count in buckets.items():
            histogram.buckets[int(bucket)] = int(count)
        histogram.count = sum(histogram.buckets.values())
        histogram.maximum = float(maximum)
        return histogram
