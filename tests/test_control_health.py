"""``GET /readyz`` over real HTTP, in front of a gateway whose broker sinks
come from ``--sink``, against the machine's real RabbitMQ and Mosquitto:
while a sink cannot connect, the reason says why and when it retries, never
with the password; once the broker can be reached, the gateway is ready."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted
import treq
from twisted.application.service import IService, IServiceCollection
from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.interfaces import IListeningPort
from twisted.internet.task import deferLater
from twisted.protocols.portforward import ProxyFactory

from teltotwist.control.auth import TOKEN_VARIABLE
from teltotwist.control.service import ApiService
from teltotwist.gateway.service import GatewayService
from teltotwist.tap import Options, makeService
from tests.services import MOSQUITTO, RABBITMQ, free_port, own_mosquitto, require

LOOPBACK = "tcp:0:interface=127.0.0.1"
RETRYING = r"\(retrying in (\d+) s\)"


@attrs.define
class Gateway:
    """A gateway with its API, started from command-line arguments."""

    root: IService
    readyz: str

    async def ready(self) -> tuple[int, dict[str, Any], bytes]:
        """The answer to ``GET /readyz``: its code, its JSON, its bytes."""
        response = await treq.get(self.readyz)
        body: bytes = await response.content()
        return response.code, json.loads(body), body

    async def reason_matching(self, pattern: str) -> tuple[re.Match[str], bytes]:
        """Asks ``/readyz`` until its one reason matches *pattern* (10 s at
        most); the match and the answer's bytes."""
        deadline = time.monotonic() + 10
        while True:
            code, answer, body = await self.ready()
            if code == 503 and len(answer["reasons"]) == 1:
                found = re.fullmatch(pattern, answer["reasons"][0])
                if found:
                    return found, body
            assert time.monotonic() < deadline, f"/readyz says {answer}"
            await deferLater(reactor, 0.1, lambda: None)

    async def until_ready(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (answer := await self.ready())[0] != 200:
            assert time.monotonic() < deadline, f"/readyz says {answer[1]}"
            await deferLater(reactor, 0.1, lambda: None)
        assert answer[1] == {"status": "ready"}


def services(root: IService) -> list[IService]:
    return list(IServiceCollection(root))


@pytest_twisted.async_yield_fixture
async def gateways(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[Gateway]]:
    """Where a test starts gateways; each is stopped after the test."""
    monkeypatch.setenv(TOKEN_VARIABLE, "a-token-the-probes-need-not-give")
    for variable in ("TELTOTWIST_AMQP_PASSWORD", "TELTOTWIST_MQTT_PASSWORD"):
        monkeypatch.delenv(variable, raising=False)
    started: list[Gateway] = []
    yield started
    for gateway in started:
        await gateway.root.stopService()


async def start(gateways: list[Gateway], sink: str) -> Gateway:
    """A gateway with the API and the one sink *sink* (``KIND:ARG``), as
    twistd makes it; it listens for trackers at once, ready sink or not."""
    options = Options()
    options.parseOptions(
        [
            *("--port", LOOPBACK, "--api", LOOPBACK),
            *("--sink-ready-timeout", "0.1", "--sink", sink),
        ]
    )
    root = makeService(options)
    [gateway] = [s for s in services(root) if isinstance(s, GatewayService)]
    [api] = [s for s in services(root) if isinstance(s, ApiService)]
    root.startService()
    started = Gateway(root, "")
    gateways.append(started)
    address = await api.whenListening()
    assert isinstance(address, IPv4Address)
    started.readyz = f"http://127.0.0.1:{address.port}/readyz"
    await gateway.whenListening()
    return started


@pytest_twisted.async_yield_fixture
async def forwarders() -> AsyncIterator[list[IListeningPort]]:
    """Where a test opens forwarders; each is closed after the test."""
    opened: list[IListeningPort] = []
    yield opened
    for port in opened:
        stopped = port.stopListening()
        if stopped is not None:
            await stopped


async def forward(
    opened: list[IListeningPort], port: int, broker: tuple[str, int]
) -> None:
    """The broker comes up on *port*: connections there go on to *broker*."""
    endpoint = TCP4ServerEndpoint(reactor, port, interface="127.0.0.1")
    opened.append(await endpoint.listen(ProxyFactory(*broker)))


@pytest_twisted.ensureDeferred
async def test_amqp_says_the_broker_refused_the_connection_until_it_listens(
    gateways: list[Gateway],
    forwarders: list[IListeningPort],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rabbitmq = require("RabbitMQ", RABBITMQ)
    monkeypatch.setenv("TELTOTWIST_AMQP_PASSWORD", "guest")
    port = free_port()
    url = f"amqp://guest@127.0.0.1:{port}/?exchange=amq.topic"
    gateway = await start(gateways, f"amqp:{url}&declare=false")

    await gateway.reason_matching(
        re.escape(
            f"sink amqp:{url} not ready: not connected to {url} (reconnecting "
            "in the background): the last attempt failed "
        )
        + RETRYING
        + re.escape(": Connection was refused by other side: 111: Connection refused.")
    )
    await forward(forwarders, port, rabbitmq)

    await gateway.until_ready(35)


@pytest_twisted.ensureDeferred
async def test_amqp_gives_the_brokers_refusal_of_a_password_and_not_the_password(
    gateways: list[Gateway],
) -> None:
    host, port = require("RabbitMQ", RABBITMQ)
    password = "not-guests-password-7f3a"
    gateway = await start(
        gateways,
        f"amqp:amqp://guest:{password}@{host}:{port}/?exchange=amq.topic&declare=false",
    )

    _, body = await gateway.reason_matching(
        re.escape(
            f"sink amqp:amqp://guest@{host}:{port}/?exchange=amq.topic not ready: "
            f"not connected to amqp://guest@{host}:{port}/?exchange=amq.topic "
            "(reconnecting in the background): the last attempt failed "
        )
        + RETRYING
        + re.escape(
            ": the broker closed the connection: 403 ACCESS_REFUSED - Login was "
            "refused using authentication mechanism PLAIN."
        )
        + ".*"
    )

    assert password.encode() not in body


@pytest_twisted.ensureDeferred
async def test_mqtt_says_the_connection_was_refused_and_retries_when_it_says(
    gateways: list[Gateway], forwarders: list[IListeningPort]
) -> None:
    mosquitto = require("Mosquitto", MOSQUITTO)
    port = free_port()
    gateway = await start(gateways, f"mqtt:mqtt://127.0.0.1:{port}")

    found, _ = await gateway.reason_matching(
        re.escape(
            f"sink mqtt://127.0.0.1:{port} not ready: not connected to the MQTT "
            f"broker at 127.0.0.1:{port} (reconnecting in the background): "
            "cannot connect "
        )
        + RETRYING
        + ": Connection refused"
    )
    promised = int(found[1])
    await forward(forwarders, port, mosquitto)

    await gateway.until_ready(promised + 1)


@pytest_twisted.ensureDeferred
async def test_mqtt_says_the_broker_refused_the_connection_in_its_words(
    gateways: list[Gateway], tmp_path: Path
) -> None:
    with own_mosquitto(tmp_path, "allow_anonymous false") as port:
        gateway = await start(gateways, f"mqtt:mqtt://127.0.0.1:{port}")

        await gateway.reason_matching(
            re.escape(
                f"sink mqtt://127.0.0.1:{port} not ready: not connected to the "
                f"MQTT broker at 127.0.0.1:{port} (reconnecting in the "
                "background): the broker refused the connection "
            )
            + RETRYING
            + ": Not authorized"
        )
