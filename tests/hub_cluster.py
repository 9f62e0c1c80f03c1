"""Clusters of :class:`~teltotwist.cluster.hub.HubBus` members in one test
process: a :class:`~teltotwist.cluster.hub.Hub` plays the parent, and each
member speaks to it over a real UNIX socket pair, as a worker does."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from twisted.internet import reactor as _reactor

from teltotwist.cluster.hub import Hub, HubBus
from teltotwist.cluster.link import LinkProtocol, OneProtocol


@asynccontextmanager
async def hub_cluster() -> AsyncIterator[Callable[[str], HubBus]]:
    reactor: Any = _reactor
    hub = Hub(reactor)
    links: list[LinkProtocol] = []

    def member(member_id: str) -> HubBus:
        bus = HubBus(member_id, LinkProtocol())
        parent_side = LinkProtocol()
        hub.attach(parent_side)
        parent_end, worker_end = socket.socketpair()
        with parent_end, worker_end:
            reactor.adoptStreamConnection(
                parent_end.fileno(), socket.AF_UNIX, OneProtocol(parent_side)
            )
            reactor.adoptStreamConnection(
                worker_end.fileno(), socket.AF_UNIX, OneProtocol(bus.protocol)
            )
        links.append(bus.protocol)
        return bus

    yield member
    for link in links:
        if link.transport is not None:
            link.transport.loseConnection()
        await link.closed
