"""Commands end to end: the real gateway on a loopback port, the virtual
tracker answering over TCP, and the command center's Python API; plus the
gateway's stop leaving nothing behind."""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import attrs
import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, serverFromString
from twisted.internet.interfaces import IListeningPort
from twisted.internet.task import deferLater
from twisted.internet.testing import MemoryReactorClock

import teltotwist
from teltotwist.codec import encode_frame, tcp_ack
from teltotwist.device import DeviceEvent, EventKind, TrackerSettings, VirtualTracker
from teltotwist.gateway.command_store import FILE_NAME
from teltotwist.gateway.commands import (
    Command,
    CommandCenter,
    CommandLimits,
    CommandStatus,
)
from teltotwist.gateway.items import CommandResult
from teltotwist.gateway.service import GatewayService
from teltotwist.testing import FakeTracker, RecordingSink
from tests.net import PortReportingEndpoint
from tests.vectors import by_id

IMEI = "356307042441013"
QUICK = (0.05, 0.1)
"""The virtual tracker's answer delay when the test is not about it."""


class Gateway:
    """A real gateway on a loopback port, with a state directory."""

    def __init__(self, state_dir: Path, limits: CommandLimits) -> None:
        self.state_dir = state_dir
        self.limits = limits
        self.sink = RecordingSink()
        self.service: GatewayService | None = None
        self.port = 0

    async def start(self) -> None:
        endpoint = PortReportingEndpoint(
            serverFromString(reactor, f"tcp:{self.port}:interface=127.0.0.1")
        )
        self.service = teltotwist.makeService(
            reactor,
            endpoint,
            [self.sink],
            drain_timeout=0.5,
            state_dir=self.state_dir,
            command_limits=self.limits,
        )
        self.service.startService()
        listening: IListeningPort = await endpoint.port
        self.port = listening.getHost().port  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self.service is not None and self.service.running:
            await self.service.stopService()

    @property
    def commands(self) -> CommandCenter:
        assert self.service is not None and self.service.factory.commands
        return self.service.factory.commands

    def results(self) -> list[dict[str, object]]:
        """The command objects the sink received as ``command_result``."""
        return [i.command for i in self.sink.items if isinstance(i, CommandResult)]


class Device:
    """A virtual tracker on the gateway's port, and everything it did."""

    def __init__(
        self,
        gateway: Gateway,
        answer_delay: tuple[float, float] = QUICK,
        imei: str = IMEI,
    ) -> None:
        self.events: list[DeviceEvent] = []
        self.tracker = VirtualTracker(
            TCP4ClientEndpoint(reactor, "127.0.0.1", gateway.port),
            reactor,
            TrackerSettings(
                imei, interval=60.0, answer_delay=answer_delay, backoff_initial=0.1
            ),
            observer=self.events.append,
            rng=random.Random(9),
        )
        self.tracker.start()

    def count(self, kind: EventKind) -> int:
        return sum(event.kind is kind for event in self.events)

    def read(self) -> bytes:
        """Every byte the tracker read from the gateway."""
        return b"".join(e.data for e in self.events if e.kind is EventKind.READ)


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = reactor.seconds() + timeout
    while not condition():
        if reactor.seconds() > deadline:
            pytest.fail("timed out waiting")
        await deferLater(reactor, 0.01, lambda: None)


async def outcome(gateway: Gateway, command: Command) -> Command:
    waiting = gateway.commands.outcome(command.id)
    waiting.addTimeout(15, reactor)
    return await waiting


GatewayMaker = Callable[..., Gateway]


@pytest_twisted.async_yield_fixture
async def make_gateway(tmp_path: Path) -> AsyncIterator[GatewayMaker]:
    """Makes gateways on one state directory (stopped at the end)."""
    made: list[Gateway] = []

    def make(**limits: float) -> Gateway:
        gateway = Gateway(tmp_path / "state", CommandLimits(**limits))  # type: ignore[arg-type]
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        await gateway.stop()


@pytest_twisted.async_yield_fixture
async def devices() -> AsyncIterator[list[Device]]:
    """Virtual trackers to stop at the end."""
    running: list[Device] = []
    yield running
    for device in running:
        await device.tracker.stop()


