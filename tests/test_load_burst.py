"""Synchronized bursts on a fake clock: every tracker sends at the same
instants; one still waiting for an ACK at an instant sends when it comes."""

from __future__ import annotations

import attrs
import pytest
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import Clock

from teltotwist.device import TrackerSettings, VirtualTracker
from teltotwist.load import Fleet, LoadPlan, Pace, Summary
from teltotwist.load.burst import RELEASE_SLICE, BurstClock
from tests.memory_gateway import AckDelay, MemoryGateway, run_on

START = 1_795_000_000.0
PLAN = LoadPlan(
    devices=5,
    duration=5.5,
    interval=1.0,
    records_per_packet=4,
    ramp_up=1.0,
    pace=Pace.BURST,
)
INSTANTS = [START + 2.0, START + 3.0, START + 4.0, START + 5.0]
"""The ramp-up, then one interval for the first packet to fill up."""


def run(
    plan: LoadPlan,
    ack_delay: AckDelay = lambda imei, n: 0.0,
    *,
    stall: tuple[float, float] | None = None,
) -> tuple[MemoryGateway, Summary]:
    """Run *plan* from START; with *stall*, the reactor is busy from the
    first time to the second (seconds after START): nothing runs."""
    clock = Clock()
    clock.advance(START)
    gateway = MemoryGateway(clock, ack_delay)
    running = ensureDeferred(Fleet(plan, gateway, clock).run())
    if stall is not None:
        busy, free = stall
        run_on(clock, running, until=START + busy)
        clock.advance(free - busy)
    run_on(clock, running)
    summary = running.result
    assert isinstance(summary, Summary)
    return gateway, summary


def test_every_tracker_sends_at_the_same_instants_one_interval_apart() -> None:
    gateway, summary = run(PLAN)

    for number in range(PLAN.devices):
        assert gateway.sends(PLAN.imei(number)) == pytest.approx(INSTANTS)
    assert {arrival.records for arrival in gateway.arrivals} == {4}
    assert summary.packets_acked == summary.packets_sent == 20
    assert summary.unacked == 0


def test_the_burst_clock_releases_nothing_from_the_end_of_the_run_on() -> None:
    clock = Clock()
    clock.advance(START)
    gateway = MemoryGateway(clock)
    plan = attrs.evolve(PLAN, duration=5.0)
    trackers = [
        VirtualTracker(
            gateway,
            clock,
            TrackerSettings(plan.imei(n), records_per_packet=plan.records_per_packet),
        )
        for n in range(plan.devices)
    ]
    for tracker in trackers:
        tracker.start(recording=False, held=True)
    BurstClock(trackers, plan, clock, START).start()

    clock.pump([0.25] * 40)  # ten seconds

    assert {arrival.at for arrival in gateway.arrivals} == set(INSTANTS[:3])
    assert len(gateway.arrivals) == 3 * plan.devices


def test_records_are_stamped_through_the_interval_that_ends_at_the_instant() -> None:
    gateway, _ = run(PLAN)

    for arrival in gateway.arrivals:
        instant = round(arrival.at * 1000)
        assert arrival.stamps == (instant - 750, instant - 500, instant - 250, instant)


def test_acks_that_come_while_a_burst_is_written_are_read_meanwhile() -> None:
    plan = attrs.evolve(PLAN, devices=3 * RELEASE_SLICE)
    gateway, summary = run(plan)

    first_burst = gateway.log[: 2 * plan.devices]
    first_ack = first_burst.index(("ack", plan.imei(0)))
    last_packet = first_burst.index(("packet", plan.imei(plan.devices - 1)))
    assert first_ack < last_packet
    assert summary.packets_acked == summary.packets_sent == 4 * plan.devices


def test_without_bursts_each_tracker_sends_on_its_own_clock() -> None:
    gateway, _ = run(attrs.evolve(PLAN, pace=Pace.STEADY))

    firsts = {gateway.sends(PLAN.imei(number))[0] for number in range(PLAN.devices)}
    assert len(firsts) == PLAN.devices


def test_a_tracker_waiting_for_its_ack_at_instants_sends_when_it_comes() -> None:
    late = PLAN.imei(0)

    def ack_delay(imei: str, number: int) -> float:
        return 2.4 if (imei, number) == (late, 1) else 0.0

    gateway, summary = run(PLAN, ack_delay)

    # The two packets it owes go at the ACK, one after the other; the next
    # on time again.
    expected = [START + 2.0, START + 4.4, START + 4.4, START + 5.0]
    assert gateway.sends(late) == pytest.approx(expected)
    assert gateway.sends(PLAN.imei(1)) == pytest.approx(INSTANTS)
    assert {arrival.records for arrival in gateway.arrivals} == {4}
    assert summary.records_acked == 5 * 4 * 4


def test_bursts_a_busy_reactor_missed_follow_at_once() -> None:
    gateway, _ = run(PLAN, stall=(1.9, 3.1))

    for number in range(PLAN.devices):
        sends = gateway.sends(PLAN.imei(number))
        assert sends[:2] == pytest.approx([START + 3.1, START + 3.1])
