"""AmqpSink against the real RabbitMQ: the messages consumers get, publisher
confirms, returns and nacks, and faults through a FaultProxy in front of the
broker, down to a tracker's ACK through the whole gateway."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pika  # type: ignore[import-untyped]
import pytest
import pytest_twisted
from pika.adapters.twisted_connection import (  # type: ignore[import-untyped]
    TwistedProtocolConnection,
)
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    connectProtocol,
    serverFromString,
)
from twisted.internet.interfaces import IListeningPort, IReactorTime
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.logger import capturedLogs, formatEvent
from twisted.protocols.portforward import ProxyFactory
from twisted.python.failure import Failure

import teltotwist
from teltotwist.codec import AvlPacket, encode_login, tcp_ack
from teltotwist.gateway.dispatch import DeliveryError, Dispatcher
from teltotwist.gateway.items import Item, TrackerRecord, UnparsedFrame, json_line
from teltotwist.sinks import SinkConfigurationError
from teltotwist.sinks.amqp import (
    PASSWORD_VARIABLE,
    AmqpSettings,
    AmqpSink,
    AmqpSinkError,
    parse_url,
)
from teltotwist.sinks.registry import make_sink
from tests.certificates import loopback_certificate
from tests.faultproxy import FaultProxy
from tests.net import PortReportingEndpoint, TrackerClient
from tests.services import RABBITMQ, require
from tests.vectors import by_id

clock: IReactorTime = reactor
EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples"
IMEI = "356307042441013"
OTHER_IMEI = "352093081452251"
RECEIVED_AT_MS = 1_795_251_600_123
ONE_RECORD = by_id("wiki-c8-tcp-1").data
FOURTEEN_RECORDS = by_id("traccar-26-avl").data


def records(frame: bytes, imei: str = IMEI) -> list[TrackerRecord]:
    """The records of *frame* as the gateway delivers them from *imei*."""
    packet = teltotwist.decode(frame)
    assert isinstance(packet, AvlPacket)
    return [
        TrackerRecord(imei, packet.codec, record, RECEIVED_AT_MS)
        for record in packet.records
    ]


RECORDS = records(FOURTEEN_RECORDS)
UNPARSED = UnparsedFrame(IMEI, b"\x00\x00\x00\x00\x00\x00\x00\x05\x8e\x01", "bad", 0)


def sleep(seconds: float) -> Deferred[None]:
    return deferLater(clock, seconds, lambda: None)


async def eventually(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the time allowed"
        await sleep(0.02)


async def reconnected(sink: AmqpSink) -> None:
    """Wait until *sink* noticed it lost its connection, then reconnected."""
    await eventually(lambda: not sink.connected)
    await eventually(lambda: sink.connected)


def refusal(sink: AmqpSink) -> str:
    """The error of a delivery that *sink* fails at once."""
    delivery = sink.deliver(RECORDS[:1])
    assert delivery.called, "the delivery did not fail at once"
    failures: list[Failure] = []
    delivery.addErrback(failures.append)
    assert failures and failures[0].check(AmqpSinkError)
    return failures[0].getErrorMessage()


class CountingRetries:
    """A retry policy that notes each attempt number and retries in 50 ms."""

    def __init__(self) -> None:
        self.attempts: list[int] = []

    def __call__(self, attempt: int) -> float:
        self.attempts.append(attempt)
        return 0.05


@attrs.frozen
class Message:
    routing_key: str
    properties: Any
    body: bytes


class Queue:
    """A test queue's messages, consumed as they arrive."""

    def __init__(self, name: str, arrivals: Any) -> None:
        self.name = name
        self._arrivals = arrivals

    async def receive(self, count: int) -> list[Message]:
        messages = []
        for _ in range(count):
            waiting: Deferred[Any] = self._arrivals.get()
            received = await waiting.addTimeout(10, clock)
            messages.append(
                Message(received.method.routing_key, received.properties, received.body)
            )
        return messages

    async def nothing_more(self) -> bool:
        """Whether no other message arrives within a moment."""
        await sleep(0.2)
        return not self._arrivals.pending


