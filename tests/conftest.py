"""Shared pytest configuration: the Hypothesis profiles ("ci" when CI is set)."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("dev", max_examples=200, deadline=None)
settings.register_profile(
    "ci", max_examples=200, deadline=None, derandomize=True, print_blob=True
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
