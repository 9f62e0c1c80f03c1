# -*- test-case-name: tests.test_sinks_log -*-
"""The ``log`` sink: every item as one JSON line in the gateway's log.

The default sink, so ``twistd -n teltonika`` shows records as they arrive.
It keeps nothing itself: the log is as durable as wherever twistd writes it.
"""

from __future__ import annotations

from collections.abc import Sequence

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from zope.interface import implementer

from teltotwist.gateway.items import Item, json_line
from teltotwist.sinks.interfaces import IRecordSink, SinkConfigurationError

records_log = Logger(namespace="teltotwist.records")
"""Not a class attribute: on a class, a Logger takes the class's name."""


@implementer(IRecordSink)
class LogSink:
    """Logs each item's record JSON at level info, namespace ``teltotwist.records``."""

    name = "log"

    def deliver(self, items: Sequence[Item]) -> Deferred[None]:
        for item in items:
            records_log.info("{record_json}", record_json=json_line(item).decode())
        return succeed(None)


def sink_from_argument(argument: str) -> LogSink:
    """The sink of ``--sink log``; ``log`` takes no ARG."""
    if argument:
        raise SinkConfigurationError(
            f"the log sink takes no argument: use --sink log, not --sink log:{argument}"
        )
    return LogSink()
