# -*- test-case-name: tests.test_sinks_amqp -*-
"""pika behind a small typed face: one connection, one channel in confirm
mode, and a Deferred per published message that fires on the broker's
confirm and fails when the message is returned, nacked or lost; plus the
few queue operations the cluster's bus needs (declare, bind, consume, get).

Shared by the AMQP sink and the cluster over RabbitMQ (``tests/test_layers.py``
lets the cluster import it). pika ships no type hints, so its objects stay
``Any`` inside this module and nothing of pika leaves it. Importing this
module imports pika's Twisted adapter, which installs the default reactor if
none is installed yet: import it only once the reactor is chosen (the AMQP
sink and bus do, when they start).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import attrs
import pika  # type: ignore[import-untyped]
from pika.adapters.twisted_connection import (  # type: ignore[import-untyped]
    TwistedProtocolConnection,
)
from pika.exceptions import (  # type: ignore[import-untyped]
    ChannelClosed,
    ChannelClosedByBroker,
    ConnectionClosed,
    NackError,
    UnroutableError,
)
from twisted.internet.defer import Deferred, succeed
from twisted.internet.defer import TimeoutError as DeferredTimeoutError
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure

from teltotwist.sinks._amqp_settings import Broker

_log = Logger()

PERSISTENT = 2
"""AMQP ``delivery_mode``: the broker writes the message to disk."""
NOT_FOUND = 404
"""The AMQP reply code for a queue or exchange that does not exist."""


class PublishError(Exception):
    """The broker did not take a message, or the connection went first."""


class ReturnedError(PublishError):
    """The broker returned a mandatory message: no queue takes its routing key."""


class RefusedError(PublishError):
    """The broker nacked a message: it could not take it (a full queue that
    rejects what comes in, say)."""


@attrs.frozen
class Delivery:
    """A message the broker delivered, with the properties the bus uses."""

    body: bytes
    message_type: str | None
    reply_to: str | None
    correlation_id: str | None


class _Diagnosis:
    """Whether and why a connection opened, failed or closed, in the clearest
    words available.

    pika's Twisted adapter reports every failed handshake as
    ``AMQPConnectionError: 1``, and a connection the broker closed as "closed
    cleanly": this watches pika's own Connection instead, for the transport's
    error and the broker's reason.
    """

    def __init__(self, protocol: Any) -> None:
        self.opened: Deferred[None] = Deferred()
        """Fires once logged in; fails with a :class:`PublishError` saying why not."""
        self._broker_reason: str | None = None
        protocol.ready.addErrback(lambda _: None)  # self.opened says it better
        connection = protocol._impl  # pika's Connection behind the protocol
        connection.callbacks.add(0, pika.spec.Connection.Close, self._closed_by_broker)
        connection.add_on_open_callback(lambda _: self.opened.callback(None))
        connection.add_on_open_error_callback(self._not_opened, remove_default=False)

    def _closed_by_broker(self, frame: Any) -> None:
        self._broker_reason = f"{frame.method.reply_code} {frame.method.reply_text}"

    def _not_opened(self, connection: Any, error: BaseException) -> None:
        if self._broker_reason is None:
            reason = (
                f"the connection closed during the AMQP handshake: {_describe(error)}"
            )
        else:
            reason = f"the broker closed the connection: {self._broker_reason}"
        self.opened.errback(PublishError(reason))

    def explain(self, error: BaseException) -> str:
        """*error* in words, preferring the broker's reason when it gave one."""
        if self._broker_reason is not None:
            return f"the broker closed the connection: {self._broker_reason}"
        if isinstance(error, ChannelClosed | ConnectionClosed):
            return f"{error.reply_code} {error.reply_text}"
        return _describe(error)


def _delivery(message: Any) -> Delivery:
    properties = message.properties
    return Delivery(
        body=message.body,
        message_type=properties.type,
        reply_to=properties.reply_to,
        correlation_id=properties.correlation_id,
    )


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__


async def open_channel(
    endpoint: IStreamClientEndpoint,
    reactor: IReactorTime,
    *,
    broker: Broker,
    exchange: str,
    declare: bool,
    exchange_type: str = "topic",
    timeout: float,
) -> ConfirmedChannel:
    """Connect, log in to *broker*'s vhost with its credentials, open a
    channel in confirm mode and check *exchange*: declare it
    (*exchange_type*, durable) if *declare*, else require that it exists; all
    within *timeout* seconds.

    :raises PublishError: saying why, in the broker's words when it gave any.
    """
    parameters = pika.ConnectionParameters(
        virtual_host=broker.vhost,
        credentials=pika.PlainCredentials(broker.username, broker.password),
    )
    opening = Deferred.fromCoroutine(
        _open_channel(
            endpoint,
            reactor,
            parameters,
            exchange=exchange,
            declare=declare,
            exchange_type=exchange_type,
        )
    )
    opening.addTimeout(timeout, reactor)
    try:
        return await opening
    except DeferredTimeoutError:
        raise PublishError(f"no connection within {timeout:g} s") from None