class Broker:
    """The test's own pika connection to the real RabbitMQ: declares what a
    test needs, consumes, and deletes its exchanges afterwards (its queues
    are exclusive, gone with the connection)."""

    def __init__(self, connection: Any, channel: Any) -> None:
        self._connection = connection
        self._channel = channel
        self._exchanges: list[str] = []

    @classmethod
    async def connect(cls) -> Broker:
        host, port = require("RabbitMQ", RABBITMQ)
        connection = await connectProtocol(
            TCP4ClientEndpoint(clock, host, port),
            TwistedProtocolConnection(pika.ConnectionParameters()),
        )
        await connection.ready
        return cls(connection, await connection.channel())

    def exchange_name(self) -> str:
        """A new exchange name, deleted after the test if someone declares it."""
        name = f"teltotwist-test-{uuid.uuid4().hex[:12]}"
        self._exchanges.append(name)
        return name

    async def exchange(self) -> str:
        """A new exchange, declared as the sink declares its own."""
        name = self.exchange_name()
        await self.declare(name)
        return name

    async def declare(self, exchange: str) -> None:
        """Declare *exchange* a durable topic exchange; the broker refuses if
        it exists as anything else."""
        await self._channel.exchange_declare(exchange, "topic", durable=True)

    async def queue(
        self, exchange: str, binding: str = "#", arguments: dict[str, Any] | None = None
    ) -> Queue:
        declared = await self._channel.queue_declare(
            "", exclusive=True, arguments=arguments
        )
        name = declared.method.queue
        await self._channel.queue_bind(name, exchange, binding)
        arrivals, _ = await self._channel.basic_consume(name, auto_ack=True)
        return Queue(name, arrivals)

    async def delete_queue(self, name: str) -> None:
        await self._channel.queue_delete(name)

    async def delete_exchange(self, name: str) -> None:
        await self._channel.exchange_delete(name)

    async def close(self) -> None:
        for exchange in self._exchanges:
            await self._channel.exchange_delete(exchange)
        await self._connection.close()


@pytest_twisted.async_yield_fixture
async def broker() -> AsyncIterator[Broker]:
    client = await Broker.connect()
    yield client
    await client.close()


@pytest_twisted.async_yield_fixture
async def proxy() -> AsyncIterator[tuple[FaultProxy, int]]:
    """A FaultProxy in front of RabbitMQ, and the port it listens on."""
    faults = FaultProxy(*require("RabbitMQ", RABBITMQ))
    port = await faults.start()
    yield faults, port
    await faults.stop()


Start = Callable[..., AmqpSink]


@pytest_twisted.async_yield_fixture
async def start() -> AsyncIterator[Start]:
    """Starts AmqpSinks (retrying every 50 ms); stops them after the test."""
    started: list[AmqpSink] = []

    def start_sink(settings: AmqpSettings, **options: Any) -> AmqpSink:
        options.setdefault("retry_policy", lambda attempt: 0.05)
        sink = AmqpSink(settings, clock, **options)
        sink.startService()
        started.append(sink)
        return sink

    yield start_sink
    for sink in started:
        if sink.running:
            await sink.stopService()


async def connected(start: Start, settings: AmqpSettings, **options: Any) -> AmqpSink:
    sink = start(settings, **options)
    await eventually(lambda: sink.connected)
    return sink


def on_port(port: int, exchange: str, **changes: Any) -> AmqpSettings:
    return AmqpSettings(host="127.0.0.1", port=port, exchange=exchange, **changes)


def direct(exchange: str, **changes: Any) -> AmqpSettings:
    """Settings for the real broker, without the proxy."""
    host, port = require("RabbitMQ", RABBITMQ)
    return AmqpSettings(host=host, port=port, exchange=exchange, **changes)


