"""ACK latency percentiles from the mergeable histogram."""

from __future__ import annotations

import json

import pytest

from teltotwist.load import LatencyHistogram


def histogram_of(*seconds: float) -> LatencyHistogram:
    histogram = LatencyHistogram()
    for value in seconds:
        histogram.add(value)
    return histogram


def test_percentiles_are_within_one_percent_of_the_samples() -> None:
    histogram = histogram_of(*(n / 1000 for n in range(1, 1001)))

    for percent in (50, 95, 99):
        assert histogram.percentile(percent) == pytest.approx(percent / 100, rel=0.01)
        assert histogram.percentile(percent) >= percent / 100
    assert histogram.percentile(100) == histogram.maximum == 1.0
    assert histogram.count == 1000


def test_a_percentile_never_exceeds_the_largest_sample() -> None:
    histogram = histogram_of(0.0123)

    assert histogram.percentile(50) == histogram.percentile(99) == 0.0123


def test_an_empty_histogram_reports_zero() -> None:
    assert LatencyHistogram().percentile(99) == 0.0


def test_merging_gives_the_percentiles_of_all_samples_not_their_average() -> None:
    fast = histogram_of(*[0.001] * 900)
    slow = histogram_of(*[0.100] * 100)

    fast.merge(slow)

    assert fast.count == 1000
    assert fast.percentile(50) == pytest.approx(0.001, rel=0.01)
    assert fast.percentile(95) == pytest.approx(0.100, rel=0.01)
    assert fast.maximum == 0.100


def test_a_histogram_survives_a_trip_through_json() -> None:
    histogram = histogram_of(0.0005, 0.002, 0.002, 0.5)

    copy = LatencyHistogram.from_json(json.loads(json.dumps(histogram.to_json())))

    assert copy.count == 4
    assert copy.maximum == 0.5
    assert [copy.percentile(p) for p in (25, 50, 75)] == [
        histogram.percentile(p) for p in (25, 50, 75)
    ]


def test_json_that_is_no_histogram_is_refused() -> None:
    with pytest.raises(ValueError, match="not a latency histogram"):
        LatencyHistogram.from_json({"buckets": [], "max": 1})
