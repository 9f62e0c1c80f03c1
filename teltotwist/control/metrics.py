# -*- test-case-name: tests.test_control_metrics -*-
"""The gateway's Prometheus metrics, counted from the data path's events.

:class:`GatewayMetrics` is a :class:`~teltotwist.gateway.events.DataPathObserver`
with a registry of its own, so several gateways can live in one process. Every
label is a small fixed set or a configured sink's name: never an IMEI. Each event is one
counter or histogram update on a child looked up in advance.
"""

from __future__ import annotations

import enum
from typing import TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from teltotwist.codec import AVL_CODECS, Codec
from teltotwist.gateway.commands import CommandStatus
from teltotwist.gateway.events import LoginResult, Rejection, Transport
from teltotwist.gateway.registry import TrackerRegistry

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The ``Content-Type`` of :meth:`GatewayMetrics.exposition`."""

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    20.0,
    30.0,
)
"""Seconds, 1 ms to 30 s: a local sink answers in milliseconds, a slow one
within ``--sink-timeout`` (20 s by default)."""

UNPARSED = "unparsed"
"""The ``codec`` label of frames delivered as ``unparsed`` items."""


Label = TypeVar("Label", bound=enum.StrEnum)


def _counter_per_member(
    name: str,
    documentation: str,
    label: str,
    members: type[Label],
    registry: CollectorRegistry,
) -> dict[Label, Counter]:
    """A counter labelled *label*, with a child per member of *members*,
    each exposed (at 0) from the start."""
    counter = Counter(name, documentation, [label], registry=registry)
    return {member: counter.labels(**{label: member.value}) for member in members}


class _SinkSeries:
    """One sink's delivery histogram and failure counter."""

    def __init__(self, delivery: Histogram, failures: Counter, sink: str) -> None:
        self.delivery = delivery.labels(sink=sink)
        self.failures = failures.labels(sink=sink)


class GatewayMetrics:
    """Counts the data path's events for Prometheus.

    Add it to the gateway's events (``events.add(metrics)``) and serve
    :meth:`exposition` at ``GET /metrics``. Call every method from the reactor
    thread: the UDP tracker count is read from *trackers* at scrape time.

    :param trackers: the gateway's tracker registry.
    :param version: teltotwist's version, for ``teltotwist_info``.
    """

    def __init__(self, trackers: TrackerRegistry, version: str) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        Info("teltotwist", "The gateway's version.", registry=registry).info(
            {"version": version}
        )

        connections = Gauge(
            "teltotwist_connections",
            "TCP connections open; UDP trackers heard within the idle timeout.",
            ["transport"],
            registry=registry,
        )
        self._tcp_connections = connections.labels(transport=Transport.TCP.value)
        connections.labels(transport=Transport.UDP.value).set_function(
            lambda: trackers.count(Transport.UDP)
        )

        self._logins = _counter_per_member(
            "teltotwist_logins",
            "Logins (TCP) and datagram IMEIs (UDP) judged, by result.",
            "result",
            LoginResult,
            registry,
        )

        records = Counter(
            "teltotwist_records",
            "Records acknowledged, by codec; unparsed frames count one each.",
            ["codec"],
            registry=registry,
        )
        self._records: dict[Codec | None, Counter] = {
            codec: records.labels(codec=codec.label) for codec in sorted(AVL_CODECS)
        }
        self._records[None] = records.labels(codec=UNPARSED)

        self._rejected = _counter_per_member(
            "teltotwist_frames_rejected",
            "Input turned away without an ACK, by reason.",
            "reason",
            Rejection,
            registry,
        )

        self._ack_latency = Histogram(
            "teltotwist_ack_latency_seconds",
            "From a packet complete to its ACK written.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._sink_delivery = Histogram(
            "teltotwist_sink_delivery_seconds",
            "From a delivery handed to a sink to its answer, accepted or not.",
            ["sink"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._sink_failures = Counter(
            "teltotwist_sink_failures",
            "Deliveries a sink failed or did not answer in time.",
            ["sink"],
            registry=registry,
        )
        self._sinks: dict[str, _SinkSeries] = {}

        self._commands = _counter_per_member(
            "teltotwist_commands",
            "Commands to trackers entering each status.",
            "status",
            CommandStatus,
            registry,
        )
        self._cluster_commands = Counter(
            "teltotwist_cluster_commands",
            "Commands of a cluster: routed to another member, parked for a"
            " tracker connected nowhere, or collected at a login here.",
            ["outcome"],
            registry=registry,
        )

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format."""
        return generate_latest(self.registry)

    def connection_opened(self, transport: Transport) -> None:
        """Count a TCP connection; UDP trackers are counted from the registry."""
        if transport is Transport.TCP:
            self._tcp_connections.inc()

    def connection_closed(self, transport: Transport) -> None:
        """Uncount a TCP connection."""
        if transport is Transport.TCP:
            self._tcp_connections.dec()

    def login(self, transport: Transport, result: LoginResult) -> None:
        """Count a judged login, whatever its transport."""
        self._logins[result].inc()

    def records_acknowledged(
        self, transport: Transport, codec: Codec | None, records: int, latency: float
    ) -> None:
        """Count the packet's records (an unparsed frame as one) and its ACK
        latency."""
        self._records[codec].inc(records if codec is not None else 1)
        self._ack_latency.observe(latency)

    def rejected(self, transport: Transport, reason: Rejection) -> None:
        """Count input turned away."""
        self._rejected[reason].inc()

    def sink_delivered(self, sink: str, seconds: float, accepted: bool) -> None:
        """Time a sink's answer, and count it when it was a failure; a sink's
        failure count exists at 0 from its first delivery on."""
        series = self._sinks.get(sink)
        if series is None:
            series = self._sinks[sink] = _SinkSeries(
                self._sink_delivery, self._sink_failures, sink
            )
        series.delivery.observe(seconds)
        if not accepted:
            series.failures.inc()

    def command(self, status: CommandStatus) -> None:
        """Count a command entering *status*."""
        self._commands[status].inc()

    def cluster_command(self, outcome: str) -> None:
        """Count a cluster's command ``routed``, ``parked`` or ``collected``."""
        self._cluster_commands.labels(outcome=outcome).inc()
