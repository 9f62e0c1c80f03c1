"""WebhookSink: records POSTed as JSON, retried, signed, bounded, cancellable.

In memory (treq's RequestTraversalAgent and a Clock) for the retry schedule;
against a real twisted.web server on loopback for the rest, through a
FaultProxy for the network faults, and behind the real gateway end to end.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from io import BytesIO
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest
import pytest_twisted
from treq.testing import RequestTraversalAgent
from twisted.application.service import IService
from twisted.internet import reactor
from twisted.internet.defer import CancelledError, Deferred, gatherResults
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    TCP4ServerEndpoint,
    connectProtocol,
    serverFromString,
)
from twisted.internet.interfaces import IConsumer, IListeningPort
from twisted.internet.task import Clock, deferLater
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.web.client import Agent, FileBodyProducer
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IBodyProducer, IResponse
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from zope.interface import implementer
from zope.interface.verify import verifyObject

import teltotwist
from teltotwist.codec import AvlPacket, encode_login, tcp_ack
from teltotwist.gateway.dispatch import DeliveryError, Dispatcher
from teltotwist.gateway.items import TrackerRecord
from teltotwist.gateway.limits import Limits
from teltotwist.sinks import IRecordSink, SinkConfigurationError
from teltotwist.sinks.registry import make_sink
from teltotwist.sinks.webhook import (
    WebhookError,
    WebhookRejectedError,
    WebhookSettings,
    WebhookSink,
    sink_from_argument,
)
from tests.certificates import loopback_certificate
from tests.faultproxy import FaultProxy
from tests.net import PortReportingEndpoint, TrackerClient
from tests.vectors import WIKI_CODEC8_JSON, by_id

IMEI = "356307042441013"
RECEIVED_AT_MS = 1_795_251_600_123
"""2026-11-21T09:00:00.123Z"""
LOGIN = encode_login(IMEI)
CODEC8 = by_id("wiki-c8-tcp-1").data
SECRET = b"correct horse battery staple"
MEMORY_URL = "http://hook.example/teltonika"
FAST = WebhookSettings(request_timeout=2.0, first_retry_delay=0.05, max_retry_delay=0.2)
"""Retries within a fraction of a second, for the tests on real sockets."""
RECEIVER_EXAMPLE = (
    Path(__file__).resolve().parent.parent / "docs" / "examples" / "webhook_receiver.py"
)


def items_of(vector_id: str) -> list[TrackerRecord]:
    """The records of a TCP vector, as the gateway delivers them."""
    packet = teltotwist.decode(by_id(vector_id).data)
    assert isinstance(packet, AvlPacket)
    return [
        TrackerRecord(IMEI, packet.codec, record, RECEIVED_AT_MS)
        for record in packet.records
    ]


ONE = items_of("wiki-c8-tcp-1")
FOURTEEN = items_of("traccar-26-avl")


def sleep(seconds: float) -> Deferred[None]:
    return deferLater(reactor, seconds, lambda: None)


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait, on the real reactor, until *condition* holds."""
    deadline = reactor.seconds() + timeout
    while not condition():
        assert reactor.seconds() < deadline, "the condition did not come true"
        await sleep(0.005)


def expected_signature(timestamp: str, body: bytes) -> str:
    """The documented algorithm, written out independently of the sink."""
    signed = timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(SECRET, signed, hashlib.sha256).hexdigest()


@attrs.frozen
class Posted:
    """One request as the webhook's server saw it."""

    headers: Headers
    body: bytes
    client_port: int

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name)
        return None if values is None else values[0]

    @property
    def records(self) -> Any:
        return json.loads(self.body)


