# -*- test-case-name: tests.test_sinks_registry -*-
"""Sinks: where the gateway delivers records, chosen with ``--sink KIND:ARG``."""

from teltotwist.sinks.interfaces import (
    IRecordSink,
    ISinkFactory,
    ISinkReadiness,
    ISinkStatus,
    SinkConfigurationError,
)

__all__ = [
    "IRecordSink",
    "ISinkFactory",
    "ISinkReadiness",
    "ISinkStatus",
    "SinkConfigurationError",
]
