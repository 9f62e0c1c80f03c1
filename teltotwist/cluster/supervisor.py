# -*- test-case-name: tests.test_cluster_supervisor -*-
"""``--workers N``: the parent process, which binds the ports and keeps N
worker processes running on them.

The parent accepts nothing itself. Each worker gets the bound sockets at
fixed descriptors (:mod:`teltotwist.cluster.listeners`: the tracker port's
socket is its own, the others are shared) and a link to the parent (a UNIX
socket pair at :data:`~teltotwist.cluster.listeners.HUB_FD`); the kernel
hands each new connection to one of the workers. A worker that
ends while the parent runs is started again, after a delay that doubles
while it keeps ending soon after its start. One that cannot start at all
(it ended :data:`GIVE_UP_AFTER` times in a row before it was up) is given
up on; one that was up (it said so over its link,
:class:`~teltotwist.cluster.worker.Up`, whatever its cluster bus) and then
ended is always started again, so that a crash of one worker never stops
the others. Stopping the parent stops the workers the orderly way (SIGTERM:
each drains its deliveries), and the parent waits for them. The parent logs
the workers' output as its own (:mod:`teltotwist.cluster.worker_log`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Callable, Mapping
from typing import Any

from twisted.application.reactors import getReactorTypes
from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.error import (
    CannotListenError,
    ProcessExitedAlready,
    ProcessTerminated,
)
from twisted.internet.interfaces import IDelayedCall, IProcessTransport
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from teltotwist.cluster.link import LinkProtocol, OneProtocol
from teltotwist.cluster.listeners import HUB_FD, BoundSockets
from teltotwist.cluster.worker import when_up
from teltotwist.cluster.worker_log import WorkerLines

FIRST_RESTART_DELAY = 1.0
"""Seconds before a worker that ended is started again; the delay doubles
with each end in a row within :data:`STEADY_RUN` of its start, up to
:data:`LONGEST_RESTART_DELAY`."""
LONGEST_RESTART_DELAY = 30.0
"""The longest wait before a worker is started again: new connections that
the kernel hands to its socket wait meanwhile."""
STEADY_RUN = 60.0
"""A worker that ran this many seconds ended afresh: its ends in a row are
forgotten."""
GIVE_UP_AFTER = 5
"""A worker that ended this many times in a row before it was up, each
within :data:`STEADY_RUN` of its start, cannot start: it is not started
again, and :meth:`WorkerSupervisor.whenGivenUp` fires."""
KILL_MARGIN = 10.0
"""Seconds a worker gets past its drain timeout to end on SIGTERM before it
is killed."""


class _WorkerProcess(ProcessProtocol):
    """One worker process, from its start to its end."""

    def __init__(
        self,
        number: int,
        started: float,
        ended: Callable[[_WorkerProcess], None],
        log: Logger,
    ) -> None:
        self.number = number
        self.started = started
        self._ended = ended
        self._log = log
        self._output = {
            1: WorkerLines(log, f"w{number}", LogLevel.info),
            2: WorkerLines(log, f"w{number} stderr", LogLevel.warn),
        }
        self.pid: int | None = None
        self.up = False
        """Whether it said it is up: it started."""
        self.end_reason = ""
        """How it ended, once it has: ``signal 9``, ``exit status 1``."""
        self.finished: Deferred[None] = Deferred()

    def came_up(self) -> None:
        """It said it is up."""
        self.up = True
        self._log.info(
            "Worker {number} (pid {pid}) is up", number=self.number, pid=self.pid
        )

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.pid = self.transport.pid

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        self._output[childFD].feed(data)

    def childConnectionLost(self, childFD: int) -> None:
        self._output[childFD].flush()

    def processEnded(self, reason: Failure) -> None:
        self.end_reason = _how_it_ended(reason)
        self._ended(self)
        self.finished.callback(None)

    def signal(self, name: str) -> None:
        """Send SIGname, unless it ended already."""
        transport: IProcessTransport | None = self.transport
        if transport is None:
            return
        with contextlib.suppress(ProcessExitedAlready):
            transport.signalProcess(name)


class _EndsInARow:
    """One worker's ends in a row: when to start it again, and whether it
    cannot start."""

    def __init__(self) -> None:
        self._soon = 0
        self.before_up: list[str] = []
        """Its ends in a row before it was up: ``exit status 1 after 0.4 s``."""

    def ended(self, worker: _WorkerProcess, ran: float) -> None:
        """*worker* ended after running *ran* seconds."""
        if ran >= STEADY_RUN:
            self._soon = 0
            self.before_up.clear()
            return
        self._soon += 1
        if worker.up:
            self.before_up.clear()
        else:
            self.before_up.append(f"{worker.end_reason} after {ran:.1f} s")

    @property
    def cannot_start(self) -> bool:
        return len(self.before_up) >= GIVE_UP_AFTER

    @property
    def delay(self) -> float:
        """Seconds to wait before starting it again."""
        # The exponent is bounded too: a float power past 1,023 overflows.
        doubled = FIRST_RESTART_DELAY * 2.0 ** min(max(self._soon - 1, 0), 16)
        return min(doubled, LONGEST_RESTART_DELAY)


class WorkerSupervisor(Service):
    """Binds the ports (in :meth:`privilegedStartService`, before twistd
    drops its privileges) and keeps *count* workers running on them.

    :param bind: binds the sockets.
    :param command: a worker's command line, by its number (1 to *count*)
        and the sockets it gets.
    :param environment: added to each worker's environment.
    :param link: the parent's side of a worker's link, by its number.
    :param stop_timeout: seconds the workers get to end on SIGTERM before
        they are killed.
    """

    log = Logger()

    def __init__(
        self,
        reactor: Any,
        count: int,
        bind: Callable[[], BoundSockets],
        command: Callable[[int, BoundSockets], list[str]],
        *,
        environment: Mapping[str, str],
        link: Callable[[int], LinkProtocol],
        stop_timeout: float,
    ) -> None:
        self._reactor = reactor
        self.count = count
        self._bind = bind
        self._command = command
        self._environment = {**os.environ, **environment}
        self._link = link
        self.stop_timeout = stop_timeout
        self.sockets: BoundSockets | None = None
        self._listening: Deferred[None] = Deferred()
        self._workers: dict[int, _WorkerProcess] = {}
        self._ends: dict[int, _EndsInARow] = {}
        self._restarts: dict[int, IDelayedCall] = {}
        self._given_up: Deferred[int] = Deferred()

    def privilegedStartService(self) -> None:
        Service.privilegedStartService(self)
        self._bind_once()

    def _bind_once(self) -> None:
        if self.sockets is not None or self._listening.called:
            return
        try:
            self.sockets = self._bind()
        except CannotListenError as error:
            self.log.error("Cannot listen: {error}", error=error)
            self._listening.errback(error)

    def whenListening(self) -> Deferred[None]:
        """Fires once the ports are bound and the workers started; fails
        with the ``CannotListenError`` of a port that cannot be bound
        (logged already). For one caller."""
        return self._listening

    def startService(self) -> None:
        """Start the workers; bind first if :meth:`privilegedStartService`
        was not called (``twist`` does not call it)."""
        Service.startService(self)
        self._bind_once()
        if self.sockets is None:
            return
        self.log.info(
            "Listening for trackers on port {port} with {count} worker processes",
            port=self.sockets.tracker.port,
            count=self.count,
        )
        for number in range(1, self.count + 1):
            self._start(number)
        self._listening.callback(None)

    def whenGivenUp(self) -> Deferred[int]:
        """Fires with a worker's number once that worker cannot start (see
        :data:`GIVE_UP_AFTER`; logged already); the caller stops the
        service. For one caller."""
        return self._given_up

    def hangup(self) -> None:
        """Pass a SIGHUP on to every worker (each reloads its files)."""
        for worker in self._workers.values():
            worker.signal("HUP")

    @property
    def pids(self) -> dict[int, int]:
        """The process id of each worker running, by its number."""
        return {
            number: worker.pid
            for number, worker in self._workers.items()
            if worker.pid is not None
        }

    def _start(self, number: int) -> None:
        self._restarts.pop(number, None)
        parent_end, worker_end = socket.socketpair()
        worker_end.set_inheritable(True)
        assert self.sockets is not None
        fds: dict[int, int | str] = {0: 0, 1: "r", 2: "r", HUB_FD: worker_end.fileno()}
        fds.update(self.sockets.child_fds(number))
        worker = _WorkerProcess(number, self._reactor.seconds(), self._ended, self.log)
        command = self._command(number, self.sockets)
        try:
            self._reactor.spawnProcess(
                worker,
                command[0],
                command,
                env=self._environment,
                childFDs=fds,
            )
        finally:
            worker_end.close()
        link = self._link(number)
        when_up(link, worker.came_up)
        self._reactor.adoptStreamConnection(
            parent_end.fileno(), socket.AF_UNIX, OneProtocol(link)
        )
        parent_end.close()
        self._workers[number] = worker
        self.log.info(
            "Worker {number} started (pid {pid})", number=number, pid=worker.pid
        )

    def _ended(self, worker: _WorkerProcess) -> None:
        number = worker.number
        del self._workers[number]
        if not self.running:
            self.log.info(
                "Worker {number} (pid {pid}) stopped: {reason}",
                number=number,
                pid=worker.pid,
                reason=worker.end_reason,
            )
            return
        ran = self._reactor.seconds() - worker.started
        ends = self._ends.setdefault(number, _EndsInARow())
        ends.ended(worker, ran)
        if ends.cannot_start:
            self._give_up(number, ends.before_up)
            return
        delay = ends.delay
        self.log.warn(
            "Worker {number} (pid {pid}) ended after {ran:.1f} s: {reason};"
            " starting it again in {delay:g} s",
            number=number,
            pid=worker.pid,
            ran=ran,
            reason=worker.end_reason,
            delay=delay,
        )
        self._restarts[number] = self._reactor.callLater(delay, self._start, number)

    def _give_up(self, number: int, failures: list[str]) -> None:
        self.log.error(
            "Worker {number} cannot start: it ended {count} times in a row within"
            " {steady:g} s of its start ({failures}). Giving up: the gateway"
            " stops. Its lines above (w{number}) say why; check the options,"
            " the sinks (their files, URLs and credentials) and the state"
            " directory it uses.",
            number=number,
            count=len(failures),
            steady=STEADY_RUN,
            failures="; ".join(failures),
        )
        if not self._given_up.called:
            self._given_up.callback(number)

    def stopService(self) -> Deferred[None]:
        """SIGTERM to every worker; fires once all ended (those still
        running after *stop_timeout* seconds are killed)."""
        Service.stopService(self)
        for restart in self._restarts.values():
            restart.cancel()
        self._restarts.clear()
        workers = list(self._workers.values())
        for worker in workers:
            worker.signal("TERM")
        killer = self._reactor.callLater(self.stop_timeout, self._kill, workers)
        ended = DeferredList([worker.finished for worker in workers])

        def done(_: object) -> None:
            if killer.active():
                killer.cancel()
            if self.sockets is not None:
                self.sockets.close()

        return ended.addCallback(done)

    def _kill(self, workers: list[_WorkerProcess]) -> None:
        for worker in workers:
            if not worker.finished.called:
                self.log.warn(
                    "Worker {number} (pid {pid}) still running {seconds:g} s"
                    " after SIGTERM: killing it",
                    number=worker.number,
                    pid=worker.pid,
                    seconds=self.stop_timeout,
                )
                worker.signal("KILL")


def worker_command(
    reactor: object, arguments: list[str], number: int, sockets: BoundSockets
) -> list[str]:
    """Worker *number*'s command line: this Python running ``teltonika``
    with the parent's *arguments*, on the parent's kind of reactor; without
    an API if the parent could not bind its port."""
    reactor_option = [
        f"--reactor={each.shortName}"
        for each in getReactorTypes()
        if getattr(each, "moduleName", None) == type(reactor).__module__
    ][:1]
    return [
        sys.executable,
        "-m",
        "twisted",
        *reactor_option,
        "--log-format=text",
        "teltonika",
        *arguments,
        *([] if sockets.api is not None else ["--api", "none"]),
        "--as-worker",
        str(number),
    ]


def _how_it_ended(reason: Failure) -> str:
    """``exit status 1``, ``signal 9``."""
    ended = reason.value
    if isinstance(ended, ProcessTerminated) and ended.signal is not None:
        return f"signal {ended.signal}"
    return f"exit status {getattr(ended, 'exitCode', None)}"
