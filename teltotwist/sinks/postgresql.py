# -*- test-case-name: tests.test_sinks_postgresql -*-
"""The ``postgresql`` sink: one row per record, accepted once committed.

Deliveries are committed in groups, as the file sink fsyncs them: while one
transaction is open in the sink's writer thread, new deliveries queue up,
and they all go into the next transaction. Inserts skip ids already stored,
so a tracker's resend never makes a duplicate row.

The sink keeps one connection and reconnects with exponential backoff;
while it has none, deliveries fail at once, so trackers keep their records
instead of the gateway's memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import cast

import attrs
from twisted.application.internet import backoffPolicy
from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import (
    IDelayedCall,
    IReactorFromThreads,
    IReactorTime,
)
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from teltotwist.codec import encode_json
from teltotwist.gateway.items import (
    CommandResult,
    Item,
    TrackerRecord,
    UnparsedFrame,
    json_line,
)
from teltotwist.sinks._pg_connection import PostgresConnection
from teltotwist.sinks._pg_schema import Tables
from teltotwist.sinks._pg_settings import (
    PASSWORD_VARIABLE,
    PostgresSettings,
    settings_from_url,
)
from teltotwist.sinks.interfaces import IRecordSink, ISinkReadiness, ISinkStatus
from teltotwist.sinks.readiness import ReadyWaiters, ReadyWhileConnected, not_running

__all__ = [
    "PASSWORD_VARIABLE",
    "PostgresSettings",
    "PostgresSink",
    "PostgresSinkError",
    "settings_from_url",
    "sink_from_argument",
]

RETRY_POLICY = backoffPolicy(initialDelay=0.5, maxDelay=30.0)
"""Seconds before reconnecting: 0.75, 1.1, 1.7 ... up to 30, each plus 0 to 1
at random, so that many gateways do not reconnect in step."""

_log = Logger()


class PostgresSinkError(Exception):
    """The items were not committed: the sink is not running, not connected
    or full, or the transaction failed."""


class _Reactor(IReactorFromThreads, IReactorTime):
    """What the sink needs of the reactor."""


@attrs.define(eq=False)
class _Delivery:
    """One ``deliver()`` call's items, as record JSON lines by table."""

    records: list[bytes]
    unparsed: list[bytes]
    command_results: list[bytes]
    done: Deferred[None]

    @property
    def size(self) -> int:
        return len(self.records) + len(self.unparsed) + len(self.command_results)


