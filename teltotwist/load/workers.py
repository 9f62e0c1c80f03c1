# -*- test-case-name: tests.test_load_cli -*-
"""A load spread over worker processes, one line of JSON at a time.

A worker (``teltotwist load --worker``) runs its share of the trackers and
writes ``{"progress": ...}`` every second and ``{"summary": ...}`` (with the
raw latency histogram) at the end, each on one line of its stdout. The
coordinator adds up the progress and merges the summaries.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from contextlib import suppress
from typing import Any, TextIO

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.error import ProcessDone, ProcessExitedAlready
from twisted.internet.interfaces import IReactorProcess, IReactorTime
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from teltotwist.load.plan import LoadPlan
from teltotwist.load.progress import Snapshot
from teltotwist.load.summary import Summary

PERIOD = 1.0
"""Seconds between a worker's progress reports."""


def worker_command(plan: LoadPlan, server: str) -> list[str]:
    """The command line of a worker running *plan* against *server*."""
    return [
        sys.executable,
        "-m",
        "teltotwist",
        "load",
        "--worker",
        f"--server={server}",
        f"--devices={plan.devices}",
        f"--duration={plan.duration!r}",
        f"--interval={plan.interval!r}",
        f"--records-per-packet={plan.records_per_packet}",
        f"--imei-base={plan.imei_base}",
        f"--ramp-up={plan.ramp_up!r}",
        f"--ack-timeout={plan.ack_timeout!r}",
        f"--codec={plan.codec.label}",
    ]


class JsonProgress:
    """A worker's progress: ``{"progress": ...}`` lines on *stream*, every
    second."""

    def __init__(
        self, source: Callable[[], Snapshot], clock: IReactorTime, stream: TextIO
    ) -> None:
        self._source = source
        self._stream = stream
        self._loop = LoopingCall(self._tick)
        self._loop.clock = clock

    def start(self) -> None:
        """Start writing."""
        self._loop.start(PERIOD, now=False)

    def stop(self) -> None:
        """Stop writing."""
        if self._loop.running:
            self._loop.stop()

    def _tick(self) -> None:
        self._stream.write(json.dumps({"progress": self._source().to_json()}) + "\n")
        self._stream.flush()


class WorkerError(Exception):
    """A worker ended without a summary."""


class _Worker(ProcessProtocol):
    """One worker process: its latest progress and its summary."""

    def __init__(self, devices: int) -> None:
        self.snapshot = Snapshot(devices=devices)
        self.summary: Summary | None = None
        self.ended: Deferred[Summary] = Deferred()
        self._buffer = b""

    def outReceived(self, data: bytes) -> None:
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        for line in lines:
            report: dict[str, Any] = json.loads(line)
            if "progress" in report:
                self.snapshot = Snapshot.from_json(report["progress"])
            else:
                self.summary = Summary.from_json(report["summary"])

    def processEnded(self, reason: Failure) -> None:
        if self.summary is not None:
            self.ended.callback(self.summary)
            return
        status = "" if reason.check(ProcessDone) else f": {reason.getErrorMessage()}"
        self.ended.errback(WorkerError(f"a worker ended without a summary{status}"))


class Coordinator:
    """Runs *plan* split over *processes* workers."""

    def __init__(
        self, plan: LoadPlan, processes: int, server: str, reactor: IReactorProcess
    ) -> None:
        self._plans = plan.split(processes)
        self._server = server
        self._reactor = reactor
        self._workers: list[_Worker] = []

    async def run(self) -> Summary:
        """Start the workers; their merged summary once all have ended."""
        for plan in self._plans:
            worker = _Worker(plan.devices)
            command = worker_command(plan, self._server)
            self._reactor.spawnProcess(
                worker, command[0], command, env=None, childFDs={1: "r", 2: 2}
            )
            self._workers.append(worker)
        results = await DeferredList(
            [worker.ended for worker in self._workers], consumeErrors=True
        )
        for ok, result in results:
            if not ok:
                assert isinstance(result, Failure)
                raise WorkerError(result.getErrorMessage())
        return Summary.merge(result for _, result in results)

    def snapshot(self) -> Snapshot:
        """The workers' latest progress, added up."""
        return Snapshot.total(worker.snapshot for worker in self._workers)

    def end(self) -> None:
        """Ask every running worker to end its run now."""
        for worker in self._workers:
            if worker.transport is not None and not worker.ended.called:
                with suppress(ProcessExitedAlready):
                    worker.transport.signalProcess("TERM")
