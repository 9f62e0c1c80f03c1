# -*- test-case-name: tests.test_cli_decode -*-
"""The ``teltotwist`` command line: one sub-command per tool."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from teltotwist.cli import decode, device, load


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="teltotwist", description="Teltonika telematics gateway tools."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    decode.register(commands)
    device.register(commands)
    load.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    arguments = build_parser().parse_args(argv)
    try:
        status: int = arguments.run(arguments)
    except BrokenPipeError:
        sys.stderr.close()
        return 1
    return status
