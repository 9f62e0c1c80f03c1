"""The parent of ``--workers`` with real processes and a controlled clock:
a worker that keeps ending is started again later and later, then given up
on; what a worker writes lands in the parent's log."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import Clock, deferLater
from twisted.logger import LogLevel, capturedLogs, formatEvent

from teltotwist.cluster.link import LinkProtocol, OneProtocol
from teltotwist.cluster.listeners import BoundSockets, bind_sockets
from teltotwist.cluster.supervisor import WorkerSupervisor
from teltotwist.cluster.worker_log import LONGEST_LINE

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


async def next_delay(supervisor: WorkerSupervisor, clock: Clock) -> float:
    """Wait for the worker to end; the delay before it starts again."""
    while not clock.getDelayedCalls():
        await deferLater(reactor, 0.02, lambda: None)
    (restart,) = clock.getDelayedCalls()
    return restart.getTime() - clock.seconds()


def supervisor_of(clock: Clock, command: list[str]) -> WorkerSupervisor:
    """One worker running *command*, on a real port and *clock*."""

    def bind() -> BoundSockets:
        return bind_sockets("tcp:0:interface=127.0.0.1", None, "", None)

    return WorkerSupervisor(
        _ClockedReactor(clock),
        1,
        bind,
        lambda number, sockets: command,
        environment={},
        link=lambda number: OneProtocol(LinkProtocol()),
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
