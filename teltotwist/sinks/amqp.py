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

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, FirstError, fail
from twisted.internet.interfaces import (
    IReactorTime,
)
from twisted.python.failure import Failure
from zope.interface import implementer

from teltotwist.gateway.items import Item, TrackerRecord, json_line
from teltotwist.sinks._amqp_link import RETRY_POLICY, AmqpLink
from teltotwist.sinks._amqp_settings import (
    PASSWORD_VARIABLE,
    AmqpSettings,
    kind_of,
    parse_url,
)
from teltotwist.sinks.interfaces import IRecordSink, ISinkReadiness, ISinkStatus
from teltotwist.sinks.readiness import ReadyWaiters, ReadyWhileConnected, not_running

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


class AmqpSinkError(Exception):
    """The broker did not confirm a delivery, or the sink could not publish it."""


@implementer(IRecordSink, ISinkReadiness, ISinkStatus)
class AmqpSink(ReadyWhileConnected, Service):
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
        self._connect_timeout = connect_timeout
        self._max_unconfirmed = max_unconfirmed
        self._endpoint = settings.broker.endpoint(reactor, connect_timeout)
        self._ready_waiters = ReadyWaiters()
        self._link = AmqpLink(
            self.name,
            reactor,
            self._open,
            on_open=lambda channel: self._ready_waiters.fire(),
            retry_policy=retry_policy,
            stop_timeout=stop_timeout,
        )

    @property
    def connected(self) -> bool:
        """Whether the sink has a connection to publish on."""
        return self._link.channel is not None

    def startService(self) -> None:
        """Connect, and keep connecting until stopped."""
        Service.startService(self)
        self._link.start()

    def stopService(self) -> Deferred[None]:
        """Stop reconnecting; wait a while for the messages in flight to be
        confirmed, then close the connection."""
        Service.stopService(self)
        return self._link.stop()

    def deliver(self, items: Sequence[Item]) -> Deferred[None]:
        channel = self._link.channel
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
            return not_running(f"the sink for {self.settings.url}")
        return (
            f"not connected to {self.settings.url} (reconnecting in the "
            f"background): {self._link.status}"
        )

    async def _open(self) -> ConfirmedChannel:
        # Imported here: it imports pika's Twisted adapter, which installs the
        # default reactor if twistd has not installed its own yet.
        from teltotwist.sinks._amqp_channel import open_channel  # noqa: PLC0415

        settings = self.settings
        return await open_channel(
            self._endpoint,
            self._reactor,
            broker=settings.broker,
            exchange=settings.exchange,
            declare=settings.declare,
            timeout=self._connect_timeout,
        )


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
