"""The layers of docs/development.rst hold: lower layers never import higher ones.

Read from the source with :mod:`ast`, so a violation fails here, with the
module and the import named, before it becomes a cycle or a pure module that
quietly needs a reactor.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "teltotwist"

MAY_IMPORT = {
    "catalogue": {"catalogue"},
    "codec": {"codec"},
    "gateway": {"catalogue", "codec", "gateway", "sinks.interfaces", "sinks"},
    "control": {"codec", "gateway", "control"},
    "cluster": {
        "codec",
        "gateway",
        "cluster",
        "sinks._amqp_channel",
        "sinks._amqp_link",
        "sinks._amqp_settings",
    },
    "sinks": {"codec", "gateway.items", "sinks"},
    "device": {"catalogue", "codec", "device"},
    "load": {"codec", "device", "load"},
    "testing": {"codec", "gateway", "sinks", "testing"},
}
"""For each layer, the project modules (prefixes under ``teltotwist.``) it may
import. ``gateway`` may import ``sinks`` only for the ``IRecordSink``
interface, which the package ``teltotwist.sinks`` re-exports. ``cluster``
shares the AMQP sink's connection, reconnection and URL parsing (one AMQP client in the
project, below both: the sinks import nothing of the cluster), and no more of
the sinks."""

NO_TWISTED = {"catalogue", "codec"}
"""Layers that are pure: no Twisted, so they run under any event loop."""


def imports_of(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name


def modules_of(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


def allowed(layer: str, module: str) -> bool:
    inner = module.removeprefix("teltotwist.")
    return any(
        inner == prefix or inner.startswith(prefix + ".")
        for prefix in MAY_IMPORT[layer]
    )


@pytest.mark.parametrize("layer", sorted(MAY_IMPORT))
def test_a_layer_imports_only_the_layers_below_it(layer: str) -> None:
    offending = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}"
        for path in modules_of(layer)
        for line, module in imports_of(path)
        if module.startswith("teltotwist") and not allowed(layer, module)
    ]

    assert offending == []


@pytest.mark.parametrize("layer", sorted(NO_TWISTED))
def test_pure_layers_import_no_twisted(layer: str) -> None:
    offending = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}"
        for path in modules_of(layer)
        for line, module in imports_of(path)
        if module.split(".")[0] == "twisted"
    ]

    assert offending == []


def test_every_layer_is_checked() -> None:
    layers = {
        path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()
    }

    assert layers - set(MAY_IMPORT) == {"cli"}
