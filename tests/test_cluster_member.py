"""The cluster's logic: real gateways on loopback ports, each a member of
one cluster (in-process over MemoryBus, and on the real RabbitMQ over
AmqpBus), with trackers connecting to one or the other; what the API would
answer is asked of each member's fleet."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    connectProtocol,
    serverFromString,
)
from twisted.internet.interfaces import IListeningPort
from twisted.internet.task import deferLater
from twisted.logger import capturedLogs, formatEvent

import teltotwist
from teltotwist.cluster.bus import Envelope, IClusterBus
from teltotwist.cluster.member import ClusterMember
from teltotwist.cluster.memory import MemoryBus, MemoryCluster
from teltotwist.codec import encode_login, login_reply
from teltotwist.device import DeviceEvent, EventKind, TrackerSettings, VirtualTracker
from teltotwist.gateway.commands import CommandCenter, NotConnectedError
from teltotwist.gateway.fleet import CommandOrder, FleetUnavailableError
from teltotwist.gateway.items import CommandResult
from teltotwist.gateway.limits import DuplicateLogin, Limits
from teltotwist.gateway.service import GatewayService
from teltotwist.testing import RecordingSink
from tests.amqp_cluster import amqp_cluster
from tests.net import PortReportingEndpoint, TrackerClient

IMEI = "356307042441013"
OTHER_IMEI = "356307042441021"


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = reactor.seconds() + timeout
    while not condition():
        if reactor.seconds() > deadline:
            pytest.fail("timed out waiting")
        await deferLater(reactor, 0.01, lambda: None)


class Member:
    """A real gateway on a loopback port, a member of a cluster through *bus*."""

    def __init__(self, bus: IClusterBus, limits: Limits) -> None:
        self.sink = RecordingSink()
        self.bus = bus
        self.limits = limits
        self.service: GatewayService | None = None
        self.member: ClusterMember | None = None
        self.port = 0

    async def start(self) -> None:
        endpoint = PortReportingEndpoint(
            serverFromString(reactor, "tcp:0:interface=127.0.0.1")
        )
        self.service = teltotwist.makeService(
            reactor, endpoint, [self.sink], drain_timeout=0.5, limits=self.limits
        )
        self.member = ClusterMember(self.bus, self.service, reactor)
        self.member.startService()
        self.service.startService()
        listening: IListeningPort = await endpoint.port
        self.port = listening.getHost().port  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self.service is not None and self.service.running:
            await self.service.stopService()
        if self.member is not None and self.member.running:
            await self.member.stopService()

    @property
    def fleet(self) -> Any:
        assert self.member is not None
        return self.member.fleet

    @property
    def commands(self) -> CommandCenter:
        assert self.service is not None and self.service.factory.commands
        return self.service.factory.commands

    def holds(self, imei: str) -> bool:
        assert self.service is not None
        return imei in self.service.factory.by_imei


@asynccontextmanager
async def memory_cluster() -> AsyncIterator[Callable[[str], IClusterBus]]:
    yield MemoryCluster(reactor).member


BUSES = {"memory": memory_cluster, "amqp": amqp_cluster}


@pytest.fixture(params=sorted(BUSES))
def bus_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest_twisted.async_yield_fixture
async def cluster(bus_kind: str) -> AsyncIterator[Callable[..., Any]]:
    """Starts members of one cluster (stopped at the end), and remembers
    the trackers to stop."""
    started: list[Member] = []
    trackers: list[VirtualTracker] = []
    async with (
        BUSES[bus_kind]() as make,
        _members(make, started, trackers) as start,
    ):
        yield start


@asynccontextmanager
async def _members(
    make: Callable[[str], IClusterBus],
    started: list[Member],
    trackers: list[VirtualTracker],
) -> AsyncIterator[Callable[..., Any]]:
    async def start(count: int, **limits: Any) -> list[Member]:
        members = [
            Member(make(f"member-{len(started) + n}"), Limits(**limits))
            for n in range(count)
        ]
        for member in members:
            await member.start()
            started.append(member)
        await until(
            lambda: all(
                len(m.member.membership.known()) == len(started)  # type: ignore[union-attr]
                for m in started
            )
        )
        return members

    start.trackers = trackers  # type: ignore[attr-defined]
    try:
        yield start
    finally:
        for tracker in trackers:
            await tracker.stop()
        for member in started:
            await member.stop()


def virtual_tracker(start: Any, member: Member, imei: str = IMEI) -> list[DeviceEvent]:
    """A virtual tracker, answering commands, connected to *member*."""
    events: list[DeviceEvent] = []
    tracker = VirtualTracker(
        TCP4ClientEndpoint(reactor, "127.0.0.1", member.port),
        reactor,
        TrackerSettings(
            imei, interval=60.0, answer_delay=(0.05, 0.1), backoff_initial=0.1
        ),
        observer=events.append,
        rng=random.Random(7),
    )
    start.trackers.append(tracker)
    tracker.start()
    return events


def acked(events: list[DeviceEvent]) -> int:
    return sum(event.kind is EventKind.ACKED for event in events)


async def log_in(member: Member, imei: str = IMEI) -> tuple[TrackerClient, bytes]:
    """A raw tracker connection to *member*, and the gateway's login reply
    (empty when it closed without one)."""
    client = await connectProtocol(
        TCP4ClientEndpoint(reactor, "127.0.0.1", member.port), TrackerClient()
    )
    client.send(encode_login(imei))
    try:
        reply = await client.read(1)
    except ConnectionError:
        reply = b""
    return client, reply


@pytest_twisted.ensureDeferred
async def test_a_command_posted_anywhere_reaches_the_member_holding_the_tracker(
    cluster: Any,
) -> None:
    a, b, c = await cluster(3)
    events = virtual_tracker(cluster, c)
    await until(lambda: acked(events) >= 1 and c.holds(IMEI))

    answered = await a.fleet.send(CommandOrder(IMEI, "getinfo", None, 12, 0, 10))

    assert answered["status"] == "answered"
    assert answered["response"].startswith("RTC:")
    assert c.commands.get(answered["id"]) is not None
    assert await b.fleet.command(answered["id"]) == answered
    assert [cmd["id"] for cmd in await b.fleet.commands(IMEI)] == [answered["id"]]


@pytest_twisted.ensureDeferred
async def test_a_command_for_a_tracker_connected_nowhere_without_ttl_is_refused(
    cluster: Any,
) -> None:
    a, _ = await cluster(2)

    with pytest.raises(NotConnectedError, match="not connected to the cluster"):
        await a.fleet.send(CommandOrder(IMEI, "getinfo", None, 12, 0, 10))


@pytest_twisted.ensureDeferred
async def test_a_parked_command_is_delivered_where_the_tracker_logs_in(
    cluster: Any,
) -> None:
    a, b = await cluster(2)
    queued = await a.fleet.send(CommandOrder(IMEI, "getver", None, 12, 30, 0))
    assert queued["status"] == "queued"
    assert await b.fleet.command(queued["id"]) == queued

    virtual_tracker(cluster, b)
    await until(lambda: (b.commands.get(queued["id"]) or queued) is not queued)
    done = await b.commands.outcome(queued["id"])

    assert done.status == "answered"
    assert "Ver:" in done.to_json()["response"]
    assert (await a.fleet.command(queued["id"]))["status"] == "answered"


@pytest_twisted.ensureDeferred
async def test_a_login_binds_its_imei_once(
    cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = await cluster(2)  # two: once they know each other, the bus is up
    binds: list[str] = []
    bind: Callable[[str], Deferred[None]] = a.bus.bind

    def counted(imei: str) -> Deferred[None]:
        binds.append(imei)
        return bind(imei)

    monkeypatch.setattr(a.bus, "bind", counted)
    queued = await a.fleet.send(CommandOrder(IMEI, "getver", None, 12, 30, 0))

    virtual_tracker(cluster, a)
    await until(lambda: (a.commands.get(queued["id"]) or queued) is not queued)

    assert binds == [IMEI]  # by its claim; the login collected at once


@pytest_twisted.ensureDeferred
async def test_a_claim_whose_login_does_not_follow_is_unbound(cluster: Any) -> None:
    a, b = await cluster(2)
    presence = a.member.presence
    assert await presence.claim(IMEI, "127.0.0.1:1") is None
    assert await b.bus.send_to_tracker(IMEI, Envelope("probe", b"{}", "member-1"))

    presence.claim_dropped(IMEI)

    for _ in range(100):  # the unbinding takes the broker a round trip
        if not await b.bus.send_to_tracker(IMEI, Envelope("probe", b"{}", "member-1")):
            break
        await deferLater(reactor, 0.02, lambda: None)
    else:
        pytest.fail("the claim's binding stayed")


@pytest_twisted.ensureDeferred
async def test_the_tracker_list_covers_every_member_and_names_them(
    cluster: Any,
) -> None:
    a, b, c = await cluster(3)
    on_b = virtual_tracker(cluster, b, IMEI)
    on_c = virtual_tracker(cluster, c, OTHER_IMEI)
    await until(lambda: acked(on_b) >= 1 and acked(on_c) >= 1)

    listing = await a.fleet.trackers()

    assert [(t["imei"], t["member"]) for t in listing.trackers] == [
        (IMEI, "member-1"),
        (OTHER_IMEI, "member-2"),
    ]
    assert listing.members == ["member-0", "member-1", "member-2"]
    assert (await a.fleet.tracker(OTHER_IMEI))["imei"] == OTHER_IMEI
    assert await a.fleet.tracker("356307042441039") is None


@pytest_twisted.ensureDeferred
async def test_a_connection_is_closed_from_any_member(cluster: Any) -> None:
    a, b = await cluster(2)
    client, reply = await log_in(b)
    assert reply == login_reply(True)
    await until(lambda: b.holds(IMEI))

    assert await a.fleet.disconnect(IMEI) is True

    await client.closed
    assert await a.fleet.disconnect(IMEI) is False


@pytest_twisted.ensureDeferred
async def test_a_login_elsewhere_replaces_the_connection(cluster: Any) -> None:
    a, b = await cluster(2, duplicate_login=DuplicateLogin.REPLACE)
    first, reply = await log_in(a)
    assert reply == login_reply(True)
    await until(lambda: a.holds(IMEI))

    _, reply = await log_in(b)

    assert reply == login_reply(True)
    await first.closed
    assert b.holds(IMEI) and not a.holds(IMEI)


@pytest_twisted.ensureDeferred
async def test_a_login_elsewhere_is_rejected_while_the_connection_is_active(
    cluster: Any,
) -> None:
    a, b = await cluster(2, duplicate_login=DuplicateLogin.REJECT)
    first, reply = await log_in(a)
    assert reply == login_reply(True)
    await until(lambda: a.holds(IMEI))

    second, reply = await log_in(b)

    assert reply == login_reply(False)
    await second.closed
    assert a.holds(IMEI) and not first.closed.called


@pytest.mark.parametrize("bus_kind", ["memory"])
@pytest_twisted.ensureDeferred
async def test_a_login_is_decided_alone_when_the_bus_is_down(cluster: Any) -> None:
    a, b = await cluster(2, duplicate_login=DuplicateLogin.REJECT)
    await log_in(b)
    await until(lambda: b.holds(IMEI))
    assert isinstance(a.bus, MemoryBus)
    a.bus.disconnect()

    _, reply = await log_in(a)

    assert reply == login_reply(True)
    assert a.member is not None
    assert a.member.not_ready_why() == "cluster bus not connected"
    with pytest.raises(FleetUnavailableError):
        await a.fleet.trackers()


@pytest_twisted.ensureDeferred
async def test_a_command_routed_to_a_member_no_longer_holding_it_is_parked(
    cluster: Any,
) -> None:
    a, b = await cluster(2)
    # As if b's tracker had just gone, its binding not yet undone.
    await b.bus.bind(IMEI)

    queued = await a.fleet.send(CommandOrder(IMEI, "getver", None, 12, 30, 0))

    assert queued["status"] == "queued"
    assert b.commands.get(queued["id"]) is None
    assert [c["id"] for c in await b.fleet.commands(IMEI)] == [queued["id"]]


@pytest.mark.parametrize("bus_kind", ["memory"])
@pytest_twisted.ensureDeferred
async def test_a_logout_while_the_bus_is_down_is_not_bound_again(
    cluster: Any,
) -> None:
    a, b = await cluster(2)
    client, _ = await log_in(b)
    await until(lambda: b.holds(IMEI))
    b.bus.disconnect()
    client.transport.loseConnection()  # type: ignore[union-attr]
    await until(lambda: not b.holds(IMEI))

    b.bus.reconnect()

    probe = Envelope("probe", b"{}", a.bus.member_id)
    assert await a.bus.send_to_tracker(IMEI, probe) is False


async def queued_at(
    member: Member, imei: str = IMEI
) -> tuple[TrackerClient, list[str]]:
    """A raw tracker logged in to *member* that takes no command yet (it
    sends nothing: see ``command_quiet``), and two commands queued for it
    there."""
    client, reply = await log_in(member, imei)
    assert reply == login_reply(True)
    await until(lambda: member.holds(imei))
    ids = []
    for text in ("getver", "getinfo"):
        queued = await member.fleet.send(CommandOrder(imei, text, None, 12, 30, 0))
        assert queued["status"] == "queued"
        ids.append(queued["id"])
    return client, ids


async def answered(member: Member, ids: list[str]) -> list[dict[str, Any]]:
    """The objects of the commands *ids*, once *member* has them answered."""
    await until(lambda: all(member.commands.get(i) is not None for i in ids))
    return [(await member.commands.outcome(i)).to_json() for i in ids]


def results(member: Member) -> list[str]:
    """The ids of the commands whose result reached *member*'s sink."""
    return [i.command["id"] for i in member.sink.items if isinstance(i, CommandResult)]


