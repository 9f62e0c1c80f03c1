"""The TCP protocol and factory, in memory: what a tracker sees, and when."""

from __future__ import annotations

import gc
import weakref
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest
from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogEvent, LogLevel, capturedLogs, formatEvent

from teltotwist.catalogue import load_catalogue
from teltotwist.codec import Codec, tcp_ack
from teltotwist.gateway.dispatch import Dispatcher
from teltotwist.gateway.events import DataPathEvents, LoginResult, Rejection, Transport
from teltotwist.gateway.fleet import FleetUnavailableError
from teltotwist.gateway.items import TrackerRecord
from teltotwist.gateway.limits import DuplicateLogin, Limits
from teltotwist.gateway.models import TrackerModels
from teltotwist.gateway.presence import HolderSilentError
from teltotwist.gateway.tcp import CLAIM_GIVE_UP, TeltonikaTcpFactory
from teltotwist.testing import FakeTracker, RecordingSink
from tests.observer import RecordingObserver
from tests.vectors import build_record, by_id, frame_payload

CODEC8 = by_id("wiki-c8-tcp-1").data
CODEC8E = by_id("traccar-01-avl").data
GETINFO_RESPONSE = by_id("wiki-c12-getinfo-resp").data
CODEC7 = by_id("traccar-31-avl-gh3000").data
LIMITS = Limits(
    login_timeout=30,
    idle_timeout=600,
    frame_timeout=30,
    sink_timeout=20,
    max_connections=3,
)
BIG_FRAME_HEADER = bytes(4) + (60_000).to_bytes(4, "big")
"""The start of a 60,000-byte frame, within the 64 KiB cap."""
BUDGET_OF_1000 = attrs.evolve(LIMITS, max_buffered_bytes=1_000, max_connections=10)


@pytest.fixture
def clock() -> MemoryReactorClock:
    return MemoryReactorClock()


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def factory(clock: MemoryReactorClock, sink: RecordingSink) -> TeltonikaTcpFactory:
    dispatcher = Dispatcher([sink], LIMITS.sink_timeout, clock)
    return TeltonikaTcpFactory(dispatcher, clock, limits=LIMITS, now_ms=lambda: 0)


def test_records_reach_the_sink_and_the_tracker_gets_its_ack(
    factory: TeltonikaTcpFactory, sink: RecordingSink
) -> None:
    tracker = FakeTracker(factory)

    assert tracker.login() == b"\x01"
    assert tracker.send(CODEC8E) == tcp_ack(2)

    assert [item.imei for item in sink.items] == [tracker.imei] * 2
    assert all(isinstance(item, TrackerRecord) for item in sink.items)


def test_once_acked_a_packet_is_not_kept_by_its_connection(
    factory: TeltonikaTcpFactory, sink: RecordingSink, clock: MemoryReactorClock
) -> None:
    """An idle tracker costs its connection, not its last packet too."""
    tracker = FakeTracker(factory)
    tracker.login()
    assert tracker.send(CODEC8E) == tcp_ack(2)
    clock.advance(0)  # the reactor's turn ends: what follows the ACK is done
    delivered = [weakref.ref(item) for item in sink.items]
    sink.items.clear()
    sink.deliveries.clear()
    gc.collect()

    assert tracker.connected
    assert [item() for item in delivered] == [None, None]


def test_records_are_named_by_the_model_their_imei_has_now(
    clock: MemoryReactorClock, sink: RecordingSink, tmp_path: Path
) -> None:
    models_file = tmp_path / "models.csv"
    models_file.write_text("356307042441013,FMB640\n")
    models = TrackerModels(load_catalogue(), clock, models_file, "FMB920")
    dispatcher = Dispatcher([sink], LIMITS.sink_timeout, clock)
    factory = TeltonikaTcpFactory(dispatcher, clock, limits=LIMITS, naming=models)
    tracker = FakeTracker(factory, imei="356307042441013")
    other = FakeTracker(factory, imei="352093081452251")
    tracker.login()
    other.login()

    tracker.send(CODEC8)
    other.send(CODEC8)
    models_file.write_text("# all FMB920 now\n")
    models.reload()
    tracker.send(CODEC8)

    voltages = [item.to_json()["attributes"]["external_voltage"] for item in sink.items]
    assert voltages == [24079, 24.079, 24.079]
    assert [item.to_json()["io"]["66"] for item in sink.items] == [24079] * 3


