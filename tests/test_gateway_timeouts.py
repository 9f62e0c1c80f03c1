"""One timeout for many members: each expires on time, restarts and
cancellations are honoured, and the reactor holds one timer at most."""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock

from teltotwist.gateway.timeouts import Timeout


def timeout(
    clock: MemoryReactorClock, seconds: float = 10
) -> tuple[Timeout[str], list[str]]:
    expired: list[str] = []
    return Timeout(clock, seconds, expired.append), expired


def test_members_expire_at_their_own_deadlines_in_order() -> None:
    clock = MemoryReactorClock()
    idle, expired = timeout(clock)
    idle.start("a")
    clock.advance(3)
    idle.start("b")

    clock.advance(6.9)
    assert expired == []
    clock.advance(0.1)
    assert expired == ["a"]
    clock.advance(2.9)
    assert expired == ["a"]
    clock.advance(0.1)
    assert expired == ["a", "b"]
    assert len(idle) == 0


def test_a_restart_postpones_the_deadline() -> None:
    clock = MemoryReactorClock()
    idle, expired = timeout(clock)
    idle.start("a")
    idle.start("b")
    clock.advance(8)
    idle.start("a")

    clock.advance(2)
    assert expired == ["b"]
    assert "a" in idle
    clock.advance(8)
    assert expired == ["b", "a"]


def test_a_cancelled_member_never_expires_and_leaves_no_timer() -> None:
    clock = MemoryReactorClock()
    idle, expired = timeout(clock)
    idle.start("a")
    idle.start("b")
    idle.cancel("a")
    idle.cancel("never started")
    clock.advance(20)

    assert expired == ["b"]
    idle.start("c")
    idle.cancel("c")
    assert "c" not in idle
    assert clock.getDelayedCalls() == []


def test_thousands_of_members_share_one_reactor_timer() -> None:
    clock = MemoryReactorClock()
    idle, expired = timeout(clock)
    for number in range(5_000):
        idle.start(str(number))
        clock.advance(0.001)

    assert len(clock.getDelayedCalls()) == 1
    clock.advance(10)
    assert len(expired) == 5_000
    assert expired[:3] == ["0", "1", "2"]
    assert clock.getDelayedCalls() == []


def test_members_may_start_and_cancel_while_expiring() -> None:
    """An expiring connection closes (cancelling others' deadlines) or is
    given a new deadline, from inside the callback."""
    clock = MemoryReactorClock()
    expired: list[str] = []
    idle: Timeout[str]

    def on_expiry(member: str) -> None:
        expired.append(member)
        if member == "a":
            idle.cancel("b")
            idle.start("a")

    idle = Timeout(clock, 10, on_expiry)
    idle.start("a")
    idle.start("b")
    idle.start("c")
    clock.advance(10)

    assert expired == ["a", "c"]
    clock.advance(10)
    assert expired == ["a", "c", "a"]


def test_after_the_clock_is_set_back_deadlines_still_fall_due_in_order() -> None:
    clock = MemoryReactorClock()
    clock.advance(100)
    idle, expired = timeout(clock)
    idle.start("before")
    clock.rightNow -= 50
    idle.start("after")

    clock.advance(10)
    assert expired == []
    clock.advance(50)
    assert expired == ["before", "after"]
