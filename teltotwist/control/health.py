# -*- test-case-name: tests.test_control_api,tests.test_control_health -*-
"""Readiness, for load balancers and Kubernetes: listening, with every sink
able to accept a delivery."""

from __future__ import annotations

from typing import Protocol


class Readiness(Protocol):
    """What readiness is judged on; the gateway service provides it."""

    @property
    def listening(self) -> bool:
        """True while the tracker listeners are up."""

    def sinks_not_ready_why(self) -> list[tuple[str, str | None]]:
        """The sinks that could not accept a delivery now: each one's name,
        and why, when it says."""


def not_ready_reasons(gateway: Readiness) -> list[str]:
    """Why the gateway should get no trackers now; empty when it is ready."""
    reasons = [] if gateway.listening else ["not listening for trackers"]
    reasons.extend(
        f"sink {name} not ready" + (f": {why}" if why else "")
        for name, why in gateway.sinks_not_ready_why()
    )
    return reasons
