# -*- test-case-name: tests.test_sinks_amqp -*-
"""The ``amqp`` sink: one persistent message per record, published to a
RabbitMQ (AMQP 0-9-1) exchange and accepted on the broker's confirm.

Messages are mandatory: one that no queue takes is returned by the broker
and fails its delivery instead of vanishing. The sink keeps one connection,
reconnecting with exponential backoff; while it has none, deliveries fail at
once, so trackers keep their records instead of the gateway's memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, cast

from twisted.application.internet import backoffPolicy
from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, FirstError, fail
from twisted.internet.defer import TimeoutError as DeferredTimeoutError
from twisted.internet.interfaces import (
    IDelayedCall,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from teltotwist.gateway.items import Item, TrackerRecord, json_line
from teltotwist.sinks._amqp_settings import (
    PASSWORD_VARIABLE,
    AmqpSettings,
    kind_of,
    parse_url,
)
from teltotwist.sinks.interfaces import IRecordSink, ISinkReadiness
from teltotwist.sinks.readiness import ReadyWaiters

if TYPE_CHECKING:
    from teltotwist.sinks._amqp_channel import ConfirmedChannel

__all__ = [
    "PASSWORD_VARIABLE",
    "AmqpSettings",
    "AmqpSink",
    "AmqpSinkError",
    "parse_url",
    "sink_from_argument",
]

RETRY_POLICY = backoffPolicy(initialDelay=0.5, maxDelay=30.0)
"""Seconds before reconnecting: 0.75, 1.1, 1.7 ... up to 30, each plus 0 to 1
at random, so that many gateways do not reconnect in step."""

_log = Logger()


class AmqpSinkError(Exception):
    """The broker did not confirm a delivery, or the sink could not publish it."""


@implementer(IRecordSink, ISinkReadiness)
class AmqpSink(Service):
    """Publishes each item as a persistent message; a delivery fires once the
    broker confirmed every one of its messages, and fails if any is returned,
    nacked, or still unconfirmed when the connection goes.

    Cancelling a delivery (the sink timeout) abandons the wait: its messages
    may still reach the broker, duplicates that consumers drop by message id.
    """

    def __init__(
        self,
        settings: AmqpSettings,
        reactor: IReactorTime,
        *,
        retry_policy: Callable[[int], float] = RETRY_POLICY,
        connect_timeout: float = 15.0,
        stop_timeout: float = 5.0,
        max_unconfirmed: int = 50_000,
    ) -> None:
        """
        :param retry_policy: seconds to wait before reconnecting, from the
            number of failed attempts in a row.
        :param connect_timeout: seconds for a connection attempt, handshake
            and exchange check included.
        :param stop_timeout: seconds ``stopService`` waits for the broker to
            confirm what is in flight, then to close the connection.
        :param max_unconfirmed: messages that may await their confirm; past
            that, deliveries fail at once instead of filling memory.
        """
        self.settings = settings
        self.name = f"amqp:{settings.url}"
        self._reactor = reactor
        self._retry_policy = retry_policy
        self._connect_timeout = connect_timeout
        self._stop_timeout = stop_timeout
        self._max_unconfirmed = max_unconfirmed
        self._endpoint: IStreamClientEndpoint | None = None
        self._channel: ConfirmedChannel | None = None
        self._connecting: Deferred[ConfirmedChannel] | None = None
        self._retry: IDelayedCall | None = None
        self._failures = 0
        self._status = "the first attempt is under way"
        self._ready_waiters = ReadyWaiters()

    @property
    def connected(self) -> bool:
        """Whether the sink has a connection to publish on."""
        return self._channel is not None

    @property
    def ready(self) -> bool:
        """Ready while connected."""
        return self.connected

    def whenReady(self) -> Deferred[None]:
        """Fires once the sink is connected."""
        return self._ready_waiters.wait(self.connected)

    def startService(self) -> None:
        """Connect, and keep connecting until stopped."""
        self._endpoint = self.settings.broker.endpoint(
            self._reactor, self._connect_timeout
        )
        Service.startService(self)
        self._connect()

    def stopService(self) -> Deferred[None]:
        """Stop reconnecting; wait a while for the messages in flight to be
        confirmed, then close the connection."""
        Service.stopService(self)
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        if self._connecting is not None:
            self._connecting.cancel()
        channel, self._channel = self._channel, None
        return Deferred.fromCoroutine(self._close(channel))

    def deliver(self, items: Sequence[Item]) -> Deferred[None]:
        channel = self._channel
        if channel is None:
            return fail(AmqpSinkError(self._why_not_connected()))
        if channel.unconfirmed + len(items) > self._max_unconfirmed:
            return fail(
                AmqpSinkError(
                    f"{channel.unconfirmed} messages to {self.settings.url} await "
                    f"the broker's confirm, and the sink allows "
                    f"{self._max_unconfirmed}: the broker is slow or unreachable"
                )
            )
        confirms = [self._publish(channel, item) for item in items]
        done: Deferred[None] = Deferred()
        DeferredList(confirms, fireOnOneErrback=True, consumeErrors=True).addCallbacks(
            lambda _: done.callback(None), _first_error, errbackArgs=(done,)
        )
        return done

    def _publish(self, channel: ConfirmedChannel, item: Item) -> Deferred[None]:
        headers = {"imei": item.imei, "kind": kind_of(item)}
        if isinstance(item, TrackerRecord):
            headers["codec"] = item.codec.label
        confirmed = channel.publish(
            self.settings.exchange,
            self.settings.routing_key_for(item),
            json_line(item),
            content_type="application/json",
            message_id=item.id,
            headers=headers,
        )
        return confirmed.addErrback(self._not_confirmed, item)

    def _not_confirmed(self, failure: Failure, item: Item) -> None:
        raise AmqpSinkError(f"record {item.id}: {failure.getErrorMessage()}")

    def _why_not_connected(self) -> str:
        if not self.running:
            return (
                f"the sink for {self.settings.url} is not running: it takes "
                "records between startService() and stopService()"
            )
        return (
            f"not connected to {self.settings.url} (reconnecting in the "
            f"background): {self._status}"
        )

    def _connect(self) -> None:
        # Imported here: it imports pika's Twisted adapter, which installs the
        # default reactor if twistd has not installed its own yet.
        from teltotwist.sinks._amqp_channel import open_channel  # noqa: PLC0415

        assert self._endpoint is not None
        self._retry = None
        settings = self.settings
        connecting = Deferred.fromCoroutine(
            open_channel(
                self._endpoint,
                self._reactor,
                vhost=settings.vhost,
                username=settings.username,
                password=settings.password,
                exchange=settings.exchange,
                declare=settings.declare,
            )
        )
        self._connecting = connecting
        connecting.addTimeout(self._connect_timeout, self._reactor)
        connecting.addCallbacks(self._connected, self._not_connected)

    def _connected(self, channel: ConfirmedChannel) -> None:
        self._connecting = None
        self._channel = channel
        self._failures = 0
        _log.info("{sink} connected", sink=self.name)
        channel.lost().addCallback(self._lost, channel)
        self._ready_waiters.fire()

    def _not_connected(self, failure: Failure) -> None:
        self._connecting = None
        if not self.running:  # stopService cancelled the attempt
            return
        if failure.check(DeferredTimeoutError):
            reason = f"no connection within {self._connect_timeout:g} s"
        else:
            reason = failure.getErrorMessage()
        self._status = f"the last attempt failed: {reason}"
        self._retry_later("could not connect", reason)

    def _lost(self, _: None, channel: ConfirmedChannel) -> None:
        if self._channel is not channel:  # closed by stopService
            return
        self._channel = None
        self._status = f"the connection was lost: {channel.lost_reason}"
        self._retry_later("lost its connection", channel.lost_reason)

    def _retry_later(self, what: str, reason: str | None) -> None:
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

    async def _close(self, channel: ConfirmedChannel | None) -> None:
        if channel is None:
            return
        settled = channel.settled()
        settled.addTimeout(self._stop_timeout, self._reactor)
        try:
            await settled
        except DeferredTimeoutError:
            _log.warn(
                "{sink}: {count} messages still unconfirmed after {timeout:g} s; "
                "closing anyway",
                sink=self.name,
                count=channel.unconfirmed,
                timeout=self._stop_timeout,
            )
        closed = channel.close()
        closed.addTimeout(self._stop_timeout, self._reactor)
        try:
            await closed
        except DeferredTimeoutError:
            channel.abort()


def _first_error(failure: Failure, done: Deferred[None]) -> None:
    """Fail *done* with the first failed confirm out of DeferredList's FirstError."""
    error = failure.value
    done.errback(error.subFailure if isinstance(error, FirstError) else failure)


def sink_from_argument(argument: str) -> AmqpSink:
    """The sink of ``--sink amqp:URL``, on the global reactor."""
    settings = parse_url(argument, os.environ)
    # Imported here: importing it installs the default reactor, which must
    # not happen before twistd installs the one its --reactor option names.
    from twisted.internet import reactor  # noqa: PLC0415

    return AmqpSink(settings, cast(IReactorTime, reactor))
