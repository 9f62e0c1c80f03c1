"""A fleet of trackers against test servers over loopback TCP: the end of a
run waits for the ACKs on their way, within the ACK timeout."""

from __future__ import annotations

from itertools import pairwise

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred, maybeDeferred
from twisted.internet.endpoints import TCP4ClientEndpoint, serverFromString
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock

from teltotwist.codec import (
    AvlPacket,
    Frame,
    Login,
    StreamFramer,
    decode_frame,
    login_reply,
    tcp_ack,
)
from teltotwist.device import DeviceEvent, EventKind
from teltotwist.load import Fleet, LoadPlan, Pace, Summary
from teltotwist.load.ahead import PACK_SLICE
from teltotwist.load.fleet import error_kind
from tests.memory_gateway import MemoryGateway, run_on


class SlowServer(Protocol):
    """Accepts every login; ACKs each packet *delay* seconds late, or never."""

    def __init__(self, delay: float | None, acked: list[int]) -> None:
        self.framer = StreamFramer()
        self.delay = delay
        self.acked = acked

    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        for event in self.framer.feed(data):
            if isinstance(event, Login):
                self.transport.write(login_reply(True))
            elif isinstance(event, Frame) and self.delay is not None:
                packet = decode_frame(event.data)
                assert isinstance(packet, AvlPacket)
                reactor.callLater(self.delay, self.ack, len(packet.records))

    def ack(self, count: int) -> None:
        if self.transport is not None and self.transport.connected:  # type: ignore[attr-defined]
            self.acked.append(count)
            self.transport.write(tcp_ack(count))


async def run_against(delay: float | None, plan: LoadPlan) -> tuple[Summary, int]:
    """Run *plan* against a :class:`SlowServer`; its summary and the
    records the server ACKed."""
    acked: list[int] = []
    factory = Factory.forProtocol(lambda: SlowServer(delay, acked))
    endpoint = serverFromString(reactor, "tcp:0:interface=127.0.0.1")
    listening: IListeningPort = await endpoint.listen(factory)
    port: int = listening.getHost().port  # type: ignore[attr-defined]
    try:
        client = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
        summary = await Fleet(plan, client, reactor).run()
    finally:
        await maybeDeferred(listening.stopListening)
    return summary, sum(acked)


@pytest_twisted.ensureDeferred
async def test_the_run_ends_once_the_packets_in_flight_are_acked() -> None:
    plan = LoadPlan(devices=3, duration=1.0, interval=0.2, records_per_packet=2)

    summary, server_acked = await run_against(0.3, plan)

    assert summary.unacked == 0
    assert summary.packets_acked == summary.packets_sent > 0
    assert summary.records_acked == server_acked
    assert 1.0 < summary.duration < 1.5
    assert summary.latency.percentile(50) >= 0.3


@pytest_twisted.ensureDeferred
async def test_packets_never_acked_are_given_up_after_the_ack_timeout() -> None:
    plan = LoadPlan(devices=2, duration=0.5, interval=0.1, ack_timeout=0.3)

    summary, server_acked = await run_against(None, plan)

    assert (summary.records_acked, server_acked) == (0, 0)
    assert summary.unacked == 2
    assert summary.errors == {"ACK timeout": 2}
    assert 0.8 <= summary.duration < 1.2


def test_flat_out_trackers_send_the_next_packet_the_moment_the_ack_comes() -> None:
    clock = Clock()
    clock.advance(1_795_000_000)
    start = clock.seconds()
    gateway = MemoryGateway(clock, ack_delay=lambda imei, number: 0.3)
    plan = LoadPlan(devices=2, duration=1.0, records_per_packet=3, pace=Pace.FLAT_OUT)
    running = ensureDeferred(Fleet(plan, gateway, clock).run())

    run_on(clock, running)

    sends = [start, start + 0.3, start + 0.6, start + 0.9]
    assert gateway.sends(plan.imei(0)) == pytest.approx(sends)
    assert gateway.sends(plan.imei(1)) == pytest.approx(sends)
    assert {arrival.records for arrival in gateway.arrivals} == {3}
    summary = running.result
    assert isinstance(summary, Summary)
    assert summary.packets_acked == summary.packets_sent == 8
    assert summary.unacked == summary.resends == 0


def test_flat_out_packets_are_recorded_while_the_previous_ack_is_awaited() -> None:
    clock = Clock()
    clock.advance(1_795_000_000)
    gateway = MemoryGateway(clock, ack_delay=lambda imei, number: 0.3)
    plan = LoadPlan(
        devices=3 * PACK_SLICE, duration=1.0, records_per_packet=3, pace=Pace.FLAT_OUT
    )
    running = ensureDeferred(Fleet(plan, gateway, clock).run())

    run_on(clock, running)

    assert len(gateway.arrivals) == 4 * plan.devices
    for index in range(plan.devices):
        arrivals = [a for a in gateway.arrivals if a.imei == plan.imei(index)]
        sends = [arrival.at for arrival in arrivals]
        assert sends == pytest.approx([sends[0] + 0.3 * n for n in range(4)])
        for before, arrival in pairwise(arrivals):
            assert set(arrival.stamps) == {round(before.at * 1000)}


@pytest.mark.parametrize(
    ("kind", "message", "error"),
    [
        (EventKind.LINK_DOWN, "cannot connect: Connection refused", "connect failed"),
        (
            EventKind.LINK_DOWN,
            "link closed: no login reply within 10 s",
            "login timeout",
        ),
        (
            EventKind.LINK_DOWN,
            "link closed: no ACK of packet 3 within 10 s",
            "ACK timeout",
        ),
        (EventKind.LINK_DOWN, "link closed: connection lost: done", "connection lost"),
        (
            EventKind.LINK_DOWN,
            "link closed: ACK says 3 records, packet 1 has 10",
            "protocol error",
        ),
        (EventKind.REJECTED, "login rejected (00)", "login rejected"),
        (EventKind.LINK_DOWN, "link closed: login rejected", ""),
        (
            EventKind.FLASH_FULL,
            "flash full: oldest record overwritten",
            "flash overwrite",
        ),
    ],
)
def test_each_failure_counts_as_one_error_of_its_kind(
    kind: EventKind, message: str, error: str
) -> None:
    assert error_kind(DeviceEvent(kind, message)) == error
