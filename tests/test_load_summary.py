"""The load summary: merging the processes' parts, JSON and text."""

from __future__ import annotations

import json
from collections import Counter

from teltotwist.load import LatencyHistogram, Summary


def part(devices: int, records: int, latency: float, duration: float) -> Summary:
    histogram = LatencyHistogram()
    for _ in range(records // 10):
        histogram.add(latency)
    return Summary(
        devices=devices,
        duration=duration,
        packets_sent=records // 10 + 1,
        packets_acked=records // 10,
        records_acked=records,
        resends=1,
        reconnects=2,
        unacked=1,
        errors=Counter({"ACK timeout": 1}),
        latency=histogram,
    )


def test_merged_parts_add_up_and_keep_every_latency() -> None:
    total = Summary.merge([part(10, 9000, 0.001, 20.0), part(10, 1000, 0.200, 20.5)])

    assert total.devices == 20
    assert total.duration == 20.5
    assert (total.packets_sent, total.packets_acked) == (1002, 1000)
    assert total.records_acked == 10_000
    assert total.records_per_second == 10_000 / 20.5
    assert (total.resends, total.reconnects, total.unacked) == (2, 4, 2)
    assert total.errors == {"ACK timeout": 2}
    figures = total.latency_ms()
    assert 1.0 <= figures["p50"] <= 1.01
    assert 200 <= figures["p95"] <= 202
    assert figures["max"] == 200.0


def test_the_json_summary_carries_the_figures_and_merges_back() -> None:
    original = part(5, 500, 0.004, 10.0)

    data = json.loads(json.dumps(original.to_json(histogram=True)))
    copy = Summary.from_json(data)

    assert data["records_acked"] == 500
    assert data["records_per_second"] == 50.0
    assert data["errors"] == {"ACK timeout": 1}
    assert set(data["latency_ms"]) == {"p50", "p95", "p99", "max"}
    assert copy.to_json() == original.to_json()
    assert "latency_histogram" not in original.to_json()


def test_the_text_summary_names_every_figure() -> None:
    text = part(5, 500, 0.004, 10.0).render()

    assert "records ACKed    500\n" in text
    assert "records/s ACKed  50.0\n" in text
    assert "packets ACKed    50 of 51 sent\n" in text
    assert "ACK latency      p50 4.0 ms  p95 4.0 ms  p99 4.0 ms  max 4.0 ms\n" in text
    assert "errors           1 (ACK timeout 1)\n" in text