async def connected(
    gateway: Gateway, devices: list[Device], answer_delay: tuple[float, float] = QUICK
) -> Device:
    """Starts *gateway* and a virtual tracker; once its first packet was ACKed."""
    await gateway.start()
    device = Device(gateway, answer_delay)
    devices.append(device)
    await until(lambda: device.count(EventKind.ACKED) == 1)
    return device


@pytest_twisted.ensureDeferred
async def test_a_codec_12_getinfo_is_answered_and_its_result_reaches_the_sink(
    make_gateway: GatewayMaker, devices: list[Device]
) -> None:
    gateway = make_gateway()
    await connected(gateway, devices)

    command = gateway.commands.submit(IMEI, text="getinfo")
    answered = (await outcome(gateway, command)).to_json()

    assert answered["status"] == "answered"
    assert answered["response"].startswith("RTC:") and "SAT:" in answered["response"]
    assert answered["sent_at"] <= answered["answered_at"]
    await until(lambda: bool(gateway.results()))
    assert gateway.results() == [answered]


@pytest_twisted.ensureDeferred
async def test_a_codec_14_command_is_answered(
    make_gateway: GatewayMaker, devices: list[Device]
) -> None:
    gateway = make_gateway()
    await connected(gateway, devices)

    command = gateway.commands.submit(IMEI, text="getver", codec=14)
    answered = await outcome(gateway, command)

    assert answered.status is CommandStatus.ANSWERED
    assert f"IMEI:{IMEI}" in answered.to_json()["response"]


@pytest_twisted.ensureDeferred
async def test_a_codec_14_command_for_another_imei_is_not_executed(
    make_gateway: GatewayMaker, devices: list[Device]
) -> None:
    gateway = make_gateway()
    device = await connected(gateway, devices)
    # The tracker logged in as IMEI; from now on it takes itself for another
    # one, so the command addressed to IMEI is not its own.
    tracker = device.tracker
    tracker.settings = attrs.evolve(tracker.settings, imei="356307042441999")

    command = gateway.commands.submit(IMEI, text="getver", codec=14)
    done = await outcome(gateway, command)

    assert done.status is CommandStatus.NOT_EXECUTED
    assert done.to_json()["response"] == ""
    assert "IMEI does not match" in str(done.error)


@pytest_twisted.ensureDeferred
async def test_queued_then_delivered_at_the_next_login(
    make_gateway: GatewayMaker, devices: list[Device]
) -> None:
    gateway = make_gateway()
    await gateway.start()
    command = gateway.commands.submit(IMEI, text="getinfo", ttl=60)
    assert command.status is CommandStatus.QUEUED

    devices.append(Device(gateway))
    done = await outcome(gateway, command)

    assert done.status is CommandStatus.ANSWERED
    assert done.to_json()["response"].startswith("RTC:")


@pytest_twisted.ensureDeferred
async def test_queued_across_a_gateway_restart(
    make_gateway: GatewayMaker, devices: list[Device]
) -> None:
    before = make_gateway()
    await before.start()
    queued = before.commands.submit(IMEI, text="getver", ttl=60)
    await before.stop()

    after = make_gateway()
    await after.start()
    devices.append(Device(after))
    done = await outcome(after, after.commands.get(queued.id) or queued)

    assert done.id == queued.id
    assert done.status is CommandStatus.ANSWERED
    assert f"IMEI:{IMEI}" in done.to_json()["response"]


@pytest_twisted.ensureDeferred
async def test_a_queued_command_expires_when_the_tracker_does_not_come(
    make_gateway: GatewayMaker,
) -> None:
    gateway = make_gateway()
    await gateway.start()

    command = gateway.commands.submit(IMEI, text="getinfo", ttl=0.2)
    done = await outcome(gateway, command)

    assert done.status is CommandStatus.EXPIRED
    assert done.sent_at_ms is None
    await until(lambda: bool(gateway.results()))
    assert [r["status"] for r in gateway.results()] == ["expired"]


