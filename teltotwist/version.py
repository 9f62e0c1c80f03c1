# -*- test-case-name: tests.test_version -*-
"""teltotwist's version, for ``--version`` and the ``teltotwist_info`` metric."""

from __future__ import annotations

import configparser
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path

_CHECKOUT_SETUP = Path(__file__).parents[1] / "setup.cfg"


def teltotwist_version() -> str:
    """The installed version; from a checkout that is not installed, the
    version its ``setup.cfg`` declares, marked as such."""
    try:
        return installed_version("teltotwist")
    except PackageNotFoundError:
        pass
    setup = configparser.ConfigParser()
    setup.read(_CHECKOUT_SETUP, encoding="utf-8")
    declared = setup.get("metadata", "version", fallback=None)
    return f"{declared} (not installed)" if declared else "unknown (not installed)"
