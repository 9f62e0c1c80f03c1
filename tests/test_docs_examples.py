"""The examples of the documentation work as the documentation says.

``docs/embedding.rst`` shows ``docs/examples/embedded_gateway.py`` and the
test :func:`test_a_tracker_is_acked_only_once_the_sink_holds_its_records`
below, verbatim.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

from twisted.internet.endpoints import serverFromString
from twisted.internet.testing import MemoryReactorClock

import teltotwist
from teltotwist.codec import AvlPacket, AvlRecord, encode_login, io_elements, tcp_ack
from teltotwist.gateway.items import record_id
from teltotwist.gateway.limits import Limits
from teltotwist.testing import FakeTracker, RecordingSink
from tests.conftest import listening_port
from tests.net import receive_exactly
from tests.vectors import by_id

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples"
IMEI = "356307042441013"
CODEC8 = by_id("wiki-c8-tcp-1").data


def test_the_embedded_gateway_example_acks_and_prints_record_ids() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            str(EXAMPLE / "embedded_gateway.py"),
            "tcp:0:interface=127.0.0.1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        port, output = listening_port(process)
        assert port is not None, "the example did not listen:\n" + "".join(output)

        with socket.create_connection(("127.0.0.1", port), timeout=10) as tracker:
            tracker.sendall(encode_login(IMEI))
            assert tracker.recv(1) == b"\x01"
            tracker.sendall(CODEC8)
            assert receive_exactly(tracker, 4) == tcp_ack(1)

        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    log = "".join(output) + rest
    assert process.returncode == 0, log
    packet = teltotwist.decode(CODEC8)
    assert isinstance(packet, AvlPacket)
    assert f"\n{record_id(IMEI, packet.codec, packet.records[0])}\n" in log
    assert "Received SIGTERM, shutting down." in log


def make_record(timestamp_ms: int) -> AvlRecord:
    io, layout = io_elements(io1={239: 1}, io2={66: 12_850})
    return AvlRecord(
        timestamp_ms=timestamp_ms,
        priority=0,
        longitude=25.2562916,
        latitude=54.6676016,
        altitude=138,
        angle=90,
        satellites=9,
        speed=42,
        event_id=0,
        io=io,
        io_layout=layout,
    )


def test_a_tracker_is_acked_only_once_the_sink_holds_its_records() -> None:
    clock = MemoryReactorClock()
    sink = RecordingSink()
    gateway = teltotwist.makeService(
        clock,
        serverFromString(clock, "tcp:5027"),
        [sink],
        limits=Limits(sink_timeout=20),
    )
    tracker = FakeTracker(gateway.factory, imei="356307042441013")
    assert tracker.login() == b"\x01"

    # The sink holds the packet: no ACK yet.
    sink.hold()
    assert tracker.send_records([make_record(1_700_000_000_000)]) == b""
    sink.release()
    assert tracker.replies() == b"\x00\x00\x00\x01"  # the ACK: one record
    assert [item.imei for item in sink.items] == ["356307042441013"]

    # The sink does not answer within the sink timeout: no ACK, and the
    # connection is closed; the tracker will send the records again.
    sink.hold()
    assert tracker.send_records([make_record(1_700_000_060_000)]) == b""
    clock.advance(20)
    assert tracker.replies() == b""
    assert not tracker.connected
    assert len(sink.items) == 1

    # A sink that fails: no ACK either. The tracker reconnects and resends.
    tracker = FakeTracker(gateway.factory, imei="356307042441013")
    assert tracker.login() == b"\x01"
    sink.fail_with(OSError("disk full"))
    assert tracker.send_records([make_record(1_700_000_060_000)]) == b""
    assert not tracker.connected
