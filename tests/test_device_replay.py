"""Capture files: what the live view saves, read back as the tracker's side,
decoded by ``teltotwist decode`` and replayed against a real gateway."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import attrs
import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, serverFromString
from twisted.internet.interfaces import IListeningPort

import teltotwist
from teltotwist.cli import main
from teltotwist.codec import encode_login
from teltotwist.device.capture import CaptureError, read_capture
from teltotwist.device.replay import ReplayError, replay
from teltotwist.gateway.items import TrackerRecord
from teltotwist.gateway.service import GatewayService
from teltotwist.testing import RecordingSink
from tests.net import PortReportingEndpoint
from tests.vectors import by_id

CAPTURE = Path(__file__).parent / "data" / "live-capture.txt"
"""Saved by the live view (Download capture) in tests/test_live_view.py."""
IMEI = "356307042441013"
GETINFO_COMMAND = by_id("wiki-c12-getinfo-cmd").data
GETINFO_RESPONSE = by_id("wiki-c12-getinfo-resp").data
CODEC8 = by_id("wiki-c8-tcp-1").data


def lines(text: str) -> list[str]:
    return text.strip().splitlines()


def test_a_saved_capture_gives_the_login_and_the_data_frames() -> None:
    capture = read_capture(CAPTURE.read_text().splitlines())

    assert capture.imei == IMEI
    assert len(capture.frames) == 2
    assert all(frame.startswith(bytes(4)) for frame in capture.frames)
    assert capture.skipped == 0


def test_frames_to_the_tracker_and_its_command_answers_are_not_replayed() -> None:
    capture = read_capture(
        lines(f"""
            # 2026-12-03T17:00:00.000Z in login 17 bytes
            {encode_login(IMEI).hex()}
            # 2026-12-03T17:00:00.000Z out login_reply 01
            # 2026-12-03T17:00:01.000Z out command 20 bytes
            {GETINFO_COMMAND.hex()}
            # 2026-12-03T17:00:01.500Z in command 50 bytes
            {GETINFO_RESPONSE.hex()}
            # 2026-12-03T17:00:02.000Z in data
            {CODEC8.hex()}
            # 2026-12-03T17:00:02.001Z out ack 00000001 latency 1 ms
        """)
    )

    assert capture.frames == (CODEC8,)
    assert capture.skipped == 1


def test_plain_hex_lines_are_the_trackers() -> None:
    capture = read_capture([encode_login(IMEI).hex(), "", "ff", CODEC8.hex()])

    assert (capture.imei, capture.frames, capture.skipped) == (IMEI, (CODEC8,), 1)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (CODEC8.hex(), "line 1: a data frame before the login"),
        ("# nothing here", "the capture holds no login"),
        (f"{encode_login(IMEI).hex()}\nzz", "line 2: not hexadecimal"),
        (f"{encode_login(IMEI).hex()}\n{CODEC8[:-1].hex()}", "line 2: a frame cut"),
        (f"{encode_login(IMEI).hex()}\n{CODEC8[:-1].hex()}00", "line 2: CRC"),
    ],
)
def test_a_capture_that_cannot_be_replayed_says_where(text: str, error: str) -> None:
    with pytest.raises(CaptureError, match=error):
        read_capture(text.splitlines())


def test_teltotwist_decode_reads_a_capture(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(CAPTURE.read_text()))

    assert main(["decode"]) == 0

    decoded = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert decoded[0] == {"imei": IMEI}
    assert [len(frame["records"]) for frame in decoded[1:]] == [1, 1]


@attrs.define
class Gateway:
    service: GatewayService
    sink: RecordingSink
    port: int

    def endpoint(self) -> TCP4ClientEndpoint:
        return TCP4ClientEndpoint(reactor, "127.0.0.1", self.port)


async def started(allow: Callable[[str], bool]) -> Gateway:
    sink = RecordingSink()
    endpoint = PortReportingEndpoint(
        serverFromString(reactor, "tcp:0:interface=127.0.0.1")
    )
    service = teltotwist.makeService(reactor, endpoint, [sink], allow=allow)
    service.startService()
    listening: IListeningPort = await endpoint.port
    return Gateway(service, sink, listening.getHost().port)  # type: ignore[attr-defined]


@pytest_twisted.async_yield_fixture
async def gateway() -> AsyncIterator[Gateway]:
    running = await started(lambda imei: True)
    yield running
    await running.service.stopService()


@pytest_twisted.ensureDeferred
async def test_a_replay_sends_each_frame_once_the_previous_is_acked(
    gateway: Gateway,
) -> None:
    capture = read_capture(CAPTURE.read_text().splitlines())
    told: list[str] = []

    acked = await replay(gateway.endpoint(), reactor, capture, 5.0, told.append)

    assert acked == 2
    records = [item for item in gateway.sink.items if isinstance(item, TrackerRecord)]
    assert [item.imei for item in records] == [IMEI, IMEI]
    assert told[0] == f"login {IMEI}"
    assert told[-1] == "frame 2: acked, 1 records"


@pytest_twisted.ensureDeferred
async def test_a_replay_as_another_imei_and_a_refused_login() -> None:
    running = await started(lambda imei: imei != IMEI)
    capture = read_capture(CAPTURE.read_text().splitlines())
    try:
        with pytest.raises(ReplayError, match="refused the login"):
            await replay(running.endpoint(), reactor, capture, 5.0)
        other = attrs.evolve(capture, imei="352093081452251")
        assert await replay(running.endpoint(), reactor, other, 5.0) == 2
    finally:
        await running.service.stopService()
