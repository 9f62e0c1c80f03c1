# -*- test-case-name: tests.test_cli_catalogue,tests.test_cli_decode -*-
"""``--model``: a tracker model the IO catalogue knows."""

from __future__ import annotations

import argparse

from teltotwist.catalogue import UnknownModelError, load_catalogue


def tracker_model(text: str) -> str:
    """An argparse type: the catalogue's spelling of the model *text* names; a
    usage error listing near matches when the catalogue does not know it."""
    try:
        return load_catalogue().model_named(text)
    except UnknownModelError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
