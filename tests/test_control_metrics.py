"""The gateway's Prometheus metrics: what an operator scraping /metrics sees."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from teltotwist.codec import AVL_CODECS, Codec, decode_udp
from teltotwist.control.metrics import METRICS_CONTENT_TYPE, GatewayMetrics
from teltotwist.gateway.commands import CommandStatus
from teltotwist.gateway.events import (
    DataPathEvents,
    LoginResult,
    Rejection,
    Transport,
)
from teltotwist.gateway.registry import TrackerRegistry
from tests.vectors import by_id

START_MS = 1_764_000_000_000
UDP_IDLE = 600
TCP_IMEI = "356307042441013"
SINK = "file:/var/lib/teltotwist/records.jsonl"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "metrics.rst"


class Clock:
    def __init__(self) -> None:
        self.ms = START_MS

    def __call__(self) -> int:
        return self.ms


class Link:
    def close(self, reason: str) -> None:
        pass


def gateway() -> tuple[GatewayMetrics, TrackerRegistry, Clock]:
    clock = Clock()
    trackers = TrackerRegistry(clock, udp_idle=UDP_IDLE)
    return GatewayMetrics(trackers, version="1.2.3"), trackers, clock


def sample(metrics: GatewayMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_counts_after_a_known_sequence_of_events() -> None:
    metrics, _, _ = gateway()
    events = DataPathEvents()
    events.add(metrics)

    for _ in range(3):
        events.connection_opened(Transport.TCP)
    events.connection_closed(Transport.TCP)
    events.login(Transport.TCP, LoginResult.ACCEPTED)
    events.login(Transport.TCP, LoginResult.ACCEPTED)
    events.login(Transport.UDP, LoginResult.NOT_ALLOWED)
    events.records_acknowledged(Transport.TCP, Codec.CODEC8E, 14, 0.004)
    events.records_acknowledged(Transport.UDP, Codec.CODEC8E, 1, 0.5)
    events.records_acknowledged(Transport.TCP, Codec.CODEC8, 2, 12.0)
    events.records_acknowledged(Transport.TCP, None, 0, 0.002)
    events.rejected(Transport.TCP, Rejection.CRC)
    events.rejected(Transport.UDP, Rejection.OVER_CAP)
    events.rejected(Transport.UDP, Rejection.OVER_CAP)
    for status in ["queued", "queued", "sent", "answered", "expired"]:
        events.command(CommandStatus(status))

    assert sample(metrics, "teltotwist_connections", transport="tcp") == 2
    assert sample(metrics, "teltotwist_logins_total", result="accepted") == 2
    assert sample(metrics, "teltotwist_logins_total", result="not_allowed") == 1
    assert sample(metrics, "teltotwist_records_total", codec="8E") == 15
    assert sample(metrics, "teltotwist_records_total", codec="8") == 2
    assert sample(metrics, "teltotwist_records_total", codec="unparsed") == 1
    assert sample(metrics, "teltotwist_frames_rejected_total", reason="crc") == 1
    assert sample(metrics, "teltotwist_frames_rejected_total", reason="over_cap") == 2
    assert sample(metrics, "teltotwist_ack_latency_seconds_count") == 4
    assert sample(metrics, "teltotwist_commands_total", status="queued") == 2
    assert sample(metrics, "teltotwist_commands_total", status="answered") == 1
    assert sample(metrics, "teltotwist_commands_total", status="failed") == 0
    assert sample(metrics, "teltotwist_ack_latency_seconds_sum") == pytest.approx(
        12.506
    )
    latency = "teltotwist_ack_latency_seconds_bucket"
    assert sample(metrics, latency, le="0.0025") == 1
    assert sample(metrics, latency, le="0.005") == 2
    assert sample(metrics, latency, le="10.0") == 3
    assert sample(metrics, latency, le="30.0") == 4


def test_udp_connections_follow_the_registry_not_the_events() -> None:
    metrics, trackers, clock = gateway()
    datagram = decode_udp(by_id("wiki-c8-udp-1").data)
    trackers.udp_packet(datagram.imei, "192.0.2.7:5027", datagram.packet.records)
    trackers.udp_packet("352093081452251", "192.0.2.8:5027", [])
    metrics.connection_opened(Transport.UDP)

    assert sample(metrics, "teltotwist_connections", transport="udp") == 2
    assert sample(metrics, "teltotwist_connections", transport="tcp") == 0
    clock.ms += UDP_IDLE * 1000
    assert sample(metrics, "teltotwist_connections", transport="udp") == 0


def test_sink_deliveries_are_timed_and_failures_counted_per_sink() -> None:
    metrics, _, _ = gateway()

    metrics.sink_delivered(SINK, 0.003, True)
    metrics.sink_delivered(SINK, 0.004, True)
    metrics.sink_delivered("webhook:https://example.com/hook", 20.0, False)

    delivery = "teltotwist_sink_delivery_seconds"
    assert sample(metrics, f"{delivery}_count", sink=SINK) == 2
    assert sample(metrics, f"{delivery}_bucket", sink=SINK, le="0.005") == 2
    hook = "webhook:https://example.com/hook"
    assert sample(metrics, f"{delivery}_bucket", sink=hook, le="10.0") == 0
    assert sample(metrics, f"{delivery}_count", sink=hook) == 1
    assert sample(metrics, "teltotwist_sink_failures_total", sink=hook) == 1
    # A sink that never failed has its failure series, at 0, for alert rules.
    assert sample(metrics, "teltotwist_sink_failures_total", sink=SINK) == 0


@pytest.mark.parametrize(
    ("name", "label", "values"),
    [
        ("teltotwist_connections", "transport", [str(t) for t in Transport]),
        ("teltotwist_logins_total", "result", [str(r) for r in LoginResult]),
        ("teltotwist_frames_rejected_total", "reason", [str(r) for r in Rejection]),
        (
            "teltotwist_records_total",
            "codec",
            [codec.label for codec in AVL_CODECS] + ["unparsed"],
        ),
        ("teltotwist_commands_total", "status", [str(s) for s in CommandStatus]),
    ],
)
def test_every_known_label_value_is_a_series_at_zero_from_the_start(
    name: str, label: str, values: list[str]
) -> None:
    metrics, _, _ = gateway()

    assert {value: sample(metrics, name, **{label: value}) for value in values} == {
        value: 0 for value in values
    }


def test_the_exposition_parses_and_names_no_imei() -> None:
    metrics, trackers, _ = gateway()
    datagram = decode_udp(by_id("wiki-c8-udp-1").data)
    trackers.tcp_logged_in(TCP_IMEI, "192.0.2.7:40000", Link())
    trackers.udp_packet(datagram.imei, "192.0.2.8:5027", datagram.packet.records)
    metrics.connection_opened(Transport.TCP)
    metrics.login(Transport.TCP, LoginResult.ACCEPTED)
    metrics.records_acknowledged(Transport.UDP, Codec.CODEC8, 1, 0.01)
    metrics.sink_delivered(SINK, 0.01, True)

    text = metrics.exposition().decode("utf-8")

    assert METRICS_CONTENT_TYPE.startswith("text/plain")
    assert TCP_IMEI not in text
    assert datagram.imei not in text
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert families["teltotwist_connections"].type == "gauge"
    assert families["teltotwist_ack_latency_seconds"].type == "histogram"
    assert families["teltotwist_info"].samples[0].labels == {"version": "1.2.3"}
    assert "python_info" in families


@pytest.mark.skipif(sys.platform != "linux", reason="process metrics read /proc")
def test_process_metrics_are_exposed() -> None:
    metrics, _, _ = gateway()

    resident = sample(metrics, "process_resident_memory_bytes")

    assert resident is not None and resident > 0


def test_two_gateways_in_one_process_count_apart() -> None:
    first, _, _ = gateway()
    second, _, _ = gateway()

    first.rejected(Transport.TCP, Rejection.FRAMING)

    assert sample(first, "teltotwist_frames_rejected_total", reason="framing") == 1
    assert sample(second, "teltotwist_frames_rejected_total", reason="framing") == 0
    tcp = {"transport": "tcp"}
    assert REGISTRY.get_sample_value("teltotwist_connections", tcp) is None


def test_docs_describe_every_teltotwist_metric_and_no_other() -> None:
    documented = re.findall(r"^``(teltotwist_\w+)`` \(", DOCS.read_text(), re.M)
    metrics, _, _ = gateway()

    exposed = {
        family.name
        for family in text_string_to_metric_families(metrics.exposition().decode())
        if family.name.startswith("teltotwist_")
        and not family.name.endswith("_created")
    }

    # The text parser names a counter's family without its _total.
    assert {name.removesuffix("_total") for name in documented} == exposed