def test_no_ack_and_no_further_reading_until_the_sink_accepts(
    factory: TeltonikaTcpFactory, sink: RecordingSink
) -> None:
    tracker = FakeTracker(factory)
    tracker.login()
    sink.hold()

    assert tracker.send(CODEC8) == b""
    assert tracker.send(CODEC8) == b""  # not waiting for its ACK
    assert tracker.transport.producerState == "paused"
    assert len(sink.pending) == 1

    sink.release()
    assert tracker.replies() == tcp_ack(1)
    assert tracker.transport.producerState == "producing"
    assert len(sink.pending) == 1  # the second packet, now read
    sink.release()
    assert tracker.replies() == tcp_ack(1)


def test_a_tracker_that_waits_for_its_ack_is_never_paused(
    factory: TeltonikaTcpFactory, sink: RecordingSink
) -> None:
    tracker = FakeTracker(factory)
    tracker.login()
    sink.hold()

    assert tracker.send(CODEC8) == b""
    assert tracker.transport.producerState == "producing"
    sink.release()
    assert tracker.replies() == tcp_ack(1)


def test_failing_sink_means_no_ack_and_a_closed_connection(
    factory: TeltonikaTcpFactory, sink: RecordingSink
) -> None:
    tracker = FakeTracker(factory)
    tracker.login()
    sink.fail_with(OSError("disk full"))

    assert tracker.send(CODEC8) == b""
    assert not tracker.connected


def test_sink_timeout_means_no_ack(
    factory: TeltonikaTcpFactory, sink: RecordingSink, clock: MemoryReactorClock
) -> None:
    tracker = FakeTracker(factory)
    tracker.login()
    sink.hold()
    tracker.send(CODEC8)

    clock.advance(LIMITS.sink_timeout + 1)

    assert tracker.replies() == b""
    assert not tracker.connected
    assert sink.pending == ()


def test_command_frames_are_never_acked(factory: TeltonikaTcpFactory) -> None:
    tracker = FakeTracker(factory)
    tracker.login()

    assert tracker.send(GETINFO_RESPONSE) == b""
    assert tracker.connected
    assert tracker.send(CODEC8) == tcp_ack(1)


def test_bad_crc_closes_without_writing_anything(factory: TeltonikaTcpFactory) -> None:
    tracker = FakeTracker(factory)
    tracker.login()

    assert tracker.send(CODEC8[:-1] + b"\x00") == b""
    assert not tracker.connected


@pytest.mark.parametrize("data", [b"", b"\x08\x01"], ids=len)
def test_frame_too_short_for_content_closes_without_an_ack(
    factory: TeltonikaTcpFactory, sink: RecordingSink, data: bytes
) -> None:
    """The 12-byte all-zero frame included: a framing fault, not content."""
    tracker = FakeTracker(factory)
    tracker.login()

    assert tracker.send(frame_payload(data)) == b""
    assert not tracker.connected
    assert sink.items == []


def test_login_timeout_closes(
    factory: TeltonikaTcpFactory, clock: MemoryReactorClock
) -> None:
    tracker = FakeTracker(factory)

    clock.advance(LIMITS.login_timeout - 1)
    assert tracker.connected
    clock.advance(2)
    assert not tracker.connected
    assert tracker.replies() == b""


def test_idle_timeout_restarts_with_every_byte(
    factory: TeltonikaTcpFactory, clock: MemoryReactorClock
) -> None:
    tracker = FakeTracker(factory)
    tracker.login()

    clock.advance(LIMITS.idle_timeout - 10)
    tracker.send(b"\xff")
    clock.advance(LIMITS.idle_timeout - 10)
    assert tracker.connected
    clock.advance(20)
    assert not tracker.connected


def make_factory(
    clock: MemoryReactorClock,
    allow: Callable[[str], bool] = lambda imei: True,
    **limits: Any,
) -> TeltonikaTcpFactory:
    dispatcher = Dispatcher([RecordingSink()], LIMITS.sink_timeout, clock)
    return TeltonikaTcpFactory(
        dispatcher,
        clock,
        allow=allow,
        limits=attrs.evolve(LIMITS, **limits),
        now_ms=lambda: 0,
    )


def warnings(events: Sequence[LogEvent]) -> list[str]:
    return [formatEvent(e) for e in events if e["log_level"] == LogLevel.warn]