# --- What consumers get ---------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_each_item_is_one_persistent_json_message_with_its_id(
    broker: Broker, start: Start
) -> None:
    exchange = broker.exchange_name()
    sink = await connected(start, direct(exchange))
    # The sink declared it: redeclaring it as a durable topic exchange
    # succeeds only if that is what it is.
    await broker.declare(exchange)
    queue = await broker.queue(exchange)
    items: list[Item] = [*RECORDS[:3], UNPARSED]

    await sink.deliver(items)

    messages = await queue.receive(4)
    assert [json.loads(message.body) for message in messages] == [
        item.to_json() for item in items
    ]
    assert [message.body for message in messages] == [json_line(item) for item in items]
    for message, item in zip(messages, items, strict=True):
        assert message.routing_key == f"teltonika.{IMEI}"
        assert message.properties.message_id == item.id
        assert message.properties.delivery_mode == 2
        assert message.properties.content_type == "application/json"
    assert [message.properties.headers for message in messages] == [
        {"imei": IMEI, "kind": "records", "codec": "8"},
    ] * 3 + [{"imei": IMEI, "kind": "unparsed"}]
    assert await queue.nothing_more()


@pytest_twisted.ensureDeferred
async def test_the_routing_key_template_routes_per_imei_and_kind(
    broker: Broker, start: Start
) -> None:
    exchange = await broker.exchange()
    sink = await connected(
        start, direct(exchange, routing_key="fleet.{kind}.{imei}", declare=False)
    )
    one_tracker = await broker.queue(exchange, f"fleet.records.{OTHER_IMEI}")
    unparsed = await broker.queue(exchange, "fleet.unparsed.*")
    everything = await broker.queue(exchange, "fleet.#")
    other = records(ONE_RECORD, OTHER_IMEI)

    await sink.deliver([RECORDS[0], *other, UNPARSED])

    [mine] = await one_tracker.receive(1)
    assert mine.routing_key == f"fleet.records.{OTHER_IMEI}"
    assert mine.properties.message_id == other[0].id
    [frame] = await unparsed.receive(1)
    assert json.loads(frame.body)["unparsed"] is True
    assert len(await everything.receive(3)) == 3
    assert await one_tracker.nothing_more()
    assert await unparsed.nothing_more()


# --- Accepted only when the broker takes every message -------------------


@pytest_twisted.ensureDeferred
async def test_a_delivery_no_queue_takes_fails_and_is_not_acked(
    broker: Broker, start: Start
) -> None:
    exchange = await broker.exchange()
    sink = await connected(start, direct(exchange))
    dispatcher = Dispatcher([sink], timeout=10, clock=clock)

    with pytest.raises(DeliveryError) as raised:
        await dispatcher.deliver(RECORDS[:2])

    assert str(raised.value) == (
        f"sink {sink.name} did not accept the records: record {RECORDS[0].id}: "
        "the broker returned the message (312 NO_ROUTE): no queue bound to "
        f"exchange '{exchange}' takes routing key 'teltonika.{IMEI}'"
    )


@pytest_twisted.ensureDeferred
async def test_one_unroutable_record_fails_the_whole_delivery(
    broker: Broker, start: Start
) -> None:
    """Records for a routed IMEI and for one nobody binds, interleaved, in
    one delivery: the returned ones are blamed, the delivery fails."""
    exchange = await broker.exchange()
    sink = await connected(start, direct(exchange))
    queue = await broker.queue(exchange, f"teltonika.{IMEI}")
    stray = records(FOURTEEN_RECORDS, OTHER_IMEI)
    mixed = [item for pair in zip(RECORDS, stray, strict=True) for item in pair]

    with pytest.raises(AmqpSinkError, match=f"record {stray[0].id}: .*312 NO_ROUTE"):
        await sink.deliver(mixed)
    await sink.deliver(RECORDS[:2])

    assert len(await queue.receive(16)) == 16
    assert await queue.nothing_more()


@pytest_twisted.ensureDeferred
async def test_a_nacked_message_fails_its_delivery(
    broker: Broker, start: Start
) -> None:
    exchange = await broker.exchange()
    sink = await connected(start, direct(exchange))
    await broker.queue(
        exchange, arguments={"x-max-length": 0, "x-overflow": "reject-publish"}
    )

    with pytest.raises(AmqpSinkError, match="the broker nacked the message"):
        await sink.deliver(RECORDS[:1])


