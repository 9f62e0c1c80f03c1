"""Reads stamped by rounds: every ACK the reactor found waiting at once gets
the time of the first read, however long the others took to handle."""

from __future__ import annotations

from twisted.internet.task import Clock

from teltotwist.device import ReadTime

START = 1_795_000_000.0


def test_the_reads_of_one_round_share_the_time_of_its_first() -> None:
    clock = Clock()
    clock.advance(START)
    read_time = ReadTime(clock)

    first = read_time.now()
    clock.rightNow += 0.005  # handling the first read took 5 ms
    second = read_time.now()

    assert first == second == START


def test_the_next_round_gets_its_own_time() -> None:
    clock = Clock()
    clock.advance(START)
    read_time = ReadTime(clock)
    read_time.now()

    clock.advance(0.25)  # the reactor's next turn

    assert read_time.now() == START + 0.25
    clock.advance(0)
    assert clock.getDelayedCalls() == []
