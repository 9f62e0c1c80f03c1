"""Records per second through each sink, side by side, from one process.

Each ``--sink SPEC`` is benchmarked in turn through the gateway's own
dispatcher: ``--trackers`` concurrent stop-and-wait senders each deliver
packets of ``--records`` real records (from ../shared/bench/c8-14records.hex),
the next one only once the previous was accepted, as trackers do.

Every record gets an id of its own, unique to the run, so that a database
sink inserts every row rather than skipping known ids. A ``postgresql:``
spec must name a table starting with ``bench`` (``?table=bench_records``):
the harness drops it and its sibling tables before and after the run.

``webhook:local`` starts an in-process twisted.web receiver answering 204.
For ``amqp:`` specs a temporary queue is bound to the exchange (``#``) so that
mandatory publishes are routable; an exchange the harness had to create is
deleted afterwards, an existing one is left alone.

Run from the repository root, with RabbitMQ and Mosquitto up:

    python bench/bench_sinks.py --sink file:/tmp/bench.jsonl --sink webhook:local \\
        --sink 'amqp:amqp://guest:guest@127.0.0.1:5672/%2F?exchange=bench' \\
        --sink 'mqtt:mqtt://127.0.0.1:1883?topic=bench/{imei}/records' \\
        --sink 'postgresql:postgresql://postgres@127.0.0.1:5432/test?table=bench_records'
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from twisted.application.service import IService
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import react
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

import teltotwist
from teltotwist.codec import AvlPacket
from teltotwist.gateway.dispatch import Dispatcher
from teltotwist.gateway.items import Item, TrackerRecord
from teltotwist.sinks import IRecordSink
from teltotwist.sinks.registry import make_sink

FRAME = Path(__file__).resolve().parent.parent.parent / "shared/bench/c8-14records.hex"


def packets(count: int, records: int, trackers: int) -> Iterator[tuple[Item, ...]]:
    """*count* packets of *records* real records, IMEIs spread over trackers,
    each record with an id no other record of any run has."""
    packet = teltotwist.decode(bytes.fromhex(FRAME.read_text().strip()))
    assert isinstance(packet, AvlPacket)
    source = (packet.records * (records // len(packet.records) + 1))[:records]
    run = time.time_ns()
    for number in range(count):
        imei = f"35630704244{number % trackers:04d}"
        yield tuple(
            TrackerRecord(
                imei,
                packet.codec,
                record,
                1_795_251_600_000 + number,
                id=f"{imei}:{run}:{number}:{index}",
            )
            for index, record in enumerate(source)
        )


class _Receiver(Resource):
    isLeaf = True

    def __init__(self) -> None:
        Resource.__init__(self)

    def render_POST(self, request: Request) -> bytes:
        request.setResponseCode(204)
        return b""


async def _local_webhook(reactor: Any) -> tuple[str, Callable[[], object]]:
    port = reactor.listenTCP(0, Site(_Receiver()), interface="127.0.0.1")
    return f"webhook:http://127.0.0.1:{port.getHost().port}/", port.stopListening


def _bind_amqp_queue(spec: str) -> Callable[[], object]:
    """Declare the exchange and bind a temporary queue, with blocking pika."""
    import pika  # type: ignore[import-untyped]  # noqa: PLC0415

    url = spec.partition(":")[2]
    exchange = parse_qs(urlsplit(url).query).get("exchange", ["teltonika"])[0]
    parameters = pika.URLParameters(url.split("?")[0])
    connection = pika.BlockingConnection(parameters)
    try:
        connection.channel().exchange_declare(exchange, passive=True)
        existed = True
    except pika.exceptions.ChannelClosedByBroker:
        existed = False
    channel = connection.channel()
    channel.exchange_declare(exchange, "topic", durable=True)
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, exchange, "#")

    def clean_up() -> None:
        if not existed:
            channel.exchange_delete(exchange)
        connection.close()

    return clean_up


def _fresh_postgresql_tables(spec: str) -> Callable[[], object]:
    """Drop the bench tables of *spec* now and after the run, with psycopg."""
    from psycopg import connect, sql  # noqa: PLC0415
    from psycopg.conninfo import make_conninfo  # noqa: PLC0415

    from teltotwist.sinks._pg_schema import Tables  # noqa: PLC0415
    from teltotwist.sinks.postgresql import settings_from_url  # noqa: PLC0415

    settings = settings_from_url(spec.partition(":")[2], os.environ)
    if not settings.table.startswith("bench"):
        raise SystemExit(
            f"{spec}: name a table starting with bench, which the harness drops"
        )
    tables = Tables(settings.schema, settings.table)
    drop = sql.SQL("DROP TABLE IF EXISTS {}").format(
        sql.SQL(", ").join(map(sql.SQL, tables.qualified()))
    )

    def drop_tables() -> None:
        conninfo = make_conninfo("", **settings.connection)
        with connect(conninfo, autocommit=True) as connection:
            connection.execute(drop)

    drop_tables()
    return drop_tables


async def measure(
    reactor: Any, spec: str, arguments: argparse.Namespace
) -> tuple[str, float, list[float]]:
    """The sink's name (no secrets), records/s and per-delivery latencies (s)."""
    cleanup: Callable[[], object] = lambda: None  # noqa: E731
    if spec == "webhook:local":
        spec, cleanup = await _local_webhook(reactor)
    elif spec.startswith("amqp:"):
        cleanup = _bind_amqp_queue(spec)
    elif spec.startswith("postgresql:"):
        cleanup = _fresh_postgresql_tables(spec)
    sink: IRecordSink = make_sink(spec)
    service = IService(sink, None)
    if service is not None:
        service.startService()
        await _wait(reactor, 1.0)
    dispatcher = Dispatcher([sink], 30, reactor)
    work = iter(packets(arguments.packets, arguments.records, arguments.trackers))
    latencies: list[float] = []

    async def tracker() -> None:
        for items in work:
            started = time.perf_counter()
            await dispatcher.deliver(items)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await gatherResults(
        [Deferred.fromCoroutine(tracker()) for _ in range(arguments.trackers)]
    )
    elapsed = time.perf_counter() - started
    if service is not None:
        await service.stopService()
    result = cleanup()
    if isinstance(result, Deferred):
        await result
    return str(sink.name), arguments.packets * arguments.records / elapsed, latencies


def _wait(reactor: Any, seconds: float) -> Deferred[None]:
    waiting: Deferred[None] = Deferred()
    reactor.callLater(seconds, waiting.callback, None)
    return waiting


async def main(reactor: Any, argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sink", action="append", required=True, metavar="SPEC")
    parser.add_argument("--packets", type=int, default=2000)
    parser.add_argument("--records", type=int, default=10)
    parser.add_argument("--trackers", type=int, default=16)
    arguments = parser.parse_args(argv)
    print(
        f"{arguments.packets} packets x {arguments.records} records, "
        f"{arguments.trackers} concurrent trackers"
    )
    for spec in arguments.sink:
        name, rate, latencies = await measure(reactor, spec, arguments)
        quantiles = statistics.quantiles(latencies, n=100)
        print(
            f"{name:<60} {rate:>9,.0f} records/s   "
            f"delivery p50 {quantiles[49] * 1000:6.1f} ms  "
            f"p99 {quantiles[98] * 1000:6.1f} ms"
        )


if __name__ == "__main__":
    react(lambda reactor: Deferred.fromCoroutine(main(reactor)))
