"""MqttSink against the machine's real Mosquitto: QoS 1 messages in the
record JSON contract, accepted on PUBACK; faults through a proxy."""

from __future__ import annotations

import datetime
import ipaddress
import json
import queue
import re
import secrets
import shlex
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TypeVar, cast

import pytest
import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from paho.mqtt.client import Client, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    TCP4ServerEndpoint,
    connectProtocol,
    serverFromString,
)
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.logger import capturedLogs
from twisted.python.failure import Failure

import teltotwist
from teltotwist.codec import AvlPacket, encode_login, tcp_ack
from teltotwist.gateway.dispatch import DeliveryError, Dispatcher
from teltotwist.gateway.items import TrackerRecord, UnparsedFrame
from teltotwist.gateway.limits import Limits
from teltotwist.sinks import SinkConfigurationError
from teltotwist.sinks.mqtt import (
    MqttSink,
    MqttSinkError,
    _Reactor,
    settings_from_url,
    sink_from_argument,
)
from teltotwist.sinks.registry import make_sink
from tests.faultproxy import FaultProxy
from tests.net import PortReportingEndpoint, TrackerClient
from tests.services import MOSQUITTO, own_mosquitto, require
from tests.vectors import TCP_AVL_VALID, WIKI_CODEC8_JSON, by_id

reactor = cast(_Reactor, _reactor)
T = TypeVar("T")

RECEIVED_AT_MS = 1_795_251_600_123
"""2026-11-21T09:00:00.123Z"""
CODEC8 = by_id("wiki-c8-tcp-1").data
DOCS = Path(__file__).resolve().parent.parent / "docs" / "sink-mqtt.rst"


def new_imei() -> str:
    """An IMEI no other test (or earlier run) publishes under."""
    return "99" + "".join(secrets.choice("0123456789") for _ in range(13))


def records_of(imei: str) -> list[TrackerRecord]:
    """Every record of the valid TCP AVL vectors, as if *imei* sent them."""
    records = []
    for vector in TCP_AVL_VALID:
        packet = teltotwist.decode(vector.data)
        assert isinstance(packet, AvlPacket)
        records += [
            TrackerRecord(imei, packet.codec, record, RECEIVED_AT_MS)
            for record in packet.records
        ]
    return records


def sleep(seconds: float) -> Deferred[None]:
    return deferLater(reactor, seconds, lambda: None)


async def until(condition: Callable[[], bool], timeout: float = 15) -> None:
    """Wait until *condition* holds; fail after *timeout* seconds."""
    deadline = reactor.seconds() + timeout
    while not condition():
        assert reactor.seconds() < deadline, "timed out waiting"
        await sleep(0.02)


def within(deferred: Deferred[T], seconds: float = 15) -> Deferred[T]:
    """*deferred*, failing with a timeout rather than hanging the test."""
    return deferred.addTimeout(seconds, reactor)


class Subscriber:
    """A consumer: a paho client subscribed with QoS 1 to *topic_filter*."""

    def __init__(self, topic_filter: str) -> None:
        self.topic_filter = topic_filter
        self._subscribed = threading.Event()
        self._queue: queue.Queue[MQTTMessage] = queue.Queue()
        self.client = Client(
            CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5
        )
        self.client.on_connect = lambda client, *_: client.subscribe(
            topic_filter, qos=1
        )
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = lambda _client, _data, message: self._queue.put(
            message
        )

    async def start(self) -> None:
        self.client.connect_async(*MOSQUITTO)
        self.client.loop_start()
        assert await deferToThread(self._subscribed.wait, 10), "no SUBACK"

    async def take(self, count: int) -> list[MQTTMessage]:
        """The next *count* messages; fails if they take over 10 s."""
        return [await deferToThread(self._queue.get, timeout=10) for _ in range(count)]

    async def nothing_more(self, seconds: float = 0.3) -> None:
        await sleep(seconds)
        assert self._queue.empty()

    async def stop(self) -> None:
        self.client.disconnect()
        await deferToThread(self.client.loop_stop)


