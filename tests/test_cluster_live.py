"""The live view across a cluster: real gateways on loopback ports, two
members of one cluster (in-process over MemoryBus, and on the real RabbitMQ
over AmqpBus); the trackers' roster and a tracker's traffic are watched
from the member that does not hold it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import jsonschema
import pytest
import pytest_twisted
from twisted.internet import reactor

from teltotwist.cluster import live_watch
from teltotwist.cluster.bus import Envelope
from teltotwist.cluster.live_watch import LIVE_WATCH
from teltotwist.cluster.requests import encode
from teltotwist.control.live import SharedRoster
from teltotwist.control.openapi import DOCUMENT
from teltotwist.gateway.fleet import CommandOrder, Fleet, TrackerListing
from teltotwist.gateway.limits import DuplicateLogin
from tests.test_cluster_member import (
    BUSES,
    IMEI,
    OTHER_IMEI,
    Member,
    _members,
    acked,
    log_in,
    until,
    virtual_tracker,
)
from tests.vectors import by_id

DATA_FRAME = by_id("wiki-c8-tcp-1").data
TRAFFIC = "/v1/live/trackers/{imei}/traffic"


class Page:
    """What a live view's stream would send, as (event, data) pairs."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def send(self, event: str, data: Any) -> None:
        self.events.append((event, data))

    def named(self, name: str) -> list[Any]:
        return [data for event, data in self.events if event == name]

    def traffic(self, kind: str) -> list[Any]:
        return [data for data in self.named("traffic") if data["kind"] == kind]

    def assert_documented(self, path: str) -> None:
        """Every event is one the OpenAPI document gives for *path*."""
        events = DOCUMENT["paths"][path]["get"]["x-events"]
        for event, data in self.events:
            schema = {**events[event], "components": DOCUMENT["components"]}
            jsonschema.validate(data, schema)


@pytest.fixture(params=sorted(BUSES))
def bus_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest_twisted.async_yield_fixture
async def cluster(bus_kind: str) -> AsyncIterator[Callable[..., Any]]:
    async with BUSES[bus_kind]() as make, _members(make, [], []) as start:
        yield start


def tracker_members(page: Page) -> dict[str, str]:
    """The member of each tracker, as the page's roster events say."""
    members: dict[str, str] = {}
    for event, data in page.events:
        if event in {"trackers", "changes"}:
            for tracker in data["trackers"]:
                members[tracker["imei"]] = tracker["member"]
            for imei in data.get("gone", ()):
                members.pop(imei, None)
    return members


@pytest_twisted.ensureDeferred
async def test_the_roster_lists_the_trackers_of_every_member(cluster: Any) -> None:
    a, b = await cluster(2)
    virtual_tracker(cluster, a, IMEI)
    virtual_tracker(cluster, b, OTHER_IMEI)
    page = Page()
    stop = SharedRoster(b.fleet, reactor).follow(page)
    try:
        await until(lambda: len(tracker_members(page)) == 2)
    finally:
        stop()

    assert tracker_members(page) == {IMEI: "member-0", OTHER_IMEI: "member-1"}
    page.assert_documented("/v1/live/trackers")


