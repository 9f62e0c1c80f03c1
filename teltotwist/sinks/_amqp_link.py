# -*- test-case-name: tests.test_sinks_amqp -*-
"""One connection to RabbitMQ, kept: opened again with backoff whenever it
fails or is lost, and closed politely on stop. The AMQP sink and the
cluster's bus each hold one."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from twisted.application.internet import backoffPolicy
from twisted.internet.defer import Deferred
from twisted.internet.defer import TimeoutError as DeferredTimeoutError
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from teltotwist.sinks.readiness import reconnecting

if TYPE_CHECKING:
    from teltotwist.sinks._amqp_channel import ConfirmedChannel

RETRY_POLICY = backoffPolicy(initialDelay=0.5, maxDelay=30.0)
"""Seconds before reconnecting: 0.75, 1.1, 1.7 ... up to 30, each plus 0 to 1
at random, so that many gateways do not reconnect in step."""

Opener = Callable[[], Coroutine[Any, Any, "ConfirmedChannel"]]
"""Opens a channel and prepares it; fails saying why it could not."""

_log = Logger()


class AmqpLink:
    """Keeps a :class:`ConfirmedChannel` open with *open*, named *name* in
    the log, from :meth:`start` until :meth:`stop`.

    *open* may take its time (binding thousands of queues, say): a timeout
    belongs inside it, where it knows what may take long.
    """

    def __init__(
        self,
        name: str,
        reactor: IReactorTime,
        open: Opener,
        *,
        on_open: Callable[[ConfirmedChannel], None] = lambda channel: None,
        retry_policy: Callable[[int], float] = RETRY_POLICY,
        stop_timeout: float = 5.0,
    ) -> None:
        """
        :param on_open: called with each channel once open.
        :param retry_policy: seconds to wait before reconnecting, from the
            number of failed attempts in a row.
        :param stop_timeout: seconds :meth:`stop` waits for the broker to
            confirm what is in flight, then to close the connection.
        """
        self.name = name
        self._reactor = reactor
        self._open = open
        self._on_open = on_open
        self._retry_policy = retry_policy
        self._stop_timeout = stop_timeout
        self.channel: ConfirmedChannel | None = None
        """The open channel; None while there is none."""
        self._problem: tuple[str, str | None] = ("the first attempt is under way", None)
        """What went wrong, and the reason given, if any."""
        self.running = False
        self._connecting: Deferred[ConfirmedChannel] | None = None
        self._retry: IDelayedCall | None = None
        self._failures = 0

    @property
    def status(self) -> str:
        """Why there is no channel, when there is none, and when the next
        attempt is."""
        retry = self._retry
        retry_in = (
            retry.getTime() - self._reactor.seconds()
            if retry is not None and retry.active()
            else None
        )
        return reconnecting(*self._problem, retry_in)

    def start(self) -> None:
        """Open the channel, and open it again each time it is lost."""
        self.running = True
        self._connect()

    def stop(self) -> Deferred[None]:
        """Stop reconnecting; wait a while for the messages in flight to be
        confirmed, then close the connection."""
        self.running = False
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        if self._connecting is not None:
            self._connecting.cancel()
        channel, self.channel = self.channel, None
        return Deferred.fromCoroutine(self._close(channel))

    def _connect(self) -> None:
        self._retry = None
        connecting = Deferred.fromCoroutine(self._open())
        self._connecting = connecting
        connecting.addCallbacks(self._connected, self._not_connected)

    def _connected(self, channel: ConfirmedChannel) -> None:
        self._connecting = None
        self.channel = channel
        self._failures = 0
        _log.info("{name} connected", name=self.name)
        channel.lost().addCallback(self._lost, channel)
        self._on_open(channel)

    def _not_connected(self, failure: Failure) -> None:
        self._connecting = None
        if not self.running:  # stop() cancelled the attempt
            return
        reason = failure.getErrorMessage()
        self._problem = ("the last attempt failed", reason)
        self._retry_later("could not connect", reason)

    def _lost(self, _: None, channel: ConfirmedChannel) -> None:
        if self.channel is not channel:  # closed by stop()
            return
        self.channel = None
        self._problem = ("the connection was lost", channel.lost_reason)
        self._retry_later("lost its connection", channel.lost_reason)

    def _retry_later(self, what: str, reason: str | None) -> None:
        self._failures += 1
        delay = self._retry_policy(self._failures)
        _log.warn(
            "{name} {what}, retrying in {delay:.1f} s: {reason}",
            name=self.name,
            what=what,
            delay=delay,
            reason=reason,
        )
        self._retry = self._reactor.callLater(delay, self._connect)

    async def _close(self, channel: ConfirmedChannel | None) -> None:
        if channel is None:
            return
        settled = channel.settled()
        settled.addTimeout(self._stop_timeout, self._reactor)
        try:
            await settled
        except DeferredTimeoutError:
            _log.warn(
                "{name}: {count} messages still unconfirmed after {timeout:g} s; "
                "closing anyway",
                name=self.name,
                count=channel.unconfirmed,
                timeout=self._stop_timeout,
            )
        closed = channel.close()
        closed.addTimeout(self._stop_timeout, self._reactor)
        try:
            await closed
        except DeferredTimeoutError:
            channel.abort()