class _ReplyLink(Protocol):
    """The sink's connection to a :class:`ReplyHolder`."""

    def __init__(self, holder: ReplyHolder) -> None:
        self.holder = holder
        self.broker: _BrokerLink | None = None
        self.early = b""
        self.held = b""

    def connectionMade(self) -> None:
        self.holder.links.add(self)
        broker = TCP4ClientEndpoint(reactor, *MOSQUITTO)
        connectProtocol(broker, _BrokerLink(self)).addCallback(self._connected)

    def _connected(self, broker: _BrokerLink) -> None:
        self.broker = broker
        broker.transport.write(self.early)  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        if self.broker is None:
            self.early += data
        else:
            self.broker.transport.write(data)  # type: ignore[union-attr]

    def reply(self, data: bytes) -> None:
        if self.holder.holding:
            self.held += data
        else:
            self.transport.write(data)  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        self.holder.links.discard(self)
        if self.broker is not None:
            self.broker.transport.loseConnection()  # type: ignore[union-attr]


class _BrokerLink(Protocol):
    def __init__(self, link: _ReplyLink) -> None:
        self.link = link

    def dataReceived(self, data: bytes) -> None:
        self.link.reply(data)

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        self.link.transport.loseConnection()  # type: ignore[union-attr]


class ReplyHolder:
    """A proxy to Mosquitto that passes the sink's messages on at once but,
    while :attr:`holding`, keeps the broker's answers (PUBACKs) back."""

    def __init__(self) -> None:
        self.holding = False
        self.links: set[_ReplyLink] = set()
        self._listening: IListeningPort | None = None

    async def start(self) -> int:
        endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
        self._listening = await endpoint.listen(
            Factory.forProtocol(lambda: _ReplyLink(self))
        )
        port: int = self._listening.getHost().port  # type: ignore[union-attr]
        return port

    def release(self) -> None:
        self.holding = False
        for link in self.links:
            link.transport.write(link.held)  # type: ignore[union-attr]
            link.held = b""

    async def stop(self) -> None:
        for link in list(self.links):
            link.transport.abortConnection()  # type: ignore[union-attr]
        if self._listening is not None:
            stopped = self._listening.stopListening()
            if stopped is not None:
                await stopped


class Sinks:
    """Starts MqttSinks for a test and stops them after it."""

    def __init__(self) -> None:
        self.started: list[MqttSink] = []

    async def start(
        self, url: str, *, connected: bool = True, drain_timeout: float = 5.0
    ) -> MqttSink:
        sink = MqttSink(settings_from_url(url, {}), reactor, drain_timeout)
        sink.startService()
        self.started.append(sink)
        if connected:
            await until(lambda: sink.connected)
        return sink

    async def stop_all(self) -> None:
        for sink in self.started:
            if sink.running:
                await sink.stopService()


@pytest.fixture(autouse=True)
def no_password_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELTOTWIST_MQTT_PASSWORD", raising=False)


@pytest.fixture
def broker() -> tuple[str, int]:
    return require("Mosquitto", MOSQUITTO)


@pytest.fixture
def prefix(broker: tuple[str, int]) -> str:
    """A topic level of this test's own."""
    return f"teltotwist-test/{secrets.token_hex(8)}"


@pytest_twisted.async_yield_fixture
async def subscriber(prefix: str) -> AsyncIterator[Subscriber]:
    """A consumer of everything under *prefix*, subscribed before the test."""
    consumer = Subscriber(f"{prefix}/#")
    await consumer.start()
    yield consumer
    await consumer.stop()


@pytest_twisted.async_yield_fixture
async def sinks(broker: tuple[str, int]) -> AsyncIterator[Sinks]:
    started = Sinks()
    yield started
    await started.stop_all()


