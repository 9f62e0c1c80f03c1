# -*- test-case-name: tests.test_sinks_registry -*-
"""Sink kinds are Twisted plugins: ``--sink KIND:ARG`` to a sink.

Each kind is an object providing :class:`ISinkFactory` in a module of a
``twisted/plugins/`` directory (without ``__init__.py``) on ``sys.path``.
teltotwist ships ``log`` and ``file`` that way; another package adds a kind
by shipping such a module in its own ``twisted/plugins/``.
"""

from __future__ import annotations

from twisted.logger import Logger
from twisted.plugin import getPlugins

from teltotwist.sinks.interfaces import (
    IRecordSink,
    ISinkFactory,
    SinkConfigurationError,
)

log = Logger()


def sink_factories() -> dict[str, ISinkFactory]:
    """Every installed sink plugin by kind; for a kind offered twice, the
    first found (in ``sys.path`` order) wins."""
    factories: dict[str, ISinkFactory] = {}
    for factory in getPlugins(ISinkFactory):  # from twisted.plugins
        kind = factory.kind
        first = factories.setdefault(kind, factory)
        if first is not factory:
            log.warn(
                "Ignoring sink plugin {ignored!r}: kind {kind!r} is already "
                "provided by {first!r}",
                ignored=factory,
                kind=kind,
                first=first,
            )
    return factories


def make_sink(spec: str) -> IRecordSink:
    """The sink for ``--sink`` *spec*: ``KIND:ARG``, or ``KIND`` alone.

    :raises SinkConfigurationError: for an unknown KIND (the message lists
        the known ones), or an ARG the kind's factory does not accept.
    """
    kind, _, argument = spec.partition(":")
    factories = sink_factories()
    factory = factories.get(kind)
    if factory is None:
        available = "\n".join(
            f"  {name}: {factories[name].description}" for name in sorted(factories)
        )
        raise SinkConfigurationError(
            f"unknown sink kind {kind!r} in {spec!r}; the available kinds are:\n"
            f"{available}"
        )
    return factory.make_sink(argument)
