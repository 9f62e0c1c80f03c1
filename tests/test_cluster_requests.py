"""Requests between members: answers matched by correlation id, every wait
and the number in flight bounded."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.python.failure import Failure

from teltotwist.cluster.bus import Envelope
from teltotwist.cluster.memory import MemoryCluster
from teltotwist.cluster.requests import Body, Requests, decode
from teltotwist.gateway.fleet import FleetUnavailableError
from teltotwist.gateway.presence import HolderSilentError

IMEI = "356307042441013"


class Member:
    """A member that answers each question with its id, unless silent."""

    def __init__(self, cluster: MemoryCluster, name: str, silent: bool = False) -> None:
        self.bus = cluster.member(name)
        self.requests = Requests(self.bus, cluster.clock, max_in_flight=2)
        self.silent = silent
        self.bus.start(self.receive)

    def receive(self, envelope: Envelope) -> None:
        if envelope.kind == "answer":
            self.requests.answered(envelope, decode(envelope))
        elif not self.silent:
            self.requests.answer(envelope, {"from": self.bus.member_id})


def three() -> tuple[Clock, Member, Member, Member]:
    clock = Clock()
    cluster = MemoryCluster(clock)
    return (
        clock,
        Member(cluster, "a"),
        Member(cluster, "b"),
        Member(cluster, "c", silent=True),
    )


def test_a_question_to_all_ends_once_the_members_expected_answered() -> None:
    clock, a, _, _ = three()
    answers: list[dict[str, Body]] = []

    a.requests.ask_all("q", {}, frozenset({"a", "b"}), 2.0).addCallback(answers.append)
    clock.advance(0)
    clock.advance(0)

    assert answers == [{"a": {"from": "a"}, "b": {"from": "b"}}]


def test_a_question_to_all_ends_at_its_bound_with_the_answers_so_far() -> None:
    clock, a, _, _ = three()
    answers: list[dict[str, Body]] = []
    a.requests.ask_all("q", {}, frozenset({"a", "b", "c"}), 2.0).addCallback(
        answers.append
    )
    clock.advance(0)
    clock.advance(0)
    assert answers == []

    clock.advance(2.0)

    assert answers == [{"a": {"from": "a"}, "b": {"from": "b"}}]


def test_a_tracker_held_nowhere_is_none_and_a_silent_holder_fails() -> None:
    clock, a, _, c = three()
    nowhere: list[Body | None] = []
    a.requests.ask_tracker(IMEI, "q", {}, 2.0).addCallback(nowhere.append)
    c.bus.bind(IMEI)
    failures: list[Failure] = []
    a.requests.ask_tracker(IMEI, "q", {}, 2.0).addErrback(failures.append)

    clock.advance(0)
    clock.advance(2.0)

    assert nowhere == [None]
    [failure] = failures
    assert failure.check(HolderSilentError)
    assert failure.getErrorMessage() == "no cluster member answered in time"


def test_a_question_the_bus_cannot_carry_is_not_a_silent_holder() -> None:
    _, a, _, c = three()
    c.bus.bind(IMEI)
    a.bus.disconnect()
    failures: list[Failure] = []

    a.requests.ask_tracker(IMEI, "q", {}, 2.0).addErrback(failures.append)

    [failure] = failures
    assert failure.check(FleetUnavailableError)
    assert not failure.check(HolderSilentError)


def test_requests_beyond_the_bound_in_flight_are_refused() -> None:
    _, a, _, _ = three()
    for _ in range(2):
        a.requests.ask_all("q", {}, frozenset({"c"}), 2.0)

    refused: list[str] = []
    a.requests.ask_all("q", {}, frozenset({"c"}), 2.0).addErrback(
        lambda failure: refused.append(f"{failure.value!r}")
    )

    assert refused == ["FleetUnavailableError('2 cluster requests are in flight')"]