@pytest_twisted.ensureDeferred
async def test_commands_queued_where_the_tracker_was_go_where_it_logs_in_next(
    cluster: Any,
) -> None:
    a, b = await cluster(2, command_quiet=30.0)
    client, ids = await queued_at(a)
    before = [await b.fleet.command(i) for i in ids]

    client.transport.loseConnection()  # type: ignore[union-attr]
    await until(lambda: not a.holds(IMEI))
    events = virtual_tracker(cluster, b)
    done = await answered(b, ids)

    assert [c["status"] for c in done] == ["answered", "answered"]
    assert "Ver:" in done[0]["response"]
    assert done[0]["sent_at"] < done[1]["sent_at"]
    assert [c["created_at"] for c in done] == [c["created_at"] for c in before]
    assert [await a.fleet.command(i) for i in ids] == done
    assert a.commands.get(ids[0]) is None
    assert sum(e.kind is EventKind.COMMAND for e in events) == 2


class HeldParks(MemoryBus):
    """A member whose parks wait until the test lets each go."""

    def __init__(self, cluster: MemoryCluster, member_id: str) -> None:
        super().__init__(cluster, member_id)
        self.held: list[Deferred[None]] = []

    def park(self, imei: str, envelope: Envelope, ttl: float) -> Deferred[None]:
        gate: Deferred[None] = Deferred()
        self.held.append(gate)
        return gate.addCallback(lambda _: MemoryBus.park(self, imei, envelope, ttl))