class Receiver(Resource):
    """The webhook's server: keeps every POST and answers it with the next
    of :attr:`answers` (then 200); while :attr:`holding`, it answers nothing
    until :meth:`release`. An answer of status 0 sends headers and half the
    body, then stalls."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.posted: list[Posted] = []
        self.answers: list[tuple[int, bytes]] = []
        self.holding = False
        self.held: list[Request] = []
        self.most_held = 0

    def render_POST(self, request: Request) -> bytes | int:
        assert request.content is not None
        address = request.getClientAddress()
        port = getattr(address, "port", 0)
        self.posted.append(Posted(request.requestHeaders, request.content.read(), port))
        if self.holding:
            return self._hold(request)
        status, body = self.answers.pop(0) if self.answers else (200, b"")
        if status == 0:
            request.setHeader("Content-Length", "100")
            request.write(b"x" * 50)
            return self._hold(request)
        request.setResponseCode(status)
        return body

    def _hold(self, request: Request) -> int:
        self.held.append(request)
        self.most_held = max(self.most_held, len(self.held))
        request.notifyFinish().addBoth(lambda _: self._forget(request))
        return NOT_DONE_YET

    def _forget(self, request: Request) -> None:
        if request in self.held:
            self.held.remove(request)

    def release(self) -> None:
        """Answer the oldest held request with 200."""
        self.held.pop(0).finish()

    def release_all(self) -> None:
        while self.held:
            self.release()


@attrs.define
class Server:
    """A running Receiver on loopback."""

    receiver: Receiver
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/teltonika?token=t0k3n"


@pytest_twisted.async_yield_fixture
async def server() -> AsyncIterator[Server]:
    receiver = Receiver()
    endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
    listening: IListeningPort = await endpoint.listen(Site(receiver))
    yield Server(receiver, listening.getHost().port)  # type: ignore[attr-defined]
    receiver.holding = False
    receiver.release_all()
    stopped = listening.stopListening()
    if stopped is not None:
        await stopped


@attrs.frozen
class Proxied:
    """The server behind a FaultProxy."""

    fault: FaultProxy
    url: str


@pytest_twisted.async_yield_fixture
async def proxied(server: Server) -> AsyncIterator[Proxied]:
    fault_proxy = FaultProxy("127.0.0.1", server.port)
    port = await fault_proxy.start()
    yield Proxied(fault_proxy, f"http://127.0.0.1:{port}/teltonika")
    await fault_proxy.stop()


def start(sink: WebhookSink) -> WebhookSink:
    """*sink*, started as the gateway starts it."""
    service: IService = sink
    service.startService()
    return sink


@pytest_twisted.async_yield_fixture
async def started() -> AsyncIterator[Callable[[WebhookSink], WebhookSink]]:
    """Starts sinks; stops them after the test."""
    sinks: list[WebhookSink] = []

    def start_and_keep(sink: WebhookSink) -> WebhookSink:
        sinks.append(start(sink))
        return sink

    yield start_and_keep
    for sink in sinks:
        if sink.running:
            await sink.stopService()


# In memory: the retry schedule, signatures and answers, on a Clock.


def in_memory(resource: Resource) -> IAgent:
    """An Agent that hands each request to *resource* without a socket."""
    agent: IAgent = RequestTraversalAgent(resource)  # type: ignore[no-untyped-call]
    return agent


def memory_sink(receiver: Receiver, clock: Clock, **options: Any) -> WebhookSink:
    return start(WebhookSink(MEMORY_URL, clock, agent=in_memory(receiver), **options))


def outcome(delivery: Deferred[None]) -> list[object]:
    results: list[object] = []
    delivery.addBoth(results.append)
    return results


def test_retries_5xx_after_doubling_jittered_delays() -> None:
    receiver, clock = Receiver(), Clock()
    receiver.answers = [(503, b"busy")] * 4
    results = outcome(memory_sink(receiver, clock).deliver(ONE))

    for ceiling in (0.5, 1.0, 2.0, 4.0):
        [retry] = clock.getDelayedCalls()
        delay = retry.getTime() - clock.seconds()
        assert ceiling / 2 <= delay <= ceiling
        assert results == []
        clock.advance(delay)

    assert results == [None]
    assert len(receiver.posted) == 5
    assert {posted.body for posted in receiver.posted} == {receiver.posted[0].body}


def test_gives_up_after_the_last_attempt_with_the_last_reason() -> None:
    receiver, clock = Receiver(), Clock()
    receiver.answers = [(503, b"busy")] * 3
    sink = memory_sink(receiver, clock, settings=WebhookSettings(max_attempts=3))
    results = outcome(sink.deliver(ONE))
    clock.pump([4.0] * 3)

    [failure] = results
    assert isinstance(failure.value, WebhookError)  # type: ignore[attr-defined]
    assert str(failure.value) == (  # type: ignore[attr-defined]
        f"{MEMORY_URL}: no success in 3 attempts; "
        "the last: HTTP 503 Service Unavailable: 'busy'"
    )
    assert len(receiver.posted) == 3


@pytest.mark.parametrize("status", [400, 401, 404, 413, 429, 301, 308])
def test_other_answers_fail_at_once_with_the_status(status: int) -> None:
    receiver, clock = Receiver(), Clock()
    receiver.answers = [(status, b'{"error": "no"}')]
    results = outcome(memory_sink(receiver, clock).deliver(ONE))

    [failure] = results
    error = failure.value  # type: ignore[attr-defined]
    assert isinstance(error, WebhookRejectedError)
    assert error.status == status
    assert f"{MEMORY_URL} answered HTTP {status} " in str(error)
    assert str(error).endswith(': \'{"error": "no"}\'')
    assert clock.getDelayedCalls() == []
    assert len(receiver.posted) == 1


def test_a_long_refusal_is_cut_to_an_excerpt() -> None:
    receiver, clock = Receiver(), Clock()
    receiver.answers = [(422, b"<html>" + b"e" * 5000)]
    [failure] = outcome(memory_sink(receiver, clock).deliver(ONE))

    error = failure.value  # type: ignore[attr-defined]
    assert error.excerpt == "<html>" + "e" * 194 + "..."


def test_signs_the_timestamp_and_the_exact_body() -> None:
    receiver, clock = Receiver(), Clock()
    clock.advance(1_795_251_600.7)
    sink = memory_sink(receiver, clock, secret=SECRET)
    outcome(sink.deliver(ONE))

    [posted] = receiver.posted
    assert posted.header("X-Teltotwist-Timestamp") == "1795251600"
    assert posted.header("X-Teltotwist-Signature") == expected_signature(
        "1795251600", posted.body
    )


def test_a_retry_is_signed_with_its_own_timestamp() -> None:
    receiver, clock = Receiver(), Clock()
    clock.advance(1_795_251_600)
    receiver.answers = [(500, b"")]
    sink = memory_sink(receiver, clock, secret=SECRET)
    results = outcome(sink.deliver(ONE))
    clock.advance(100)
    clock.advance(0.5)

    assert results == [None]
    first, retry = receiver.posted
    assert retry.header("X-Teltotwist-Timestamp") == "1795251700"
    assert retry.header("X-Teltotwist-Signature") == expected_signature(
        "1795251700", retry.body
    )
    assert retry.header("X-Teltotwist-Signature") != first.header(
        "X-Teltotwist-Signature"
    )


def test_without_a_secret_nothing_is_signed() -> None:
    receiver = Receiver()
    outcome(memory_sink(receiver, Clock()).deliver(ONE))

    [posted] = receiver.posted
    assert posted.header("X-Teltotwist-Signature") is None
    assert posted.header("X-Teltotwist-Timestamp") is None


def test_the_sink_timeout_stops_the_retries() -> None:
    receiver, clock = Receiver(), Clock()
    receiver.answers = [(503, b"")] * 10
    dispatcher = Dispatcher([memory_sink(receiver, clock)], timeout=0.2, clock=clock)
    results = outcome(dispatcher.deliver(ONE))
    clock.advance(0.2)

    [failure] = results
    assert isinstance(failure.value, DeliveryError)  # type: ignore[attr-defined]
    assert str(failure.value).endswith("no answer within 0.2 s")  # type: ignore[attr-defined]
    assert clock.getDelayedCalls() == []
    clock.pump([1.0] * 10)
    assert len(receiver.posted) == 1


def test_an_attempt_without_an_answer_times_out_and_is_retried() -> None:
    receiver, clock = Receiver(), Clock()
    receiver.holding = True
    sink = memory_sink(receiver, clock, settings=WebhookSettings(request_timeout=3))
    results = outcome(sink.deliver(ONE))
    receiver.holding = False

    with capturedLogs() as events:
        clock.advance(3)
    clock.advance(0.5)

    assert results == [None]
    assert len(receiver.posted) == 2
    [warning] = [formatEvent(e) for e in events if e["log_level"] is LogLevel.warn]
    assert warning.startswith(
        "webhook:http://hook.example/teltonika: attempt 1 failed "
        "(no complete answer within 3 s); retrying in 0."
    )


def test_delivering_while_stopped_fails() -> None:
    sink = WebhookSink(MEMORY_URL, Clock(), agent=in_memory(Receiver()))

    [failure] = outcome(sink.deliver(ONE))

    assert isinstance(failure.value, WebhookError)  # type: ignore[attr-defined]
    assert "is not running" in str(failure.value)  # type: ignore[attr-defined]


def test_retry_delays_double_up_to_the_maximum_and_jitter_halves_at_most() -> None:
    settings = WebhookSettings(first_retry_delay=0.5, max_retry_delay=4.0)

    assert [settings.retry_delay(n, 0.0) for n in range(1, 7)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        4.0,
        4.0,
    ]
    assert settings.retry_delay(3, 0.5) == 1.5
    assert settings.retry_delay(3, 0.999999) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    "settings",
    [
        {"max_concurrent": 0},
        {"max_attempts": 0},
        {"request_timeout": 0},
        {"first_retry_delay": -1},
    ],
)
def test_settings_refuse_values_that_cannot_work(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(settings))):
        WebhookSettings(**settings)


# --sink webhook:URL


def test_the_plugin_makes_a_webhook_sink_named_without_the_query() -> None:
    sink = make_sink("webhook:https://hooks.example.com/t?token=s3cret#x")

    assert isinstance(sink, WebhookSink)
    assert sink.url == "https://hooks.example.com/t?token=s3cret#x"
    assert sink.name == "webhook:https://hooks.example.com/t"
    assert verifyObject(IRecordSink, sink)
    assert IService.providedBy(sink)


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("", "the webhook sink needs a URL: --sink webhook:https://HOST/PATH"),
        ("ftp://example.com/x", "needs an http:// or https:// URL, not 'ftp://"),
        ("example.com/hook", "needs an http:// or https:// URL, not 'example.com"),
        ("https:///hook", "needs an http:// or https:// URL, not 'https:///hook'"),
        ("http://example.com:99999/", "URL 'http://example.com:99999/' is not valid"),
        ("https://u:pw@example.com/", "must not hold user:password@"),
    ],
)
def test_unusable_urls_are_refused_with_the_reason(argument: str, message: str) -> None:
    with pytest.raises(SinkConfigurationError) as raised:
        sink_from_argument(argument)

    assert message in str(raised.value)


@pytest_twisted.ensureDeferred
async def test_the_secret_comes_from_the_environment(
    server: Server,
    started: Callable[[WebhookSink], WebhookSink],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TELTOTWIST_WEBHOOK_SECRET", SECRET.decode())
    sink = started(sink_from_argument(server.url))

    await sink.deliver(ONE)

    [posted] = server.receiver.posted
    timestamp = posted.header("X-Teltotwist-Timestamp")
    assert timestamp is not None
    assert posted.header("X-Teltotwist-Signature") == expected_signature(
        timestamp, posted.body
    )


def test_an_empty_secret_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELTOTWIST_WEBHOOK_SECRET", "")

    with pytest.raises(SinkConfigurationError, match="is set but empty"):
        sink_from_argument("https://hooks.example.com/t")


# A real twisted.web server on loopback.


@pytest_twisted.ensureDeferred
async def test_the_body_is_a_json_array_of_record_objects(
    server: Server, started: Callable[[WebhookSink], WebhookSink]
) -> None:
    sink = started(WebhookSink(server.url, reactor))
    await sink.deliver(ONE + FOURTEEN)

    [posted] = server.receiver.posted
    assert posted.header("Content-Type") == "application/json"
    assert posted.records == [item.to_json() for item in ONE + FOURTEEN]
    assert posted.records[0] == {
        "id": ONE[0].id,
        "imei": IMEI,
        "received_at": "2026-11-21T09:00:00.123Z",
        **WIKI_CODEC8_JSON["records"][0],
    }


@pytest_twisted.ensureDeferred
async def test_a_500_is_retried_and_then_accepted(
    server: Server, started: Callable[[WebhookSink], WebhookSink]
) -> None:
    server.receiver.answers = [(500, b"oops")]
    sink = started(WebhookSink(server.url, reactor, settings=FAST))

    await sink.deliver(FOURTEEN)

    first, retry = server.receiver.posted
    assert first.body == retry.body
    assert len(retry.records) == 14


@pytest_twisted.ensureDeferred
async def test_a_400_fails_at_once_with_the_status(
    server: Server, started: Callable[[WebhookSink], WebhookSink]
) -> None:
    server.receiver.answers = [(400, b"unknown field: io")]
    sink = started(WebhookSink(server.url, reactor))

    with pytest.raises(WebhookRejectedError) as raised:
        await sink.deliver(ONE)

    assert raised.value.status == 400
    assert str(raised.value) == (
        f"http://127.0.0.1:{server.port}/teltonika "
        "answered HTTP 400 Bad Request: 'unknown field: io'"
    )  # without the URL's query, which may hold a token
    await sleep(0.6)  # longer than a first retry could wait
    assert len(server.receiver.posted) == 1


@pytest_twisted.ensureDeferred
async def test_no_more_requests_at_once_than_the_limit(
    server: Server, started: Callable[[WebhookSink], WebhookSink]
) -> None:
    server.receiver.holding = True
    settings = WebhookSettings(max_concurrent=3)
    sink = started(WebhookSink(server.url, reactor, settings=settings))
    deliveries = [sink.deliver([item]) for item in FOURTEEN[:10]]

    await until(lambda: len(server.receiver.held) == 3)
    await sleep(0.1)
    assert len(server.receiver.posted) == 3
    server.receiver.release()
    await until(lambda: len(server.receiver.posted) == 4)
    server.receiver.holding = False
    server.receiver.release_all()
    await gatherResults(deliveries)

    assert server.receiver.most_held == 3
    delivered = [posted.records[0] for posted in server.receiver.posted]
    assert sorted(r["id"] for r in delivered) == sorted(i.id for i in FOURTEEN[:10])


@pytest_twisted.ensureDeferred
async def test_a_delivery_waiting_for_a_slot_can_be_cancelled(
    server: Server, started: Callable[[WebhookSink], WebhookSink]
) -> None:
    server.receiver.holding = True
    settings = WebhookSettings(max_concurrent=1)
    sink = started(WebhookSink(server.url, reactor, settings=settings))
    in_flight = sink.deliver(ONE)
    waiting = sink.deliver(FOURTEEN)
    await until(lambda: len(server.receiver.held) == 1)

    waiting.cancel()
    with pytest.raises(CancelledError):
        await waiting
    server.receiver.release()
    await in_flight
    await sleep(0.1)

    [posted] = server.receiver.posted
    assert posted.records == [ONE[0].to_json()]


@pytest_twisted.ensureDeferred
async def test_connections_are_kept_and_reused(
    server: Server, started: Callable[[WebhookSink], WebhookSink]
) -> None:
    sink = started(WebhookSink(server.url, reactor))
    for item in FOURTEEN[:5]:
        await sink.deliver([item])

    assert len({posted.client_port for posted in server.receiver.posted}) == 1


@pytest_twisted.ensureDeferred
async def test_stopping_closes_the_connections_and_abandons_deliveries(
    server: Server, proxied: Proxied
) -> None:
    sink = start(WebhookSink(proxied.url, reactor))
    await gatherResults([sink.deliver(ONE), sink.deliver(ONE)])
    server.receiver.holding = True
    in_flight = sink.deliver(FOURTEEN)
    await until(lambda: len(server.receiver.held) == 1)
    assert len(proxied.fault.connections) == 2  # one idle in the pool, one in use

    await sink.stopService()

    with pytest.raises(CancelledError):
        await in_flight
    await until(lambda: not proxied.fault.connections)


@pytest_twisted.ensureDeferred
async def test_signed_requests_verify_with_the_documented_receiver_check(
    server: Server, started: Callable[[WebhookSink], WebhookSink]
) -> None:
    example = load_receiver_example()
    sink = started(WebhookSink(server.url, reactor, secret=SECRET))
    await sink.deliver(FOURTEEN)

    [posted] = server.receiver.posted
    timestamp = posted.header("X-Teltotwist-Timestamp")
    signature = posted.header("X-Teltotwist-Signature")
    assert timestamp is not None and signature is not None
    assert abs(int(timestamp) - reactor.seconds()) < 5
    now = reactor.seconds()
    assert example.verify(SECRET, timestamp, signature, posted.body, now)
    assert not example.verify(b"another", timestamp, signature, posted.body, now)


@pytest_twisted.ensureDeferred
async def test_https_checks_the_certificate_against_the_trusted_authorities(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    started: Callable[[WebhookSink], WebhookSink],
) -> None:
    receiver = Receiver()
    key, cert = loopback_certificate(tmp_path)
    endpoint = serverFromString(
        reactor, f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    )
    listening: IListeningPort = await endpoint.listen(Site(receiver))
    url = f"https://127.0.0.1:{listening.getHost().port}/"  # type: ignore[attr-defined]
    once = WebhookSettings(max_attempts=1)
    try:
        untrusting = started(WebhookSink(url, reactor, settings=once))
        with pytest.raises(WebhookError, match="certificate verify failed"):
            await untrusting.deliver(ONE)
        assert receiver.posted == []

        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        await started(WebhookSink(url, reactor, settings=once)).deliver(ONE)
        assert len(receiver.posted) == 1
    finally:
        stopped = listening.stopListening()
        if stopped is not None:
            await stopped


# Faults between the sink and the server.


@pytest_twisted.ensureDeferred
async def test_refused_connections_fail_within_the_sink_timeout_and_then_recover(
    server: Server, proxied: Proxied, started: Callable[[WebhookSink], WebhookSink]
) -> None:
    patient = WebhookSettings(
        max_attempts=100, first_retry_delay=0.1, max_retry_delay=0.2
    )
    sink = started(WebhookSink(proxied.url, reactor, settings=patient))
    dispatcher = Dispatcher([sink], timeout=1.0, clock=reactor)
    proxied.fault.refusing = True

    began = reactor.seconds()
    with pytest.raises(DeliveryError, match=r"no answer within 1 s"):
        await dispatcher.deliver(ONE)
    assert reactor.seconds() - began < 1.5
    proxied.fault.refusing = False
    await sleep(0.5)  # a retry that outlived the timeout would arrive now
    assert server.receiver.posted == []

    await dispatcher.deliver(FOURTEEN)
    [posted] = server.receiver.posted
    assert len(posted.records) == 14


@pytest_twisted.ensureDeferred
async def test_the_sink_timeout_drops_the_request_in_flight_for_good(
    server: Server, started: Callable[[WebhookSink], WebhookSink]
) -> None:
    sink = started(WebhookSink(server.url, reactor, settings=FAST))
    dispatcher = Dispatcher([sink], timeout=0.3, clock=reactor)
    server.receiver.holding = True

    with pytest.raises(DeliveryError, match=r"no answer within 0\.3 s"):
        await dispatcher.deliver(ONE)
    server.receiver.holding = False
    await until(lambda: not server.receiver.held)  # the connection was dropped
    await sleep(0.5)  # longer than any retry delay of FAST

    assert len(server.receiver.posted) == 1


@pytest_twisted.ensureDeferred
async def test_refused_connections_exhaust_the_attempts_with_a_clear_reason(
    proxied: Proxied, started: Callable[[WebhookSink], WebhookSink]
) -> None:
    sink = started(WebhookSink(proxied.url, reactor, settings=FAST))
    proxied.fault.refusing = True

    with pytest.raises(WebhookError, match="no success in 5 attempts; the last: "):
        await sink.deliver(ONE)


@pytest_twisted.ensureDeferred
async def test_a_request_cut_mid_way_is_retried(
    server: Server, proxied: Proxied, started: Callable[[WebhookSink], WebhookSink]
) -> None:
    sink = started(WebhookSink(proxied.url, reactor, settings=FAST))
    server.receiver.holding = True
    delivery = sink.deliver(FOURTEEN)
    await until(lambda: len(server.receiver.held) == 1)

    server.receiver.holding = False
    proxied.fault.cut()
    await delivery

    first, retry = server.receiver.posted
    assert first.body == retry.body


@pytest_twisted.ensureDeferred
async def test_a_stalled_network_times_out_each_attempt_until_it_clears(
    server: Server, proxied: Proxied, started: Callable[[WebhookSink], WebhookSink]
) -> None:
    settings = attrs.evolve(FAST, request_timeout=0.2, max_attempts=100)
    sink = started(WebhookSink(proxied.url, reactor, settings=settings))
    proxied.fault.stalled = True
    delivery = sink.deliver(ONE)

    await sleep(0.7)
    assert not delivery.called
    proxied.fault.stalled = False
    await delivery

    assert len(server.receiver.posted) == 1


@pytest_twisted.ensureDeferred
async def test_an_answer_stalled_mid_body_times_out_and_is_retried(
    server: Server, started: Callable[[WebhookSink], WebhookSink]
) -> None:
    server.receiver.answers = [(0, b"")]
    settings = attrs.evolve(FAST, request_timeout=0.3)
    sink = started(WebhookSink(server.url, reactor, settings=settings))

    await sink.deliver(ONE)

    assert len(server.receiver.posted) == 2
    await until(lambda: not server.receiver.held)  # the stalled one was dropped


# End to end: a tracker, the gateway, the webhook.


@pytest_twisted.ensureDeferred
async def test_the_tracker_is_acked_only_once_the_webhook_accepts(
    server: Server,
) -> None:
    sink = WebhookSink(server.url, reactor, settings=FAST)
    endpoint = PortReportingEndpoint(
        serverFromString(reactor, "tcp:0:interface=127.0.0.1")
    )
    gateway = teltotwist.makeService(
        reactor, endpoint, [sink], limits=Limits(sink_timeout=5), drain_timeout=0.5
    )
    gateway.startService()
    try:
        port: int = (await endpoint.port).getHost().port  # type: ignore[attr-defined]
        server.receiver.answers = [(500, b"database down")] * 5
        refused = await send_packet(port)
        await refused.closed
        assert refused.received == b""  # no ACK after the login reply
        assert len(server.receiver.posted) == 5
        assert gateway.running and sink.running

        resent = await send_packet(port)
        assert await resent.read(4) == tcp_ack(1)
    finally:
        await gateway.stopService()

    ids = {posted.records[0]["id"] for posted in server.receiver.posted}
    assert len(server.receiver.posted) == 6
    assert ids == {ONE[0].id}
    assert not sink.running


async def send_packet(port: int) -> TrackerClient:
    """A tracker that logs in and sends the Codec 8 packet."""
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
    client: TrackerClient = await connectProtocol(endpoint, TrackerClient())
    client.send(LOGIN)
    assert await client.read(1) == b"\x01"
    client.send(CODEC8)
    return client


# docs/examples/webhook_receiver.py


def load_receiver_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("webhook_receiver", RECEIVER_EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@attrs.define
class ExampleReceiver:
    """The documentation's receiver, run as the documentation says."""

    process: subprocess.Popen[str]
    url: str

    def printed(self, count: int) -> list[str]:
        """The next *count* lines it printed (it prints before it answers)."""
        assert self.process.stdout is not None
        return [self.process.stdout.readline().rstrip("\n") for _ in range(count)]


