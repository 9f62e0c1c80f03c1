# -*- test-case-name: tests.test_gateway_unfinished -*-
"""One budget for the bytes all connections hold in unfinished frames.

A peer can start a frame and never finish it; each connection may hold up to
the frame size cap, and thousands of them add up. This keeps the total, in
O(1) per update, and names the connections to close when it exceeds the
budget: those whose unfinished frame began first. A real tracker's frame
completes within moments, so the oldest unfinished frames are, in all
likelihood, the ones never meant to complete.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

Holder = TypeVar("Holder", bound=Hashable)


class UnfinishedBytes(Generic[Holder]):
    """Bytes each holder keeps of an unfinished frame, within *budget* in all."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.total = 0
        # Insertion order is the order the unfinished frames began.
        self._held: dict[Holder, int] = {}

    def update(self, holder: Holder, held: int, started: bool) -> list[Holder]:
        """*holder* now holds *held* bytes, of a frame begun since its last
        update if *started*. Returns the holders to close, oldest frame
        first, to get back within the budget; they are no longer counted."""
        if started or not held:
            previous = self._held.pop(holder, 0)
        else:
            previous = self._held.get(holder, 0)
        if held:
            self._held[holder] = held
        self.total += held - previous
        over_budget: list[Holder] = []
        while self.total > self.budget:
            oldest = next(iter(self._held))
            self.total -= self._held.pop(oldest)
            over_budget.append(oldest)
        return over_budget
