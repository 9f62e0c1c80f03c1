"""The traffic tap: a watched tracker's frames both ways, as a watcher gets
them from a gateway in memory; nothing for trackers nobody watches."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.testing import MemoryReactorClock

from teltotwist.catalogue import load_catalogue
from teltotwist.codec import decode_frame, encode_login, tcp_ack
from teltotwist.gateway.dispatch import Dispatcher
from teltotwist.gateway.limits import Limits
from teltotwist.gateway.tcp import TeltonikaTcpFactory
from teltotwist.gateway.traffic import TrafficEvent
from teltotwist.testing import FakeTracker, RecordingSink
from tests.vectors import by_id

CODEC8 = by_id("wiki-c8-tcp-1").data
CODEC8E = by_id("traccar-01-avl").data
GETINFO_COMMAND = by_id("wiki-c12-getinfo-cmd").data
GETINFO_RESPONSE = by_id("wiki-c12-getinfo-resp").data
IMEI = "356307042441013"
OTHER = "352093081452251"


class Watcher:
    def __init__(self) -> None:
        self.events: list[TrafficEvent] = []

    def traffic(self, event: TrafficEvent) -> None:
        self.events.append(event)

    def shown(self) -> list[tuple[str, str | None, str]]:
        """(kind, direction, hex) of each event, as the page lists them."""
        return [
            (str(e.kind), e.direction and str(e.direction), e.data.hex())
            for e in self.events
        ]


class RaisingWatcher:
    calls = 0

    def traffic(self, event: TrafficEvent) -> None:
        self.calls += 1
        raise RuntimeError("a broken watcher")


@pytest.fixture
def factory() -> TeltonikaTcpFactory:
    clock = MemoryReactorClock()
    dispatcher = Dispatcher([RecordingSink()], 20, clock)
    return TeltonikaTcpFactory(dispatcher, clock, limits=Limits(), now_ms=lambda: 0)


def test_a_watched_tracker_shows_its_login_frames_records_acks_and_logout(
    factory: TeltonikaTcpFactory,
) -> None:
    watcher = Watcher()
    factory.traffic.watch(IMEI, watcher)
    tracker = FakeTracker(factory, imei=IMEI)
    tracker.login()
    assert tracker.send(CODEC8E) == tcp_ack(2)
    tracker.disconnect()

    assert watcher.shown() == [
        ("login", "in", encode_login(IMEI).hex()),
        ("login_reply", "out", "01"),
        ("data", "in", CODEC8E.hex()),
        ("ack", "out", tcp_ack(2).hex()),
        ("logout", None, ""),
    ]
    data, ack = watcher.events[2].to_json(), watcher.events[3].to_json()
    assert data["size"] == len(CODEC8E)
    assert [record["imei"] for record in data["decoded"]] == [IMEI, IMEI]
    assert "latitude" in data["decoded"][0]
    assert ack["latency_ms"] == 0
    assert ack["note"] == "2 records acknowledged"


def test_records_show_with_their_attributes_when_io_naming_is_on() -> None:
    clock = MemoryReactorClock()
    naming = load_catalogue().naming("FMB920")
    factory = TeltonikaTcpFactory(
        Dispatcher([RecordingSink()], 20, clock), clock, naming=lambda imei: naming
    )
    watcher = Watcher()
    factory.traffic.watch(IMEI, watcher)
    tracker = FakeTracker(factory, imei=IMEI)
    tracker.login()
    tracker.send(CODEC8)

    [record] = watcher.events[2].to_json()["decoded"]
    assert record["io"]["66"] == 24079
    assert record["attributes"]["external_voltage"] == 24.079


def test_commands_both_ways_show_with_their_decoded_frames(
    factory: TeltonikaTcpFactory,
) -> None:
    tracker = FakeTracker(factory, imei=IMEI)
    tracker.login()
    tracker.send(CODEC8E)
    watcher = Watcher()
    factory.traffic.watch(IMEI, watcher)
    command = decode_frame(GETINFO_COMMAND)

    factory.by_imei[IMEI].send_command(command)  # type: ignore[arg-type]
    assert tracker.replies() == GETINFO_COMMAND
    tracker.send(GETINFO_RESPONSE)

    assert watcher.shown() == [
        ("command", "out", GETINFO_COMMAND.hex()),
        ("command", "in", GETINFO_RESPONSE.hex()),
    ]
    [answer] = watcher.events[1].to_json()["decoded"]
    assert answer["messages"][0]["text"].startswith("INI:")


def test_nothing_is_built_for_trackers_nobody_watches(
    factory: TeltonikaTcpFactory,
) -> None:
    watcher = Watcher()
    assert not factory.traffic.active
    stop = factory.traffic.watch(OTHER, watcher)
    assert factory.traffic.active
    tracker = FakeTracker(factory, imei=IMEI)
    tracker.login()
    tracker.send(CODEC8E)
    stop()

    assert watcher.events == []
    assert not factory.traffic.active


def test_a_watcher_that_raises_is_dropped_and_the_tracker_still_gets_its_ack(
    factory: TeltonikaTcpFactory,
) -> None:
    broken = RaisingWatcher()
    factory.traffic.watch(IMEI, broken)
    tracker = FakeTracker(factory, imei=IMEI)

    assert tracker.login() == b"\x01"
    assert tracker.send(CODEC8E) == tcp_ack(2)
    assert broken.calls == 1
    assert not factory.traffic.active


def test_an_unparsed_frame_shows_with_its_error(
    factory: TeltonikaTcpFactory,
) -> None:
    codec7 = by_id("traccar-31-avl-gh3000").data
    watcher = Watcher()
    factory.traffic.watch(IMEI, watcher)
    tracker = FakeTracker(factory, imei=IMEI)
    tracker.login()
    tracker.send(codec7)

    data: dict[str, Any] = watcher.events[2].to_json()
    assert data["hex"] == codec7.hex()
    assert data["decoded"][0]["unparsed"] is True