@pytest_twisted.async_yield_fixture
async def proxy(broker: tuple[str, int]) -> AsyncIterator[tuple[FaultProxy, int]]:
    """A FaultProxy in front of Mosquitto, and its port."""
    faults = FaultProxy(*broker)
    port = await faults.start()
    yield faults, port
    await faults.stop()


@pytest_twisted.async_yield_fixture
async def holder(broker: tuple[str, int]) -> AsyncIterator[tuple[ReplyHolder, int]]:
    replies = ReplyHolder()
    port = await replies.start()
    yield replies, port
    await replies.stop()


def payloads(messages: list[MQTTMessage]) -> list[object]:
    return [json.loads(message.payload) for message in messages]


# The URL.


def test_the_defaults() -> None:
    sink = sink_from_argument("mqtt://broker.example")
    imei = new_imei()
    unparsed = UnparsedFrame(imei, b"\x00", "bad", RECEIVED_AT_MS)

    assert sink.name == "mqtt://broker.example:1883"
    settings = sink.settings
    assert (settings.host, settings.port, settings.tls) == (
        "broker.example",
        1883,
        False,
    )
    assert (settings.version, settings.keepalive) == ("5", 30)
    assert settings.topic_for(records_of(imei)[0]) == f"teltonika/{imei}/records"
    assert settings.topic_for(unparsed) == f"teltonika/{imei}/unparsed"
    assert re.fullmatch(r"teltotwist-[0-9a-f]{12}", settings.client_id)
    assert sink_from_argument("mqtt://b").settings.client_id != settings.client_id


def test_the_options() -> None:
    settings = settings_from_url(
        "mqtts://gate%40way:p%3Ass@[::1]:8884/?topic=fleet/{imei}"
        "&client_id=gw-1&keepalive=45&version=3.1.1",
        {},
    )

    assert (settings.host, settings.port, settings.tls) == ("::1", 8884, True)
    assert (settings.username, settings.password) == ("gate@way", "p:ss")
    assert (settings.client_id, settings.keepalive, settings.version) == (
        "gw-1",
        45,
        "3.1.1",
    )
    assert settings.url == "mqtts://gate%40way@[::1]:8884"
    assert settings_from_url("mqtts://h", {}).port == 8883
    imei = new_imei()
    unparsed = UnparsedFrame(imei, b"\x00", "bad", RECEIVED_AT_MS)
    assert settings.topic_for(unparsed) == f"fleet/{imei}"


def test_the_password_from_the_environment_is_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TELTOTWIST_MQTT_PASSWORD", "s3cret")

    sink = sink_from_argument("mqtt://gateway@broker.example:1884")

    assert (sink.settings.username, sink.settings.password) == ("gateway", "s3cret")
    assert sink.name == "mqtt://gateway@broker.example:1884"
    assert "s3cret" not in repr(sink.settings)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h", "needs an mqtt:// or mqtts:// URL, not 'http://h'"),
        ("mqtt://", "names no broker host"),
        ("mqtt://h:99999", "Port out of range"),
        ("mqtt://h/records", "has a path, '/records': give the topic as ?topic="),
        ("mqtt://h?topic=a/#", "contains '#'"),
        ("mqtt://h?topic=a/+/b", "'a/+/b' contains a wildcard"),
        ("mqtt://h?topic=a/{device}", "uses {device}; it may use only {imei}"),
        ("mqtt://h?topic=a/{imei:>20}", "uses {imei}; it may use only {imei}"),
        ("mqtt://h?topic=a/{imei", "'a/{imei': expected '}'"),
        ("mqtt://h?topic=", "the MQTT topic is empty"),
        ("mqtt://h?qos=2", "unknown MQTT URL option 'qos'; the options are topic,"),
        ("mqtt://h?topic=a&topic=b", "option 'topic' is given twice"),
        ("mqtt://h?topic", "has 'topic' in its query, not NAME=VALUE"),
        ("mqtt://h?keepalive=0", "keepalive must be a whole number of seconds"),
        ("mqtt://h?keepalive=1.5", "from 1 to 65535, not '1.5'"),
        ("mqtt://h?version=3.1", "version must be one of 5, 3.1.1"),
        ("mqtt://h?client_id=", "client_id is empty"),
        ("mqtt://:pw@h", "an MQTT password needs a user name"),
    ],
)
def test_an_unusable_url_is_refused_with_the_reason(url: str, message: str) -> None:
    with pytest.raises(SinkConfigurationError, match=re.escape(message)):
        sink_from_argument(url)