@pytest_twisted.ensureDeferred
async def test_a_delivery_fires_only_once_the_broker_confirmed(
    broker: Broker, proxy: tuple[FaultProxy, int], start: Start
) -> None:
    faults, port = proxy
    exchange = await broker.exchange()
    queue = await broker.queue(exchange)
    sink = await connected(start, on_port(port, exchange))

    await sink.deliver(RECORDS[:1])  # confirmed: the broker holds it
    assert len(await queue.receive(1)) == 1
    faults.stalled = True  # the broker's confirms no longer get through
    unconfirmed = sink.deliver(RECORDS[1:2])
    await sleep(0.5)

    assert not unconfirmed.called
    faults.cut()
    with pytest.raises(AmqpSinkError, match="before the broker confirmed"):
        await unconfirmed


# --- Faults: refused, cut, stalled ----------------------------------------


@pytest_twisted.ensureDeferred
async def test_while_the_broker_is_unreachable_deliveries_fail_at_once(
    broker: Broker, proxy: tuple[FaultProxy, int], start: Start
) -> None:
    faults, port = proxy
    exchange = await broker.exchange()
    queue = await broker.queue(exchange)
    retries = CountingRetries()
    attempts = retries.attempts
    faults.refusing = True

    sink = start(on_port(port, exchange), retry_policy=retries)
    await eventually(lambda: len(attempts) >= 3)

    assert attempts[:3] == [1, 2, 3]  # counted for the backoff
    assert re.match(
        re.escape(
            f"not connected to amqp://guest@127.0.0.1:{port}/?exchange={exchange} "
            "(reconnecting in the background): the last attempt failed"
        )
        + r"( \(retrying (now|in 1 s)\))?: the connection closed during the AMQP "
        "handshake: Connection to the other side was lost",
        refusal(sink),
    )
    faults.refusing = False
    await eventually(lambda: sink.connected)
    await sink.deliver(RECORDS[:2])
    assert len(await queue.receive(2)) == 2

    attempts.clear()
    faults.cut()  # once connected again, the count starts over
    await reconnected(sink)
    assert attempts == [1]


@pytest_twisted.ensureDeferred
async def test_a_cut_fails_deliveries_in_flight_and_later_ones_pass_after_reconnecting(
    broker: Broker, proxy: tuple[FaultProxy, int], start: Start
) -> None:
    faults, port = proxy
    exchange = await broker.exchange()
    queue = await broker.queue(exchange)
    sink = await connected(start, on_port(port, exchange))
    faults.stalled = True
    in_flight = [sink.deliver(RECORDS[:3]), sink.deliver(RECORDS[3:4])]
    await sleep(0.1)

    faults.cut()
    faults.stalled = False

    for delivery in in_flight:
        with pytest.raises(
            AmqpSinkError,
            match="the connection closed before the broker confirmed the message",
        ):
            await delivery
    await eventually(lambda: not sink.connected)
    assert re.search(
        r"the connection was lost( \(retrying [^)]+\))?: Connection to the other "
        "side was lost",
        refusal(sink),
    )
    await eventually(lambda: sink.connected)
    await sink.deliver(RECORDS[4:6])
    received = await queue.receive(2)
    assert [message.properties.message_id for message in received] == [
        record.id for record in RECORDS[4:6]
    ]
    assert await queue.nothing_more()


@pytest_twisted.ensureDeferred
async def test_a_timed_out_delivery_is_abandoned_and_the_sink_carries_on(
    broker: Broker, proxy: tuple[FaultProxy, int], start: Start
) -> None:
    faults, port = proxy
    exchange = await broker.exchange()
    queue = await broker.queue(exchange)
    sink = await connected(start, on_port(port, exchange))
    dispatcher = Dispatcher([sink], timeout=0.3, clock=clock)
    faults.stalled = True

    with pytest.raises(DeliveryError, match=r"no answer within 0\.3 s"):
        await dispatcher.deliver(RECORDS[:2])
    faults.cut()
    faults.stalled = False
    await reconnected(sink)

    await dispatcher.deliver(RECORDS[2:3])
    assert len(await queue.receive(1)) == 1


