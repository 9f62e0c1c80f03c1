"""Commands survive a restart: a new center on the same state directory."""

from __future__ import annotations

from pathlib import Path

from twisted.internet.testing import MemoryReactorClock

from teltotwist.gateway.command_store import SqliteCommandStore
from teltotwist.gateway.commands import CommandCenter, CommandStatus
from teltotwist.gateway.dispatch import Dispatcher
from teltotwist.gateway.tcp import TeltonikaTcpFactory
from teltotwist.testing import FakeTracker, RecordingSink
from tests.vectors import by_id

IMEI = "356307042441013"
CODEC8 = by_id("wiki-c8-tcp-1").data
GETINFO_COMMAND = by_id("wiki-c12-getinfo-cmd").data


def test_a_queued_command_reaches_the_tracker_after_a_restart(tmp_path: Path) -> None:
    state_dir = tmp_path / "state" / "teltotwist"
    clock = MemoryReactorClock()
    before = CommandCenter(clock, SqliteCommandStore(state_dir))
    queued = before.submit(IMEI, text="getinfo", ttl=3600)

    after = CommandCenter(clock, SqliteCommandStore(state_dir))
    factory = TeltonikaTcpFactory(
        Dispatcher([RecordingSink()], 20, clock), clock, commands=after
    )
    tracker = FakeTracker(factory, IMEI)
    tracker.login()

    assert tracker.send(CODEC8).endswith(GETINFO_COMMAND)
    assert [c.id for c in after.recent(IMEI)] == [queued.id]


def test_a_command_sent_when_the_gateway_stopped_failed(tmp_path: Path) -> None:
    clock = MemoryReactorClock()
    store = SqliteCommandStore(tmp_path)
    command = CommandCenter(clock, store).submit(IMEI, payload=b"\x01", ttl=60)
    command.status = CommandStatus.SENT
    store.save(command)

    [restored] = CommandCenter(clock, SqliteCommandStore(tmp_path)).recent(IMEI)

    assert restored.status is CommandStatus.FAILED
    assert restored.payload == b"\x01"


def test_finished_commands_kept_are_bounded(tmp_path: Path) -> None:
    clock = MemoryReactorClock()
    store = SqliteCommandStore(tmp_path, kept=2)
    center = CommandCenter(clock, store)
    for _ in range(3):
        center.submit(IMEI, text="getinfo", ttl=1)
        clock.advance(1)

    assert [c.status for c in store.load()] == [CommandStatus.EXPIRED] * 2


def test_commands_come_back_in_the_order_they_were_queued(tmp_path: Path) -> None:
    clock = MemoryReactorClock()
    store = SqliteCommandStore(tmp_path)
    center = CommandCenter(clock, store)
    first = center.submit(IMEI, text="getinfo", ttl=60)
    second = center.submit(IMEI, text="getver", ttl=60)
    first.status = CommandStatus.SENT
    store.save(first)

    assert [c.id for c in store.load()] == [first.id, second.id]


def test_a_command_handed_over_elsewhere_is_not_restored(tmp_path: Path) -> None:
    clock = MemoryReactorClock()
    center = CommandCenter(clock, SqliteCommandStore(tmp_path))
    center.submit(IMEI, text="getinfo", ttl=60)
    kept = center.submit(IMEI, text="getver", ttl=60)
    handed, put_back = center.take_queued(IMEI)
    center.handed_over(handed)
    center.put_back([put_back])

    restored = CommandCenter(clock, SqliteCommandStore(tmp_path)).recent(IMEI)

    assert [c.id for c in restored] == [kept.id]
