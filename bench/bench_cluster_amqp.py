"""What the cluster's bus over RabbitMQ costs, on a real broker.

Two members of a fresh cluster (a prefix of their own, its exchange deleted
at the end) on the broker of ``--url``; one binds ``--trackers`` IMEIs.
Measured, each once:

send_one_ms
    A message to a tracker's member, confirmed, one at a time (ms each).
send_many_per_s
    The same with ``--in-flight`` messages out at once (messages/s).
binds_per_s
    IMEIs bound one after the other, each awaited (bindings/s).
rebind_s
    From a cut connection (the holder connects through a TCP relay in this
    process, which drops it) to the member ready again, every IMEI bound
    again (seconds; retrying at once).
collect_none_per_s
    Logins looking for parked commands where none are (collects/s).

Run from a checkout, with RabbitMQ at hand::

    python bench/bench_cluster_amqp.py                      # 10,000 IMEIs
    python bench/bench_cluster_amqp.py --trackers 50000 --json

The figures in ``docs/scaling.rst`` ("How the cluster uses RabbitMQ") come
from it. Exit status 0, or 2 on error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from typing import Any

import attrs
import pika  # type: ignore[import-untyped]
from pika.adapters.twisted_connection import (  # type: ignore[import-untyped]
    TwistedProtocolConnection,
)
from twisted.internet import task
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.protocols.portforward import ProxyFactory, ProxyServer

from teltotwist.cluster.amqp import AmqpBus, AmqpBusSettings, parse_cluster_url
from teltotwist.cluster.bus import Envelope


def arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="amqp://127.0.0.1/")
    parser.add_argument("--trackers", type=int, default=10_000)
    parser.add_argument("--in-flight", type=int, default=5_000)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    return parser.parse_args(argv)


def imei(n: int) -> str:
    return f"35{n:013d}"


async def until(condition: Any, reactor: Any) -> None:
    while not condition():
        await task.deferLater(reactor, 0.001, lambda: None)


class Relay(ProxyFactory):
    """Forwards a loopback port to the broker; :meth:`cut` drops every
    connection through it."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.open: set[ProxyServer] = set()
        relay = self

        class Tracked(ProxyServer):
            def connectionMade(self) -> None:
                relay.open.add(self)
                super().connectionMade()

        self.protocol = Tracked

    def cut(self) -> None:
        open_now, self.open = self.open, set()
        for server in open_now:
            server.transport.loseConnection()


async def measure(reactor: Any, options: argparse.Namespace) -> dict[str, float]:
    prefix = f"teltotwist-bench-{uuid.uuid4().hex[:12]}"
    settings = parse_cluster_url(f"{options.url}?prefix={prefix}", os.environ)
    relay = Relay(settings.broker.host, settings.broker.port)
    listening = reactor.listenTCP(0, relay, interface="127.0.0.1")
    relayed = attrs.evolve(
        settings,
        broker=attrs.evolve(
            settings.broker, host="127.0.0.1", port=listening.getHost().port
        ),
    )
    sender = AmqpBus(settings, "sender", reactor, retry_policy=lambda n: 0.0)
    holder = AmqpBus(relayed, "holder", reactor, retry_policy=lambda n: 0.0)
    await sender.start(lambda envelope: None)
    await holder.start(lambda envelope: None)
    try:
        return await _figures(reactor, options, sender, holder, relay)
    finally:
        await holder.stop()
        await sender.stop()
        await listening.stopListening()
        await _delete_exchange(reactor, settings)


async def _figures(
    reactor: Any,
    options: argparse.Namespace,
    sender: AmqpBus,
    holder: AmqpBus,
    relay: Relay,
) -> dict[str, float]:
    figures: dict[str, float] = {}
    trackers = options.trackers
    started = time.perf_counter()
    for n in range(trackers):
        await holder.bind(imei(n))
    figures["binds_per_s"] = trackers / (time.perf_counter() - started)

    message = Envelope("bench", b"{}", sender.member_id)
    count = min(1_000, trackers)
    started = time.perf_counter()
    for n in range(count):
        await sender.send_to_tracker(imei(n), message)
    figures["send_one_ms"] = (time.perf_counter() - started) * 1000 / count

    started = time.perf_counter()
    await gatherResults(
        [
            sender.send_to_tracker(imei(n % trackers), message)
            for n in range(options.in_flight)
        ]
    )
    figures["send_many_per_s"] = options.in_flight / (time.perf_counter() - started)

    started = time.perf_counter()
    for n in range(count):
        await holder.collect(imei(n))
    figures["collect_none_per_s"] = count / (time.perf_counter() - started)

    started = time.perf_counter()
    relay.cut()
    await until(lambda: not holder.ready, reactor)
    await until(lambda: holder.ready, reactor)
    figures["rebind_s"] = time.perf_counter() - started
    return figures


async def _delete_exchange(reactor: Any, settings: AmqpBusSettings) -> None:
    broker = settings.broker
    connection = await connectProtocol(
        TCP4ClientEndpoint(reactor, broker.host, broker.port),
        TwistedProtocolConnection(
            pika.ConnectionParameters(
                virtual_host=broker.vhost,
                credentials=pika.PlainCredentials(broker.username, broker.password),
            )
        ),
    )
    await connection.ready
    channel = await connection.channel()
    await channel.exchange_delete(settings.prefix)
    await connection.close()


def main(argv: list[str]) -> int:
    options = arguments(argv)
    figures: dict[str, float] = {}

    async def run(reactor: Any) -> None:
        figures.update(await measure(reactor, options))

    try:
        task.react(lambda reactor: Deferred.fromCoroutine(run(reactor)))
    except SystemExit as exit:
        if exit.code:
            return 2
    if options.json:
        print(json.dumps({"trackers": options.trackers, **figures}))
    else:
        print(f"{options.trackers} IMEIs bound, on {options.url}")
        for name, value in figures.items():
            print(f"{name:<20} {value:,.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
