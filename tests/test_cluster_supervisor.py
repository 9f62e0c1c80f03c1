"""The parent of ``--workers`` with real processes and a controlled clock:
a worker that keeps ending is started again later and later, then given up
on unless it was up (whatever its cluster bus); what a worker writes lands
in the parent's log."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import Clock, deferLater
from twisted.internet.threads import deferToThread
from twisted.logger import LogEvent, LogLevel, capturedLogs, formatEvent

from teltotwist.cluster.link import LinkProtocol
from teltotwist.cluster.listeners import BoundSockets, bind_sockets
from teltotwist.cluster.supervisor import (
    GIVE_UP_AFTER,
    LONGEST_RESTART_DELAY,
    WorkerSupervisor,
    worker_command,
)
from teltotwist.cluster.worker_log import LONGEST_LINE
from teltotwist.codec import encode_login, tcp_ack
from tests.amqp_cluster import delete_exchange, fresh_prefix
from tests.net import receive_exactly
from tests.services import RABBITMQ, require
from tests.vectors import by_id

FAILING = [sys.executable, "-c", "raise SystemExit(3)"]


class _ClockedReactor:
    """The real reactor for processes and sockets; *clock* for time."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def seconds(self) -> float:
        return self.clock.seconds()

    def callLater(self, delay: float, call: Callable[..., Any], *args: Any) -> Any:
        return self.clock.callLater(delay, call, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(reactor, name)


async def next_delay(
    supervisor: WorkerSupervisor, clock: Clock, seconds: float = 60
) -> float:
    """Wait for the worker to end; the delay before it starts again."""
    deadline = time.monotonic() + seconds
    while not clock.getDelayedCalls():
        assert time.monotonic() < deadline, "the worker was not started again"
        await deferLater(reactor, 0.02, lambda: None)
    (restart,) = clock.getDelayedCalls()
    return restart.getTime() - clock.seconds()


def bind() -> BoundSockets:
    """A real tracker port on the loopback interface."""
    return bind_sockets("tcp:0:interface=127.0.0.1", None, "", None, workers=1)


def supervisor_of(clock: Clock, command: list[str]) -> WorkerSupervisor:
    """One worker running *command*, on a real port and *clock*."""
    return WorkerSupervisor(
        _ClockedReactor(clock),
        1,
        bind,
        lambda number, sockets: command,
        environment={},
        link=lambda number: LinkProtocol(),
        stop_timeout=10,
    )


@pytest_twisted.ensureDeferred
async def test_a_worker_that_keeps_failing_waits_longer_then_is_given_up() -> None:
    clock = Clock()
    supervisor = supervisor_of(clock, FAILING)
    given_up = supervisor.whenGivenUp()
    supervisor.startService()
    try:
        delays = []
        for _ in range(4):
            delays.append(await next_delay(supervisor, clock))
            clock.advance(delays[-1])  # started again
        assert delays == [1, 2, 4, 8]

        # This one runs a minute before it ends: the count starts afresh.
        clock.advance(60)
        delays = []
        for _ in range(5):
            delays.append(await next_delay(supervisor, clock))
            clock.advance(delays[-1])
        assert delays == [1, 1, 2, 4, 8]

        with capturedLogs() as events:
            assert await given_up == 1
        assert not clock.getDelayedCalls()
        assert supervisor.pids == {}
        (error,) = [event for event in events if event["log_level"] == LogLevel.error]
        message = formatEvent(error)
        assert message.startswith("Worker 1 cannot start: it ended 5 times in a row")
        assert message.count("exit status 3 after 0.0 s") == 5
    finally:
        await supervisor.stopService()


async def wait_for_ups(
    events: Sequence[LogEvent], count: int, seconds: float = 60
) -> None:
    """Wait until the parent logged *count* times that its worker is up."""
    deadline = time.monotonic() + seconds
    while (ups := sum(formatEvent(e).endswith(" is up") for e in events)) < count:
        assert time.monotonic() < deadline, f"up {ups} times, not {count}"
        await deferLater(reactor, 0.05, lambda: None)


def acked_after_login(port: int) -> bytes:
    """What a tracker logging in and sending a packet gets back."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as tracker:
        tracker.sendall(encode_login("356307042441013"))
        login = receive_exactly(tracker, 1)
        tracker.sendall(by_id("wiki-c8-tcp-1").data)
        return login + receive_exactly(tracker, 4)


async def killed_again_and_again(tmp_path: Path, *options: str) -> list[str]:
    """A real worker with *options*, SIGKILLed each time it is up, more
    often than a worker that cannot start may end, is started again each
    time, the delay doubling up to its longest, and serves trackers after;
    the lines logged meanwhile."""
    clock = Clock()
    arguments = [
        "--port",
        "tcp:0:interface=127.0.0.1",
        "--sink",
        f"file:{tmp_path / 'records.jsonl'}",
        "--state-dir",
        str(tmp_path / "state"),
        *options,
    ]
    supervisor = WorkerSupervisor(
        _ClockedReactor(clock),
        1,
        bind,
        lambda number, sockets: worker_command(reactor, arguments, number, sockets),
        environment={},
        link=lambda number: LinkProtocol(),
        stop_timeout=10,
    )
    given_up = supervisor.whenGivenUp()
    with capturedLogs() as events:
        supervisor.startService()
        try:
            delays = []
            for kills in range(1, GIVE_UP_AFTER + 2):
                await wait_for_ups(events, kills)
                os.kill(supervisor.pids[1], signal.SIGKILL)
                delays.append(await next_delay(supervisor, clock))
                clock.advance(delays[-1])  # started again
            assert delays == [1, 2, 4, 8, 16, LONGEST_RESTART_DELAY]
            await wait_for_ups(events, GIVE_UP_AFTER + 2)

            assert not given_up.called
            assert supervisor.running
            assert supervisor.sockets is not None
            port = supervisor.sockets.tracker.port
            acked = await deferToThread(acked_after_login, port)
            assert acked == b"\x01" + tcp_ack(1)
        finally:
            await supervisor.stopService()
    return [formatEvent(event) for event in events]


@pytest_twisted.ensureDeferred
async def test_a_worker_that_was_up_is_started_again_however_often_it_is_killed(
    tmp_path: Path,
) -> None:
    await killed_again_and_again(tmp_path)


@pytest_twisted.ensureDeferred
async def test_a_worker_on_rabbitmq_that_was_up_is_started_again_when_killed(
    tmp_path: Path,
) -> None:
    require("RabbitMQ", RABBITMQ)
    prefix = fresh_prefix()
    host, port = RABBITMQ
    cluster = f"amqp://guest:guest@{host}:{port}/%2F?prefix={prefix}"
    try:
        lines = await killed_again_and_again(tmp_path, "--cluster", cluster)
    finally:
        await delete_exchange(prefix)
    # The workers were members of the cluster on RabbitMQ.
    hellos = [line for line in lines if line.startswith("Cluster: member.hello")]
    assert hellos
    assert all(line.endswith("/w1") for line in hellos)


CHATTY = [
    sys.executable,
    "-c",
    "import sys\n"
    "print('[w1 teltotwist.example#error] a line as a worker logs it')\n"
    "print('plain', 'output', flush=True)\n"
    f"sys.stderr.write('to stderr\\n' + 'x' * (2 * {LONGEST_LINE} + 10))\n",
]
"""A worker that writes lines to its standard output and error, the last a
long one it ends without a newline just before it exits."""


@pytest_twisted.ensureDeferred
async def test_what_a_worker_writes_is_logged_by_its_parent() -> None:
    clock = Clock()
    supervisor = supervisor_of(clock, CHATTY)
    with capturedLogs() as events:
        supervisor.startService()
        try:
            await next_delay(supervisor, clock)
        finally:
            await supervisor.stopService()

    relayed = [
        (event["log_system"], event["log_level"], formatEvent(event))
        for event in events
        if "log_system" in event
    ]
    assert relayed == [
        (
            "w1 teltotwist.example#error",
            LogLevel.error,
            "a line as a worker logs it",
        ),
        ("w1", LogLevel.info, "plain output"),
        ("w1 stderr", LogLevel.warn, "to stderr"),
        ("w1 stderr", LogLevel.warn, "x" * LONGEST_LINE),
        ("w1 stderr", LogLevel.warn, "x" * LONGEST_LINE),
        ("w1 stderr", LogLevel.warn, "x" * 10),
    ]
    # Every line came before the worker's end was told.
    assert "ended after" in formatEvent(events[-1])
