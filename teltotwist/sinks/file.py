# -*- test-case-name: tests.test_sinks_file -*-
"""The ``file`` sink: JSON Lines appended to a file, fsynced before the ACK.

An fsync per packet would cap the gateway at the disk's fsync rate, so
deliveries are committed in groups: while one batch is written and fsynced
in the sink's worker thread, new deliveries queue up, and they all go to
disk together in the next batch.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable, Sequence
from io import FileIO
from typing import cast

import attrs
from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IReactorFromThreads
from twisted.python.failure import Failure
from zope.interface import implementer

from teltotwist.gateway.items import Item, json_line
from teltotwist.sinks.interfaces import IRecordSink, SinkConfigurationError
from teltotwist.sinks.readiness import not_running


class FileSinkError(Exception):
    """The file sink is not running, or could not open, write or fsync its file."""


@attrs.frozen(eq=False)
class _Delivery:
    lines: bytes
    done: Deferred[None]


@implementer(IRecordSink)
class FileSink(Service):
    """Appends items to *path* as JSON Lines; a delivery fires once fsynced.

    Writes run in order in a dedicated thread, so the reactor never waits
    for the disk. The sink must be the only writer of *path*: a batch that
    fails is truncated away, so the next one does not extend a partial line.
    """

    def __init__(
        self, path: str | os.PathLike[str], reactor: IReactorFromThreads
    ) -> None:
        self.path = os.fspath(path)
        self.name = f"file:{self.path}"
        self._reactor = reactor
        self._file: FileIO | None = None
        self._appender: _Appender | None = None
        self._queued: list[_Delivery] = []
        self._writing = False
        self._drained: list[Deferred[None]] = []

    def startService(self) -> None:
        """Open *path* for appending, creating the file but not its directory."""
        try:
            self._file = _open_for_appending(self.path)
        except OSError as error:
            raise FileSinkError(
                f"cannot append to {self.path}: {error.strerror}"
            ) from error
        self._appender = _Appender(self._file, self._reactor, f"file:{self.path}")
        Service.startService(self)

    def stopService(self) -> Deferred[None]:
        """Refuse new deliveries; close the file once the queued ones are fsynced."""
        Service.stopService(self)
        drained: Deferred[None] = Deferred()
        if self._writing:
            self._drained.append(drained)
        else:
            drained.callback(None)
        return drained.addCallback(self._close)

    def deliver(self, items: Sequence[Item]) -> Deferred[None]:
        if not self.running:
            return fail(FileSinkError(not_running(f"the file sink for {self.path}")))
        done: Deferred[None] = Deferred(self._withdraw)
        lines = [json_line(item) for item in items]
        lines.append(b"")  # each line ends with a newline; no items, no bytes
        self._queued.append(_Delivery(b"\n".join(lines), done))
        if not self._writing:
            self._write_queued()
        return done

    def _withdraw(self, done: Deferred[None]) -> None:
        """Cancelled: drop the delivery if it is still queued; if it is being
        written, it may still land in the file (a harmless duplicate)."""
        self._queued = [
            delivery for delivery in self._queued if delivery.done is not done
        ]

    def _write_queued(self) -> None:
        assert self._appender is not None
        batch, self._queued = self._queued, []
        self._writing = True
        data = b"".join([delivery.lines for delivery in batch])
        self._appender.append(data, lambda result: self._written(result, batch))

    def _written(self, result: Failure | None, batch: list[_Delivery]) -> None:
        self._writing = False
        if self._queued:
            self._write_queued()
        for delivery in batch:
            if delivery.done.called:  # cancelled while being written
                continue
            if isinstance(result, Failure):
                error = FileSinkError(
                    f"could not append to {self.path}: {result.getErrorMessage()}"
                )
                error.__cause__ = result.value
                delivery.done.errback(error)
            else:
                delivery.done.callback(None)
        if not self._writing:
            drained, self._drained = self._drained, []
            for waiter in drained:
                waiter.callback(None)

    def _close(self, _: None) -> None:
        if self._file is not None:
            self._file.close()
        if self._appender is not None:
            self._appender.stop()
        self._file = self._appender = None


_Written = Callable[[Failure | None], None]
"""Told, in the reactor thread, how a batch's append ended: ``None`` once
fsynced, else the failure."""


class _Appender:
    """The thread that appends the batches to *file*, in order, and tells the
    reactor how each ended.

    A thread of its own rather than Twisted's thread pool: the pool's team
    coordination, context capture and Python-level queue cost more reactor
    time than the sink's own work, a batch at a time, hundreds a second under
    load; the reactor needs only a C queue's ``put`` here.
    """

    def __init__(self, file: FileIO, reactor: IReactorFromThreads, name: str) -> None:
        self._file = file
        self._reactor = reactor
        self._batches: queue.SimpleQueue[tuple[bytes, _Written] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def append(self, data: bytes, written: _Written) -> None:
        """Append and fsync *data* after the batches before it; then call
        *written* in the reactor thread."""
        self._batches.put((data, written))

    def stop(self) -> None:
        """End the thread once the batches handed over are appended, and
        wait for it: call it when none is (the sink's queue is drained)."""
        self._batches.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (batch := self._batches.get()) is not None:
            data, written = batch
            result: Failure | None = None
            try:
                _append(self._file, data)
            except Exception:
                result = Failure()
            self._reactor.callFromThread(written, result)


def _open_for_appending(path: str) -> FileIO:
    """*path* opened for appending; if it is new, its directory entry is made
    as durable as its content will be."""
    created = not os.path.exists(path)
    file = open(path, "ab", buffering=0)  # noqa: SIM115
    try:
        if created and os.name == "posix":  # Windows cannot open a directory
            _sync_directory(os.path.dirname(os.path.abspath(path)))
    except OSError:
        file.close()
        raise
    return file


def _sync_directory(directory: str) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _append(file: FileIO, data: bytes) -> None:
    """Write *data* at the end of *file* and fsync it, or leave it as it was.

    *file* is unbuffered: each write reaches the OS at once, nothing is left
    to flush before the fsync.
    """
    end = os.fstat(file.fileno()).st_size
    try:
        unwritten = memoryview(data)
        while unwritten:
            unwritten = unwritten[file.write(unwritten) :]
        os.fsync(file.fileno())
    except OSError:
        with contextlib.suppress(OSError):
            file.truncate(end)
        raise


def sink_from_argument(argument: str) -> FileSink:
    """The sink of ``--sink file:PATH``, on the global reactor."""
    if not argument:
        raise SinkConfigurationError("the file sink needs a path: --sink file:PATH")
    directory = os.path.dirname(os.path.abspath(argument))
    if not os.path.isdir(directory):
        raise SinkConfigurationError(
            f"cannot append to {argument}: directory {directory} does not exist "
            "(the file sink creates the file, not its directory)"
        )
    # Imported here: importing it installs the default reactor, which must
    # not happen before twistd installs the one its --reactor option names.
    from twisted.internet import reactor  # noqa: PLC0415

    return FileSink(argument, cast(IReactorFromThreads, reactor))
