"""A real gateway with its HTTP API (built by ``tap.makeService``) and
virtual trackers on loopback, for the tests of commands over HTTP."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import pytest
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.task import deferLater

from teltotwist import tap
from teltotwist.control.auth import TOKEN_VARIABLE
from teltotwist.device import TrackerSettings, VirtualTracker
from teltotwist.gateway.commands import CommandLimits
from teltotwist.gateway.service import makeService
from tests.net import PortReportingEndpoint
from tests.test_control_api import (
    IMEI,
    LOOPBACK,
    TOKEN,
    Api,
    body_as_documented,
    options,
    start,
)
from tests.test_device_gateway import until

COMMANDS = "/v1/trackers/{imei}/commands"
COMMAND = "/v1/commands/{id}"


def virtual_tracker(
    port: int, answer_delay: tuple[float, float] = (0, 0)
) -> VirtualTracker:
    """A started virtual tracker with :data:`IMEI` for the gateway on *port*:
    it logs in, sends a packet every 0.3 s, answers commands after
    *answer_delay* and reconnects within 0.1 s at first."""
    tracker = VirtualTracker(
        TCP4ClientEndpoint(reactor, "127.0.0.1", port),
        reactor,
        TrackerSettings(
            IMEI, interval=0.3, answer_delay=answer_delay, backoff_initial=0.1
        ),
        rng=random.Random(9),
    )
    tracker.start()
    return tracker


@attrs.define
class Gateway:
    """The running gateway, its API, and the port trackers connect to."""

    api: Api
    port: int
    trackers: list[VirtualTracker] = attrs.Factory(list)

    def tracker(self, answer_delay: tuple[float, float] = (0, 0)) -> VirtualTracker:
        """A :func:`virtual_tracker`, stopped with the gateway."""
        tracker = virtual_tracker(self.port, answer_delay)
        self.trackers.append(tracker)
        return tracker

    async def connected(
        self, answer_delay: tuple[float, float] = (0, 0)
    ) -> VirtualTracker:
        """A tracker, once the gateway holds it."""
        tracker = self.tracker(answer_delay)
        await until(lambda: self.api.gateway.registry.get(IMEI) is not None)
        return tracker

    def send(self, body: object, imei: str = IMEI, **kwargs: Any) -> Any:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.api.request("POST", COMMANDS.format(imei=imei), data=data, **kwargs)

    async def command(self, command_id: str) -> Any:
        """``GET /v1/commands/{id}``: the command object (it must exist)."""
        response = await self.api.get(COMMAND.format(id=command_id))
        assert response.code == 200
        return await documented(response, COMMAND)

    async def commands(self) -> Any:
        """``GET /v1/trackers/{imei}/commands``: :data:`IMEI`'s commands."""
        response = await self.api.get(COMMANDS.format(imei=IMEI))
        assert response.code == 200
        return (await documented(response, COMMANDS))["commands"]


async def running_gateway(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    *arguments: str,
    command_limits: CommandLimits | None = None,
) -> AsyncIterator[Gateway]:
    """A gateway with its API and ``--state-dir`` *tmp_path* (plus the options
    *arguments*), stopped with its trackers after the yield."""
    monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
    if command_limits is not None:
        monkeypatch.setattr(
            tap, "makeGateway", partial(makeService, command_limits=command_limits)
        )
    parsed = options("--api", LOOPBACK, "--state-dir", str(tmp_path), *arguments)
    endpoint = parsed["endpoint"] = PortReportingEndpoint(parsed["endpoint"])
    api = await start(parsed)
    port = (await endpoint.port).getHost().port  # type: ignore[attr-defined]
    running = Gateway(api, port)
    yield running
    for tracker in running.trackers:
        await tracker.stop()
    await api.root.stopService()


async def documented(response: Any, path: str, method: str = "get") -> Any:
    return await body_as_documented(response, path, method)


async def polled(
    gateway: Gateway, path: str, documented_as: str, done: Callable[[Any], bool]
) -> Any:
    """``GET`` *path* (*documented_as* in the OpenAPI document) every 20 ms
    until its body is *done*; that body."""
    deadline = reactor.seconds() + 10
    while reactor.seconds() < deadline:
        response = await gateway.api.get(path)
        body = await documented(response, documented_as)
        if done(body):
            return body
        await deferLater(reactor, 0.02, lambda: None)
    pytest.fail(f"GET {path} never gave what was awaited")


async def settled(gateway: Gateway, command_id: str) -> Any:
    """The command object once its status is final."""
    return await polled(
        gateway,
        COMMAND.format(id=command_id),
        COMMAND,
        lambda body: body["status"] not in {"queued", "sent"},
    )
