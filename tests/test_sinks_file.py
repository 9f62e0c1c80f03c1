"""FileSink: JSON Lines on disk, fsynced before a delivery fires, in groups."""

from __future__ import annotations

import errno
import json
import os
import queue
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import cast

import pytest
import pytest_twisted
from twisted.internet import reactor as _reactor
from twisted.internet.defer import gatherResults
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.task import Clock
from twisted.internet.threads import deferToThread

import teltotwist
from teltotwist.codec import AvlPacket
from teltotwist.gateway.dispatch import DeliveryError, Dispatcher
from teltotwist.gateway.items import TrackerRecord
from teltotwist.sinks.file import FileSink, FileSinkError
from tests.vectors import TCP_AVL_VALID, WIKI_CODEC8_JSON

reactor = cast(IReactorFromThreads, _reactor)

IMEI = "356307042441013"
RECEIVED_AT_MS = 1_795_251_600_123
"""2026-11-21T09:00:00.123Z"""


def tracker_records() -> Iterator[TrackerRecord]:
    """Every record of the valid TCP AVL vectors, as the gateway delivers them."""
    for vector in TCP_AVL_VALID:
        packet = teltotwist.decode(vector.data)
        assert isinstance(packet, AvlPacket)
        for record in packet.records:
            yield TrackerRecord(IMEI, packet.codec, record, RECEIVED_AT_MS)


RECORDS = list(tracker_records())


def lines_of(path: Path) -> list[object]:
    """The JSON Lines file at *path*, each line parsed."""
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


class FsyncSpy:
    """Stands in for ``os.fsync``: counts the calls and, once :meth:`hold`
    is called, makes each wait for :meth:`allow` (which can fail it)."""

    def __init__(self, real: Callable[[int], None]) -> None:
        self.calls = 0
        self._real = real
        self._held = False
        self._started: queue.Queue[int] = queue.Queue()
        self._permits: queue.Queue[OSError | None] = queue.Queue()

    def __call__(self, descriptor: int) -> None:
        self.calls += 1
        self._started.put(descriptor)
        if self._held:
            error = self._permits.get(timeout=10)
            if error is not None:
                raise error
        self._real(descriptor)

    def hold(self) -> None:
        self._held = True

    def allow(self, error: OSError | None = None) -> None:
        """Let one held fsync go on, or fail it with *error*."""
        self._permits.put(error)

    async def started(self) -> None:
        """Wait until the sink's thread calls fsync."""
        await deferToThread(self._started.get, timeout=10)

    def unblock(self) -> None:
        self._held = False
        self._permits.put(None)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "records.jsonl"


@pytest_twisted.async_yield_fixture
async def sink(path: Path) -> AsyncIterator[FileSink]:
    """A running FileSink appending to *path*; stopped after the test."""
    file_sink = FileSink(path, reactor)
    file_sink.startService()
    yield file_sink
    await file_sink.stopService()


@pytest.fixture
def fsync(sink: FileSink, monkeypatch: pytest.MonkeyPatch) -> Iterator[FsyncSpy]:
    """``os.fsync`` spied on, from after the sink opened its file."""
    spy = FsyncSpy(os.fsync)
    monkeypatch.setattr(os, "fsync", spy)
    yield spy
    spy.unblock()


@pytest_twisted.ensureDeferred
async def test_lines_have_the_record_json_contract(sink: FileSink, path: Path) -> None:
    for record in RECORDS:
        await sink.deliver([record])

    assert lines_of(path) == [record.to_json() for record in RECORDS]
    first = lines_of(path)[0]
    assert first == {
        "id": RECORDS[0].id,
        "imei": IMEI,
        "received_at": "2026-11-21T09:00:00.123Z",
        **WIKI_CODEC8_JSON["records"][0],
    }


@pytest_twisted.ensureDeferred
async def test_one_line_per_item_compact_and_in_order(
    sink: FileSink, path: Path
) -> None:
    await sink.deliver(RECORDS[:3])
    await sink.deliver(RECORDS[3:4])

    text = path.read_text(encoding="utf-8")
    assert text.splitlines() == [
        json.dumps(record.to_json(), separators=(",", ":")) for record in RECORDS[:4]
    ]


@pytest_twisted.ensureDeferred
async def test_no_items_add_no_line(sink: FileSink, path: Path) -> None:
    await sink.deliver(RECORDS[:1])
    await sink.deliver([])

    assert path.read_text(encoding="utf-8").count("\n") == 1


@pytest_twisted.ensureDeferred
async def test_appends_to_an_existing_file(path: Path) -> None:
    path.write_text('{"kept": true}\n', encoding="utf-8")
    file_sink = FileSink(path, reactor)
    file_sink.startService()
    try:
        await file_sink.deliver(RECORDS[:1])
    finally:
        await file_sink.stopService()

    assert lines_of(path) == [{"kept": True}, RECORDS[0].to_json()]


@pytest_twisted.ensureDeferred
async def test_deliveries_of_one_reactor_turn_share_fsyncs(
    sink: FileSink, fsync: FsyncSpy, path: Path
) -> None:
    """50 trackers deliver at once: one fsync for the first, one for the rest."""
    await gatherResults([sink.deliver([record]) for record in RECORDS[:50]])

    assert fsync.calls == 2
    assert lines_of(path) == [record.to_json() for record in RECORDS[:50]]