def test_a_password_is_taken_once_and_not_echoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(SinkConfigurationError) as raised:
        sink_from_argument("mqtt://gateway:s3cret@h/path")
    assert "s3cret" not in str(raised.value)
    assert "mqtt://gateway:***@h/path" in str(raised.value)

    monkeypatch.setenv("TELTOTWIST_MQTT_PASSWORD", "other")
    with pytest.raises(
        SinkConfigurationError, match="given twice, in the URL and in TELTOTWIST_MQTT"
    ):
        sink_from_argument("mqtt://gateway:s3cret@h")
    with pytest.raises(SinkConfigurationError, match="needs a user name"):
        sink_from_argument("mqtt://h")


def test_the_plugin_makes_it() -> None:
    assert isinstance(make_sink("mqtt:mqtt://broker.example"), MqttSink)


# Against the real broker.


@pytest_twisted.ensureDeferred
async def test_each_record_is_a_message_in_the_contract_on_its_imei_topic(
    sinks: Sinks, subscriber: Subscriber, prefix: str
) -> None:
    sink = await sinks.start(f"mqtt://127.0.0.1:1883?topic={prefix}/{{imei}}/{{kind}}")
    first, second = new_imei(), new_imei()
    records = records_of(first)[:3] + records_of(second)[:2]

    await within(sink.deliver(records))

    messages = await subscriber.take(5)
    assert [message.topic for message in messages] == [
        f"{prefix}/{first}/records"
    ] * 3 + [f"{prefix}/{second}/records"] * 2
    assert payloads(messages) == [record.to_json() for record in records]
    assert payloads(messages)[0] == {
        "id": records[0].id,
        "imei": first,
        "received_at": "2026-11-21T09:00:00.123Z",
        **WIKI_CODEC8_JSON["records"][0],
    }
    assert messages[0].payload == json.dumps(
        records[0].to_json(), separators=(",", ":")
    ).encode("utf-8")
    for message in messages:
        assert (message.qos, message.retain) == (1, False)
    await subscriber.nothing_more()


@pytest_twisted.ensureDeferred
async def test_unparsed_frames_go_to_the_sibling_topic(
    sinks: Sinks, subscriber: Subscriber, prefix: str
) -> None:
    sink = await sinks.start(f"mqtt://127.0.0.1:1883?topic={prefix}/{{imei}}/{{kind}}")
    imei = new_imei()
    unparsed = UnparsedFrame(imei, CODEC8, "unknown codec 0x99", RECEIVED_AT_MS)

    await within(sink.deliver([unparsed]))

    [message] = await subscriber.take(1)
    assert message.topic == f"{prefix}/{imei}/unparsed"
    assert json.loads(message.payload) == {
        "id": unparsed.id,
        "imei": imei,
        "received_at": "2026-11-21T09:00:00.123Z",
        "unparsed": True,
        "error": "unknown codec 0x99",
        "hex": CODEC8.hex(),
    }


@pytest_twisted.ensureDeferred
async def test_mqtt_3_1_1_delivers_the_same_payloads(
    sinks: Sinks, subscriber: Subscriber, prefix: str
) -> None:
    sink = await sinks.start(
        f"mqtt://127.0.0.1:1883?topic={prefix}/{{imei}}&version=3.1.1"
    )
    records = records_of(new_imei())[:2]

    await within(sink.deliver(records))

    assert payloads(await subscriber.take(2)) == [r.to_json() for r in records]


