# -*- test-case-name: tests.test_device_cli,tests.test_load_cli -*-
"""Argument types shared by the sub-commands that play trackers."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

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