@pytest_twisted.ensureDeferred
async def test_a_delivery_fires_only_after_its_batch_is_fsynced(
    sink: FileSink, fsync: FsyncSpy, path: Path
) -> None:
    fsync.hold()
    first = sink.deliver(RECORDS[:1])
    await fsync.started()
    rest = [sink.deliver([record]) for record in RECORDS[1:50]]

    assert len(lines_of(path)) == 1  # written, not yet fsynced
    assert not first.called
    fsync.allow()
    await first
    await fsync.started()  # the 49 others, in one batch
    assert len(lines_of(path)) == 50
    assert not any(delivery.called for delivery in rest)
    fsync.allow()
    await gatherResults(rest)

    assert fsync.calls == 2


@pytest_twisted.ensureDeferred
async def test_a_failed_fsync_fails_its_batch_and_the_sink_carries_on(
    sink: FileSink, fsync: FsyncSpy, path: Path
) -> None:
    fsync.hold()
    first = sink.deliver(RECORDS[:1])
    await fsync.started()
    batch = [sink.deliver(RECORDS[1:2]), sink.deliver(RECORDS[2:4])]
    fsync.allow()
    await first
    await fsync.started()
    fsync.allow(OSError(errno.EIO, os.strerror(errno.EIO)))

    for delivery in batch:
        with pytest.raises(FileSinkError) as raised:
            await delivery
        assert str(raised.value) == (
            f"could not append to {path}: [Errno {errno.EIO}] {os.strerror(errno.EIO)}"
        )
    later = sink.deliver(RECORDS[4:5])
    await fsync.started()
    fsync.allow()
    await later
    # The failed batch was truncated away: no duplicate, no partial line.
    assert lines_of(path) == [RECORDS[0].to_json(), RECORDS[4].to_json()]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest_twisted.ensureDeferred
async def test_a_full_disk_fails_the_delivery() -> None:
    full = FileSink("/dev/full", reactor)
    full.startService()
    try:
        with pytest.raises(FileSinkError, match="No space left on device"):
            await full.deliver(RECORDS[:1])
        with pytest.raises(FileSinkError, match="No space left on device"):
            await full.deliver(RECORDS[1:2])
    finally:
        await full.stopService()


@pytest_twisted.ensureDeferred
async def test_a_timed_out_delivery_is_written_only_if_it_was_being_written(
    sink: FileSink, fsync: FsyncSpy, path: Path
) -> None:
    """The dispatcher cancels a delivery on timeout: a queued one is dropped,
    the one being written still lands (a duplicate the tracker's resend
    makes harmless)."""
    clock = Clock()
    dispatcher = Dispatcher([sink], timeout=5, clock=clock)
    fsync.hold()
    being_written = dispatcher.deliver(RECORDS[:1])
    await fsync.started()
    queued = dispatcher.deliver(RECORDS[1:2])
    kept = sink.deliver(RECORDS[2:3])

    clock.advance(5)
    for timed_out in (being_written, queued):
        with pytest.raises(DeliveryError, match="no answer within 5 s"):
            await timed_out
    fsync.allow()
    await fsync.started()
    fsync.allow()
    await kept

    assert lines_of(path) == [RECORDS[0].to_json(), RECORDS[2].to_json()]


@pytest_twisted.ensureDeferred
async def test_stopping_waits_for_the_deliveries_in_flight(
    sink: FileSink, fsync: FsyncSpy, path: Path
) -> None:
    fsync.hold()
    in_flight = sink.deliver(RECORDS[:1])
    await fsync.started()
    queued = sink.deliver(RECORDS[1:2])

    stopped = sink.stopService()
    with pytest.raises(FileSinkError, match="is not running"):
        await sink.deliver(RECORDS[2:3])
    assert not stopped.called
    fsync.allow()
    await fsync.started()
    fsync.allow()
    await stopped

    assert in_flight.called and queued.called
    await gatherResults([in_flight, queued])
    assert lines_of(path) == [RECORDS[0].to_json(), RECORDS[1].to_json()]
    assert not [t for t in threading.enumerate() if sink.path in t.name]


@pytest_twisted.ensureDeferred
async def test_delivering_before_start_fails(path: Path) -> None:
    unstarted = FileSink(path, reactor)

    with pytest.raises(
        FileSinkError, match=re.escape(f"file sink for {path} is not running")
    ):
        await unstarted.deliver(RECORDS[:1])
    assert not path.exists()


def test_starting_without_the_directory_fails(tmp_path: Path) -> None:
    missing = tmp_path / "missing" / "records.jsonl"
    file_sink = FileSink(missing, reactor)

    with pytest.raises(
        FileSinkError,
        match=re.escape(f"cannot append to {missing}: No such file or directory"),
    ):
        file_sink.startService()
    assert not file_sink.running
    assert not missing.parent.exists()


def test_names_itself_after_its_path(path: Path) -> None:
    assert FileSink(path, reactor).name == f"file:{path}"
