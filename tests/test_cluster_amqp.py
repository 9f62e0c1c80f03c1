"""AmqpBus against the real RabbitMQ, beyond the contract suite: what a
connection cut does (through a FaultProxy), parking bounds and expiry, two
members holding one IMEI, and the ``--cluster`` URL."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from teltotwist.cluster.amqp import (
    PASSWORD_VARIABLE,
    AmqpBus,
    ClusterConfigurationError,
    parse_cluster_url,
)
from teltotwist.cluster.bus import ClusterBusError, Envelope
from teltotwist.cluster.router import ParkingFullError, ParkingLimits
from tests.amqp_cluster import (
    MAX_PARKED_TIME,
    broker_channel,
    delete_exchange,
    fresh_prefix,
    member_of,
    settings_for,
)
from tests.faultproxy import FaultProxy
from tests.services import RABBITMQ, require

IMEI = "356307042441013"
PERSISTENT = 2
"""AMQP's ``delivery_mode`` for a message the broker writes to disk."""
OTHER_IMEI = "352093081452251"


def sleep(seconds: float) -> Deferred[None]:
    return deferLater(reactor, seconds, lambda: None)


async def eventually(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the time allowed"
        await sleep(0.02)


def envelope(sender: AmqpBus, kind: str = "test", **body: object) -> Envelope:
    return Envelope(kind, json.dumps(body).encode(), sender.member_id, uuid.uuid4().hex)


def refusal(outcome: Deferred[Any]) -> str:
    """The error of a call that *outcome* says failed at once."""
    assert outcome.called, "the call did not fail at once"
    failures: list[Any] = []
    outcome.addErrback(failures.append)
    assert failures and failures[0].check(ClusterBusError)
    return str(failures[0].getErrorMessage())


class Member:
    def __init__(self, bus: AmqpBus) -> None:
        self.bus = bus
        self.inbox: list[Envelope] = []

    async def received(self, count: int) -> list[Envelope]:
        await eventually(lambda: len(self.inbox) >= count)
        return self.inbox


class Cluster:
    """Members of one fresh cluster, some through a FaultProxy."""

    def __init__(self, proxy: FaultProxy, proxy_port: int) -> None:
        self.prefix = fresh_prefix()
        self.proxy = proxy
        self.proxy_port = proxy_port
        self.members: list[Member] = []

    def member(self, *, through_proxy: bool = False, **options: Any) -> Member:
        """A member, not started."""
        port = self.proxy_port if through_proxy else RABBITMQ[1]
        settings = settings_for(port, self.prefix)
        name = f"member-{len(self.members)}-{uuid.uuid4().hex[:6]}"
        member = Member(member_of(settings, name, **options))
        self.members.append(member)
        return member

    async def joined(self, *, through_proxy: bool = False, **options: Any) -> Member:
        member = self.member(through_proxy=through_proxy, **options)
        await member.bus.start(member.inbox.append)
        return member


@pytest_twisted.async_yield_fixture
async def cluster() -> AsyncIterator[Cluster]:
    faults = FaultProxy(*require("RabbitMQ", RABBITMQ))
    port = await faults.start()
    made = Cluster(faults, port)
    yield made
    for member in made.members:
        await member.bus.stop()
    await faults.stop()
    await delete_exchange(made.prefix)


@pytest_twisted.ensureDeferred
async def test_two_members_binding_one_imei_both_receive_its_messages(
    cluster: Cluster,
) -> None:
    sender, first, second = [await cluster.joined() for _ in range(3)]
    await first.bus.bind(IMEI)
    await second.bus.bind(IMEI)
    sent = envelope(sender.bus, "session.login", imei=IMEI)

    assert await sender.bus.send_to_tracker(IMEI, sent) is True

    assert await first.received(1) == [sent]
    assert await second.received(1) == [sent]


@pytest_twisted.ensureDeferred
async def test_an_envelope_without_correlation_arrives_as_sent(
    cluster: Cluster,
) -> None:
    a, b = await cluster.joined(), await cluster.joined()
    sent = Envelope("trackers.changed", b'{"online": 3}', a.bus.member_id)

    await a.bus.send_to_member(b.bus.member_id, sent)

    assert await b.received(1) == [sent]


@pytest_twisted.ensureDeferred
async def test_after_a_cut_the_member_joins_again_with_its_bindings(
    cluster: Cluster,
) -> None:
    sender = await cluster.joined()
    held = await cluster.joined(through_proxy=True)
    await held.bus.bind(IMEI)

    cluster.proxy.stalled = True  # nothing reaches the broker until the cut
    cluster.proxy.cut()
    cluster.proxy.stalled = False
    await eventually(lambda: not held.bus.ready)
    # meanwhile: a call fails at once, saying why; an IMEI bound meanwhile
    # is bound once the member is back, one unbound meanwhile is not
    assert "is not connected to amqp://guest@127.0.0.1:" in refusal(
        held.bus.broadcast(envelope(held.bus))
    )
    assert "not connected" in refusal(held.bus.bind(OTHER_IMEI))
    await eventually(lambda: held.bus.ready)

    first, second = envelope(sender.bus, n=1), envelope(sender.bus, n=2)
    assert await sender.bus.send_to_tracker(IMEI, first) is True
    assert await sender.bus.send_to_tracker(OTHER_IMEI, second) is True
    assert await held.received(2) == [first, second]


@pytest_twisted.ensureDeferred
async def test_an_imei_unbound_while_disconnected_stays_unbound(
    cluster: Cluster,
) -> None:
    sender = await cluster.joined()
    held = await cluster.joined(through_proxy=True)
    await held.bus.bind(IMEI)
    cluster.proxy.refusing = True
    cluster.proxy.cut()
    await eventually(lambda: not held.bus.ready)

    assert "not connected" in refusal(held.bus.unbind(IMEI))
    cluster.proxy.refusing = False
    await eventually(lambda: held.bus.ready)

    assert await sender.bus.send_to_tracker(IMEI, envelope(sender.bus)) is False


@pytest_twisted.ensureDeferred
async def test_a_bind_the_broker_refuses_fails_and_the_member_joins_again(
    cluster: Cluster,
) -> None:
    sender, held = await cluster.joined(), await cluster.joined()
    await held.bus.bind(IMEI)
    await delete_exchange(cluster.prefix)  # an operator's mistake

    with pytest.raises(ClusterBusError, match="NOT_FOUND"):
        await held.bus.bind(OTHER_IMEI)

    await eventually(lambda: not held.bus.ready)
    await eventually(lambda: held.bus.ready)  # the exchange declared again
    sent = envelope(sender.bus)
    assert await sender.bus.send_to_tracker(OTHER_IMEI, sent) is True
    assert await held.received(1) == [sent]


@pytest_twisted.ensureDeferred
async def test_past_the_bound_on_unconfirmed_messages_sends_fail_at_once(
    cluster: Cluster,
) -> None:
    member = await cluster.joined(through_proxy=True, max_unconfirmed=2)
    cluster.proxy.stalled = True  # no confirm comes back
    waiting = [member.bus.broadcast(envelope(member.bus)) for _ in range(2)]

    assert "2 messages to amqp://guest@127.0.0.1:" in refusal(
        member.bus.broadcast(envelope(member.bus))
    )
    cluster.proxy.cut()
    for sent in waiting:
        with pytest.raises(ClusterBusError, match="before the broker confirmed"):
            await sent


@pytest_twisted.ensureDeferred
async def test_while_the_broker_is_unreachable_start_waits_and_calls_fail(
    cluster: Cluster,
) -> None:
    cluster.proxy.refusing = True
    member = cluster.member(through_proxy=True)
    started = member.bus.start(member.inbox.append)
    await sleep(0.3)

    assert not started.called
    assert not member.bus.ready
    why = refusal(member.bus.send_to_tracker(IMEI, envelope(member.bus)))
    assert "the last attempt failed" in why
    assert "the connection closed during the AMQP handshake" in why
    cluster.proxy.refusing = False
    await started
    assert member.bus.ready


@pytest_twisted.ensureDeferred
async def test_stopping_while_unreachable_stops_reconnecting(
    cluster: Cluster,
) -> None:
    attempts: list[int] = []

    def retry_soon(attempt: int) -> float:
        attempts.append(attempt)
        return 0.05

    cluster.proxy.refusing = True
    member = cluster.member(through_proxy=True, retry_policy=retry_soon)
    started = member.bus.start(member.inbox.append)
    await eventually(lambda: len(attempts) >= 1)

    await member.bus.stop()
    tried = len(attempts)
    await sleep(0.3)

    assert len(attempts) == tried
    with pytest.raises(ClusterBusError, match="was stopped"):
        await started
    assert "is not started" in refusal(member.bus.broadcast(envelope(member.bus)))


@pytest_twisted.ensureDeferred
async def test_parked_messages_outlive_the_member_that_parked_them(
    cluster: Cluster,
) -> None:
    parker, collector = await cluster.joined(), await cluster.joined()
    kept = envelope(parker.bus, "command.request", command="getver")
    await parker.bus.park(IMEI, kept, 30)

    await parker.bus.stop()

    assert await collector.bus.collect(IMEI) == [kept]


@pytest_twisted.ensureDeferred
async def test_parked_messages_are_kept_as_a_broker_restart_keeps_them(
    cluster: Cluster,
) -> None:
    member = await cluster.joined()
    await member.bus.park(IMEI, envelope(member.bus), 30)
    queue = f"{cluster.prefix}.parked.{IMEI}"

    async with broker_channel() as channel:
        # The broker refuses to declare an existing queue again with another
        # durability: this passes only if the bus declared it durable.
        await channel.queue_declare(
            queue,
            durable=True,
            arguments={
                "x-expires": round(MAX_PARKED_TIME * 1000),
                "x-max-length": ParkingLimits().per_imei,
                "x-overflow": "reject-publish",
            },
        )
        parked = await channel.basic_get(queue, auto_ack=True)
        await channel.queue_delete(queue)

    assert parked.properties.delivery_mode == PERSISTENT


@pytest_twisted.ensureDeferred
async def test_a_park_beyond_the_bound_per_imei_fails(cluster: Cluster) -> None:
    member = await cluster.joined(parking=ParkingLimits(per_imei=2))
    parked = [envelope(member.bus, n=n) for n in range(2)]
    for sent in parked:
        await member.bus.park(IMEI, sent, 30)

    with pytest.raises(ParkingFullError, match=f"2 messages are parked for {IMEI}"):
        await member.bus.park(IMEI, envelope(member.bus, n=3), 30)

    assert member.bus.ready
    assert await member.bus.collect(IMEI) == parked


@pytest_twisted.ensureDeferred
async def test_a_parked_message_expires_at_its_ttl(cluster: Cluster) -> None:
    member = await cluster.joined()
    await member.bus.park(IMEI, envelope(member.bus), 0.2)

    await sleep(0.4)

    assert await member.bus.collect(IMEI) == []


@pytest_twisted.ensureDeferred
async def test_a_ttl_longer_than_parked_queues_live_is_refused(
    cluster: Cluster,
) -> None:
    member = await cluster.joined(max_parked_time=60)

    with pytest.raises(ValueError, match="at most 60 s"):
        await member.bus.park(IMEI, envelope(member.bus), 61)


@pytest_twisted.ensureDeferred
async def test_collecting_for_an_imei_never_parked_leaves_the_member_ready(
    cluster: Cluster,
) -> None:
    a, b = await cluster.joined(), await cluster.joined()

    assert await a.bus.collect(OTHER_IMEI) == []
    assert await a.bus.collect(OTHER_IMEI) == []

    sent = envelope(b.bus)
    await b.bus.send_to_member(a.bus.member_id, sent)
    assert await a.received(1) == [sent]


# --- The --cluster URL ----------------------------------------------------


def test_the_url_gives_the_broker_and_the_prefix() -> None:
    settings = parse_cluster_url(
        "amqp://gw@rabbit.example:5673/prod?prefix=fleet.eu", {PASSWORD_VARIABLE: "s"}
    )

    assert (settings.broker.host, settings.broker.port) == ("rabbit.example", 5673)
    assert (settings.broker.vhost, settings.broker.password) == ("prod", "s")
    assert settings.prefix == "fleet.eu"
    assert settings.url == "amqp://gw@rabbit.example:5673/prod?prefix=fleet.eu"


def test_the_prefix_defaults_to_teltotwist_cluster() -> None:
    assert parse_cluster_url("amqp://rabbit.example/", {}).prefix == (
        "teltotwist.cluster"
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://rabbit.example/", "--cluster needs an amqp:// or amqps:// URL"),
        ("amqp://gw@rabbit.example/", f"no password: set {PASSWORD_VARIABLE}"),
        ("amqp://rabbit.example/?exchange=x", "unknown AMQP URL option 'exchange'"),
        ("amqp://rabbit.example/?prefix=", "prefix must be 1 to 128 bytes"),
    ],
)
def test_unusable_urls_are_refused_saying_why(url: str, reason: str) -> None:
    with pytest.raises(ClusterConfigurationError, match=reason):
        parse_cluster_url(url, {})


def test_importing_the_bus_imports_neither_pika_nor_a_reactor() -> None:
    probe = (
        "import sys, teltotwist.cluster.amqp; "
        "print(sorted({'pika', 'twisted.internet.reactor'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout == "[]\n"