def line_printed_for(item: TrackerRecord) -> str:
    return f"{item.id} {item.to_json()['timestamp']}"


@pytest.fixture
def example_receiver() -> Iterator[ExampleReceiver]:
    environment = {**os.environ, "TELTOTWIST_WEBHOOK_SECRET": SECRET.decode()}
    process = subprocess.Popen(
        [sys.executable, str(RECEIVER_EXAMPLE), "127.0.0.1", "0"],
        env=environment,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    try:
        assert process.stdout is not None
        listening = process.stdout.readline()
        assert listening.startswith("listening on http://127.0.0.1:"), listening
        yield ExampleReceiver(process, listening.split()[-1])
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest_twisted.ensureDeferred
async def test_the_example_receiver_stores_a_signed_delivery(
    example_receiver: ExampleReceiver,
    started: Callable[[WebhookSink], WebhookSink],
) -> None:
    sink = started(WebhookSink(example_receiver.url, reactor, secret=SECRET))

    await sink.deliver(FOURTEEN)
    await sink.deliver(ONE)

    assert example_receiver.printed(15) == [
        line_printed_for(item) for item in FOURTEEN + ONE
    ]


@implementer(IAgent)
class TamperingAgent:
    """An Agent that changes one byte of each request body on the way."""

    def __init__(self, inner: IAgent) -> None:
        self.inner = inner

    def request(
        self,
        method: bytes,
        uri: bytes,
        headers: Headers | None = None,
        bodyProducer: IBodyProducer | None = None,
    ) -> Deferred[IResponse]:
        assert bodyProducer is not None
        consumer = BodyCollector()
        bodyProducer.startProducing(consumer)
        tampered = consumer.body.replace(b'"speed":0', b'"speed":9', 1)
        assert tampered != consumer.body
        return self.inner.request(
            method, uri, headers, FileBodyProducer(BytesIO(tampered))
        )


@implementer(IConsumer)
class BodyCollector:
    def __init__(self) -> None:
        self.body = b""

    def write(self, data: bytes) -> None:
        self.body += data

    def registerProducer(self, producer: object, streaming: bool) -> None:
        raise NotImplementedError

    def unregisterProducer(self) -> None:
        raise NotImplementedError


@pytest_twisted.ensureDeferred
async def test_the_example_receiver_refuses_a_tampered_body(
    example_receiver: ExampleReceiver,
    started: Callable[[WebhookSink], WebhookSink],
) -> None:
    agent = TamperingAgent(Agent(reactor))
    sink = started(
        WebhookSink(example_receiver.url, reactor, secret=SECRET, agent=agent)
    )

    with pytest.raises(WebhookRejectedError, match=r"HTTP 401 .*bad or stale"):
        await sink.deliver(ONE)
    honest = started(WebhookSink(example_receiver.url, reactor, secret=SECRET))
    await honest.deliver(FOURTEEN[:1])
    assert example_receiver.printed(1) == [line_printed_for(FOURTEEN[0])]


def test_the_example_check_refuses_stale_and_malformed_timestamps() -> None:
    verify = load_receiver_example().verify
    body = b'[{"id":"x"}]'
    now = 1_795_251_600.0

    def signed(timestamp: str) -> str:
        return expected_signature(timestamp, body)

    assert verify(SECRET, "1795251600", signed("1795251600"), body, now)
    assert verify(SECRET, "1795251300", signed("1795251300"), body, now)
    assert not verify(SECRET, "1795251299", signed("1795251299"), body, now)
    assert not verify(SECRET, "1795251901", signed("1795251901"), body, now)
    assert not verify(SECRET, "1795251600", signed("1795251601"), body, now)
    assert not verify(SECRET, "", signed(""), body, now)
    fullwidth = "\uff11\uff17\uff19\uff15"  # digits, but not ASCII ones
    assert not verify(SECRET, fullwidth, signed("1795"), body, now)