class CountingFleet:
    """A fleet that counts the rosters asked of it."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.asked = 0

    def trackers(self) -> Any:
        self.asked += 1
        return self.fleet.trackers()


@pytest_twisted.ensureDeferred
async def test_open_pages_share_one_look_at_the_cluster(cluster: Any) -> None:
    a, b = await cluster(2)
    virtual_tracker(cluster, a, IMEI)
    await until(lambda: a.holds(IMEI))
    fleet = CountingFleet(b.fleet)
    roster = SharedRoster(fleet, reactor)  # type: ignore[arg-type]
    pages = [Page(), Page(), Page()]
    stops = [roster.follow(page) for page in pages]
    try:
        await until(lambda: all(page.named("trackers") for page in pages))
        looks = fleet.asked
    finally:
        for stop in stops:
            stop()

    assert looks == 1
    listing: TrackerListing = await b.fleet.trackers()
    # The tracker goes on sending meanwhile: its counters may have moved on.
    assert [
        [(tracker["imei"], tracker["member"]) for tracker in rosters]
        for rosters in (page.named("trackers")[0]["trackers"] for page in pages)
    ] == [[(tracker["imei"], tracker["member"]) for tracker in listing.trackers]] * 3


async def watched_from(serving: Member, holder: Member, page: Page) -> Any:
    """A watch of IMEI (held by *holder*) from *serving*, once forwarding."""
    stop = serving.member.traffic.watch(IMEI, page)  # type: ignore[union-attr]
    await until(lambda: holder.service.factory.traffic.active)  # type: ignore[union-attr]
    await until(lambda: bool(page.named("holder")))
    return stop


@pytest_twisted.ensureDeferred
async def test_the_traffic_of_a_tracker_held_elsewhere_is_forwarded(
    cluster: Any,
) -> None:
    a, b = await cluster(2)
    events = virtual_tracker(cluster, a, IMEI)
    await until(lambda: acked(events) >= 1 and a.holds(IMEI))
    page = Page()
    stop = await watched_from(b, a, page)

    answered = await b.fleet.send(CommandOrder(IMEI, "getinfo", None, 12, 0, 10))
    await until(lambda: len(page.traffic("command")) >= 2)
    stop()

    assert page.named("holder") == [{"imei": IMEI, "member": "member-0"}]
    sent, answer = page.traffic("command")[:2]
    assert (sent["direction"], answer["direction"]) == ("out", "in")
    assert answered["response_hex"] in answer["hex"]
    await until(lambda: not a.service.factory.traffic.active)


@pytest_twisted.ensureDeferred
async def test_the_forwarding_stops_when_the_watch_is_not_renewed(
    cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_watch, "LEASE", 0.5)
    (a,) = await cluster(1)
    client, _ = await log_in(a)
    await until(lambda: a.bus.ready and a.holds(IMEI))
    # A serving member that asks once, then is gone: its lease runs out.
    await a.bus.send_to_tracker(
        IMEI,
        Envelope(LIVE_WATCH, encode({"imei": IMEI, "watch": "w"}), "member-gone"),
    )
    await until(lambda: a.service.factory.traffic.active)
    await until(lambda: not a.service.factory.traffic.active)
    client.transport.loseConnection()  # type: ignore[union-attr]


@pytest_twisted.ensureDeferred
async def test_events_over_the_rate_are_dropped_and_the_page_told(
    cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_watch, "MAX_EVENTS_PER_SECOND", 0)
    a, b = await cluster(2)
    client, _ = await log_in(a)
    page = Page()
    stop = await watched_from(b, a, page)

    client.send(DATA_FRAME)
    await client.read(4)
    client.transport.loseConnection()  # type: ignore[union-attr]
    await until(lambda: bool(page.traffic("logout")))
    stop()

    assert page.traffic("data") == []
    assert page.named("dropped") == [{"imei": IMEI, "events": 2, "why": "rate"}]
    page.assert_documented(TRAFFIC)


@pytest_twisted.ensureDeferred
async def test_a_tracker_that_moves_is_followed_by_its_page(cluster: Any) -> None:
    a, b = await cluster(2, duplicate_login=DuplicateLogin.REPLACE)
    await log_in(a)
    page = Page()
    stop = await watched_from(b, a, page)

    await log_in(b)
    await until(lambda: len(page.named("holder")) == 2)
    stop()

    assert page.named("moved") == [
        {"imei": IMEI, "member": "member-0", "why": "the tracker left this member"}
    ]
    assert page.named("holder")[1] == {"imei": IMEI, "member": "member-1"}
    assert page.traffic("logout")
    page.assert_documented(TRAFFIC)


@pytest_twisted.ensureDeferred
async def test_a_tracker_that_leaves_the_serving_member_is_followed(
    cluster: Any,
) -> None:
    a, b = await cluster(2, duplicate_login=DuplicateLogin.REPLACE)
    await log_in(b)
    page = Page()
    stop = b.member.traffic.watch(IMEI, page)
    await until(lambda: bool(page.named("holder")))

    await log_in(a)
    await until(lambda: len(page.named("holder")) == 2)
    stop()

    assert page.named("holder") == [
        {"imei": IMEI, "member": "member-1"},
        {"imei": IMEI, "member": "member-0"},
    ]
    assert page.named("moved") == [
        {"imei": IMEI, "member": "member-1", "why": "the tracker left this member"}
    ]
