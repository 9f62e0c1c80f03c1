"""The tracker registry: who is connected, what they sent, bounded."""

from __future__ import annotations

from teltotwist.codec import AvlRecord, io_elements
from teltotwist.gateway.events import Transport
from teltotwist.gateway.registry import TrackerRegistry

IMEI = "356307042441013"
START_MS = 1_764_000_000_000


class Clock:
    def __init__(self) -> None:
        self.ms = START_MS

    def __call__(self) -> int:
        return self.ms


class Link:
    def __init__(self) -> None:
        self.closed: list[str] = []

    def close(self, reason: str) -> None:
        self.closed.append(reason)


def record(timestamp_ms: int, latitude: float = 54.6676016) -> AvlRecord:
    io, layout = io_elements(io1={239: 1})
    return AvlRecord(
        timestamp_ms, 1, 25.2562916, latitude, 138, 90, 7, 42, 0, io, layout
    )


def test_a_logged_in_tracker_with_its_counts_and_newest_position() -> None:
    clock = Clock()
    registry = TrackerRegistry(clock, udp_idle=600)
    registry.tcp_logged_in(IMEI, "192.0.2.7:40000", Link())
    clock.ms += 5_000
    # Newest first, as trackers may send them.
    registry.tcp_packet(IMEI, [record(START_MS, 54.1), record(START_MS - 1000, 54.0)])

    [state] = registry.trackers()
    assert state.to_json() == {
        "imei": IMEI,
        "transport": "tcp",
        "peer": "192.0.2.7:40000",
        "connected_at": "2025-11-24T16:00:00.000Z",
        "last_seen": "2025-11-24T16:00:05.000Z",
        "packets": 1,
        "records": 2,
        "last_record": {
            "timestamp": "2025-11-24T16:00:00.000Z",
            "latitude": 54.1,
            "longitude": 25.2562916,
            "speed": 42,
            "altitude": 138,
            "angle": 90,
            "satellites": 7,
        },
    }


def test_an_older_connection_closing_leaves_the_newer_one() -> None:
    registry = TrackerRegistry(Clock(), udp_idle=600)
    older, newer = Link(), Link()
    registry.tcp_logged_in(IMEI, "192.0.2.7:1", older)
    registry.tcp_logged_in(IMEI, "192.0.2.7:2", newer)

    registry.tcp_closed(IMEI, older)

    state = registry.get(IMEI)
    assert state is not None and state.peer == "192.0.2.7:2"
    registry.tcp_closed(IMEI, newer)
    assert registry.get(IMEI) is None


def test_close_reaches_the_connection_and_says_whether_there_was_one() -> None:
    registry = TrackerRegistry(Clock(), udp_idle=600)
    link = Link()
    registry.tcp_logged_in(IMEI, "192.0.2.7:1", link)

    assert registry.close(IMEI, "closed through the API")
    assert link.closed == ["closed through the API"]
    assert not registry.close("352093081452251", "closed through the API")


def test_udp_trackers_are_forgotten_after_the_idle_timeout() -> None:
    clock = Clock()
    registry = TrackerRegistry(clock, udp_idle=600)
    registry.udp_packet(IMEI, "192.0.2.7:5027", [record(START_MS)])
    clock.ms += 599_000
    state = registry.get(IMEI)
    assert state is not None and state.transport is Transport.UDP

    clock.ms += 1_000

    assert registry.get(IMEI) is None
    assert len(registry) == 0


def test_udp_trackers_beyond_the_capacity_forget_the_longest_silent() -> None:
    clock = Clock()
    registry = TrackerRegistry(clock, udp_idle=600, udp_capacity=3)
    imeis = [f"35630704244{n:04d}" for n in range(5)]
    for imei in imeis:
        clock.ms += 1
        registry.udp_packet(imei, "192.0.2.7:5027", [])

    assert [state.imei for state in registry.trackers()] == imeis[2:]


def test_an_older_record_later_does_not_replace_the_newest_position() -> None:
    registry = TrackerRegistry(Clock(), udp_idle=600)
    registry.udp_packet(IMEI, "192.0.2.7:5027", [record(START_MS)])
    registry.udp_packet(IMEI, "192.0.2.7:5027", [record(START_MS - 60_000, 1.0)])

    state = registry.get(IMEI)
    assert state is not None and state.packets == 2
    assert state.last_record is not None
    assert state.last_record.timestamp_ms == START_MS


def test_count_tells_each_transports_trackers_and_forgets_silent_udp() -> None:
    clock = Clock()
    registry = TrackerRegistry(clock, udp_idle=600)
    registry.tcp_logged_in(IMEI, "192.0.2.7:1", Link())
    registry.udp_packet("352093081452251", "192.0.2.8:5027", [])
    registry.udp_packet("352093081452252", "192.0.2.9:5027", [])

    assert registry.count(Transport.TCP) == 1
    assert registry.count(Transport.UDP) == 2
    clock.ms += 600_000
    assert registry.count(Transport.UDP) == 0
    assert registry.count(Transport.TCP) == 1
