# -*- test-case-name: tests.test_sinks_registry -*-
"""The interfaces a sink, and a plugin that makes sinks, provide."""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from zope.interface import Attribute, Interface

if TYPE_CHECKING:
    # Only for annotations: twistd imports this module on every plugin scan.
    from twisted.internet.defer import Deferred

    from teltotwist.gateway.items import Item


class IRecordSink(Interface):
    """Somewhere records are kept: a file, a broker, an HTTP endpoint ...

    A sink that needs to connect or flush may also provide
    ``twisted.application.service.IService``; the gateway then starts it
    before listening and stops it after the last delivery.
    """

    name = Attribute("A short label for logs, such as ``file:/var/lib/t.jsonl``.")

    def deliver(items: Sequence[Item]) -> Deferred[None] | Coroutine[Any, Any, None]:
        """Keep *items*, a sequence of :data:`teltotwist.gateway.items.Item`.

        :returns: a ``Deferred`` (or, from an ``async def deliver``, a
            coroutine) that fires once every item is durably accepted
            (written and flushed, HTTP 2xx, broker confirm ...) and fails
            otherwise. Only then is the tracker acknowledged; returning
            anything else, or raising, fails the delivery. The gateway
            cancels it when the sink timeout expires or another sink failed:
            a sink must tolerate that (abandon or finish the work; either is
            safe, since an unacknowledged packet is resent and consumers
            upsert on ``id``), and end it soon, since shutdown waits for it.
        """


class ISinkReadiness(Interface):
    """A sink that is not ready the moment it starts: it connects to a broker
    first, say. The gateway listens once every such sink is ready, or after
    ``--sink-ready-timeout`` seconds. A sink without it is ready at once.
    """

    ready = Attribute(
        "Whether the sink could accept a delivery now (a ``bool``, e.g. for a "
        "readiness probe)."
    )

    def whenReady() -> Deferred[None]:
        """A ``Deferred`` that fires once the sink is ready (at once if it is
        now), like ``ClientService.whenConnected``. Cancelling it stops the
        wait, never the sink."""


class ISinkStatus(Interface):
    """A sink with :class:`ISinkReadiness` that can say why it is not ready;
    ``/readyz`` shows it."""

    status = Attribute(
        "One line without secrets: why the sink is not ready now (e.g. "
        "``not connected to ...: the last attempt failed: ...``), or what it "
        "is doing while ready."
    )


class ISinkFactory(Interface):
    """A Twisted plugin that makes sinks of one kind from ``--sink KIND:ARG``.

    Third parties add a kind by shipping a module in their own
    ``twisted/plugins/`` directory with an object providing this interface.
    """

    kind = Attribute("The KIND of ``--sink KIND:ARG``, e.g. ``file``.")
    description = Attribute("One line for ``--help``, including what ARG is.")

    def make_sink(argument: str) -> IRecordSink:
        """A new :class:`IRecordSink` for *argument* (the text after ``KIND:``).

        :raises SinkConfigurationError: when *argument* is not usable.
        """


class SinkConfigurationError(ValueError):
    """A ``--sink`` argument that does not make a sink; the message says why."""
