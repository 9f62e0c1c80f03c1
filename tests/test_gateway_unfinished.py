"""The budget for unfinished frames: the oldest go first, the total stays true."""

from __future__ import annotations

from teltotwist.gateway.unfinished import UnfinishedBytes


def test_within_the_budget_nobody_is_closed() -> None:
    budget: UnfinishedBytes[str] = UnfinishedBytes(100)

    assert budget.update("a", 60, started=True) == []
    assert budget.update("b", 40, started=True) == []
    assert budget.total == 100


def test_past_the_budget_the_oldest_unfinished_frames_go_first() -> None:
    budget: UnfinishedBytes[str] = UnfinishedBytes(100)
    budget.update("oldest", 30, started=True)
    budget.update("older", 30, started=True)
    budget.update("old", 30, started=True)

    assert budget.update("new", 50, started=True) == ["oldest", "older"]
    assert budget.total == 80


def test_more_bytes_of_the_same_frame_keep_its_age() -> None:
    budget: UnfinishedBytes[str] = UnfinishedBytes(100)
    budget.update("trickler", 10, started=True)
    budget.update("tracker", 10, started=True)
    budget.update("trickler", 11, started=False)

    assert budget.update("late", 80, started=True) == ["trickler"]


def test_a_new_frame_is_young_again_and_a_finished_one_holds_nothing() -> None:
    budget: UnfinishedBytes[str] = UnfinishedBytes(100)
    budget.update("a", 50, started=True)
    budget.update("b", 50, started=True)
    budget.update("a", 20, started=True)  # a's frame completed, a new one began
    budget.update("b", 0, started=False)  # b's frame completed

    assert budget.total == 20
    assert budget.update("c", 90, started=True) == ["a"]
    assert budget.total == 90
