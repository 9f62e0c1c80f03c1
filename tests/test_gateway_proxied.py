"""Behind a load balancer speaking the PROXY protocol, in memory: the
tracker's own address is the one the gateway uses, and a bad header is a
quiet close."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IStreamServerEndpoint,
)
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogEvent, capturedLogs, formatEvent
from zope.interface import implementer

from teltotwist.codec import encode_login, tcp_ack
from teltotwist.gateway.dispatch import Dispatcher
from teltotwist.gateway.limits import Limits
from teltotwist.gateway.proxied import ProxiedEndpoint
from teltotwist.gateway.tcp import TeltonikaTcpFactory
from teltotwist.testing import FakeTracker, RecordingSink
from tests.vectors import by_id

BALANCER = ("10.0.0.5", 51_000)
IMEI = "356307042441013"
LOGIN = encode_login(IMEI)
CODEC8 = by_id("wiki-c8-tcp-1").data
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v1(host: str, port: int) -> bytes:
    family = "TCP6" if ":" in host else "TCP4"
    return f"PROXY {family} {host} 10.0.0.9 {port} 5027\r\n".encode()


def proxy_v2(host: str, port: int) -> bytes:
    source = ipaddress.ip_address(host)
    family = 0x21 if source.version == 6 else 0x11  # TCP over IPv6 / IPv4
    destination = ipaddress.ip_address("::1" if source.version == 6 else "10.0.0.9")
    addresses = (
        source.packed + destination.packed + port.to_bytes(2) + (5027).to_bytes(2)
    )
    return V2_SIGNATURE + bytes([0x21, family]) + len(addresses).to_bytes(2) + addresses


@implementer(IListeningPort)
class _Listening:
    def startListening(self) -> None: ...
    def stopListening(self) -> Deferred[None]:
        return succeed(None)

    def getHost(self) -> IPv4Address:
        return IPv4Address("TCP", "10.0.0.9", 5027)


@implementer(IStreamServerEndpoint)
class _KeepsFactory:
    """An endpoint that keeps the factory it listens with, for FakeTracker."""

    factory: IProtocolFactory

    def listen(self, factory: IProtocolFactory) -> Deferred[IListeningPort]:
        self.factory = factory
        return succeed(_Listening())


@pytest.fixture
def clock() -> MemoryReactorClock:
    return MemoryReactorClock()


def gateway(clock: MemoryReactorClock, **limits: Any) -> TeltonikaTcpFactory:
    sink = RecordingSink()
    return TeltonikaTcpFactory(
        Dispatcher([sink], 5, clock), clock, limits=Limits(**limits)
    )


def behind_balancer(factory: TeltonikaTcpFactory) -> IProtocolFactory:
    """The factory a ``haproxy:`` listener hands each connection to."""
    inner = _KeepsFactory()
    ProxiedEndpoint(inner).listen(factory)
    return inner.factory


@pytest.fixture
def factory(clock: MemoryReactorClock) -> TeltonikaTcpFactory:
    return gateway(clock)


@pytest.mark.parametrize(
    ("header", "peer"),
    [
        (proxy_v1("203.0.113.7", 41_234), "203.0.113.7:41234"),
        (proxy_v2("203.0.113.7", 41_234), "203.0.113.7:41234"),
        (proxy_v2("2001:db8::7", 41_234), "2001:db8::7:41234"),
    ],
    ids=["v1", "v2", "v2-ipv6"],
)
def test_the_tracker_list_and_the_log_show_the_address_the_header_names(
    factory: TeltonikaTcpFactory, header: bytes, peer: str
) -> None:
    tracker = FakeTracker(behind_balancer(factory), peer=BALANCER)
    with capturedLogs() as events:
        assert tracker.send(header + LOGIN) == b"\x01"
        assert tracker.send(CODEC8) == tcp_ack(1)

    state = factory.registry.get(IMEI)
    assert state is not None
    assert state.peer == peer
    assert f"{IMEI} at {peer}: logged in" in lines(events)


def test_a_header_alone_then_the_login_in_another_read(
    factory: TeltonikaTcpFactory,
) -> None:
    tracker = FakeTracker(behind_balancer(factory), peer=BALANCER)

    assert tracker.send(proxy_v2("203.0.113.7", 41_234)) == b""
    assert tracker.send(LOGIN) == b"\x01"
    state = factory.registry.get(IMEI)
    assert state is not None
    assert state.peer == "203.0.113.7:41234"


def test_the_per_address_cap_counts_each_tracker_address_not_the_balancers(
    clock: MemoryReactorClock,
) -> None:
    """Every connection comes from the balancer: capped by its address, a
    fleet reconnecting through it would close its own connections."""
    factory = gateway(clock, max_pending_per_address=2)
    balancer = behind_balancer(factory)
    fleet = [FakeTracker(balancer, peer=(BALANCER[0], port)) for port in range(20)]
    for n, tracker in enumerate(fleet):
        tracker.send(proxy_v1(f"192.0.2.{n}", 40_000))

    flood = [FakeTracker(balancer, peer=(BALANCER[0], port)) for port in range(5)]
    for attacker in flood:
        attacker.send(proxy_v1("198.51.100.7", 40_000))

    assert all(tracker.connected for tracker in fleet)
    assert [attacker.connected for attacker in flood] == [False] * 3 + [True] * 2


@pytest.mark.parametrize(
    "header",
    [
        LOGIN,  # a tracker sent straight to the port, past the balancer
        b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n",
        b"PROXY TCP4 192.0.2.1 10.0.0.9 eleven 5027\r\n",
        b"PROXY TCP4 \xff\xfe 10.0.0.9 1 5027\r\n",
        b"PROXY TCP4 " + b"1" * 200,
        V2_SIGNATURE + b"\x21\x11\x00\x02\x01\x02",
        V2_SIGNATURE + b"\x21\x41\x00\x00",
    ],
    ids=[
        "no-header",
        "http",
        "v1-port-not-a-number",
        "v1-not-ascii",
        "v1-no-end",
        "v2-short-addresses",
        "v2-unknown-family",
    ],
)
def test_a_bad_header_is_closed_with_one_line_and_no_traceback(
    factory: TeltonikaTcpFactory, header: bytes
) -> None:
    tracker = FakeTracker(behind_balancer(factory), peer=BALANCER)
    with capturedLogs() as events:
        tracker.send(header + LOGIN)

    assert not tracker.connected
    assert not [event for event in events if "log_failure" in event]
    assert lines(events) == [
        "unknown IMEI at proxy 10.0.0.5:51000: disconnected after 0.0 s "
        "without logging in"
    ]
    assert factory.registry.get(IMEI) is None


def test_a_header_that_never_ends_is_closed_at_the_login_timeout(
    factory: TeltonikaTcpFactory, clock: MemoryReactorClock
) -> None:
    tracker = FakeTracker(behind_balancer(factory), peer=BALANCER)
    tracker.send(b"PROXY TCP4 192.0.2.1 ")
    clock.advance(factory.limits.login_timeout - 1)
    assert tracker.connected

    clock.advance(1)
    assert not tracker.connected


def test_a_full_gateway_refuses_a_proxied_connection_without_a_traceback(
    clock: MemoryReactorClock,
) -> None:
    factory = gateway(clock, max_connections=1)
    balancer = behind_balancer(factory)
    FakeTracker(balancer, peer=BALANCER).send(proxy_v1("192.0.2.1", 1) + LOGIN)

    with capturedLogs() as events:
        refused = FakeTracker(balancer, peer=BALANCER)

    assert refused.refused
    assert not [event for event in events if "log_failure" in event]
    assert lines(events) == [
        "Refusing proxy 10.0.0.5:51000: all 1 connections are logged-in trackers"
    ]


def lines(events: Sequence[LogEvent]) -> list[str]:
    return [formatEvent(event) for event in events]