@pytest_twisted.ensureDeferred
async def test_a_delivery_fires_only_once_every_puback_is_in(
    sinks: Sinks, subscriber: Subscriber, prefix: str, holder: tuple[ReplyHolder, int]
) -> None:
    replies, port = holder
    sink = await sinks.start(f"mqtt://127.0.0.1:{port}?topic={prefix}/{{imei}}")
    records = records_of(new_imei())[:3]
    replies.holding = True

    delivery = sink.deliver(records)
    await subscriber.take(3)  # the broker has every message ...
    await sleep(0.2)
    assert not delivery.called  # ... but its PUBACKs are held back
    replies.release()

    await within(delivery)


@pytest.mark.parametrize(
    ("version", "refused"), [("5", True), ("3.1.1", False)], ids=["v5", "v3.1.1"]
)
@pytest_twisted.ensureDeferred
async def test_a_message_the_broker_refuses_fails_the_delivery_under_v5(
    sinks: Sinks, version: str, refused: bool
) -> None:
    """Mosquitto lets no client publish to $SYS. MQTT 5 says so in the
    PUBACK; an MQTT 3.1.1 PUBACK cannot, and the message is silently lost."""
    sink = await sinks.start(
        f"mqtt://127.0.0.1:1883?topic=$SYS/teltotwist/{{imei}}&version={version}"
    )
    imei = new_imei()

    delivery = sink.deliver(records_of(imei)[:1])

    if refused:
        with pytest.raises(
            MqttSinkError,
            match=re.escape(
                f"the broker at 127.0.0.1:1883 refused the message on "
                f"$SYS/teltotwist/{imei}: Not authorized"
            ),
        ):
            await within(delivery)
    else:
        await within(delivery)


@pytest_twisted.ensureDeferred
async def test_without_a_broker_deliveries_fail_at_once(sinks: Sinks) -> None:
    endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
    closed: IListeningPort = await endpoint.listen(Factory.forProtocol(Protocol))
    port: int = closed.getHost().port  # type: ignore[attr-defined]
    stopped = closed.stopListening()  # nothing listens there any more
    if stopped is not None:
        await within(stopped)
    sink = await sinks.start(f"mqtt://127.0.0.1:{port}", connected=False)
    await sleep(0.3)

    delivery = sink.deliver(records_of(new_imei())[:1])

    assert delivery.called
    with pytest.raises(
        MqttSinkError,
        match=re.escape(
            f"not connected to the MQTT broker at 127.0.0.1:{port} "
            "(reconnecting in the background): cannot connect (retrying in "
        )
        + r"\d+ s\): Connection refused$",
    ):
        await within(delivery)


@pytest_twisted.ensureDeferred
async def test_refused_connections_fail_deliveries_until_the_broker_accepts(
    sinks: Sinks, subscriber: Subscriber, proxy: tuple[FaultProxy, int], prefix: str
) -> None:
    faults, port = proxy
    faults.refusing = True
    sink = await sinks.start(
        f"mqtt://127.0.0.1:{port}?topic={prefix}/{{imei}}", connected=False
    )
    records = records_of(new_imei())[:2]
    await sleep(0.3)

    refused = sink.deliver(records[:1])
    assert refused.called
    with pytest.raises(MqttSinkError, match="not connected to the MQTT broker"):
        await refused

    faults.refusing = False
    await until(lambda: sink.connected)
    await within(sink.deliver(records[1:]))
    assert payloads(await subscriber.take(1)) == [records[1].to_json()]
    await subscriber.nothing_more()