async def _open_channel(
    endpoint: IStreamClientEndpoint,
    reactor: IReactorTime,
    parameters: Any,
    *,
    exchange: str,
    declare: bool,
    exchange_type: str,
) -> ConfirmedChannel:
    factory = Factory.forProtocol(
        lambda: TwistedProtocolConnection(parameters, custom_reactor=reactor)
    )
    factory.noisy = False  # no "Starting factory" line for every reconnection
    protocol: Any = await endpoint.connect(factory)
    diagnosis = _Diagnosis(protocol)
    try:
        await diagnosis.opened
        channel = await protocol.channel()
        await channel.confirm_delivery()
        await channel.exchange_declare(
            exchange, exchange_type=exchange_type, durable=True, passive=not declare
        )
    except PublishError:
        protocol.transport.abortConnection()
        raise
    except Exception as error:
        protocol.transport.abortConnection()
        raise PublishError(diagnosis.explain(error)) from error
    except BaseException:  # cancelled: give up the half-open connection
        protocol.transport.abortConnection()
        raise
    return ConfirmedChannel(protocol, channel, diagnosis)


class ConfirmedChannel:
    """An open channel publishing persistent, mandatory messages.

    Each message is settled on its own: confirmed (``basic.ack``), or failed
    when the broker returns it (no queue matches its routing key), nacks it,
    or the channel or connection closes first.
    """

    def __init__(self, protocol: Any, channel: Any, diagnosis: _Diagnosis) -> None:
        self._protocol = protocol
        self._channel = channel
        self._diagnosis = diagnosis
        self._unconfirmed = 0
        self._probe: Any = None
        self._awaiting_answer: list[Deferred[None]] = []
        self._question_out = False
        self._settled_waiters: list[Deferred[None]] = []
        self._lost_waiters: list[Deferred[None]] = []
        self.lost_reason: str | None = None
        """Why the connection closed, once it has."""
        # pika pins a Basic.Return on whichever message the next Basic.Ack
        # covers, which need not be the returned one when acks arrive for
        # several messages at once. Returns are matched here instead, by
        # routing key and message id, oldest first.
        self._returnable: dict[tuple[str, str], deque[Deferred[None]]] = {}
        channel.add_on_return_callback(self._returned)
        channel.on_closed.addCallback(self._channel_closed)
        protocol.closed.addCallback(self._connection_closed)

    @property
    def unconfirmed(self) -> int:
        """Messages published and not yet confirmed, returned or failed."""
        return self._unconfirmed

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        content_type: str,
        message_id: str,
        headers: dict[str, str] | None = None,
        message_type: str | None = None,
        reply_to: str | None = None,
        correlation_id: str | None = None,
        expiration: float | None = None,
    ) -> Deferred[None]:
        """Publish one message; fires once the broker confirms it, and fails
        with :class:`ReturnedError` when no queue takes it. *expiration* is
        the seconds the broker keeps it in a queue.

        The Deferred is this channel's to fire: cancelling it is not supported.
        """
        confirmed: Deferred[None] = Deferred()
        key = (routing_key, message_id)
        self._returnable.setdefault(key, deque()).append(confirmed)
        self._unconfirmed += 1
        properties = pika.BasicProperties(
            content_type=content_type,
            delivery_mode=PERSISTENT,
            message_id=message_id,
            headers=headers,
            type=message_type,
            reply_to=reply_to,
            correlation_id=correlation_id,
            expiration=None if expiration is None else str(round(expiration * 1000)),
        )
        try:
            acked: Deferred[Any] = self._channel.basic_publish(
                exchange, routing_key, body, properties, mandatory=True
            )
        except Exception as error:  # the channel is closing
            acked = Deferred()
            acked.errback(error)
        acked.addBoth(self._settle, key, confirmed)
        return confirmed

    async def declare_queue(
        self,
        name: str,
        *,
        durable: bool = False,
        exclusive: bool = False,
        arguments: dict[str, object] | None = None,
    ) -> None:
        """Declare queue *name*, auto-deleted when *exclusive*."""
        await self._channel.queue_declare(
            name,
            durable=durable,
            exclusive=exclusive,
            auto_delete=exclusive,
            arguments=arguments,
        )

    def bind(self, queue: str, exchange: str, routing_key: str) -> Deferred[None]:
        """Route the messages *exchange* gets for *routing_key* to *queue*;
        fires once the broker has.

        Binds are pipelined: each is sent without waiting for its answer,
        then one question about *queue* is answered only after the broker
        handled every bind sent before it (it would have closed the channel
        on a failed one). Thousands of binds cost a few round trips.
        """
        # pika's TwistedChannel always waits for the answer; its Channel
        # sends the bind with nowait when given no callback.
        self._channel._channel.queue_bind(queue, exchange, routing_key)
        done: Deferred[None] = Deferred()
        self._awaiting_answer.append(done)
        if not self._question_out:
            self._ask_after_binds(queue)
        return done

    def _ask_after_binds(self, queue: str) -> None:
        waiters, self._awaiting_answer = self._awaiting_answer, []
        self._question_out = True
        asked: Deferred[Any] = self._channel.queue_declare(queue, passive=True)
        asked.addBoth(self._answered, waiters, queue)

    def _answered(
        self, result: object, waiters: list[Deferred[None]], queue: str
    ) -> None:
        self._question_out = False
        for waiter in waiters:
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(None)
        if self._awaiting_answer:
            self._ask_after_binds(queue)

    async def unbind(self, queue: str, exchange: str, routing_key: str) -> None:
        """Undo :meth:`bind`."""
        await self._channel.queue_unbind(queue, exchange, routing_key)

    async def consume(
        self, queue: str, on_delivery: Callable[[Delivery], None], *, prefetch: int
    ) -> None:
        """Hand each message of *queue* to *on_delivery*, acknowledging it
        once handed; at most *prefetch* messages are on their way at once.
        Returns once consuming; stops when the connection goes."""
        await self._channel.basic_qos(prefetch_count=prefetch)
        arrivals, _ = await self._channel.basic_consume(queue)
        # The loop ends when the channel closes, which lost() reports.
        Deferred.fromCoroutine(self._hand_over(arrivals, on_delivery)).addErrback(
            lambda _: None
        )

    async def _hand_over(
        self, arrivals: Any, on_delivery: Callable[[Delivery], None]
    ) -> None:
        while True:
            message = await arrivals.get()
            try:
                on_delivery(_delivery(message))
            except Exception:
                _log.failure("handling a message from RabbitMQ")
            self._channel.basic_ack(message.method.delivery_tag)

    async def queue_length(self, queue: str) -> int | None:
        """The number of messages in *queue*; None if there is no such queue.

        Asked on a second channel, kept for the next question: the broker
        closes a channel that asks about a missing queue.
        """
        if self._probe is None or not self._probe.is_open:
            self._probe = await self._protocol.channel()
        try:
            declared = await self._probe.queue_declare(queue, passive=True)
        except ChannelClosedByBroker as error:
            if error.reply_code == NOT_FOUND:
                return None
            raise
        count: int = declared.method.message_count
        return count

    async def get(self, queue: str) -> Delivery | None:
        """Take the next message of *queue*, acknowledged; None if empty.
        One get at a time on a channel."""
        message = await self._channel.basic_get(queue)
        if message is None:
            return None
        self._channel.basic_ack(message.method.delivery_tag)
        return _delivery(message)

    def settled(self) -> Deferred[None]:
        """Fires once no message awaits its confirm (at once if none does)."""
        if not self._unconfirmed:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._settled_waiters.append(waiter)
        return waiter

    def lost(self) -> Deferred[None]:
        """Fires once the connection is closed, for whatever reason."""
        if self.lost_reason is not None:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._lost_waiters.append(waiter)
        return waiter

    def close(self) -> Deferred[None]:
        """Close the connection politely; fires once it is closed."""
        if self._protocol.is_open:
            self._protocol.close()
        return self.lost()

    def abort(self) -> None:
        """Drop the connection at once."""
        if self._protocol.transport is not None:
            self._protocol.transport.abortConnection()

    def _settle(
        self, result: object, key: tuple[str, str], confirmed: Deferred[None]
    ) -> None:
        self._unconfirmed -= 1
        waiting = self._returnable[key]
        waiting.remove(confirmed)
        if not waiting:
            del self._returnable[key]
        if not confirmed.called:
            # An UnroutableError is an ack that pika blamed for a return:
            # _returned has already failed the message that was returned.
            if isinstance(result, Failure) and result.check(NackError):
                confirmed.errback(
                    RefusedError("the broker nacked the message: it could not take it")
                )
            elif isinstance(result, Failure) and not result.check(UnroutableError):
                confirmed.errback(PublishError(self._explain(result)))
            else:
                confirmed.callback(None)
        if not self._unconfirmed:
            waiters, self._settled_waiters = self._settled_waiters, []
            for waiter in waiters:
                waiter.callback(None)

    def _explain(self, failure: Failure) -> str:
        error = failure.value
        assert error is not None
        if isinstance(error, ChannelClosedByBroker):
            return f"the broker closed the channel: {self._diagnosis.explain(error)}"
        return (
            "the connection closed before the broker confirmed the message: "
            + self._diagnosis.explain(error)
        )

    def _returned(self, message: Any) -> None:
        method = message.method
        key = (method.routing_key, message.properties.message_id)
        waiting = [d for d in self._returnable.get(key, ()) if not d.called]
        if waiting:
            waiting[0].errback(
                ReturnedError(
                    f"the broker returned the message ({method.reply_code} "
                    f"{method.reply_text}): no queue bound to exchange "
                    f"{method.exchange!r} takes routing key {method.routing_key!r}"
                )
            )

    def _channel_closed(self, reason: BaseException) -> None:
        # A channel closed by the broker (a failed publish to a deleted
        # exchange, say) leaves a useless connection: close it too.
        if self._protocol.is_open:
            self._protocol.close()

    def _connection_closed(self, reason: BaseException) -> None:
        self.lost_reason = self._diagnosis.explain(reason)
        waiters, self._lost_waiters = self._lost_waiters, []
        for waiter in waiters:
            waiter.callback(None)