def test_replace_policy_lets_the_newest_login_of_an_imei_win(
    clock: MemoryReactorClock,
) -> None:
    factory = make_factory(clock, duplicate_login=DuplicateLogin.REPLACE)
    older = FakeTracker(factory)
    older.login()
    newer = FakeTracker(factory, peer=("192.0.2.11", 40_001))
    with capturedLogs() as events:
        assert newer.login() == b"\x01"

    assert not older.connected
    assert newer.connected
    older.disconnect()
    assert factory.by_imei[newer.imei] is newer.protocol
    assert any(
        "Security" in line and "192.0.2.11:40001" in line and "192.0.2.10:40000" in line
        for line in warnings(events)
    )


def test_a_login_for_an_active_imei_is_rejected_by_default(
    factory: TeltonikaTcpFactory, clock: MemoryReactorClock
) -> None:
    tracker = FakeTracker(factory)
    tracker.login()
    clock.advance(LIMITS.duplicate_login_window - 1)
    tracker.send(CODEC8)
    clock.advance(LIMITS.duplicate_login_window - 1)
    impostor = FakeTracker(factory, peer=("198.51.100.7", 50_000))

    with capturedLogs() as events:
        assert impostor.login() == b"\x00"

    assert not impostor.connected
    assert tracker.connected
    assert tracker.send(CODEC8) == tcp_ack(1)
    assert any(
        "Security" in line
        and "198.51.100.7:50000" in line
        and "192.0.2.10:40000" in line
        for line in warnings(events)
    )


def test_reject_lets_a_tracker_back_in_once_its_old_connection_is_quiet(
    factory: TeltonikaTcpFactory, clock: MemoryReactorClock
) -> None:
    silently_dropped = FakeTracker(factory)
    silently_dropped.login()
    clock.advance(LIMITS.duplicate_login_window)
    reconnected = FakeTracker(factory, peer=("192.0.2.99", 41_000))

    assert reconnected.login() == b"\x01"
    assert not silently_dropped.connected
    assert factory.by_imei[reconnected.imei] is reconnected.protocol


def test_reject_ignores_a_connection_the_gateway_already_closed(
    factory: TeltonikaTcpFactory,
) -> None:
    tracker = FakeTracker(factory)
    tracker.login()
    tracker.send(CODEC8[:-1] + b"\x00")

    assert FakeTracker(factory, peer=("192.0.2.10", 40_001)).login() == b"\x01"


def test_a_flood_from_one_address_cannot_lock_trackers_out(
    clock: MemoryReactorClock,
) -> None:
    factory = make_factory(clock, max_connections=50, max_pending_per_address=5)
    with capturedLogs() as events:
        flood = [
            FakeTracker(factory, peer=("198.51.100.7", port))
            for port in range(10_000, 11_000)
        ]
        trackers = [
            FakeTracker(
                factory, imei=f"3563070424410{n:02}", peer=(f"192.0.2.{n}", 4000)
            )
            for n in range(20)
        ]
        neighbour = FakeTracker(
            factory, imei="352093081452251", peer=("198.51.100.7", 1)
        )

    assert [tracker.login() for tracker in trackers] == [b"\x01"] * 20
    assert neighbour.login() == b"\x01"
    assert sum(attacker.connected for attacker in flood) == 4
    kinds = Counter(e["fault"] for e in events if e["log_level"] == LogLevel.warn)
    # Each eviction is one "address crowded" and one "no login" disconnect.
    assert kinds == {"address crowded": 20, "no login": 20}


def test_a_flood_from_many_addresses_never_closes_logged_in_trackers(
    clock: MemoryReactorClock,
) -> None:
    factory = make_factory(clock, max_connections=10)
    trackers = [
        FakeTracker(factory, imei=f"3563070424410{n:02}", peer=("203.0.113.1", n))
        for n in range(5)
    ]
    for tracker in trackers:
        tracker.login()

    flood = [
        FakeTracker(factory, peer=(f"198.51.{n // 250}.{n % 250}", 9))
        for n in range(1000)
    ]
    newcomer = FakeTracker(factory, imei="352093081452251")

    assert all(tracker.connected for tracker in trackers)
    assert newcomer.login() == b"\x01"
    assert sum(attacker.connected for attacker in flood) == 4


def test_refused_only_when_every_slot_holds_a_logged_in_tracker(
    clock: MemoryReactorClock,
) -> None:
    factory = make_factory(clock, max_connections=3)
    fleet = [
        FakeTracker(factory, imei=f"3563070424410{n:02}", peer=("203.0.113.1", n))
        for n in range(3)
    ]
    for tracker in fleet:
        tracker.login()

    assert not FakeTracker(factory).connected
    fleet[0].disconnect()
    assert FakeTracker(factory).connected


