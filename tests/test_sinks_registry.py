"""``--sink KIND:ARG`` to a sink, through Twisted's plugin scan."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import twisted.plugins
from twisted.application.service import IService
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.plugin import IPlugin
from zope.interface.verify import verifyObject

from teltotwist.sinks import IRecordSink, ISinkFactory, SinkConfigurationError
from teltotwist.sinks.file import FileSink
from teltotwist.sinks.log import LogSink
from teltotwist.sinks.registry import make_sink, sink_factories

ACME_PLUGIN = """
from twisted.internet.defer import succeed
from twisted.plugin import IPlugin
from zope.interface import implementer

from teltotwist.sinks import IRecordSink, ISinkFactory


@implementer(IRecordSink)
class AcmeSink:
    def __init__(self, name):
        self.name = name

    def deliver(self, items):
        return succeed(None)


@implementer(IPlugin, ISinkFactory)
class AcmeSinkFactory:
    def __init__(self, kind):
        self.kind = kind
        self.description = "ARG is a queue name at Acme"

    def make_sink(self, argument):
        return AcmeSink(self.kind + ":" + argument)


acme = AcmeSinkFactory({kind!r})
"""
"""A third party's ``twisted/plugins/`` module offering the sink kind {kind}."""

InstallPlugin = Callable[[str], None]


@pytest.fixture
def install_plugin(tmp_path: Path) -> Iterator[InstallPlugin]:
    """Installs a third party's sink plugin offering a given kind."""
    plugins = tmp_path / "twisted" / "plugins"
    plugins.mkdir(parents=True)
    module_names: list[str] = []

    def install(kind: str) -> None:
        module_name = f"acme_sinks_{kind}"
        source = ACME_PLUGIN.format(kind=kind)
        (plugins / f"{module_name}.py").write_text(source, encoding="utf-8")
        module_names.append(module_name)

    # What twisted/plugins/__init__.py does at import for each entry of sys.path.
    original_path = twisted.plugins.__path__
    twisted.plugins.__path__ = [*original_path, str(plugins)]
    yield install
    twisted.plugins.__path__ = original_path
    for module_name in module_names:
        sys.modules.pop(f"twisted.plugins.{module_name}", None)


def test_the_builtin_kinds_are_plugins() -> None:
    factories = sink_factories()

    assert {"log", "file"} <= set(factories)
    for kind in ("log", "file"):
        assert factories[kind].kind == kind
        assert verifyObject(ISinkFactory, factories[kind])
        assert verifyObject(IPlugin, factories[kind])


@pytest.mark.parametrize("spec", ["log", "log:"])
def test_log(spec: str) -> None:
    sink = make_sink(spec)

    assert isinstance(sink, LogSink)
    assert verifyObject(IRecordSink, sink)


def test_log_takes_no_argument() -> None:
    with pytest.raises(SinkConfigurationError, match="log sink takes no argument"):
        make_sink("log:verbose")


def test_file(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    sink = make_sink(f"file:{path}")

    assert isinstance(sink, FileSink)
    assert sink.path == str(path)
    assert sink.name == f"file:{path}"
    assert IService.providedBy(sink)
    assert not path.exists()  # created when the gateway starts the sink


@pytest.mark.parametrize("spec", ["file", "file:"])
def test_file_needs_a_path(spec: str) -> None:
    with pytest.raises(SinkConfigurationError, match="file sink needs a path"):
        make_sink(spec)


def test_file_needs_an_existing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    expected = f"directory {missing} does not exist"

    with pytest.raises(SinkConfigurationError, match=re.escape(expected)):
        make_sink(f"file:{missing}/records.jsonl")


def test_an_unknown_kind_lists_the_available_ones() -> None:
    factories = sink_factories()

    with pytest.raises(SinkConfigurationError) as raised:
        make_sink("kafka:localhost:9092")

    message = str(raised.value)
    assert message.startswith("unknown sink kind 'kafka' in 'kafka:localhost:9092'")
    for kind in ("log", "file"):
        assert f"\n  {kind}: {factories[kind].description}" in message


def test_a_third_party_kind_is_found(install_plugin: InstallPlugin) -> None:
    install_plugin("acme")

    sink = make_sink("acme:orders")

    assert sink.name == "acme:orders"
    assert "acme" in sink_factories()


def test_a_kind_offered_twice_is_taken_from_the_first_plugin(
    install_plugin: InstallPlugin,
) -> None:
    install_plugin("log")

    with capturedLogs() as events:
        factories = sink_factories()

    assert factories["log"].description.startswith("each record as a JSON line")
    assert isinstance(make_sink("log"), LogSink)
    warnings = [event for event in events if event["log_level"] is LogLevel.warn]
    assert len(warnings) == 1
    assert "kind 'log' is already provided" in formatEvent(warnings[0])


def test_a_kind_whose_extra_is_missing_says_which_extra_to_install() -> None:
    registered: Any = sink_factories()[
        "mqtt"
    ]  # an attrs instance, typed as ISinkFactory
    factory = attrs.evolve(registered, requires=("teltotwist_no_such_client",))

    with pytest.raises(SinkConfigurationError) as raised:
        factory.make_sink("mqtt://127.0.0.1:1883")

    assert str(raised.value) == (
        "the mqtt sink needs teltotwist_no_such_client: pip install 'teltotwist[mqtt]'"
    )