@pytest_twisted.ensureDeferred
async def test_a_cut_fails_the_deliveries_in_flight_for_good(
    sinks: Sinks, subscriber: Subscriber, proxy: tuple[FaultProxy, int], prefix: str
) -> None:
    """paho sends the messages of the failed delivery again after it
    reconnects, and the broker acknowledges them: the delivery stays failed
    (the tracker resends anyway; consumers see a duplicate with the same id)."""
    faults, port = proxy
    sink = await sinks.start(f"mqtt://127.0.0.1:{port}?topic={prefix}/{{imei}}")
    records = records_of(new_imei())[:4]
    faults.stalled = True
    in_flight = [sink.deliver(records[:2]), sink.deliver(records[2:3])]
    await sleep(0.2)
    assert not any(delivery.called for delivery in in_flight)

    faults.cut()

    for delivery in in_flight:
        with pytest.raises(
            MqttSinkError,
            match=re.escape(
                f"the connection to the MQTT broker at 127.0.0.1:{port} was lost "
                "(Unspecified error) before it acknowledged the records"
            ),
        ):
            await within(delivery)
    with pytest.raises(MqttSinkError, match="lost the connection"):
        await within(sink.deliver(records[3:]))
    faults.stalled = False
    with capturedLogs() as events:
        await until(lambda: sink.connected)
        await within(sink.deliver(records[3:]))
        received = payloads(await subscriber.take(4))

    assert sorted(received, key=str) == sorted(
        (record.to_json() for record in records), key=str
    )
    assert not [event for event in events if "log_failure" in event]


@pytest_twisted.ensureDeferred
async def test_a_stalled_broker_times_out_and_nothing_is_accepted(
    sinks: Sinks, subscriber: Subscriber, proxy: tuple[FaultProxy, int], prefix: str
) -> None:
    faults, port = proxy
    sink = await sinks.start(f"mqtt://127.0.0.1:{port}?topic={prefix}/{{imei}}")
    dispatcher = Dispatcher([sink], timeout=0.5, clock=reactor)
    faults.stalled = True

    with pytest.raises(DeliveryError, match=r"no answer within 0\.5 s"):
        await dispatcher.deliver(records_of(new_imei())[:2])

    await subscriber.nothing_more()
    started = reactor.seconds()
    await within(sink.stopService())  # nothing left to wait for
    assert reactor.seconds() - started < 1


@pytest_twisted.ensureDeferred
async def test_stopping_waits_for_the_due_pubacks(
    sinks: Sinks, subscriber: Subscriber, prefix: str, holder: tuple[ReplyHolder, int]
) -> None:
    replies, port = holder
    sink = await sinks.start(f"mqtt://127.0.0.1:{port}?topic={prefix}/{{imei}}")
    records = records_of(new_imei())[:2]
    replies.holding = True
    delivery = sink.deliver(records[:1])
    await subscriber.take(1)

    stopped = sink.stopService()
    with pytest.raises(MqttSinkError, match="is not running"):
        await within(sink.deliver(records[1:]))
    await sleep(0.2)
    assert not stopped.called
    replies.release()
    await within(stopped)

    await within(delivery)
    assert not paho_threads(sink)


@pytest_twisted.ensureDeferred
async def test_stopping_gives_up_on_pubacks_after_the_drain_timeout(
    sinks: Sinks, proxy: tuple[FaultProxy, int]
) -> None:
    faults, port = proxy
    sink = await sinks.start(f"mqtt://127.0.0.1:{port}", drain_timeout=0.3)
    faults.stalled = True
    delivery = sink.deliver(records_of(new_imei())[:1])

    started = reactor.seconds()
    await within(sink.stopService())

    assert 0.25 < reactor.seconds() - started < 3
    with pytest.raises(
        MqttSinkError, match=r"the sink stopped before the broker .* \(waited 0.3 s\)"
    ):
        await within(delivery)
    assert not paho_threads(sink)


def paho_threads(sink: MqttSink) -> list[threading.Thread]:
    return [
        thread
        for thread in threading.enumerate()
        if thread.name == f"paho-mqtt-client-{sink.settings.client_id}"
    ]