@pytest_twisted.ensureDeferred
async def test_too_many_unconfirmed_messages_fail_deliveries_at_once(
    broker: Broker, proxy: tuple[FaultProxy, int], start: Start
) -> None:
    faults, port = proxy
    exchange = await broker.exchange()
    sink = await connected(start, on_port(port, exchange), max_unconfirmed=4)
    faults.stalled = True
    waiting = [sink.deliver(RECORDS[:3]), sink.deliver(RECORDS[3:4])]  # 4 fit

    assert refusal(sink) == (
        f"4 messages to {sink.settings.url} await the broker's confirm, and the "
        "sink allows 4: the broker is slow or unreachable"
    )
    faults.cut()
    for delivery in waiting:
        with pytest.raises(AmqpSinkError, match="before the broker confirmed"):
            await delivery


# --- Connection problems, in the broker's words ---------------------------


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {"password": "wrong"},
            "403 ACCESS_REFUSED - Login was refused using authentication "
            "mechanism PLAIN",
        ),
        ({"vhost": "no-such-vhost"}, "530 NOT_ALLOWED - vhost no-such-vhost not found"),
        (
            {"declare": False},
            "404 NOT_FOUND - no exchange '{exchange}' in vhost '/'",
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_a_broker_refusal_is_reported_in_its_words(
    broker: Broker, start: Start, changes: dict[str, Any], reason: str
) -> None:
    exchange = broker.exchange_name()
    sink = start(direct(exchange, **changes))

    await eventually(lambda: "last attempt failed" in refusal(sink))

    assert reason.format(exchange=exchange) in refusal(sink)
    assert not sink.connected


@pytest_twisted.ensureDeferred
async def test_an_exchange_deleted_under_the_sink_is_declared_again(
    broker: Broker, start: Start
) -> None:
    exchange = broker.exchange_name()
    sink = await connected(start, direct(exchange))
    await broker.delete_exchange(exchange)

    with pytest.raises(
        AmqpSinkError,
        match=f"broker closed the channel: 404 NOT_FOUND - no exchange '{exchange}'",
    ):
        await sink.deliver(RECORDS[:1])
    await reconnected(sink)
    queue = await broker.queue(exchange)
    await sink.deliver(RECORDS[:1])

    assert len(await queue.receive(1)) == 1


# --- Starting and stopping -----------------------------------------------


@pytest_twisted.ensureDeferred
async def test_stopping_waits_for_the_confirms_of_deliveries_in_flight(
    broker: Broker, start: Start
) -> None:
    exchange = await broker.exchange()
    queue = await broker.queue(exchange)
    sink = await connected(start, direct(exchange))
    in_flight = sink.deliver(RECORDS)

    await sink.stopService()

    assert in_flight.called
    await in_flight
    assert len(await queue.receive(14)) == 14
    with pytest.raises(AmqpSinkError, match="is not running"):
        await sink.deliver(RECORDS[:1])


@pytest_twisted.ensureDeferred
async def test_stopping_gives_up_on_missing_confirms_after_the_stop_timeout(
    broker: Broker, proxy: tuple[FaultProxy, int], start: Start
) -> None:
    faults, port = proxy
    exchange = await broker.exchange()
    sink = await connected(start, on_port(port, exchange), stop_timeout=0.2)
    faults.stalled = True
    in_flight = sink.deliver(RECORDS[:1])
    started = time.monotonic()

    await sink.stopService()

    assert time.monotonic() - started < 2
    with pytest.raises(AmqpSinkError, match="before the broker confirmed"):
        await in_flight


@pytest_twisted.ensureDeferred
async def test_stopping_while_unreachable_stops_reconnecting(
    proxy: tuple[FaultProxy, int], start: Start
) -> None:
    faults, port = proxy
    faults.refusing = True
    retries = CountingRetries()
    attempts = retries.attempts
    sink = start(on_port(port, "unused"), retry_policy=retries)
    await eventually(lambda: len(attempts) >= 1)

    await sink.stopService()
    tried = len(attempts)
    await sleep(0.3)

    assert len(attempts) == tried
    assert "is not running" in refusal(sink)


def test_importing_the_sink_imports_neither_pika_nor_a_reactor() -> None:
    probe = (
        "import sys, teltotwist.sinks.amqp; "
        "print(sorted({'pika', 'twisted.internet.reactor'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout == "[]\n"


# --- Through the whole gateway --------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_broker_outage_leaves_the_tracker_unacked_until_it_resends(
    broker: Broker, proxy: tuple[FaultProxy, int]
) -> None:
    faults, port = proxy
    exchange = await broker.exchange()
    queue = await broker.queue(exchange)
    sink = AmqpSink(on_port(port, exchange), clock, retry_policy=lambda n: 0.05)
    endpoint = PortReportingEndpoint(
        serverFromString(clock, "tcp:0:interface=127.0.0.1")
    )
    gateway = teltotwist.makeService(clock, endpoint, [sink], drain_timeout=0.5)
    gateway.startService()
    try:
        listening: IListeningPort = await endpoint.port
        gateway_port: int = listening.getHost().port  # type: ignore[attr-defined]
        await eventually(lambda: sink.connected)
        tracker = await logged_in(gateway_port)
        tracker.send(ONE_RECORD)
        assert await tracker.read(4) == tcp_ack(1)
        assert len(await queue.receive(1)) == 1

        faults.refusing = True
        faults.cut()
        await eventually(lambda: not sink.connected)
        tracker.send(FOURTEEN_RECORDS)
        with pytest.raises(ConnectionError):
            await tracker.read(4)  # closed without an ACK
        assert tracker.received == b""
        assert gateway.running
        tracker = await logged_in(gateway_port)  # the gateway still serves

        faults.refusing = False
        await eventually(lambda: sink.connected)
        tracker.send(FOURTEEN_RECORDS)  # the tracker's resend
        assert await tracker.read(4) == tcp_ack(14)
    finally:
        await gateway.stopService()

    received = await queue.receive(14)
    assert [message.properties.message_id for message in received] == [
        record.id for record in RECORDS
    ]
    assert await queue.nothing_more()
    assert not sink.running


async def logged_in(port: int) -> TrackerClient:
    endpoint = TCP4ClientEndpoint(clock, "127.0.0.1", port)
    tracker: TrackerClient = await connectProtocol(endpoint, TrackerClient())
    tracker.send(encode_login(IMEI))
    assert await tracker.read(1) == b"\x01"
    return tracker


# --- amqps ----------------------------------------------------------------


@pytest_twisted.async_yield_fixture
async def tls_broker(tmp_path: Path) -> AsyncIterator[tuple[int, Path]]:
    """RabbitMQ behind TLS (a forwarding TLS server): its port and CA file."""
    key, cert = loopback_certificate(tmp_path)
    server = serverFromString(
        clock, f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    )
    listening: IListeningPort = await server.listen(
        ProxyFactory(*require("RabbitMQ", RABBITMQ))
    )
    yield listening.getHost().port, cert  # type: ignore[attr-defined]
    stopped = listening.stopListening()
    if stopped is not None:
        await stopped


@pytest_twisted.ensureDeferred
async def test_amqps_publishes_to_a_broker_the_cafile_vouches_for(
    broker: Broker, tls_broker: tuple[int, Path], start: Start
) -> None:
    port, cafile = tls_broker
    exchange = await broker.exchange()
    queue = await broker.queue(exchange)
    settings = parse_url(
        f"amqps://127.0.0.1:{port}/?exchange={exchange}&cafile={cafile}", {}
    )
    sink = await connected(start, settings)

    await sink.deliver(RECORDS[:1])

    [message] = await queue.receive(1)
    assert message.properties.message_id == RECORDS[0].id


@pytest_twisted.ensureDeferred
async def test_amqps_refuses_a_broker_it_cannot_verify(
    broker: Broker, tls_broker: tuple[int, Path], start: Start
) -> None:
    port, _ = tls_broker
    exchange = await broker.exchange()
    sink = start(parse_url(f"amqps://127.0.0.1:{port}/?exchange={exchange}", {}))

    await eventually(lambda: "last attempt failed" in refusal(sink))

    assert "certificate verify failed" in refusal(sink)


# --- --sink amqp:URL ------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("amqp://127.0.0.1", AmqpSettings(host="127.0.0.1", port=5672)),
        (
            "amqp://gw:p%40ss@rabbit.example:5673/%2F?exchange=fleet",
            AmqpSettings(
                host="rabbit.example",
                port=5673,
                username="gw",
                password="p@ss",
                exchange="fleet",
            ),
        ),
        (
            "amqps://gw:pw@rabbit.example/prod?routing_key=t.{kind}.{imei}"
            "&declare=false",
            AmqpSettings(
                host="rabbit.example",
                port=5671,
                vhost="prod",
                username="gw",
                password="pw",
                tls=True,
                routing_key="t.{kind}.{imei}",
                declare=False,
            ),
        ),
        ("amqp://[::1]:5672/", AmqpSettings(host="::1", port=5672)),
    ],
)
def test_parses_urls(url: str, expected: AmqpSettings) -> None:
    assert parse_url(url, {}) == expected


