"""Admission: a flood of connections without login never takes a tracker's slot."""

from __future__ import annotations

from teltotwist.gateway.admission import (
    Admission,
    Admitted,
    Crowding,
    Refused,
    address_key,
)

FLOODER = "198.51.100.7"
CARRIER_NAT = "203.0.113.1"


def test_a_crowded_address_gives_up_its_oldest_waiting_connection() -> None:
    admission: Admission[str] = Admission(
        max_connections=100, max_pending_per_address=2
    )
    admission.admit("first", FLOODER)
    admission.admit("second", FLOODER)

    assert admission.admit("third", FLOODER) == Admitted("first", Crowding.ADDRESS)
    assert admission.admit("elsewhere", "192.0.2.10") == Admitted()
    assert len(admission) == 3


def test_logged_in_trackers_have_no_per_address_cap() -> None:
    admission: Admission[int] = Admission(
        max_connections=100, max_pending_per_address=2
    )
    for tracker in range(50):
        assert admission.admit(tracker, CARRIER_NAT) == Admitted()
        admission.logged_in(tracker)

    assert len(admission) == 50
    assert admission.waiting == 0


def test_when_full_the_oldest_waiting_connection_makes_room() -> None:
    admission: Admission[str] = Admission(max_connections=3, max_pending_per_address=9)
    admission.admit("tracker", "192.0.2.10")
    admission.logged_in("tracker")
    admission.admit("flood-1", FLOODER)
    admission.admit("flood-2", "198.51.100.8")

    assert admission.admit("new", "192.0.2.11") == Admitted("flood-1", Crowding.GATEWAY)
    assert admission.admit("newer", "192.0.2.12") == Admitted(
        "flood-2", Crowding.GATEWAY
    )
    assert len(admission) == 3


def test_refused_only_when_every_slot_is_logged_in() -> None:
    admission: Admission[str] = Admission(max_connections=2, max_pending_per_address=9)
    for tracker in ("a", "b"):
        admission.admit(tracker, CARRIER_NAT)
        admission.logged_in(tracker)

    assert admission.admit("c", CARRIER_NAT) == Refused()
    admission.release("a")
    assert admission.admit("c", CARRIER_NAT) == Admitted()


def test_a_released_or_evicted_connection_frees_its_slot_once() -> None:
    admission: Admission[str] = Admission(max_connections=9, max_pending_per_address=1)
    admission.admit("old", FLOODER)
    admission.admit("new", FLOODER)

    admission.release("old")
    admission.logged_in("old")

    assert len(admission) == 1
    assert admission.admit("newest", FLOODER) == Admitted("new", Crowding.ADDRESS)


def test_ipv6_addresses_share_a_cap_per_64() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::9")
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("192.0.2.1") == "192.0.2.1"


def test_behind_a_balancer_the_cap_applies_to_each_real_address() -> None:
    """Connections through a balancer are admitted before their PROXY header
    names the sender; the balancer's own address never crowds them out."""
    admission: Admission[str] = Admission(max_connections=9, max_pending_per_address=2)
    for connection in ("flood-1", "flood-2", "flood-3", "tracker"):
        assert admission.admit(connection, None) == Admitted()

    assert admission.located("flood-1", FLOODER) == Admitted()
    assert admission.located("flood-2", FLOODER) == Admitted()
    assert admission.located("flood-3", FLOODER) == Admitted(
        "flood-1", Crowding.ADDRESS
    )
    assert admission.located("tracker", CARRIER_NAT) == Admitted()
    assert admission.waiting == 3


def test_an_unlocated_connection_still_holds_one_of_the_slots() -> None:
    admission: Admission[str] = Admission(max_connections=2, max_pending_per_address=9)
    admission.admit("silent", None)
    admission.admit("tracker", CARRIER_NAT)
    admission.logged_in("tracker")

    assert admission.admit("new", None) == Admitted("silent", Crowding.GATEWAY)
    assert admission.located("silent", FLOODER) == Admitted()
    assert len(admission) == 2
