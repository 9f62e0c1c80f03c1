"""Clusters of :class:`~teltotwist.cluster.amqp.AmqpBus` members on the real
RabbitMQ, each under a prefix of its own, for the contract suite and
``tests/test_cluster_amqp.py``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pika  # type: ignore[import-untyped]
from pika.adapters.twisted_connection import (  # type: ignore[import-untyped]
    TwistedProtocolConnection,
)
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from teltotwist.cluster.amqp import AmqpBus, AmqpBusSettings
from teltotwist.sinks._amqp_settings import Broker
from tests.services import RABBITMQ, require

MAX_PARKED_TIME = 60.0
"""Parked queues a test leaves behind vanish from the broker a minute later."""


def settings_for(port: int, prefix: str) -> AmqpBusSettings:
    broker = Broker(
        host=RABBITMQ[0],
        port=port,
        vhost="/",
        username="guest",
        password="guest",
        tls=False,
        cafile=None,
    )
    return AmqpBusSettings(broker, prefix)


def fresh_prefix() -> str:
    return f"teltotwist-test-{uuid.uuid4().hex[:12]}"


def member_of(settings: AmqpBusSettings, member_id: str, **options: Any) -> AmqpBus:
    """A bus retrying every 50 ms, its parked queues short-lived."""
    options.setdefault("retry_policy", lambda attempt: 0.05)
    options.setdefault("max_parked_time", MAX_PARKED_TIME)
    return AmqpBus(settings, member_id, reactor, **options)


@asynccontextmanager
async def broker_channel() -> AsyncIterator[Any]:
    """A pika channel to RabbitMQ of the test's own."""
    host, port = RABBITMQ
    connection = await connectProtocol(
        TCP4ClientEndpoint(reactor, host, port),
        TwistedProtocolConnection(pika.ConnectionParameters()),
    )
    await connection.ready
    try:
        yield await connection.channel()
    finally:
        await connection.close()


async def delete_exchange(name: str) -> None:
    """Delete exchange *name* over a connection of the test's own."""
    async with broker_channel() as channel:
        await channel.exchange_delete(name)


@asynccontextmanager
async def amqp_cluster() -> AsyncIterator[Callable[[str], AmqpBus]]:
    """Makes members of a fresh cluster on the real RabbitMQ; deletes its
    exchange afterwards (the members' queues go with their connections)."""
    require("RabbitMQ", RABBITMQ)
    settings = settings_for(RABBITMQ[1], fresh_prefix())
    yield lambda member_id: member_of(settings, member_id)
    await delete_exchange(settings.prefix)
