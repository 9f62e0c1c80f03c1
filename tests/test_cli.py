"""The ``teltotwist`` command line starts fast: only the chosen sub-command's
code is imported, and ``decode``, ``catalogue`` and ``--version`` import no
Twisted."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.vectors import by_id

REPORT_TWISTED = """
import sys
from teltotwist.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(sorted(name for name in sys.modules if name.partition(".")[0] == "twisted"))
"""


def twisted_modules_loaded(*arguments: str) -> str:
    """The Twisted modules imported once ``teltotwist ARGUMENTS`` ran."""
    result = subprocess.run(
        [sys.executable, "-c", REPORT_TWISTED, *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.splitlines()[-1]


@pytest.mark.parametrize(
    "arguments",
    [
        ["decode", by_id("wiki-c8-tcp-1").entry["hex"]],
        ["decode", "--model", "FMB920", by_id("wiki-c8-tcp-1").entry["hex"]],
        ["catalogue", "--model", "FMB920"],
        ["catalogue", "--id", "66", "--json"],
        ["--version"],
        ["--help"],
    ],
)
def test_decode_catalogue_and_version_import_no_twisted(arguments: list[str]) -> None:
    assert twisted_modules_loaded(*arguments) == "[]"


def test_a_command_that_needs_twisted_imports_it() -> None:
    assert "twisted.internet.task" in twisted_modules_loaded(
        "device",
        "--server",
        "tcp:127.0.0.1:9",
        "--imei",
        "356307042441013",
        "--route",
        "/nonexistent.gpx",
    )
