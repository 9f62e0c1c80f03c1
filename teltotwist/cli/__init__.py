# -*- test-case-name: tests.test_cli,tests.test_version -*-
"""The ``teltotwist`` command line: one sub-command per tool.

Each sub-command's options are registered here, but the module that runs it
(``teltotwist.cli.<command>``, with its ``run(arguments)``) is imported only
once it was chosen: ``decode``, ``catalogue``, ``trackers``, ``command`` and
``--version`` import no Twisted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from teltotwist.cli import (
    catalogue,
    command_options,
    decode,
    device_options,
    load_options,
    trackers,
)
from teltotwist.version import teltotwist_version


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="teltotwist", description="Teltonika telematics gateway tools."
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {teltotwist_version()}"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    decode.register(commands)
    catalogue.register(commands)
    device_options.register(commands)
    load_options.register(commands)
    trackers.register(commands)
    command_options.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    arguments = build_parser().parse_args(argv)
    command = importlib.import_module(f"teltotwist.cli.{arguments.command}")
    try:
        status: int = command.run(arguments)
    except BrokenPipeError:
        sys.stderr.close()
        return 1
    return status
