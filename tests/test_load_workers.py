"""The coordinator and its workers' conversation, without processes: one
start for all, given once every worker is ready."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import ensureDeferred
from twisted.internet.error import ProcessDone
from twisted.internet.interfaces import IProcessProtocol
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from teltotwist.load import LoadPlan, Summary
from teltotwist.load.workers import START_MARGIN, Coordinator, WorkerError


class FakeProcess:
    """What the coordinator can do to a worker process, remembered."""

    def __init__(self, protocol: IProcessProtocol) -> None:
        self.protocol = protocol
        self.stdin = b""
        self.stdin_closed = False
        self.signals: list[str] = []

    def write(self, data: bytes) -> None:
        self.stdin += data

    def closeStdin(self) -> None:
        self.stdin_closed = True

    def signalProcess(self, signal: str) -> None:
        self.signals.append(signal)

    def report(self, **message: Any) -> None:
        self.protocol.childDataReceived(1, json.dumps(message).encode() + b"\n")

    def exit(self) -> None:
        self.protocol.processEnded(Failure(ProcessDone(0)))  # type: ignore[no-untyped-call]


class FakeProcessReactor:
    def __init__(self) -> None:
        self.processes: list[FakeProcess] = []

    def spawnProcess(self, protocol: IProcessProtocol, *args: Any, **kw: Any) -> Any:
        process = FakeProcess(protocol)
        protocol.makeConnection(process)  # type: ignore[arg-type]
        self.processes.append(process)
        return process


def summary_of(devices: int) -> dict[str, Any]:
    return Summary(devices=devices, duration=5.0).to_json(histogram=True)


def test_every_worker_gets_the_same_start_once_all_are_ready() -> None:
    clock = Clock()
    clock.advance(1_795_000_000)
    reactor = FakeProcessReactor()
    plan = LoadPlan(devices=5, duration=5)
    coordinator = Coordinator(plan, 2, "tcp:127.0.0.1:1", reactor, clock)  # type: ignore[arg-type]
    running = ensureDeferred(coordinator.run())
    first, second = reactor.processes

    first.report(ready=True)
    clock.advance(3)  # the second builds its trackers for longer
    assert first.stdin == second.stdin == b""
    second.report(ready=True)

    starts = [json.loads(process.stdin) for process in reactor.processes]
    assert starts == [{"start_at": clock.seconds() + START_MARGIN}] * 2
    first.report(summary=summary_of(3))
    second.report(summary=summary_of(2))
    first.exit()
    second.exit()
    summary = running.result
    assert isinstance(summary, Summary)
    assert summary.devices == 5


def test_a_worker_that_ends_before_it_is_ready_ends_the_run() -> None:
    reactor = FakeProcessReactor()
    plan = LoadPlan(devices=5, duration=5)
    coordinator = Coordinator(plan, 2, "tcp:127.0.0.1:1", reactor, Clock())  # type: ignore[arg-type]
    running = ensureDeferred(coordinator.run())
    first, second = reactor.processes
    first.report(ready=True)

    second.exit()

    assert first.stdin == b""
    assert first.stdin_closed
    assert first.signals == ["TERM"]
    first.report(summary=summary_of(3))
    first.exit()
    failure = running.result
    running.addErrback(lambda _: None)
    assert isinstance(failure, Failure)
    assert failure.check(WorkerError)
    assert failure.getErrorMessage() == "a worker ended without a summary"
