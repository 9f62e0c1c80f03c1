# -*- test-case-name: tests.test_sinks_mqtt -*-
"""The ``mqtt`` sink: one QoS 1 message per record, accepted on PUBACK.

paho-mqtt keeps the connection in a thread of its own and reconnects with
backoff. Its callbacks only hand events to the reactor thread, where all of
the sink's state lives: a delivery fires once the broker acknowledged each
of its messages, and fails as soon as the connection is lost before that.
"""

from __future__ import annotations

import os
import ssl
import sys
from collections.abc import Callable, Sequence
from typing import Any, cast

from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, error_string
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.defer import TimeoutError as DeferredTimeoutError
from twisted.internet.interfaces import IReactorThreads, IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from zope.interface import implementer

from teltotwist.gateway.items import Item, json_line
from teltotwist.sinks._mqtt_reconnect import ReconnectSchedule
from teltotwist.sinks._mqtt_url import (
    DEFAULT_TOPIC,
    PASSWORD_VARIABLE,
    MqttSettings,
    settings_from_url,
)
from teltotwist.sinks.interfaces import IRecordSink, ISinkReadiness, ISinkStatus
from teltotwist.sinks.readiness import (
    ReadyWaiters,
    ReadyWhileConnected,
    not_running,
    reconnecting,
)

__all__ = [
    "DEFAULT_TOPIC",
    "PASSWORD_VARIABLE",
    "MqttSettings",
    "MqttSink",
    "MqttSinkError",
    "settings_from_url",
    "sink_from_argument",
]

MAX_UNACKNOWLEDGED = 10_000
"""Messages that may await their PUBACK at once; deliveries beyond fail."""
_NO_MATCHING_SUBSCRIBERS = 0x10


class MqttSinkError(Exception):
    """The broker did not acknowledge the records: the sink is not running or
    not connected, the connection was lost, or the broker refused them."""


class _Reactor(IReactorThreads, IReactorTime):
    """What the sink needs of the reactor."""


class _Delivery:
    """The messages of one ``deliver()`` call awaiting their PUBACK."""

    def __init__(self, forget: Callable[[_Delivery], None]) -> None:
        self.topics: dict[int, str] = {}
        """Message id to topic, for each message not yet acknowledged."""
        self.done: Deferred[None] = Deferred(lambda _: forget(self))