def test_takes_the_password_from_the_environment_not_from_both() -> None:
    settings = parse_url("amqp://gw@rabbit.example/", {PASSWORD_VARIABLE: "s3cret"})
    assert (settings.username, settings.password) == ("gw", "s3cret")
    with pytest.raises(SinkConfigurationError, match="password is given twice"):
        parse_url("amqp://gw:inline@rabbit.example/", {PASSWORD_VARIABLE: "x"})


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("", "needs an amqp:// or amqps:// URL"),
        ("http://rabbit.example/", "needs an amqp:// or amqps:// URL"),
        ("amqp://gw:s3cret@:5672/", "names no host"),
        ("amqp://gw:s3cret@rabbit.example:99999/", "port must be a number"),
        ("amqp://gw:s3cr#et@rabbit.example/", "write a # in the password as %23"),
        ("amqp://gw:s3cret@rabbit.example/a/b", "must be one vhost name"),
        (
            "amqp://gw@rabbit.example/",
            f"names user 'gw' but no password: set {PASSWORD_VARIABLE}",
        ),
        ("amqp://gw:s3cret@h/?exchnage=x", "unknown AMQP URL option 'exchnage'"),
        ("amqp://gw:s3cret@h/?exchange=a&exchange=b", "'exchange' is given twice"),
        ("amqp://gw:s3cret@h/?declare", "'declare' in its query, not NAME=VALUE"),
        ("amqp://gw:s3cret@h/?exchange=", "the exchange option needs a name"),
        ("amqp://gw:s3cret@h/?declare=maybe", "declare must be true or false"),
        ("amqp://gw:s3cret@h/?routing_key=t.{serial}", "not {serial}"),
        ("amqp://gw:s3cret@h/?routing_key=t.{imei:>20}", "not {imei:>20}"),
        ("amqp://gw:s3cret@h/?routing_key=t.{imei", "not a valid template"),
        (f"amqp://gw:s3cret@h/?routing_key={'k' * 240}.{{imei}}", "longer than 255"),
        ("amqp://gw:s3cret@h/?cafile=/etc/ca.pem", "cafile is for amqps:// URLs only"),
        ("amqps://gw:s3cret@h/?cafile=/no/such.pem", "cannot read cafile /no/such.pem"),
    ],
)
def test_refuses_unusable_urls_without_quoting_the_password(
    url: str, error: str
) -> None:
    with pytest.raises(SinkConfigurationError) as raised:
        parse_url(url, {})
    assert error in str(raised.value)
    assert "s3cret" not in str(raised.value)


