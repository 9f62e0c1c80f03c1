# -*- test-case-name: tests.test_sinks_registry -*-
"""teltotwist's built-in sink kinds for ``--sink KIND:ARG``: ``log`` and ``file``.

Twisted imports this module on every plugin scan, so it stays light: each
sink's module is imported only when a sink of that kind is made.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

import attrs
from twisted.plugin import IPlugin
from zope.interface import implementer

from teltotwist.sinks.interfaces import IRecordSink, ISinkFactory


@implementer(IPlugin, ISinkFactory)
@attrs.frozen
class _LazySinkFactory:
    kind: str
    description: str
    import_path: str
    """``module:function``, the function making a sink from ARG."""

    def make_sink(self, argument: str) -> IRecordSink:
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