@implementer(IRecordSink, ISinkReadiness, ISinkStatus)
class PostgresSink(ReadyWhileConnected, Service):
    """Inserts items into the tables of *settings*; a delivery fires once
    the transaction holding it committed, and fails if it did not.

    Cancelling a delivery (the sink timeout) withdraws it if it is still
    queued; if its transaction is under way, it may still commit, which is
    harmless: the resend is skipped as already stored.
    """

    def __init__(
        self,
        settings: PostgresSettings,
        reactor: _Reactor,
        *,
        retry_policy: Callable[[int], float] = RETRY_POLICY,
        max_queued: int = 50_000,
        probe_interval: float = 10.0,
        commit_timeout: float = 30.0,
    ) -> None:
        """
        :param retry_policy: seconds to wait before reconnecting, from the
            number of failed attempts in a row.
        :param max_queued: items that may wait for a transaction; past that,
            deliveries fail at once instead of filling memory.
        :param probe_interval: seconds of idleness after which the sink
            checks its connection, so that readiness shows a lost one.
        :param commit_timeout: seconds a transaction may take; then its
            connection is dropped, failing its deliveries. It also bounds
            how long ``stopService`` waits.
        """
        self.settings = settings
        self.name = f"postgresql:{settings.url}"
        self._reactor = reactor
        self._tables = Tables(settings.schema, settings.table)
        self._retry_policy = retry_policy
        self._max_queued = max_queued
        self._probe_interval = probe_interval
        self._commit_timeout = commit_timeout
        self._pool: ThreadPool | None = None
        self._connection: PostgresConnection | None = None
        self._busy = False
        """Whether the writer thread is connecting, writing or probing."""
        self._queued: list[_Delivery] = []
        self._queued_items = 0
        self._retry: IDelayedCall | None = None
        self._probe: IDelayedCall | None = None
        self._failures = 0
        self._status = "the first attempt is under way"
        self._ready_waiters = ReadyWaiters()
        self._idle_waiters: list[Deferred[None]] = []

    @property
    def connected(self) -> bool:
        """Whether the sink has a connection to write on."""
        return self._connection is not None

    def startService(self) -> None:
        """Connect, and keep connecting until stopped."""
        self._pool = ThreadPool(minthreads=0, maxthreads=1, name=self.name)
        self._pool.start()
        Service.startService(self)
        self._connect()

    def stopService(self) -> Deferred[None]:
        """Refuse new deliveries, stop reconnecting; once the queued ones are
        committed (or failed), close the connection."""
        Service.stopService(self)
        for call in (self._retry, self._probe):
            if call is not None and call.active():
                call.cancel()
        return self._idle().addCallback(self._close)

    def deliver(self, items: Sequence[Item]) -> Deferred[None]:
        if self._connection is None or not self.running:
            return fail(PostgresSinkError(self._why_not_connected()))
        if self._queued_items + len(items) > self._max_queued:
            return fail(
                PostgresSinkError(
                    f"{self._queued_items} items await a transaction to "
                    f"{self.settings.url}, and the sink allows {self._max_queued}: "
                    "the database is slow"
                )
            )
        delivery = _Delivery([], [], [], Deferred(self._withdraw))
        for item in items:
            if isinstance(item, TrackerRecord):
                delivery.records.append(item.line)
            elif isinstance(item, CommandResult):
                delivery.command_results.append(_storable_line(item))
            else:
                delivery.unparsed.append(_storable_line(item))
        self._queued.append(delivery)
        self._queued_items += delivery.size
        if not self._busy:
            self._write_queued()
        return delivery.done

    def _withdraw(self, done: Deferred[None]) -> None:
        """Cancelled: drop the delivery if it is still queued."""
        for delivery in self._queued:
            if delivery.done is done:
                self._queued.remove(delivery)
                self._queued_items -= delivery.size
                return

    def _in_thread(
        self, work: Callable[..., object], *arguments: object
    ) -> Deferred[object]:
        assert self._pool is not None
        self._busy = True
        if self._probe is not None and self._probe.active():
            self._probe.cancel()
        return deferToThreadPool(self._reactor, self._pool, work, *arguments)

    # --- Connecting --------------------------------------------------------

    def _connect(self) -> None:
        self._retry = None
        connecting = self._in_thread(
            PostgresConnection.open,
            self.settings.connection,
            self._tables,
            self.settings.declare,
        )
        connecting.addBoth(self._connect_ended)

    def _connect_ended(self, result: object) -> None:
        self._busy = False
        if isinstance(result, Failure):
            self._status = f"the last attempt failed: {_reason(result)}"
            if self.running:
                self._retry_later("could not connect", _reason(result))
            self._became_idle()
            return
        connection = cast(PostgresConnection, result)
        if not self.running:  # stopped while connecting
            self._connection = connection
            self._became_idle()
            return
        self._connection = connection
        self._failures = 0
        _log.info("{sink} connected", sink=self.name)
        self._ready_waiters.fire()
        self._became_idle()

    def _retry_later(self, what: str, reason: str) -> None:
        self._failures += 1
        delay = self._retry_policy(self._failures)
        _log.warn(
            "{sink} {what}, retrying in {delay:.1f} s: {reason}",
            sink=self.name,
            what=what,
            delay=delay,
            reason=reason,
        )
        self._retry = self._reactor.callLater(delay, self._connect)

    def _lose(self, connection: PostgresConnection, reason: str) -> None:
        """*connection* is lost: fail what waits for it, close it, reconnect."""
        self._connection = None
        self._status = f"the connection was lost: {reason}"
        queued, self._queued, self._queued_items = self._queued, [], 0
        error = PostgresSinkError(self._why_not_connected())
        for delivery in queued:
            delivery.done.errback(error)
        assert self._pool is not None
        self._pool.callInThread(connection.close)
        if self.running:
            self._retry_later("lost its connection", reason)

    def _why_not_connected(self) -> str:
        if not self.running:
            return not_running(f"the sink for {self.settings.url}")
        return (
            f"not connected to {self.settings.url} (reconnecting in the "
            f"background): {self._status}"
        )

    # --- Writing -------------------------------------------------------------

    def _write_queued(self) -> None:
        connection = self._connection
        assert connection is not None
        batch, self._queued, self._queued_items = self._queued, [], 0
        timeout = self._reactor.callLater(self._commit_timeout, connection.abort)
        writing = self._in_thread(
            connection.write,
            [line for delivery in batch for line in delivery.records],
            [line for delivery in batch for line in delivery.unparsed],
            [line for delivery in batch for line in delivery.command_results],
        )
        writing.addBoth(self._written, batch, connection, timeout)

    def _written(
        self,
        result: object,
        batch: list[_Delivery],
        connection: PostgresConnection,
        timeout: IDelayedCall,
    ) -> None:
        self._busy = False
        timed_out = not timeout.active()
        if not timed_out:
            timeout.cancel()
        error: PostgresSinkError | None = None
        if isinstance(result, Failure):
            reason = (
                f"no commit within {self._commit_timeout:g} s"
                if timed_out
                else _reason(result)
            )
            error = PostgresSinkError(
                f"the transaction to {self.settings.url} did not commit: {reason}"
            )
            error.__cause__ = result.value
            if connection.broken:
                self._lose(connection, reason)
        for delivery in batch:
            if delivery.done.called:  # cancelled while being written
                continue
            if error is None:
                delivery.done.callback(None)
            else:
                delivery.done.errback(error)
        self._became_idle()

    # --- Idleness: the next batch, a probe, or stopping --------------------

    def _became_idle(self) -> None:
        """The writer thread is free: write what queued meanwhile, else
        schedule a probe, or let a waiting stop go on."""
        if self._busy:
            return
        if self._queued and self._connection is not None:
            self._write_queued()
            return
        if self.running and self._connection is not None:
            self._probe = self._reactor.callLater(self._probe_interval, self._check)
        waiting, self._idle_waiters = self._idle_waiters, []
        for waiter in waiting:
            waiter.callback(None)

    def _check(self) -> None:
        connection = self._connection
        assert connection is not None
        checking = self._in_thread(connection.probe)
        checking.addBoth(self._checked, connection)

    def _checked(self, result: object, connection: PostgresConnection) -> None:
        self._busy = False
        if isinstance(result, Failure) and connection.broken:
            self._lose(connection, _reason(result))
        self._became_idle()

    def _idle(self) -> Deferred[None]:
        if not self._busy:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._idle_waiters.append(waiter)
        return waiter

    def _close(self, _: None) -> None:
        connection, self._connection = self._connection, None
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if connection is not None:
            pool.callInThread(connection.close)
        pool.stop()


def _storable_line(item: UnparsedFrame | CommandResult) -> bytes:
    """The item's JSON line, with each NUL character (which PostgreSQL text
    and ``jsonb`` cannot hold, and a tracker's command response can carry)
    replaced by U+FFFD, so that one such item cannot fail its transaction."""
    line = json_line(item)
    if b"\\u0000" not in line:
        return line
    return encode_json(
        {key: _without_nul(value) for key, value in item.to_json().items()}
    )


def _without_nul(value: object) -> object:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_without_nul(inner) for inner in value]
    return value


def _reason(failure: Failure) -> str:
    """A failure's message on one line (libpq's span several)."""
    return " ".join(failure.getErrorMessage().split()) or type(failure.value).__name__


def sink_from_argument(argument: str) -> PostgresSink:
    """The sink of ``--sink postgresql:URL``, on the global reactor."""
    settings = settings_from_url(argument, os.environ)
    # Imported here: importing it installs the default reactor, which must
    # not happen before twistd installs the one its --reactor option names.
    from twisted.internet import reactor  # noqa: PLC0415

    return PostgresSink(settings, cast(_Reactor, reactor))
