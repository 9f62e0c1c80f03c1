# -*- test-case-name: tests.test_sinks_registry -*-
"""teltotwist's built-in sink kinds for ``--sink KIND:ARG``.

Twisted imports this module on every plugin scan, so it stays light: each
sink's module is imported only when a sink of that kind is made.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from importlib.util import find_spec

import attrs
from twisted.plugin import IPlugin
from zope.interface import implementer

from teltotwist.sinks.interfaces import (
    IRecordSink,
    ISinkFactory,
    SinkConfigurationError,
)


@implementer(IPlugin, ISinkFactory)
@attrs.frozen
class _LazySinkFactory:
    kind: str
    description: str
    import_path: str
    """``module:function``, the function making a sink from ARG."""
    extra: str | None = None
    """The pip extra that brings the client library, when one is needed."""
    requires: tuple[str, ...] = ()
    """Top-level modules that extra installs."""

    def make_sink(self, argument: str) -> IRecordSink:
        missing = [name for name in self.requires if find_spec(name) is None]
        if missing:
            raise SinkConfigurationError(
                f"the {self.kind} sink needs {', '.join(missing)}: "
                f"pip install 'teltotwist[{self.extra}]'"
            )
        module_name, _, function_name = self.import_path.partition(":")
        make: Callable[[str], IRecordSink] = getattr(
            import_module(module_name), function_name
        )
        return make(argument)


log = _LazySinkFactory(
    "log",
    "each record as a JSON line in the gateway's log; takes no ARG",
    "teltotwist.sinks.log:sink_from_argument",
)
file = _LazySinkFactory(
    "file",
    "ARG is a path: each record appended to it as a JSON line, fsynced before the ACK",
    "teltotwist.sinks.file:sink_from_argument",
)
webhook = _LazySinkFactory(
    "webhook",
    "ARG is an http(s) URL: each packet's records POSTed as a JSON array, "
    "accepted on 2xx; TELTOTWIST_WEBHOOK_SECRET adds an HMAC-SHA256 signature",
    "teltotwist.sinks.webhook:sink_from_argument",
)
amqp = _LazySinkFactory(
    "amqp",
    "ARG is amqp://user:password@host:port/vhost?exchange=...&routing_key=...: "
    "persistent messages, accepted on publisher confirm",
    "teltotwist.sinks.amqp:sink_from_argument",
    extra="amqp",
    requires=("pika",),
)
mqtt = _LazySinkFactory(
    "mqtt",
    "ARG is mqtt://host:port?topic=teltonika/{imei}/{kind}: QoS 1, accepted on PUBACK",
    "teltotwist.sinks.mqtt:sink_from_argument",
    extra="mqtt",
    requires=("paho",),
)
postgresql = _LazySinkFactory(
    "postgresql",
    "ARG is postgresql://user@host:port/db?table=teltonika_records: one row per "
    "record, accepted once committed; resends are skipped by id",
    "teltotwist.sinks.postgresql:sink_from_argument",
    extra="postgresql",
    requires=("psycopg",),
)
