# -*- test-case-name: tests.test_gateway_dedupe -*-
"""A bounded memory of recently delivered item ids, to drop tracker resends."""

from __future__ import annotations

from collections import OrderedDict


class RecentIds:
    """The ids added within the last *window* seconds, at most *capacity* of them.

    Times are whatever clock the caller passes (``IReactorTime.seconds()``).
    Ids are kept in the order they were added; the oldest go first, when they
    are *window* seconds old or when there are more than *capacity*, so each
    call costs O(1) amortized and memory stays bounded.
    """

    def __init__(self, window: float, capacity: int) -> None:
        if window < 0:
            raise ValueError(f"window must be >= 0 seconds, not {window!r}")
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity!r}")
        self.window = window
        self.capacity = capacity
        self._added: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._added)

    def add(self, item_id: str, now: float) -> None:
        """Remember *item_id* as added at *now* (again, if it was already)."""
        self._added[item_id] = now
        self._added.move_to_end(item_id)
        self._evict(now)

    def seen(self, item_id: str, now: float) -> bool:
        """Whether *item_id* was added less than *window* seconds before *now*."""
        added = self._added.get(item_id)
        return added is not None and now - added < self.window

    def _evict(self, now: float) -> None:
        while len(self._added) > self.capacity:
            self._added.popitem(last=False)
        expired = now - self.window
        while self._added:
            oldest_id, added = next(iter(self._added.items()))
            if added > expired:
                break
            del self._added[oldest_id]