def test_an_empty_password_variable_is_refused() -> None:
    with pytest.raises(SinkConfigurationError, match="set but empty"):
        parse_url("amqp://gw@rabbit.example/", {PASSWORD_VARIABLE: ""})


def test_the_sink_kind_makes_a_sink_named_without_its_password() -> None:
    sink = make_sink("amqp:amqp://gw:s3cret@rabbit.example/prod?exchange=fleet")

    assert isinstance(sink, AmqpSink)
    assert sink.name == "amqp:amqp://gw@rabbit.example:5672/prod?exchange=fleet"
    assert "s3cret" not in repr(sink.settings)


# --- The documentation's consumer ----------------------------------------


@pytest.fixture
def consumer(broker: Broker) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    """docs/examples/amqp_consumer.py consuming a new exchange and queue."""
    exchange = broker.exchange_name()
    queue = f"{exchange}-records"
    process = subprocess.Popen(
        [
            sys.executable,
            str(EXAMPLE / "amqp_consumer.py"),
            "--url=amqp://guest:guest@{}:{}/%2F".format(*RABBITMQ),
            f"--exchange={exchange}",
            f"--queue={queue}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield process, exchange, queue
    if process.poll() is None:
        process.kill()
    process.communicate()


@pytest_twisted.ensureDeferred
async def test_the_example_consumer_prints_each_record(
    broker: Broker,
    consumer: tuple[subprocess.Popen[str], str, str],
    start: Start,
) -> None:
    process, exchange, queue = consumer
    assert process.stdout is not None and process.stderr is not None
    ready = await deferToThread(process.stderr.readline)
    assert ready == f"consuming {queue}: teltonika.# on {exchange}\n"
    sink = await connected(start, direct(exchange))
    try:
        await sink.deliver(RECORDS[:2])
        lines = [await deferToThread(process.stdout.readline) for _ in range(2)]
    finally:
        process.send_signal(signal.SIGINT)
        await deferToThread(process.wait, 10)
        await broker.delete_queue(queue)

    assert [json.loads(line) for line in lines] == [
        record.to_json() for record in RECORDS[:2]
    ]
    assert process.returncode == 0


# --- Readiness: the gateway listens once the sink is connected -------------


@pytest_twisted.ensureDeferred
async def test_the_gateway_listens_only_once_the_sink_is_connected(
    broker: Broker, proxy: tuple[FaultProxy, int]
) -> None:
    faults, port = proxy
    faults.refusing = True
    exchange = await broker.exchange()
    sink = AmqpSink(on_port(port, exchange), clock, retry_policy=lambda n: 0.05)
    endpoint = PortReportingEndpoint(
        serverFromString(clock, "tcp:0:interface=127.0.0.1")
    )
    gateway = teltotwist.makeService(clock, endpoint, [sink], drain_timeout=0.5)
    connected_when_listening: list[bool] = []
    endpoint.port.addCallback(lambda _: connected_when_listening.append(sink.ready))
    gateway.startService()
    try:
        await sleep(0.3)
        assert connected_when_listening == []
        assert gateway.sinks_not_ready() == [sink.name]

        faults.refusing = False
        await gateway.whenListening().addTimeout(10, clock)

        assert connected_when_listening == [True]
        assert gateway.sinks_not_ready() == []
    finally:
        await gateway.stopService()


@pytest_twisted.ensureDeferred
async def test_with_a_refusing_broker_the_gateway_listens_after_the_timeout(
    proxy: tuple[FaultProxy, int],
) -> None:
    faults, port = proxy
    faults.refusing = True
    sink = AmqpSink(on_port(port, "unused"), clock, retry_policy=lambda n: 0.05)
    gateway = teltotwist.makeService(
        clock,
        serverFromString(clock, "tcp:0:interface=127.0.0.1"),
        [sink],
        sink_ready_timeout=0.5,
    )
    with capturedLogs() as events:
        gateway.startService()
        try:
            await gateway.whenListening().addTimeout(10, clock)
        finally:
            await gateway.stopService()

    warnings = [formatEvent(event) for event in events]
    assert (
        f"Sinks not ready after 0.5 s: amqp:amqp://guest@127.0.0.1:{port}/"
        "?exchange=unused; listening anyway (their deliveries fail until they are)"
    ) in warnings
    assert not sink.ready
