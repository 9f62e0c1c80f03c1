"""Trackers configured for TLS: ``--port ssl:...`` over a real TLS socket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_twisted
from twisted.internet import reactor, ssl
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import (
    SSL4ClientEndpoint,
    connectProtocol,
    serverFromString,
)
from twisted.internet.interfaces import IListeningPort

import teltotwist
from teltotwist.codec import tcp_ack
from teltotwist.device import DeviceEvent, EventKind, TrackerSettings, VirtualTracker
from teltotwist.testing import RecordingSink
from tests.certificates import loopback_certificate
from tests.net import PortReportingEndpoint, TrackerClient
from tests.vectors import by_id

IMEI = "356307042441013"


class TlsGateway:
    """A gateway listening on a TLS port of loopback, with a recording sink."""

    def __init__(self, sink: RecordingSink, port: int) -> None:
        self.sink = sink
        self.port = port

    def client_endpoint(self) -> SSL4ClientEndpoint:
        """Where a tracker connects, over TLS."""
        return SSL4ClientEndpoint(
            reactor, "127.0.0.1", self.port, ssl.CertificateOptions()
        )


@pytest_twisted.async_yield_fixture
async def gateway(tmp_path: Path) -> AsyncIterator[TlsGateway]:
    key, cert = loopback_certificate(tmp_path)
    sink = RecordingSink()
    endpoint = PortReportingEndpoint(
        serverFromString(
            reactor, f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
        )
    )
    service = teltotwist.makeService(reactor, endpoint, [sink])
    service.startService()
    try:
        port: IListeningPort = await endpoint.port
        yield TlsGateway(sink, port.getHost().port)  # type: ignore[attr-defined]
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_records_arrive_over_tls(gateway: TlsGateway) -> None:
    client: TrackerClient = await connectProtocol(
        gateway.client_endpoint(), TrackerClient()
    )
    client.send(b"\x00\x0f" + IMEI.encode())
    assert await client.read(1) == b"\x01"
    client.send(by_id("wiki-c8-tcp-1").data)
    assert await client.read(4) == tcp_ack(1)

    assert len(gateway.sink.items) == 1


@pytest_twisted.ensureDeferred
async def test_the_virtual_tracker_speaks_tls(gateway: TlsGateway) -> None:
    acked: Deferred[DeviceEvent] = Deferred()

    def observe(event: DeviceEvent) -> None:
        if event.kind is EventKind.ACKED and not acked.called:
            acked.callback(event)

    tracker = VirtualTracker(
        gateway.client_endpoint(),
        reactor,
        TrackerSettings(IMEI, records_per_packet=2),
        observer=observe,
    )
    tracker.start()
    tracker.record()
    tracker.record()
    try:
        event = await acked.addTimeout(10, reactor)
    finally:
        await tracker.stop()

    assert event.records == 2
    assert [item.imei for item in gateway.sink.items] == [IMEI, IMEI]
