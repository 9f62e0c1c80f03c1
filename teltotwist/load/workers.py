# -*- test-case-name: tests.test_load_cli,tests.test_load_workers -*-
"""A load spread over worker processes, one line of JSON at a time.

A worker (``teltotwist load --worker``) builds its share of the trackers,
writes ``{"ready": true}`` and waits for ``{"start_at": SECONDS}`` on its
stdin: the wall-clock time of the first start, the same for every worker, so
that their ramp-ups and bursts coincide. Then it runs and writes
``{"progress": ...}`` every second and ``{"summary": ...}`` (with the raw
latency histogram) at the end, each on one line of its stdout. The
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
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure

from teltotwist.load.fleet import Fleet
from teltotwist.load.plan import LoadPlan, Pace
from teltotwist.load.progress import Snapshot
from teltotwist.load.summary import Summary

PERIOD = 1.0
"""Seconds between a worker's progress reports."""
START_MARGIN = 0.5
"""Seconds from the moment every worker is ready to the shared start: time
for the start to reach them all."""


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
        *_pace_options(plan),
        f"--records-per-packet={plan.records_per_packet}",
        f"--imei-base={plan.imei_base}",
        f"--ramp-up={plan.ramp_up!r}",
        f"--ack-timeout={plan.ack_timeout!r}",
        f"--codec={plan.codec.label}",
        f"--model={plan.model}",
    ]


def _pace_options(plan: LoadPlan) -> list[str]:
    if plan.pace is Pace.FLAT_OUT:
        return ["--flat-out"]
    interval = f"--interval={plan.interval!r}"
    return [interval, "--burst"] if plan.pace is Pace.BURST else [interval]


async def run_worker(fleet: Fleet, stdin: TextIO, stdout: TextIO) -> Summary:
    """Run *fleet* as a worker: say it is ready on *stdout*, start when
    *stdin* says; end at once if *stdin* closes first (the coordinator
    ended)."""
    stdout.write(json.dumps({"ready": True}) + "\n")
    stdout.flush()
    line = await deferToThread(stdin.readline)
    if not line:
        fleet.end()
        return await fleet.run()
    return await fleet.run(float(json.loads(line)["start_at"]))


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
        self.waiting: Deferred[None] = Deferred()
        """Fires once the worker waits for its start, or has ended."""
        self.ended: Deferred[Summary] = Deferred()
        self._buffer = b""

    def outReceived(self, data: bytes) -> None:
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        for line in lines:
            report: dict[str, Any] = json.loads(line)
            if "ready" in report:
                self.waiting.callback(None)
            elif "progress" in report:
                self.snapshot = Snapshot.from_json(report["progress"])
            else:
                self.summary = Summary.from_json(report["summary"])

    def start(self, start_at: float) -> None:
        """Tell the worker to start at clock time *start_at*."""
        if self.transport is not None and not self.ended.called:
            line = json.dumps({"start_at": start_at}) + "\n"
            self.transport.write(line.encode("ascii"))

    def end(self) -> None:
        """Make the worker end its run now, or not start it."""
        if self.transport is not None and not self.ended.called:
            self.transport.closeStdin()
            with suppress(ProcessExitedAlready):
                self.transport.signalProcess("TERM")

    def processEnded(self, reason: Failure) -> None:
        if self.summary is not None:
            self.ended.callback(self.summary)
        else:
            status = (
                "" if reason.check(ProcessDone) else f": {reason.getErrorMessage()}"
            )
            error = WorkerError(f"a worker ended without a summary{status}")
            self.ended.errback(error)
        if not self.waiting.called:
            self.waiting.callback(None)


class Coordinator:
    """Runs *plan* split over *processes* workers; *clock* gives the shared
    start."""

    def __init__(
        self,
        plan: LoadPlan,
        processes: int,
        server: str,
        reactor: IReactorProcess,
        clock: IReactorTime,
    ) -> None:
        self._plans = plan.split(processes)
        self._server = server
        self._reactor = reactor
        self._clock = clock
        self._workers: list[_Worker] = []
        self._ending = False

    async def run(self) -> Summary:
        """Start the workers and, once all are ready, give them one start;
        their merged summary once all have ended."""
        for plan in self._plans:
            worker = _Worker(plan.devices)
            command = worker_command(plan, self._server)
            self._reactor.spawnProcess(
                worker, command[0], command, env=None, childFDs={0: "w", 1: "r", 2: 2}
            )
            self._workers.append(worker)
        await DeferredList([worker.waiting for worker in self._workers])
        if any(worker.ended.called for worker in self._workers):
            self.end()  # one could not even start: none runs
        if not self._ending:
            start_at = self._clock.seconds() + START_MARGIN
            for worker in self._workers:
                worker.start(start_at)
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
        self._ending = True
        for worker in self._workers:
            worker.end()
