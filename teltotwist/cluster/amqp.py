# -*- test-case-name: tests.test_cluster_amqp -*-
"""The cluster over RabbitMQ: :class:`AmqpBus`, one gateway instance's link
to the others through a broker they share.

On one direct exchange (named after the *prefix*, ``teltotwist.cluster`` by
default) each member has an exclusive queue, ``PREFIX.member.ID``, bound
with ``member.ID``, ``all`` and ``imei.IMEI`` for each IMEI it binds: the
broker itself routes a message to the member holding a tracker, and returns
it when none does. Parked messages wait, persistent, in a durable queue per
IMEI (``PREFIX.parked.IMEI``) that the broker deletes once unused for
longer than any message may wait in it.

The bus keeps one connection, reconnecting with backoff; after a reconnect
it declares its queue and binds every IMEI again. While it has no
connection it is not ready and every call fails at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine, Mapping
from contextlib import suppress
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import attrs
from twisted.internet.defer import (
    Deferred,
    DeferredLock,
    fail,
    gatherResults,
)
from twisted.internet.interfaces import (
    IReactorTime,
)
from zope.interface import implementer

from teltotwist.cluster.bus import ClusterBusError, Envelope, IClusterBus, Receiver
from teltotwist.cluster.router import ParkingFullError, ParkingLimits
from teltotwist.sinks._amqp_link import RETRY_POLICY, AmqpLink
from teltotwist.sinks._amqp_settings import MAX_ROUTING_KEY, Broker, parse_broker_url

if TYPE_CHECKING:
    from teltotwist.sinks._amqp_channel import ConfirmedChannel, Delivery

T = TypeVar("T")
Action = Callable[["ConfirmedChannel"], Coroutine[Any, Any, T]]
"""What the bus does on its channel, once it checked it has one."""

PASSWORD_VARIABLE = "TELTOTWIST_CLUSTER_PASSWORD"
"""The environment variable holding the password when the URL has none."""
DEFAULT_PREFIX = "teltotwist.cluster"
MAX_PREFIX = 128
"""Bytes in a prefix: the queue names built on it stay within AMQP's 255."""
MAX_PARKED_TIME = 31 * 24 * 3600.0
"""Seconds a message may stay parked, and an unused parked queue lives."""


class ClusterConfigurationError(ValueError):
    """A ``--cluster`` URL the bus cannot use; the message says why."""


@attrs.frozen
class AmqpBusSettings:
    """Where the cluster's broker is, and the prefix of its names there."""

    broker: Broker
    prefix: str = DEFAULT_PREFIX

    @property
    def url(self) -> str:
        """The URL without the password, for logs."""
        return f"{self.broker.url}?prefix={quote(self.prefix, safe='')}"


def parse_cluster_url(url: str, environment: Mapping[str, str]) -> AmqpBusSettings:
    """The settings of ``--cluster amqp://USER@HOST:PORT/VHOST?prefix=NAME``,
    the password from :data:`PASSWORD_VARIABLE` when the URL has none.

    :raises ClusterConfigurationError: saying what is wrong, never quoting
        the password.
    """
    try:
        broker, options = parse_broker_url(
            url,
            environment,
            password_variable=PASSWORD_VARIABLE,
            known_options=("prefix",),
            user="--cluster",
            example="--cluster amqp://teltotwist@rabbitmq.example/",
        )
    except ValueError as error:  # the broker part's SinkConfigurationError
        raise ClusterConfigurationError(str(error)) from None
    prefix = options.get("prefix", DEFAULT_PREFIX)
    if not prefix or len(prefix.encode()) > MAX_PREFIX:
        raise ClusterConfigurationError(
            f"the cluster's prefix must be 1 to {MAX_PREFIX} bytes long"
        )
    return AmqpBusSettings(broker, prefix)