@implementer(IRecordSink, ISinkReadiness, ISinkStatus)
class MqttSink(ReadyWhileConnected, Service):
    """Publishes each item's record JSON to the broker of *settings*.

    A service: it connects on start and keeps reconnecting; on stop it waits
    up to *drain_timeout* seconds for the PUBACKs still due, then
    disconnects.
    """

    log = Logger()

    def __init__(
        self, settings: MqttSettings, reactor: _Reactor, drain_timeout: float = 5.0
    ) -> None:
        self.settings = settings
        self.name = settings.url
        self.drain_timeout = drain_timeout
        self._reactor = reactor
        self._client: Client | None = None
        self._connected = False
        self._problem: tuple[str, str | None] = ("the first attempt is under way", None)
        """What went wrong, and the reason given, if any."""
        self._retry_at: float | None = None
        """When paho tries again (reactor time), once an attempt failed."""
        self._refusal: str | None = None
        self._warned_unsubscribed = False
        self._awaiting: dict[int, _Delivery] = {}
        self._drained: list[Deferred[None]] = []
        self._ready_waiters = ReadyWaiters()

    @property
    def connected(self) -> bool:
        """Whether the broker accepted the connection and it is still up."""
        return self._connected

    def startService(self) -> None:
        """Connect in paho's thread; deliveries fail until connected."""
        settings = self.settings
        version5 = settings.version == "5"
        client = Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=(
                MQTTProtocolVersion.MQTTv5 if version5 else MQTTProtocolVersion.MQTTv311
            ),
            clean_session=None if version5 else True,
        )
        if settings.username is not None:
            client.username_pw_set(settings.username, settings.password)
        if settings.tls:
            client.tls_set_context(ssl.create_default_context())
        client.max_queued_messages_set(MAX_UNACKNOWLEDGED)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        clean_start: dict[str, Any] = {"clean_start": True} if version5 else {}
        client.connect_async(
            settings.host, settings.port, settings.keepalive, **clean_start
        )
        client.user_data_set(ReconnectSchedule(client))  # for paho's thread
        client.loop_start()
        self._client = client
        Service.startService(self)

    def stopService(self) -> Deferred[None]:
        """Refuse new deliveries; disconnect once the due PUBACKs came in, or
        after *drain_timeout* seconds (failing the deliveries still waiting)."""
        Service.stopService(self)
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        if self._awaiting:
            drained: Deferred[None] = Deferred(self._drained.remove)
            self._drained.append(drained)
            drained.addTimeout(self.drain_timeout, self._reactor)
            try:
                await drained
            except DeferredTimeoutError:
                self._fail_all(
                    f"the sink stopped before the broker at {self.settings.address} "
                    f"acknowledged the records (waited {self.drain_timeout:g} s)"
                )
        client, self._client = self._client, None
        self._connected = False
        if client is not None:
            client.disconnect()
            await deferToThreadPool(
                self._reactor, self._reactor.getThreadPool(), client.loop_stop
            )

    def deliver(self, items: Sequence[Item]) -> Deferred[None]:
        client = self._client
        if not self.running or client is None:
            return fail(MqttSinkError(self._why_not_connected()))
        if not items:
            return succeed(None)
        if not self._connected:
            return fail(MqttSinkError(self._why_not_connected()))
        delivery = _Delivery(self._forget)
        for item in items:
            topic = self.settings.topic_for(item)
            message = client.publish(
                topic,
                json_line(item),
                qos=1,
                retain=False,
            )
            if message.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._forget(delivery)
                return fail(MqttSinkError(self._unpublished(topic, message.rc)))
            # Its PUBACK cannot be handled before this: paho's report of it
            # waits in the reactor's queue until deliver() has returned.
            delivery.topics[message.mid] = topic
            self._awaiting[message.mid] = delivery
        return delivery.done

    def _why_not_connected(self) -> str:
        if not self.running:
            return not_running(f"the MQTT sink for {self.name}")
        retry_in = (
            None if self._retry_at is None else self._retry_at - self._reactor.seconds()
        )
        trouble = reconnecting(*self._problem, retry_in)
        return (
            f"not connected to the MQTT broker at {self.settings.address} "
            f"(reconnecting in the background): {trouble}"
        )

    def _unpublished(self, topic: str, rc: MQTTErrorCode) -> str:
        if rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            reason = f"{MAX_UNACKNOWLEDGED} messages already await the broker's PUBACK"
        elif rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
            reason = f"the connection to {self.settings.address} was just lost"
        else:
            reason = error_string(rc)
        return f"could not publish to {topic}: {reason}"

    def _forget(self, delivery: _Delivery) -> None:
        """Stop waiting for *delivery*'s PUBACKs: it failed or was cancelled.
        Its messages may still reach the broker (a duplicate of the resend)."""
        for mid in delivery.topics:
            del self._awaiting[mid]
        delivery.topics.clear()
        self._check_drained()

    def _fail_all(self, reason: str) -> None:
        deliveries = {id(delivery): delivery for delivery in self._awaiting.values()}
        for delivery in deliveries.values():
            self._forget(delivery)
            delivery.done.errback(MqttSinkError(reason))

    def _check_drained(self) -> None:
        if not self._awaiting:
            drained, self._drained = self._drained, []
            for waiter in drained:
                waiter.callback(None)

    # paho's thread: hand everything over to the reactor thread.

    def _on_connect(
        self,
        client: Client,
        userdata: object,
        flags: ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if not reason.is_failure:
            _schedule(userdata).connected()
        self._reactor.callFromThread(self._connection_answered, client, reason)

    def _on_connect_fail(self, client: Client, userdata: object) -> None:
        # paho calls this while it handles the OSError of the attempt.
        error = sys.exception()
        reason = (error.strerror or str(error)) if isinstance(error, OSError) else None
        retry_in = _schedule(userdata).failed(raised=True)
        self._reactor.callFromThread(self._connection_failed, client, reason, retry_in)

    def _on_disconnect(
        self,
        client: Client,
        userdata: object,
        flags: DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        retry_in = _schedule(userdata).failed(raised=False)
        self._reactor.callFromThread(self._connection_lost, client, reason, retry_in)

    def _on_publish(
        self,
        client: Client,
        userdata: object,
        mid: int,
        reason: ReasonCode,
        properties: Properties,
    ) -> None:
        self._reactor.callFromThread(self._acknowledged, client, mid, reason)

    # The reactor thread. Events of a client the sink no longer uses are late
    # news about a connection whose deliveries were settled already.

    def _connection_answered(self, client: Client, reason: ReasonCode) -> None:
        if client is not self._client:
            return
        if reason.is_failure:
            self._refusal = str(reason)  # paho disconnects next
            return
        self._connected = True
        self._warned_unsubscribed = False
        self.log.info(
            "Connected to the MQTT broker at {address} as {client_id}",
            address=self.settings.address,
            client_id=self.settings.client_id,
        )
        self._ready_waiters.fire()

    def _connection_failed(
        self, client: Client, reason: str | None, retry_in: float
    ) -> None:
        if client is self._client:
            self._report_problem(("cannot connect", reason), retry_in)

    def _connection_lost(
        self, client: Client, reason: ReasonCode, retry_in: float
    ) -> None:
        if client is not self._client:
            return
        if self._connected:
            self._connected = False
            self._report_problem(("lost the connection", str(reason)), retry_in)
        elif self._refusal is not None:
            self._report_problem(
                ("the broker refused the connection", self._refusal), retry_in
            )
            self._refusal = None
        else:
            self._report_problem(("cannot connect", str(reason)), retry_in)
        self._fail_all(
            f"the connection to the MQTT broker at {self.settings.address} was "
            f"lost ({reason}) before it acknowledged the records"
        )

    def _report_problem(self, problem: tuple[str, str | None], retry_in: float) -> None:
        self._problem = problem
        self._retry_at = self._reactor.seconds() + retry_in
        self.log.warn(
            "MQTT broker at {address}: {problem}",
            address=self.settings.address,
            problem=reconnecting(*problem, retry_in),
        )

    def _acknowledged(self, client: Client, mid: int, reason: ReasonCode) -> None:
        if client is not self._client:
            return
        delivery = self._awaiting.pop(mid, None)
        if delivery is None:  # its delivery failed or was cancelled
            return
        topic = delivery.topics.pop(mid)
        if reason.is_failure:
            self._forget(delivery)
            delivery.done.errback(
                MqttSinkError(
                    f"the broker at {self.settings.address} refused the message "
                    f"on {topic}: {reason}"
                )
            )
            return
        if reason.value == _NO_MATCHING_SUBSCRIBERS and not self._warned_unsubscribed:
            self._warned_unsubscribed = True
            self.log.warn(
                "The MQTT broker at {address} has no subscriber for {topic}: it "
                "drops such records. Subscribe with a persistent session so the "
                "broker keeps them for you.",
                address=self.settings.address,
                topic=topic,
            )
        if not delivery.topics:
            delivery.done.callback(None)
        self._check_drained()


def _schedule(userdata: object) -> ReconnectSchedule:
    """The reconnect schedule of the client whose callback got *userdata*."""
    assert isinstance(userdata, ReconnectSchedule)
    return userdata


def sink_from_argument(argument: str) -> MqttSink:
    """The sink of ``--sink mqtt:URL``, on the global reactor."""
    settings = settings_from_url(argument, os.environ)
    # Imported here: importing it installs the default reactor, which must
    # not happen before twistd installs the one its --reactor option names.
    from twisted.internet import reactor  # noqa: PLC0415

    return MqttSink(settings, cast(_Reactor, reactor))