def test_closing_disallowed_sessions_keeps_the_allowed_ones(
    clock: MemoryReactorClock,
) -> None:
    allowed = {"356307042441013", "352093081452251"}
    factory = make_factory(clock, allow=allowed.__contains__)
    kept = FakeTracker(factory, imei="356307042441013")
    kept.login()
    revoked = FakeTracker(factory, imei="352093081452251", peer=("192.0.2.11", 1))
    revoked.login()

    allowed.discard(revoked.imei)
    with capturedLogs() as events:
        factory.close_disallowed()

    assert kept.connected
    assert not revoked.connected
    lines = [formatEvent(event) for event in events]
    assert any(
        "352093081452251" in line and "no longer allowed" in line for line in lines
    )
    assert any("Closed 1 sessions" in line for line in lines)


def test_nothing_is_acked_once_shutdown_began(
    factory: TeltonikaTcpFactory, sink: RecordingSink
) -> None:
    tracker = FakeTracker(factory)
    tracker.login()
    sink.hold()
    tracker.send(CODEC8)

    factory.stop_accepting()
    drained = factory.drain()
    sink.release()

    assert tracker.replies() == b""
    assert not tracker.connected
    assert len(sink.items) == 1
    assert drained.called
    assert not FakeTracker(factory).connected


def test_a_thousand_frames_in_one_read_are_all_acked_in_order(
    factory: TeltonikaTcpFactory, sink: RecordingSink
) -> None:
    """A sink that accepts at once must not make the protocol recurse."""
    tracker = FakeTracker(factory)
    tracker.login()

    replies = tracker.send((CODEC8 + CODEC8E) * 500)

    assert replies == (tcp_ack(1) + tcp_ack(2)) * 500
    assert len(sink.deliveries) == 1000
    assert tracker.connected


def factory_with(
    clock: MemoryReactorClock, sink: RecordingSink, limits: Limits
) -> TeltonikaTcpFactory:
    dispatcher = Dispatcher([sink], limits.sink_timeout, clock)
    return TeltonikaTcpFactory(dispatcher, clock, limits=limits, now_ms=lambda: 0)


def tracker_number(factory: TeltonikaTcpFactory, number: int) -> FakeTracker:
    """A logged-in tracker of its own IMEI and address."""
    tracker = FakeTracker(
        factory, imei=f"35630704244{number:04d}", peer=(f"192.0.2.{number}", 40_000)
    )
    assert tracker.login() == b"\x01"
    return tracker


def test_a_trickled_frame_is_closed_after_the_frame_timeout(
    factory: TeltonikaTcpFactory, clock: MemoryReactorClock
) -> None:
    """Slowloris: a byte every 3 s would beat the idle timeout for ever."""
    tracker = FakeTracker(factory)
    tracker.login()
    tracker.send(BIG_FRAME_HEADER)

    with capturedLogs() as events:
        for _ in range(9):
            clock.advance(3)
            tracker.send(b"\x00")
        assert tracker.connected
        clock.advance(3)

    assert not tracker.connected
    assert tracker.replies() == b""
    assert any(
        "closing: an unfinished frame for 30 s" in formatEvent(event)
        for event in events
    )
    assert factory.unfinished.total == 0


def test_each_frame_gets_its_own_frame_timeout(
    factory: TeltonikaTcpFactory, clock: MemoryReactorClock
) -> None:
    tracker = FakeTracker(factory)
    tracker.login()

    tracker.send(CODEC8[:20])
    clock.advance(29)
    assert tracker.send(CODEC8[20:] + CODEC8[:20]) == tcp_ack(1)
    clock.advance(29)
    assert tracker.connected
    clock.advance(2)
    assert not tracker.connected


def test_the_frame_timeout_waits_while_the_sinks_have_the_packet(
    clock: MemoryReactorClock, sink: RecordingSink
) -> None:
    """The tracker waits for its ACK before it sends the rest."""
    factory = factory_with(clock, sink, attrs.evolve(LIMITS, frame_timeout=5))
    tracker = FakeTracker(factory)
    tracker.login()
    sink.hold()

    tracker.send(CODEC8 + CODEC8[:20])
    clock.advance(10)
    assert tracker.connected
    sink.release()
    assert tracker.replies() == tcp_ack(1)
    clock.advance(4)
    assert tracker.connected
    clock.advance(2)
    assert not tracker.connected