@pytest_twisted.ensureDeferred
async def test_the_gateway_acks_only_what_the_broker_acknowledged(
    sinks: Sinks, subscriber: Subscriber, proxy: tuple[FaultProxy, int], prefix: str
) -> None:
    faults, port = proxy
    sink = await sinks.start(f"mqtt://127.0.0.1:{port}?topic={prefix}/{{imei}}")
    endpoint = PortReportingEndpoint(
        serverFromString(reactor, "tcp:0:interface=127.0.0.1")
    )
    gateway = teltotwist.makeService(
        reactor, endpoint, [sink], limits=Limits(sink_timeout=5)
    )
    gateway.startService()
    listening: IListeningPort = await endpoint.port
    imei = new_imei()

    async def tracker() -> TrackerClient:
        address = TCP4ClientEndpoint(reactor, "127.0.0.1", listening.getHost().port)  # type: ignore[attr-defined]
        client: TrackerClient = await connectProtocol(address, TrackerClient())
        client.send(encode_login(imei))
        assert await client.read(1) == b"\x01"
        return client

    try:
        faults.refusing = True
        faults.cut()
        await until(lambda: not sink.connected)
        unacked = await tracker()
        unacked.send(CODEC8)
        await within(unacked.closed)
        assert unacked.received == b""  # no ACK: the tracker keeps the records
        await subscriber.nothing_more()

        faults.refusing = False
        await until(lambda: sink.connected)
        resending = await tracker()  # the gateway stayed up
        resending.send(CODEC8)
        assert await resending.read(4) == tcp_ack(1)
        [message] = await subscriber.take(1)
        assert message.topic == f"{prefix}/{imei}"
        packet = teltotwist.decode(CODEC8)
        assert isinstance(packet, AvlPacket)
        assert json.loads(message.payload)["id"] == (
            TrackerRecord(imei, packet.codec, packet.records[0], 0).id
        )
    finally:
        await gateway.stopService()


# TLS, against a Mosquitto of the test's own with a certificate for 127.0.0.1.


def write_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA's certificate, and a certificate it signed for 127.0.0.1 with its
    key: three PEM files in *directory*."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "teltotwist test CA")])

    def certificate(
        subject: x509.Name, public_key: ec.EllipticCurvePublicKey, ca: bool
    ) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), True)
        )

    ca = certificate(ca_name, ca_key.public_key(), True).sign(ca_key, hashes.SHA256())
    server = (
        certificate(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]),
            key.public_key(),
            False,
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A Mosquitto of this test's own, TLS only: its port and its CA file."""
    ca, certificate, key = write_certificates(tmp_path)
    with own_mosquitto(
        tmp_path, "allow_anonymous true", f"certfile {certificate}", f"keyfile {key}"
    ) as port:
        yield port, ca