@pytest_twisted.ensureDeferred
async def test_a_tracker_back_before_its_commands_are_handed_back_gets_each_once() -> (
    None
):
    memory = MemoryCluster(reactor)
    trackers: list[VirtualTracker] = []
    started: list[Member] = []
    buses = {"member-0": HeldParks(memory, "member-0")}

    def make(member_id: str) -> IClusterBus:
        return buses.get(member_id) or memory.member(member_id)

    async with _members(make, started, trackers) as start:
        a, b = await start(2, command_quiet=30.0)
        client, ids = await queued_at(a)
        client.transport.loseConnection()  # type: ignore[union-attr]
        await until(lambda: len(buses["member-0"].held) == 1)
        assert (await b.fleet.command(ids[0]))["status"] == "queued"

        events = virtual_tracker(start, a)
        await until(lambda: acked(events) >= 1 and a.holds(IMEI))
        while len(buses["member-0"].held) < len(ids):
            buses["member-0"].held[-1].callback(None)
        buses["member-0"].held[-1].callback(None)
        done = await answered(a, ids)

        assert [c["status"] for c in done] == ["answered", "answered"]
        assert done[0]["sent_at"] < done[1]["sent_at"]
        assert sum(e.kind is EventKind.COMMAND for e in events) == 2
        assert memory.router.parked == 0
        await until(lambda: len(results(a)) >= len(ids))
        assert sorted(results(a)) == sorted(ids)
        assert [await b.fleet.command(i) for i in ids] == done


@pytest.mark.parametrize("bus_kind", ["memory"])
@pytest_twisted.ensureDeferred
async def test_commands_stay_queued_where_the_tracker_was_when_the_bus_is_down(
    cluster: Any,
) -> None:
    a, _ = await cluster(2, command_quiet=30.0)
    client, ids = await queued_at(a)
    a.bus.disconnect()

    with capturedLogs() as logged:
        client.transport.loseConnection()  # type: ignore[union-attr]
        await until(lambda: not a.holds(IMEI))

    assert [a.commands.get(i).status for i in ids] == ["queued", "queued"]
    assert any(
        "commands for 356307042441013 not handed back, 2 stay queued here"
        in formatEvent(event)
        for event in logged
    )
    a.bus.reconnect()
    virtual_tracker(cluster, a)
    done = await answered(a, ids)
    assert [c["status"] for c in done] == ["answered", "answered"]