def test_past_the_byte_budget_the_oldest_unfinished_frame_is_closed(
    clock: MemoryReactorClock, sink: RecordingSink
) -> None:
    factory = factory_with(clock, sink, BUDGET_OF_1000)
    oldest, older, tracker = (tracker_number(factory, n) for n in (1, 2, 3))
    oldest.send(BIG_FRAME_HEADER + bytes(392))
    older.send(BIG_FRAME_HEADER + bytes(392))
    oldest.send(bytes(100))  # more of the same frame: it stays the oldest

    with capturedLogs() as events:
        tracker.send(BIG_FRAME_HEADER + bytes(292))

    assert not oldest.connected
    assert older.connected and tracker.connected
    assert factory.unfinished.total == 700
    assert any(
        "unfinished frames of all connections exceed 1000 bytes" in formatEvent(event)
        for event in events
    )


def test_finished_frames_free_their_share_of_the_budget(
    clock: MemoryReactorClock, sink: RecordingSink
) -> None:
    factory = factory_with(clock, sink, BUDGET_OF_1000)
    trackers = [tracker_number(factory, n) for n in range(1, 6)]

    for _ in range(3):
        for tracker in trackers:
            tracker.send(CODEC8[:-1])
        for tracker in trackers:
            assert tracker.send(CODEC8[-1:]) == tcp_ack(1)

    assert all(tracker.connected for tracker in trackers)
    assert factory.unfinished.total == 0


def logged_lines(events: Sequence[LogEvent]) -> list[str]:
    return [formatEvent(event) for event in events]


def test_a_disconnect_is_logged_with_what_the_tracker_sent_and_got_acked(
    factory: TeltonikaTcpFactory, sink: RecordingSink, clock: MemoryReactorClock
) -> None:
    tracker = FakeTracker(factory)
    tracker.login()
    tracker.send(CODEC8)
    sink.hold()
    tracker.send(CODEC8E)
    clock.advance(12.5)

    with capturedLogs() as events:
        tracker.disconnect()

    assert logged_lines(events) == [
        "356307042441013 at 192.0.2.10:40000: disconnected after 12.5 s; "
        "received 2 packets (3 records), acknowledged 1 (1 records)"
    ]