@pytest_twisted.ensureDeferred
async def test_mqtts_delivers_to_a_broker_it_can_verify(
    sinks: Sinks, tls_broker: tuple[int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, ca = tls_broker
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    sink = await sinks.start(f"mqtts://127.0.0.1:{port}")

    await within(sink.deliver(records_of(new_imei())[:2]))


# paho-mqtt 2.2 leaves the socket of a failed TLS handshake for the garbage
# collector to close.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest_twisted.ensureDeferred
async def test_mqtts_does_not_talk_to_a_broker_it_cannot_verify(
    sinks: Sinks, tls_broker: tuple[int, Path]
) -> None:
    port, _ = tls_broker
    sink = await sinks.start(f"mqtts://127.0.0.1:{port}", connected=False)
    await sleep(0.5)

    with pytest.raises(
        MqttSinkError,
        match=r"cannot connect \(retrying .*\): .*certificate verify failed",
    ):
        await within(sink.deliver(records_of(new_imei())[:1]))


# The consumer lines of docs/sink-mqtt.rst, as printed there.


def documented_consumer(persistent: bool) -> list[str]:
    lines = [
        shlex.split(line.strip()[2:])
        for line in DOCS.read_text(encoding="utf-8").splitlines()
        if line.strip().startswith("$ mosquitto_sub ")
    ]
    [command] = [line for line in lines if ("-c" in line) == persistent]
    return command


@pytest.fixture
def mosquitto_sub(broker: tuple[str, int]) -> str:
    found = shutil.which("mosquitto_sub")
    if found is None:
        pytest.skip("mosquitto_sub is not installed")
    return found


class Consumer:
    """A ``mosquitto_sub`` process; its output lines, as they come."""

    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    async def line_with(self, text: str, timeout: float) -> str | None:
        deadline = reactor.seconds() + timeout
        while reactor.seconds() < deadline:
            try:
                line = await deferToThread(self.lines.get, timeout=0.1)
            except queue.Empty:
                continue
            if text in line:
                return line
        return None

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self._reader.join(timeout=10)  # it reads up to the end of the output
        assert self.process.stdout is not None
        self.process.stdout.close()


@pytest.fixture
def consumers() -> Iterator[list[Consumer]]:
    started: list[Consumer] = []
    yield started
    for consumer in started:
        consumer.stop()


@pytest_twisted.ensureDeferred
async def test_the_documented_consumer_line_receives_the_records(
    sinks: Sinks, mosquitto_sub: str, consumers: list[Consumer]
) -> None:
    consumer = Consumer(documented_consumer(persistent=False))
    consumers.append(consumer)
    sink = await sinks.start("mqtt://127.0.0.1:1883")
    record = records_of(new_imei())[0]

    for _ in range(20):  # until mosquitto_sub has subscribed
        await within(sink.deliver([record]))
        line = await consumer.line_with(record.imei, timeout=0.5)
        if line is not None:
            break
    else:
        pytest.fail("mosquitto_sub received nothing")

    topic, payload = line.split(" ", 1)
    assert topic == f"teltonika/{record.imei}/records"
    assert json.loads(payload) == record.to_json()


@pytest_twisted.ensureDeferred
async def test_the_documented_persistent_consumer_gets_what_it_missed(
    sinks: Sinks, mosquitto_sub: str, consumers: list[Consumer]
) -> None:
    """Records published while the consumer is away wait in its session.
    The test uses a client id of its own, and ends the session afterwards."""
    command = documented_consumer(persistent=True)
    client_id = f"teltotwist-test-{secrets.token_hex(4)}"
    command[command.index("-i") + 1] = client_id
    sink = await sinks.start("mqtt://127.0.0.1:1883")
    record = records_of(new_imei())[0]
    try:
        subscribe_once = [*command, "-E"]  # exits once subscribed
        await deferToThread(subprocess.run, subscribe_once, check=True, timeout=10)

        await within(sink.deliver([record]))  # nobody is connected to receive it now
        consumer = Consumer(command)
        consumers.append(consumer)

        line = await consumer.line_with(record.imei, timeout=10)
        assert line == (
            f"teltonika/{record.imei}/records "
            + json.dumps(record.to_json(), separators=(",", ":"))
        )
    finally:
        end_session = [mosquitto_sub, "-V", "5", "-i", client_id, "-t", "x", "-E"]
        await deferToThread(subprocess.run, end_session, check=True, timeout=10)


# Readiness.


@pytest_twisted.ensureDeferred
async def test_the_sink_is_ready_once_the_broker_accepts_it(
    sinks: Sinks, proxy: tuple[FaultProxy, int]
) -> None:
    faults, port = proxy
    faults.refusing = True
    sink = await sinks.start(f"mqtt://127.0.0.1:{port}", connected=False)
    ready = sink.whenReady()
    await sleep(0.3)
    assert not ready.called
    assert not sink.ready

    faults.refusing = False
    await within(ready)

    assert sink.ready
    assert sink.whenReady().called
