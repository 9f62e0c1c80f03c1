# -*- test-case-name: tests.test_cluster_workers -*-
"""A worker process's side of ``--workers``: its link to the parent.

The link is the UNIX socket its parent passed at
:data:`~teltotwist.cluster.listeners.HUB_FD`, spoken in AMP. It closes only
when the parent ends, so a worker whose link closes while it runs has lost
its parent (killed, say), and stops the orderly way rather than live on as
an orphan nobody restarts or stops. Once the worker listens for trackers,
it tells its parent it is up (:class:`Up`), whatever cluster bus it uses.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any

from twisted.application.service import Service
from twisted.logger import Logger
from twisted.protocols import amp

from teltotwist.cluster.link import LinkProtocol, OneProtocol
from teltotwist.cluster.listeners import HUB_FD

FILE_SINK = "file:"


def worker_sink_spec(spec: str, number: int) -> str:
    """The ``--sink`` *spec* of worker *number*: a file sink's path gets
    ``.wN`` before its extension (``records.jsonl`` becomes
    ``records.w2.jsonl``), as each file has one writer; other sinks are
    shared as they are."""
    if not spec.startswith(FILE_SINK):
        return spec
    path = PurePath(spec.removeprefix(FILE_SINK))
    return FILE_SINK + str(path.with_name(f"{path.stem}.w{number}{path.suffix}"))


def worker_state_dir(state_dir: Path, number: int) -> Path:
    """Where worker *number* keeps its queued commands: a directory of its
    own in *state_dir*."""
    return state_dir / f"worker-{number}"


def worker_member_id(number: int) -> str:
    """Worker *number*'s id in the cluster of its parent's workers:
    ``HOST:PID/wN``, unique while it runs."""
    return f"{socket.gethostname()}:{os.getpid()}/w{number}"


class Up(amp.Command):
    """A worker tells its parent it is up: it started and listens for
    trackers."""


class _UpResponder(amp.CommandLocator):
    def __init__(self, up: Callable[[], None]) -> None:
        self._up = up

    @Up.responder
    def up(self) -> dict[str, object]:
        self._up()
        return {}


def when_up(link: LinkProtocol, up: Callable[[], None]) -> None:
    """The parent's side: call *up* once the worker at the other end of
    *link* says it is up."""
    link.answer(_UpResponder(up))


class ParentLink(Service):
    """Worker *number*'s link to its parent, spoken by *protocol*."""

    log = Logger()

    def __init__(
        self,
        reactor: Any,
        number: int,
        protocol: LinkProtocol,
        fd: int = HUB_FD,
    ) -> None:
        self._reactor = reactor
        self.number = number
        self._fd = fd
        self.protocol = protocol
        protocol.closed.addCallback(lambda _: self._lost())

    def startService(self) -> None:
        Service.startService(self)
        # A Ctrl-C reaches the whole process group; the parent stops its
        # workers itself, so each stops once.
        self._reactor.callWhenRunning(signal.signal, signal.SIGINT, signal.SIG_IGN)
        self._reactor.adoptStreamConnection(
            self._fd, socket.AF_UNIX, OneProtocol(self.protocol)
        )
        os.close(self._fd)  # adopting made its own copy
        self.log.info(
            "Worker {number} (pid {pid}) of parent {parent}",
            number=self.number,
            pid=os.getpid(),
            parent=os.getppid(),
        )

    def up(self) -> None:
        """Tell the parent this worker is up (see :class:`Up`); a parent
        that is gone is not told."""
        told = self.protocol.dispatcher.callRemote(Up)  # type: ignore[no-untyped-call]
        told.addErrback(lambda _: None)

    def _lost(self) -> None:
        if self.running:
            self.log.warn(
                "Worker {number}: the parent is gone; stopping", number=self.number
            )
            self._reactor.stop()
