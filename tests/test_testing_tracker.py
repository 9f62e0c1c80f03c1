"""``teltotwist.testing.FakeTracker``, as a user testing their own sink uses it."""

from __future__ import annotations

import pytest
from twisted.internet.testing import MemoryReactorClock

from teltotwist.codec import Codec, tcp_ack
from teltotwist.gateway.dispatch import Dispatcher
from teltotwist.gateway.items import TrackerRecord
from teltotwist.gateway.tcp import TeltonikaTcpFactory
from teltotwist.testing import FakeTracker, RecordingSink
from tests.vectors import build_record


@pytest.mark.parametrize("codec", [Codec.CODEC8, Codec.CODEC8E, Codec.CODEC16])
def test_records_sent_are_the_records_the_sink_gets(codec: Codec) -> None:
    clock = MemoryReactorClock()
    sink = RecordingSink()
    factory = TeltonikaTcpFactory(Dispatcher([sink], 5, clock), clock)
    tracker = FakeTracker(factory, imei="352093081452251")
    generation = 7 if codec is Codec.CODEC16 else None
    records = [
        build_record(
            timestamp_ms=1_700_000_000_000 + n, speed=n, generation_type=generation
        )
        for n in range(3)
    ]

    assert tracker.login() == b"\x01"
    assert tracker.send_records(records, codec) == tcp_ack(3)

    received = [item for item in sink.items if isinstance(item, TrackerRecord)]
    assert [item.record for item in received] == records
    assert {item.imei for item in received} == {"352093081452251"}
    assert {item.codec for item in received} == {codec}


def test_a_refused_connection_says_so() -> None:
    clock = MemoryReactorClock()
    factory = TeltonikaTcpFactory(Dispatcher([RecordingSink()], 5, clock), clock)
    factory.stop_accepting()

    tracker = FakeTracker(factory)

    assert not tracker.connected
    with pytest.raises(ConnectionError, match="refused"):
        tracker.login()
