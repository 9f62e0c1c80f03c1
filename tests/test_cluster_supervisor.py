"""The parent of ``--workers`` with real processes and a controlled clock:
a worker that keeps ending is started again later and later."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import Clock, deferLater

from teltotwist.cluster.link import LinkProtocol, OneProtocol
from teltotwist.cluster.listeners import BoundSockets, bind_sockets
from teltotwist.cluster.supervisor import WorkerSupervisor

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


@pytest_twisted.ensureDeferred
async def test_a_worker_that_keeps_ending_waits_longer_each_time() -> None:
    clock = Clock()

    def bind() -> BoundSockets:
        return bind_sockets("tcp:0:interface=127.0.0.1", None, "", None)

    supervisor = WorkerSupervisor(
        _ClockedReactor(clock),
        1,
        bind,
        lambda number, sockets: FAILING,
        environment={},
        link=lambda number: OneProtocol(LinkProtocol()),
        stop_timeout=10,
    )
    supervisor.startService()
    try:
        delays = []
        for _ in range(7):
            delays.append(await next_delay(supervisor, clock))
            clock.advance(delays[-1])  # started again
        assert delays == [1, 2, 4, 8, 16, 30, 30]

        # This one runs a minute before it ends: the next wait is short.
        clock.advance(60)
        assert await next_delay(supervisor, clock) == 1
    finally:
        await supervisor.stopService()
