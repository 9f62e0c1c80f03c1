"""The dedupe window: recently added ids, bounded by age and by count."""

from __future__ import annotations

import pytest

from teltotwist.gateway.dedupe import RecentIds


def test_an_id_is_seen_until_the_window_has_passed() -> None:
    recent = RecentIds(window=600, capacity=10)
    recent.add("a", now=1000.0)

    assert recent.seen("a", now=1000.0)
    assert recent.seen("a", now=1599.9)
    assert not recent.seen("a", now=1600.0)
    assert not recent.seen("b", now=1000.0)


def test_adding_forgets_ids_older_than_the_window() -> None:
    recent = RecentIds(window=600, capacity=10)
    recent.add("old", now=0.0)
    recent.add("newer", now=300.0)

    recent.add("newest", now=650.0)

    assert len(recent) == 2
    assert not recent.seen("old", now=650.0)
    assert recent.seen("newer", now=650.0)


def test_adding_again_restarts_the_window() -> None:
    recent = RecentIds(window=600, capacity=10)
    recent.add("a", now=0.0)
    recent.add("b", now=100.0)
    recent.add("a", now=500.0)

    recent.add("c", now=650.0)

    assert recent.seen("a", now=1000.0)
    assert not recent.seen("b", now=1000.0)


def test_past_the_capacity_the_oldest_ids_are_forgotten() -> None:
    recent = RecentIds(window=600, capacity=3)
    for index, item_id in enumerate("abcde"):
        recent.add(item_id, now=float(index))

    assert len(recent) == 3
    assert [recent.seen(item_id, now=5.0) for item_id in "abcde"] == [
        False,
        False,
        True,
        True,
        True,
    ]


def test_a_re_added_id_is_the_newest_for_the_capacity() -> None:
    recent = RecentIds(window=600, capacity=2)
    recent.add("a", now=0.0)
    recent.add("b", now=1.0)
    recent.add("a", now=2.0)

    recent.add("c", now=3.0)

    assert recent.seen("a", now=3.0)
    assert not recent.seen("b", now=3.0)


def test_a_zero_window_remembers_nothing() -> None:
    recent = RecentIds(window=0, capacity=10)
    recent.add("a", now=0.0)

    assert not recent.seen("a", now=0.0)
    assert len(recent) == 0


@pytest.mark.parametrize(
    ("window", "capacity", "message"),
    [
        (-1.0, 10, "window must be >= 0 seconds, not -1.0"),
        (600.0, 0, "capacity must be at least 1, not 0"),
    ],
)
def test_bad_bounds_are_refused(window: float, capacity: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RecentIds(window, capacity)