@pytest_twisted.ensureDeferred
async def test_a_slow_answer_times_out_and_is_not_taken_for_the_next_commands(
    make_gateway: GatewayMaker, devices: list[Device]
) -> None:
    gateway = make_gateway(answer_timeout=0.5, late_answer_grace=3.0)
    device = await connected(gateway, devices, answer_delay=(0.8, 0.8))
    slow = gateway.commands.submit(IMEI, text="getinfo")
    await until(lambda: device.read().endswith(encode_frame(slow.frame())))
    tracker = device.tracker
    tracker.settings = attrs.evolve(tracker.settings, answer_delay=QUICK)

    following = gateway.commands.submit(IMEI, text="getver")
    timed_out = await outcome(gateway, slow)
    assert timed_out.status is CommandStatus.TIMED_OUT
    answered = await outcome(gateway, following)

    assert timed_out.response is None
    assert answered.status is CommandStatus.ANSWERED
    assert f"IMEI:{IMEI}" in answered.to_json()["response"]


@pytest_twisted.ensureDeferred
async def test_the_connection_lost_after_sending_fails_the_command(
    make_gateway: GatewayMaker, devices: list[Device]
) -> None:
    gateway = make_gateway()
    device = await connected(gateway, devices, answer_delay=(5.0, 5.0))

    command = gateway.commands.submit(IMEI, text="getinfo", ttl=60)
    await until(lambda: command.status is CommandStatus.SENT)
    await device.tracker.stop()
    done = await outcome(gateway, command)

    assert done.status is CommandStatus.FAILED
    assert "not sent again" in str(done.error)


@pytest_twisted.ensureDeferred
async def test_two_commands_are_answered_in_order(
    make_gateway: GatewayMaker, devices: list[Device]
) -> None:
    gateway = make_gateway()
    await connected(gateway, devices)

    first = gateway.commands.submit(IMEI, text="getinfo")
    second = gateway.commands.submit(IMEI, text="getver")
    await outcome(gateway, second)

    assert (first.status, second.status) == (CommandStatus.ANSWERED,) * 2
    assert first.to_json()["response"].startswith("RTC:")
    assert second.to_json()["response"].startswith("Ver:")
    assert first.answered_at_ms is not None and second.sent_at_ms is not None
    assert first.answered_at_ms <= second.sent_at_ms


@pytest_twisted.ensureDeferred
async def test_a_command_while_a_packet_is_in_flight_waits_for_its_ack(
    make_gateway: GatewayMaker, devices: list[Device]
) -> None:
    gateway = make_gateway()
    await gateway.start()
    gateway.sink.hold()
    device = Device(gateway)
    devices.append(device)
    await until(lambda: bool(gateway.sink.pending))

    command = gateway.commands.submit(IMEI, text="getinfo")
    await deferLater(reactor, 0.2, lambda: None)
    assert command.status is CommandStatus.QUEUED
    assert device.read() == b"\x01"
    gateway.sink.release()
    gateway.sink.accept()
    done = await outcome(gateway, command)

    assert done.status is CommandStatus.ANSWERED
    assert device.read()[:5] == b"\x01" + tcp_ack(1)
    assert device.count(EventKind.ACKED) == 1


def test_stopping_the_gateway_leaves_nothing_behind(tmp_path: Path) -> None:
    clock = MemoryReactorClock()
    sink = RecordingSink()
    state_dir = tmp_path / "state"

    def start() -> GatewayService:
        service = teltotwist.makeService(
            clock, serverFromString(clock, "tcp:0"), [sink], state_dir=state_dir
        )
        service.startService()
        return service

    service = start()
    assert service.factory.commands is not None
    tracker = FakeTracker(service.factory, IMEI)
    tracker.login()
    tracker.send(by_id("wiki-c8-tcp-1").data)
    sent = service.factory.commands.submit(IMEI, text="getinfo")
    queued = service.factory.commands.submit(IMEI, text="getver", ttl=3600)
    assert sent.status is CommandStatus.SENT

    stopped = service.stopService()

    assert stopped.called
    assert clock.getDelayedCalls() == []
    assert not tracker.connected
    assert str((state_dir / FILE_NAME).resolve()) not in _open_files()
    assert [
        r.command["status"] for r in sink.items if isinstance(r, CommandResult)
    ] == ["failed"]
    restarted = start()
    again = restarted.factory.commands
    assert again is not None
    assert [(c.id, c.status) for c in again.recent(IMEI)] == [
        (queued.id, CommandStatus.QUEUED),
        (sent.id, CommandStatus.FAILED),
    ]
    restarted.stopService()


def _open_files() -> list[str]:
    """The paths of this process's open file descriptors."""
    fds = Path("/proc/self/fd")
    return [os.path.realpath(fd) for fd in fds.iterdir()]