@implementer(IClusterBus)
class AmqpBus:
    """One member of a cluster over RabbitMQ (see the module's docstring).

    What survives a broker restart: parked messages (persistent, in durable
    queues). Bindings live with the member's exclusive queue: the member
    makes them again when it reconnects.
    """

    def __init__(
        self,
        settings: AmqpBusSettings,
        member_id: str,
        reactor: IReactorTime,
        *,
        retry_policy: Callable[[int], float] = RETRY_POLICY,
        connect_timeout: float = 15.0,
        stop_timeout: float = 5.0,
        max_unconfirmed: int = 10_000,
        prefetch: int = 256,
        parking: ParkingLimits = ParkingLimits(),
        max_parked_time: float = MAX_PARKED_TIME,
    ) -> None:
        """
        :param retry_policy: seconds to wait before reconnecting, from the
            number of failed attempts in a row.
        :param connect_timeout: seconds for a connection attempt, until the
            broker took the login (binding every IMEI again may take longer).
        :param stop_timeout: seconds ``stop`` waits for the broker to confirm
            what is in flight, then to close the connection.
        :param max_unconfirmed: messages that may await the broker's confirm;
            past that, sends fail at once.
        :param prefetch: messages the broker may send ahead of the receiver.
        :param parking: ``per_imei`` bounds each parked queue (a park beyond
            it fails); the broker's own limits bound them in all.
        :param max_parked_time: the longest TTL of a parked message, and how
            long a parked queue lives unused. Every member of a cluster must
            use the same (the broker refuses to declare a queue again with
            other arguments).
        """
        queue = f"{settings.prefix}.member.{member_id}"
        if len(queue.encode()) > MAX_ROUTING_KEY:
            raise ValueError(f"member id {member_id!r} is too long for a queue name")
        self.settings = settings
        self.member_id = member_id
        self._reactor = reactor
        self._connect_timeout = connect_timeout
        self._max_unconfirmed = max_unconfirmed
        self._prefetch = prefetch
        self._parked_arguments: dict[str, object] = {
            "x-expires": round(max_parked_time * 1000),
            "x-max-length": parking.per_imei,
            "x-overflow": "reject-publish",
        }
        self._parking = parking
        self._max_parked_time = max_parked_time
        self._queue = queue
        self._bound: set[str] = set()
        self._receiver: Receiver | None = None
        self._endpoint = settings.broker.endpoint(reactor, connect_timeout)
        self._joined: list[Deferred[None]] = []
        self._one_get_at_a_time = DeferredLock()
        self._link = AmqpLink(
            f"cluster member {member_id} at {settings.url}",
            reactor,
            self._join,
            on_open=self._opened,
            retry_policy=retry_policy,
            stop_timeout=stop_timeout,
        )

    @property
    def ready(self) -> bool:
        """True while connected, with this member's queue bound and consumed."""
        return self._link.channel is not None

    @property
    def exchange(self) -> str:
        return self.settings.prefix

    def start(self, receiver: Receiver) -> Deferred[None]:
        """Connect, and keep connecting until stopped; fires once joined the
        first time (it may take several attempts)."""
        if self._receiver is not None:
            return fail(ClusterBusError(f"member {self.member_id} is started already"))
        self._receiver = receiver
        joined: Deferred[None] = Deferred()
        self._joined.append(joined)
        self._link.start()
        return joined

    def stop(self) -> Deferred[None]:
        """Stop reconnecting and close the connection (once the broker
        confirmed what is in flight, or a few seconds passed): the broker
        deletes this member's queue, and its bindings with it."""
        self._receiver = None
        joined, self._joined = self._joined, []
        for waiter in joined:
            waiter.errback(ClusterBusError(f"member {self.member_id} was stopped"))
        return self._link.stop()

    def bind(self, imei: str) -> Deferred[None]:
        """Bind *imei* to this member. While disconnected it fails, yet the
        IMEI is bound once reconnected, as every IMEI bound is."""
        self._bound.add(imei)

        async def bind(channel: ConfirmedChannel) -> None:
            await channel.bind(self._queue, self.exchange, f"imei.{imei}")

        return self._on_channel(bind)

    def unbind(self, imei: str) -> Deferred[None]:
        self._bound.discard(imei)
        return self._on_channel(
            lambda channel: channel.unbind(self._queue, self.exchange, f"imei.{imei}")
        )

    def send_to_tracker(self, imei: str, envelope: Envelope) -> Deferred[bool]:
        """Fires with False when the broker returns the message: no member's
        queue is bound to the IMEI."""
        from teltotwist.sinks._amqp_channel import ReturnedError  # noqa: PLC0415

        async def send(channel: ConfirmedChannel) -> bool:
            try:
                await self._publish(channel, self.exchange, f"imei.{imei}", envelope)
            except ReturnedError:
                return False
            return True

        return self._on_channel(send)

    def send_to_member(self, member_id: str, envelope: Envelope) -> Deferred[None]:
        """A message for a member that left is dropped, as it would be had
        the member left just after receiving it."""
        return self._send_to_members(f"member.{member_id}", envelope)

    def broadcast(self, envelope: Envelope) -> Deferred[None]:
        return self._send_to_members("all", envelope)

    def park(self, imei: str, envelope: Envelope, ttl: float) -> Deferred[None]:
        """Kept persistent in a durable queue: it survives a broker restart.

        :raises ParkingFullError: (through the Deferred) when the IMEI's
            queue holds ``parking.per_imei`` messages already.
        """
        if not 0 < ttl <= self._max_parked_time:
            return fail(
                ValueError(
                    f"ttl must be above 0 and at most {self._max_parked_time:g} s"
                )
            )
        from teltotwist.sinks._amqp_channel import RefusedError  # noqa: PLC0415

        async def park(channel: ConfirmedChannel) -> None:
            queue = self._parked_queue(imei)
            await channel.declare_queue(
                queue, durable=True, arguments=self._parked_arguments
            )
            try:
                await self._publish(channel, "", queue, envelope, expiration=ttl)
            except RefusedError:
                raise ParkingFullError(
                    f"{self._parking.per_imei} messages are parked for {imei} already"
                ) from None

        return self._on_channel(park)

    def collect(self, imei: str) -> Deferred[list[Envelope]]:
        """Takes the IMEI's parked messages one by one, each acknowledged as
        taken: the broker hands each to one collector only."""

        async def collect(channel: ConfirmedChannel) -> list[Envelope]:
            queue = self._parked_queue(imei)
            collected: list[Envelope] = []
            await self._one_get_at_a_time.acquire()
            try:
                if await channel.queue_length(queue):
                    while (delivery := await channel.get(queue)) is not None:
                        collected.append(_envelope(delivery))
            finally:
                self._one_get_at_a_time.release()
            return collected

        return self._on_channel(collect)

    def _parked_queue(self, imei: str) -> str:
        return f"{self.settings.prefix}.parked.{imei}"

    def _send_to_members(self, routing_key: str, envelope: Envelope) -> Deferred[None]:
        from teltotwist.sinks._amqp_channel import ReturnedError  # noqa: PLC0415

        async def send(channel: ConfirmedChannel) -> None:
            with suppress(ReturnedError):
                await self._publish(channel, self.exchange, routing_key, envelope)

        return self._on_channel(send)

    async def _publish(
        self,
        channel: ConfirmedChannel,
        exchange: str,
        routing_key: str,
        envelope: Envelope,
        expiration: float | None = None,
    ) -> None:
        if channel.unconfirmed >= self._max_unconfirmed:
            raise ClusterBusError(
                f"{channel.unconfirmed} messages to {self.settings.url} await the "
                "broker's confirm: the broker is slow or unreachable"
            )
        await channel.publish(
            exchange,
            routing_key,
            envelope.body,
            content_type="application/json",
            message_id=uuid.uuid4().hex,
            message_type=envelope.kind,
            reply_to=envelope.sender,
            correlation_id=envelope.correlation,
            expiration=expiration,
        )

    def _on_channel(self, action: Action[T]) -> Deferred[T]:
        """Run *action* on the channel, as a Deferred failing with a
        :class:`ClusterBusError` when not connected or when the broker fails
        it."""
        channel = self._link.channel
        if channel is None:
            return fail(ClusterBusError(self._why_not_ready()))
        return Deferred.fromCoroutine(self._run(channel, action))

    async def _run(self, channel: ConfirmedChannel, action: Action[T]) -> T:
        from teltotwist.sinks._amqp_channel import PublishError  # noqa: PLC0415

        try:
            return await action(channel)
        except (ClusterBusError, ValueError):
            raise
        except PublishError as error:
            raise ClusterBusError(str(error)) from error
        except Exception as error:
            raise ClusterBusError(
                f"RabbitMQ at {self.settings.url} failed: {error}"
            ) from error

    def _why_not_ready(self) -> str:
        if self._receiver is None:
            return f"member {self.member_id} is not started"
        return (
            f"member {self.member_id} is not connected to {self.settings.url} "
            f"(reconnecting in the background): {self._link.status}"
        )

    async def _join(self) -> ConfirmedChannel:
        # Imported here: it imports pika's Twisted adapter, which installs the
        # default reactor if twistd has not installed its own yet.
        from teltotwist.sinks._amqp_channel import open_channel  # noqa: PLC0415

        channel = await open_channel(
            self._endpoint,
            self._reactor,
            broker=self.settings.broker,
            exchange=self.exchange,
            declare=True,
            exchange_type="direct",
            timeout=self._connect_timeout,  # not binding: it takes what it takes
        )
        try:
            await channel.declare_queue(self._queue, exclusive=True)
            for routing_key in (f"member.{self.member_id}", "all"):
                await channel.bind(self._queue, self.exchange, routing_key)
            await self._bind_again(channel)
            await channel.consume(self._queue, self._delivered, prefetch=self._prefetch)
        except BaseException:
            channel.abort()
            raise
        return channel

    async def _bind_again(self, channel: ConfirmedChannel) -> None:
        """Bind every IMEI bound, those bound meanwhile included; unbind
        those unbound meanwhile."""
        done: set[str] = set()
        while todo := self._bound - done:
            await gatherResults(
                [
                    channel.bind(self._queue, self.exchange, f"imei.{imei}")
                    for imei in todo
                ]
            )
            done |= todo
        for imei in done - self._bound:
            await channel.unbind(self._queue, self.exchange, f"imei.{imei}")

    def _delivered(self, delivery: Delivery) -> None:
        if self._receiver is not None:
            self._receiver(_envelope(delivery))

    def _opened(self, channel: ConfirmedChannel) -> None:
        joined, self._joined = self._joined, []
        for waiter in joined:
            waiter.callback(None)


def _envelope(delivery: Delivery) -> Envelope:
    return Envelope(
        kind=delivery.message_type or "",
        body=delivery.body,
        sender=delivery.reply_to or "",
        correlation=delivery.correlation_id,
    )
