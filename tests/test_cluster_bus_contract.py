"""What every cluster bus does, run against each implementation.

A transport joins the suite with an entry in :data:`BUSES`: an async
context manager that yields a function making connected-to-be members of
one fresh cluster (their names unique to the test run, so runs never
collide), and cleans up on exit.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from teltotwist.cluster.bus import ClusterBusError, Envelope, IClusterBus
from teltotwist.cluster.memory import MemoryCluster
from tests.amqp_cluster import amqp_cluster
from tests.hub_cluster import hub_cluster

IMEI = "356307042441013"
OTHER_IMEI = "356307042441021"

MemberMaker = Callable[[str], IClusterBus]
"""Makes a member of the cluster under test from a member id."""


@asynccontextmanager
async def memory_cluster() -> AsyncIterator[MemberMaker]:
    cluster = MemoryCluster(reactor)
    yield cluster.member


BUSES: dict[str, Callable[[], AbstractAsyncContextManager[MemberMaker]]] = {
    "memory": memory_cluster,
    "amqp": amqp_cluster,
    "hub": hub_cluster,
}
"""Each bus implementation under test, by name."""


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = reactor.seconds() + timeout
    while not condition():
        if reactor.seconds() > deadline:
            pytest.fail("timed out waiting")
        await deferLater(reactor, 0.01, lambda: None)


async def settle() -> None:
    """Long enough for a message sent to have arrived (used only to show
    that one did not)."""
    await deferLater(reactor, 0.3, lambda: None)


class Member:
    """A started bus, and the envelopes it received."""

    def __init__(self, bus: IClusterBus) -> None:
        self.bus = bus
        self.inbox: list[Envelope] = []

    async def received(self, count: int) -> list[Envelope]:
        await until(lambda: len(self.inbox) >= count)
        return self.inbox


Join = Callable[[int], Awaitable[list[Member]]]


@pytest_twisted.async_yield_fixture(params=sorted(BUSES))
async def join(request: pytest.FixtureRequest) -> AsyncIterator[Join]:
    """Starts *count* members of one cluster of the bus under test."""
    run = uuid.uuid4().hex[:8]
    started: list[Member] = []
    async with BUSES[request.param]() as make:

        async def start(count: int) -> list[Member]:
            members = [
                Member(make(f"member-{run}-{len(started) + n}")) for n in range(count)
            ]
            for member in members:
                await member.bus.start(member.inbox.append)
                started.append(member)
            return members

        yield start
        for member in started:
            await member.bus.stop()


def envelope(sender: IClusterBus, kind: str = "test", **body: object) -> Envelope:
    return Envelope(kind, json.dumps(body).encode(), sender.member_id, uuid.uuid4().hex)


@pytest_twisted.ensureDeferred
async def test_a_message_to_a_member_reaches_it_alone_intact(join: Join) -> None:
    a, b, c = await join(3)
    sent = envelope(a.bus, "command.answer", status="answered")

    await a.bus.send_to_member(c.bus.member_id, sent)

    assert await c.received(1) == [sent]
    await settle()
    assert a.inbox == b.inbox == []


@pytest_twisted.ensureDeferred
async def test_a_broadcast_reaches_every_member_the_sender_too(join: Join) -> None:
    members = await join(3)
    sent = envelope(members[0].bus, "trackers.request")

    await members[0].bus.broadcast(sent)

    for member in members:
        assert await member.received(1) == [sent]


@pytest_twisted.ensureDeferred
async def test_a_message_to_a_tracker_reaches_the_member_binding_it(
    join: Join,
) -> None:
    a, b, c = await join(3)
    await b.bus.bind(IMEI)
    sent = envelope(a.bus, "command.request")

    assert await a.bus.send_to_tracker(IMEI, sent) is True

    assert await b.received(1) == [sent]
    await settle()
    assert a.inbox == c.inbox == []


@pytest_twisted.ensureDeferred
async def test_a_tracker_no_member_binds_is_reported_offline(join: Join) -> None:
    a, b = await join(2)
    await b.bus.bind(OTHER_IMEI)
    await b.bus.bind(IMEI)
    await b.bus.unbind(IMEI)

    assert await a.bus.send_to_tracker(IMEI, envelope(a.bus)) is False

    await settle()
    assert b.inbox == []


@pytest_twisted.ensureDeferred
async def test_a_member_that_stops_takes_its_bindings_along(join: Join) -> None:
    a, b = await join(2)
    await b.bus.bind(IMEI)

    await b.bus.stop()

    assert not b.bus.ready
    assert await a.bus.send_to_tracker(IMEI, envelope(a.bus)) is False


@pytest_twisted.ensureDeferred
async def test_a_stopped_member_sends_nothing(join: Join) -> None:
    a, b = await join(2)
    assert a.bus.ready

    await a.bus.stop()

    with pytest.raises(ClusterBusError):
        await a.bus.send_to_member(b.bus.member_id, envelope(a.bus))
    await settle()
    assert b.inbox == []


@pytest_twisted.ensureDeferred
async def test_parked_messages_are_collected_once_oldest_first(join: Join) -> None:
    a, b = await join(2)
    first, second = envelope(a.bus, n=1), envelope(a.bus, n=2)
    await a.bus.park(IMEI, first, 60)
    await a.bus.park(IMEI, second, 60)
    await a.bus.park(OTHER_IMEI, envelope(a.bus, n=3), 60)

    assert await b.bus.collect(IMEI) == [first, second]
    assert await a.bus.collect(IMEI) == []


@pytest_twisted.ensureDeferred
async def test_each_parked_message_goes_to_one_collector(join: Join) -> None:
    a, b, c = await join(3)
    parked = [envelope(a.bus, n=n) for n in range(10)]
    for sent in parked:
        await a.bus.park(IMEI, sent, 60)

    by_b, by_c = b.bus.collect(IMEI), c.bus.collect(IMEI)
    collected = await by_b + await by_c

    assert sorted(collected, key=parked.index) == parked


@pytest_twisted.ensureDeferred
async def test_a_parked_message_past_its_ttl_is_not_collected(join: Join) -> None:
    a, b = await join(2)
    lasting = envelope(a.bus, n=2)
    await a.bus.park(IMEI, envelope(a.bus, n=1), 0.1)
    await a.bus.park(IMEI, lasting, 60)

    await settle()

    assert await b.bus.collect(IMEI) == [lasting]
