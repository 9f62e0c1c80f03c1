# -*- test-case-name: tests.test_control_api -*-
"""Readiness, for load balancers and Kubernetes: listening, with every sink
able to accept a delivery."""

from __future__ import annotations

from typing import Protocol


class Readiness(Protocol):
    """What readiness is judged on; the gateway service provides it."""

    @property
    def listening(self) -> bool:
        """True while the tracker listeners are up."""

    def sinks_not_ready(self) -> list[str]:
        """The names of the sinks that could not accept a delivery now."""


def not_ready_reasons(gateway: Readiness) -> list[str]:
    """Why the gateway should get no trackers now; empty when it is ready."""
    reasons = [] if gateway.listening else ["not listening for trackers"]
    reasons.extend(f"sink {name} not ready" for name in gateway.sinks_not_ready())
    return reasons
