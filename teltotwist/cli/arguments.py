# -*- test-case-name: tests.test_device_cli,tests.test_load_cli -*-
"""Argument types and options shared by the sub-commands that play trackers."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

from teltotwist.cli.tracker_model import tracker_model
from teltotwist.codec import Codec

Number = TypeVar("Number", int, float)

CODECS = {"8": Codec.CODEC8, "8E": Codec.CODEC8E, "16": Codec.CODEC16}
"""``--codec`` choices."""


def positive(kind: type[Number]) -> Callable[[str], Number]:
    """An argparse type: a number of *kind* above zero."""

    def convert(text: str) -> Number:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, not {text}")
        return value

    convert.__name__ = kind.__name__
    return convert


def add_server_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--server``: the gateway the trackers connect to."""
    parser.add_argument(
        "--server",
        required=True,
        help="the gateway, as a Twisted client endpoint: tcp:HOST:PORT",
    )


def add_records_option(parser: argparse.ArgumentParser, default: int) -> None:
    """Add ``--records-per-packet``, *default* when not given."""
    parser.add_argument(
        "--records-per-packet",
        type=positive(int),
        default=default,
        metavar="N",
        help=f"records in each packet, 1..255 (default {default})",
    )


def add_codec_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--codec`` and ``--model``: how the trackers encode their records,
    and the model whose IO ids they send (``None`` when not given: their
    default)."""
    parser.add_argument(
        "--codec", choices=list(CODECS), default="8", help="AVL codec (default 8)"
    )
    parser.add_argument(
        "--model",
        type=tracker_model,
        metavar="MODEL",
        help="send the IO ids of this tracker model (default FMB920)",
    )
