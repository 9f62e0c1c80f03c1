"""What the hub between a gateway's workers does beyond the bus contract
(``tests/test_cluster_bus_contract.py`` runs that on it too)."""

from __future__ import annotations

import json

import pytest
import pytest_twisted

from teltotwist.cluster.bus import ClusterBusError, Envelope
from teltotwist.cluster.hub import MAX_BODY
from teltotwist.cluster.member import BYE
from tests.hub_cluster import hub_cluster
from tests.test_cluster_bus_contract import until


@pytest_twisted.ensureDeferred
async def test_a_member_whose_link_closes_says_goodbye_through_the_hub() -> None:
    async with hub_cluster() as member:
        killed, staying = member("worker-1"), member("worker-2")
        inbox: list[Envelope] = []
        await killed.start(lambda _: None)
        await staying.start(inbox.append)

        assert killed.protocol.transport is not None
        killed.protocol.transport.loseConnection()  # as when it is killed

        await until(lambda: len(inbox) == 1)
        (goodbye,) = inbox
        assert (goodbye.kind, goodbye.sender) == (BYE, "worker-1")
        assert json.loads(goodbye.body) == {}


@pytest_twisted.ensureDeferred
async def test_a_body_past_the_bound_is_refused_whole() -> None:
    async with hub_cluster() as member:
        bus = member("worker-1")
        await bus.start(lambda _: None)
        large = Envelope("command.answer", b"x" * (MAX_BODY + 1), "worker-1")

        with pytest.raises(ClusterBusError, match="over the hub's"):
            await bus.broadcast(large)
        # A large body under the bound goes through, in pieces.
        inbox: list[Envelope] = []
        other = member("worker-2")
        await other.start(inbox.append)
        fitting = Envelope("command.answer", b"y" * 200_000, "worker-1")
        await bus.send_to_member("worker-2", fitting)
        await until(lambda: inbox == [fitting])