def test_an_error_after_the_sinks_answer_is_logged_and_closes_the_connection(
    factory: TeltonikaTcpFactory,
    clock: MemoryReactorClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug on the way from the sinks' answer to the ACK is logged with its
    traceback, and the tracker reconnects, instead of an unhandled error in
    a Deferred and a connection left waiting."""
    tracker = FakeTracker(factory)
    tracker.login()

    def broken(imei: str, records: object) -> None:
        raise RuntimeError("the registry broke")

    monkeypatch.setattr(factory.registry, "tcp_packet", broken)
    with capturedLogs() as events:
        assert tracker.send(CODEC8) == tcp_ack(1)
        clock.advance(0)

    [failure] = [event["log_failure"] for event in events if "log_failure" in event]
    assert failure.getErrorMessage() == "the registry broke"
    assert "unexpected error" in formatEvent(events[0])
    assert not tracker.connected


def test_a_disconnect_before_the_login_says_so(
    factory: TeltonikaTcpFactory, clock: MemoryReactorClock
) -> None:
    tracker = FakeTracker(factory)
    clock.advance(2)

    with capturedLogs() as events:
        tracker.disconnect()

    assert logged_lines(events) == [
        "unknown IMEI at 192.0.2.10:40000: disconnected after 2.0 s without logging in"
    ]


def test_closes_a_sender_can_repeat_are_rate_limited(
    clock: MemoryReactorClock, sink: RecordingSink
) -> None:
    factory = factory_with(clock, sink, attrs.evolve(LIMITS, max_connections=100))
    with capturedLogs() as events:
        for number in range(50):
            tracker = tracker_number(factory, number)
            tracker.send(CODEC8[:-1] + b"\x00")
            tracker.disconnect()
        clock.advance(60)

    closing = [line for line in logged_lines(events) if "closing: bad frame" in line]
    assert len(closing) == 20
    assert "30 more 'bad input' faults" in logged_lines(events)[-1]


def observed_factory(
    clock: MemoryReactorClock, sink: RecordingSink, **limits: Any
) -> tuple[TeltonikaTcpFactory, RecordingObserver]:
    """A factory whose connections and dispatcher report to one observer."""
    events = DataPathEvents()
    observer = RecordingObserver()
    events.add(observer)
    dispatcher = Dispatcher([sink], LIMITS.sink_timeout, clock, events)
    factory = TeltonikaTcpFactory(
        dispatcher,
        clock,
        limits=attrs.evolve(LIMITS, **limits),
        now_ms=lambda: int(clock.seconds() * 1000),
        events=events,
    )
    return factory, observer


def test_the_registry_follows_a_tracker_from_login_to_disconnect(
    factory: TeltonikaTcpFactory, clock: MemoryReactorClock
) -> None:
    tracker = FakeTracker(factory)
    tracker.login()
    newest_first = [
        build_record(timestamp_ms=1_700_000_060_000, latitude=54.5),
        build_record(timestamp_ms=1_700_000_000_000, latitude=54.0),
    ]

    assert tracker.send_records(newest_first) == tcp_ack(2)
    assert tracker.send(CODEC8) == tcp_ack(1)  # older: 2019
    clock.advance(0)

    state = factory.registry.get(tracker.imei)
    assert state is not None
    assert (state.transport, state.peer) == (Transport.TCP, "192.0.2.10:40000")
    assert (state.packets, state.records) == (2, 3)
    assert state.to_json()["last_record"]["latitude"] == 54.5
    tracker.disconnect()
    assert factory.registry.get(tracker.imei) is None
    assert len(factory.registry) == 0


def test_an_unparsed_frame_counts_as_a_packet_without_records(
    factory: TeltonikaTcpFactory, clock: MemoryReactorClock
) -> None:
    tracker = FakeTracker(factory)
    tracker.login()

    tracker.send(CODEC7)
    clock.advance(0)

    state = factory.registry.get(tracker.imei)
    assert state is not None
    assert (state.packets, state.records, state.last_record) == (1, 0, None)


def test_the_registry_closes_a_tracker_connection(
    factory: TeltonikaTcpFactory,
) -> None:
    tracker = FakeTracker(factory)
    tracker.login()

    with capturedLogs() as events:
        assert factory.registry.close(tracker.imei, "closed by the operator")

    assert not tracker.connected
    assert factory.registry.get(tracker.imei) is None
    assert not factory.registry.close(tracker.imei, "again")
    assert any("closed by the operator" in line for line in warnings(events))


def test_a_replaced_connection_leaving_keeps_the_newer_one_registered(
    clock: MemoryReactorClock,
) -> None:
    factory = make_factory(clock, duplicate_login=DuplicateLogin.REPLACE)
    older = FakeTracker(factory)
    older.login()
    newer = FakeTracker(factory, peer=("192.0.2.11", 40_001))
    newer.login()

    assert not older.connected
    state = factory.registry.get(newer.imei)
    assert state is not None and state.peer == "192.0.2.11:40001"


def test_an_observer_sees_a_connections_life_and_the_ack_latency(
    clock: MemoryReactorClock, sink: RecordingSink
) -> None:
    factory, observer = observed_factory(clock, sink)
    clock.advance(100)
    tracker = FakeTracker(factory)
    tracker.login()
    sink.hold()
    tracker.send(CODEC8E)
    clock.advance(0.25)
    sink.release()
    assert tracker.replies() == tcp_ack(2)
    clock.advance(0)
    sink.accept()
    tracker.send(CODEC7)
    clock.advance(0)
    tracker.disconnect()

    assert observer.seen == [
        ("connection_opened", Transport.TCP),
        ("login", Transport.TCP, LoginResult.ACCEPTED),
        ("sink_delivered", "recording", 0.25, True),
        ("records_acknowledged", Transport.TCP, Codec.CODEC8E, 2, 0.25),
        ("sink_delivered", "recording", 0, True),
        ("records_acknowledged", Transport.TCP, None, 0, 0),
        ("connection_closed", Transport.TCP),
    ]


def test_the_acks_of_one_answer_all_go_before_the_reports_of_any(
    clock: MemoryReactorClock, sink: RecordingSink
) -> None:
    """One answer from the sinks for many packets (one fsync): no tracker's
    ACK waits for the registry and the metrics to hear of another's."""
    trackers: list[FakeTracker] = []
    acks_at_first_report: list[bytes] = []

    class FirstReport(RecordingObserver):
        def records_acknowledged(self, *arguments: Any) -> None:
            if not acks_at_first_report:
                acks_at_first_report.extend(t.replies() for t in trackers)

    factory, _ = observed_factory(clock, sink)
    factory.events.add(FirstReport())
    trackers.extend(tracker_number(factory, number) for number in range(3))
    sink.hold()
    for tracker in trackers:
        tracker.send(CODEC8)
    sink.release_all()
    clock.advance(0)

    assert acks_at_first_report == [tcp_ack(1)] * 3
    states = [factory.registry.get(tracker.imei) for tracker in trackers]
    assert [state.packets if state else None for state in states] == [1, 1, 1]


def test_the_ack_latency_runs_from_the_read_that_completed_the_frame(
    clock: MemoryReactorClock, sink: RecordingSink
) -> None:
    factory, observer = observed_factory(clock, sink)
    tracker = FakeTracker(factory)
    tracker.login()
    sink.hold()
    tracker.send(CODEC8[:-1])
    clock.advance(3)
    tracker.send(CODEC8[-1:])
    clock.advance(0.5)
    sink.release()

    assert tracker.replies() == tcp_ack(1)
    clock.advance(0)
    [(_, _, _, latency)] = observer.of("records_acknowledged")
    assert latency == 0.5


@pytest.mark.parametrize(
    ("allow", "imei", "result"),
    [
        (False, "356307042441013", LoginResult.NOT_ALLOWED),
        (True, "7", LoginResult.IMPLAUSIBLE),
        (True, "356307042441013", LoginResult.DUPLICATE),
    ],
    ids=["not-allowed", "implausible", "duplicate"],
)
def test_a_refused_login_is_reported_with_its_reason(
    clock: MemoryReactorClock,
    sink: RecordingSink,
    allow: bool,
    imei: str,
    result: LoginResult,
) -> None:
    factory, observer = observed_factory(
        clock, sink, duplicate_login=DuplicateLogin.REJECT
    )
    factory.allow = lambda imei: allow
    FakeTracker(factory).login()  # the active holder, for the duplicate case
    observer.seen.clear()

    assert FakeTracker(factory, imei=imei, peer=("198.51.100.7", 1)).login() == b"\x00"

    assert observer.seen == [
        ("connection_opened", Transport.TCP),
        ("login", Transport.TCP, result),
        ("connection_closed", Transport.TCP),
    ]


def test_input_turned_away_is_reported_with_its_reason(
    clock: MemoryReactorClock, sink: RecordingSink
) -> None:
    factory, observer = observed_factory(clock, sink)
    FakeTracker(factory).send(CODEC8)
    bad_crc = FakeTracker(factory)
    bad_crc.login()
    bad_crc.send(CODEC8[:-1] + b"\x00")
    FakeTracker(factory, peer=("192.0.2.12", 1))
    clock.advance(LIMITS.login_timeout)

    assert observer.of("rejected") == [
        (Transport.TCP, Rejection.FRAMING),
        (Transport.TCP, Rejection.CRC),
        (Transport.TCP, Rejection.TIMEOUT),
    ]


def test_a_shed_connection_is_reported_over_the_budget(
    clock: MemoryReactorClock, sink: RecordingSink
) -> None:
    factory, observer = observed_factory(
        clock, sink, max_buffered_bytes=1_000, max_connections=10
    )
    oldest, newer = tracker_number(factory, 1), tracker_number(factory, 2)
    oldest.send(BIG_FRAME_HEADER + bytes(692))
    newer.send(BIG_FRAME_HEADER + bytes(392))

    assert not oldest.connected
    assert observer.of("rejected") == [(Transport.TCP, Rejection.BUDGET)]


def test_a_failing_sink_is_reported_and_nothing_is_acknowledged(
    clock: MemoryReactorClock, sink: RecordingSink
) -> None:
    factory, observer = observed_factory(clock, sink)
    tracker = FakeTracker(factory)
    tracker.login()
    sink.fail_with(OSError("disk full"))

    tracker.send(CODEC8)

    assert observer.of("sink_delivered") == [("recording", 0, False)]
    assert observer.of("records_acknowledged") == observer.of("rejected") == []
    assert factory.registry.get(tracker.imei) is None


def test_a_broken_observer_neither_delays_nor_breaks_the_ack(
    factory: TeltonikaTcpFactory, clock: MemoryReactorClock
) -> None:
    class Broken(RecordingObserver):
        def records_acknowledged(self, *arguments: object) -> None:
            raise RuntimeError("observer bug")

    factory.events.add(Broken())
    tracker = FakeTracker(factory)
    tracker.login()

    with capturedLogs():
        assert tracker.send(CODEC8) == tcp_ack(1)
        assert tracker.send(CODEC8) == tcp_ack(1)
        clock.advance(0)
    state = factory.registry.get(tracker.imei)
    assert state is not None and state.packets == 2


class Elsewhere:
    """A presence: the claims it was asked, answered when the test says."""

    def __init__(self) -> None:
        self.claims: list[tuple[str, Deferred[str | None]]] = []
        self.held: list[str] = []
        self.dropped: list[str] = []

    def claim(self, imei: str, peer: str) -> Deferred[str | None]:
        answer: Deferred[str | None] = Deferred()
        self.claims.append((imei, answer))
        return answer

    def logged_in(self, imei: str) -> None:
        self.held.append(imei)

    def logged_out(self, imei: str) -> None:
        self.held.remove(imei)

    def claim_dropped(self, imei: str) -> None:
        self.dropped.append(imei)


def test_a_login_claimed_elsewhere_is_answered_only_once_decided(
    factory: TeltonikaTcpFactory,
) -> None:
    factory.presence = elsewhere = Elsewhere()
    tracker = FakeTracker(factory)
    assert tracker.login() == b""
    [(imei, answer)] = elsewhere.claims

    answer.callback(None)

    assert tracker.replies() == b"\x01"
    assert elsewhere.held == [imei] == [tracker.imei]
    assert tracker.send(CODEC8) == tcp_ack(1)
    tracker.disconnect()
    assert elsewhere.held == []
    assert elsewhere.dropped == []


def test_a_claim_whose_connection_closed_meanwhile_is_dropped(
    factory: TeltonikaTcpFactory,
) -> None:
    factory.presence = elsewhere = Elsewhere()
    tracker = FakeTracker(factory)
    tracker.login()
    [(imei, answer)] = elsewhere.claims
    tracker.disconnect()

    answer.callback(None)

    assert elsewhere.dropped == [imei]
    assert elsewhere.held == []


def test_a_login_refused_elsewhere_is_refused(factory: TeltonikaTcpFactory) -> None:
    factory.presence = elsewhere = Elsewhere()
    tracker = FakeTracker(factory)
    tracker.login()

    elsewhere.claims[0][1].callback("IMEI 1 is logged in on gw-2")

    assert tracker.replies() == b"\x00"
    assert not tracker.connected
    assert elsewhere.held == []


def test_a_presence_that_hangs_is_given_up_and_the_login_decided_here(
    factory: TeltonikaTcpFactory, clock: MemoryReactorClock
) -> None:
    factory.presence = elsewhere = Elsewhere()
    tracker = FakeTracker(factory)
    tracker.login()
    clock.advance(CLAIM_GIVE_UP - 0.1)
    assert tracker.replies() == b""

    clock.advance(0.1)

    assert tracker.replies() == b"\x01"
    assert elsewhere.held == [tracker.imei]


def test_a_claim_the_bus_cannot_carry_is_decided_here(
    factory: TeltonikaTcpFactory,
) -> None:
    factory.presence = elsewhere = Elsewhere()
    tracker = FakeTracker(factory)
    tracker.login()

    elsewhere.claims[0][1].errback(FleetUnavailableError("the bus is down"))

    assert tracker.replies() == b"\x01"
    assert elsewhere.held == [tracker.imei]


def test_a_silent_holder_refuses_the_login_under_reject(
    factory: TeltonikaTcpFactory,
) -> None:
    factory.presence = elsewhere = Elsewhere()
    tracker = FakeTracker(factory)
    with capturedLogs() as events:
        tracker.login()
        elsewhere.claims[0][1].errback(HolderSilentError("no answer in time"))

    assert tracker.replies() == b"\x00"
    assert not tracker.connected
    assert elsewhere.held == []
    assert any("did not answer" in line for line in warnings(events))


def test_a_silent_holder_is_replaced_under_replace(clock: MemoryReactorClock) -> None:
    factory = make_factory(clock, duplicate_login=DuplicateLogin.REPLACE)
    factory.presence = elsewhere = Elsewhere()
    tracker = FakeTracker(factory)
    tracker.login()

    elsewhere.claims[0][1].errback(HolderSilentError("no answer in time"))

    assert tracker.replies() == b"\x01"
    assert elsewhere.held == [tracker.imei]


def test_a_second_connection_here_is_not_claimed_elsewhere(
    clock: MemoryReactorClock,
) -> None:
    factory = make_factory(clock, duplicate_login=DuplicateLogin.REPLACE)
    factory.presence = elsewhere = Elsewhere()
    older = FakeTracker(factory)
    older.login()
    elsewhere.claims[0][1].callback(None)

    newer = FakeTracker(factory, peer=("192.0.2.11", 40_001))

    assert newer.login() == b"\x01"
    assert len(elsewhere.claims) == 1
    assert not older.connected
    # The older's logout is not told: the IMEI is still held here.
    assert elsewhere.held == [older.imei, newer.imei]
