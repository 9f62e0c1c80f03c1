"""LogSink: each item as one JSON line in the gateway's log."""

from __future__ import annotations

import io
import json

from twisted.logger import (
    LogLevel,
    capturedLogs,
    formatEvent,
    textFileLogObserver,
)

import teltotwist
from teltotwist.codec import AvlPacket
from teltotwist.gateway.items import Item, TrackerRecord, UnparsedFrame
from teltotwist.sinks.log import LogSink
from tests.vectors import WIKI_CODEC8_JSON, by_id

IMEI = "356307042441013"
RECEIVED_AT_MS = 1_795_251_600_123
"""2026-11-21T09:00:00.123Z"""


def wiki_codec8_item() -> TrackerRecord:
    packet = teltotwist.decode(by_id("wiki-c8-tcp-1").data)
    assert isinstance(packet, AvlPacket)
    return TrackerRecord(IMEI, packet.codec, packet.records[0], RECEIVED_AT_MS)


ITEMS: list[Item] = [
    wiki_codec8_item(),
    UnparsedFrame(IMEI, b"\x8e\x00{}", "not an AVL payload", RECEIVED_AT_MS),
]


def test_logs_each_item_as_one_compact_json_line() -> None:
    accepted: list[None] = []
    with capturedLogs() as events:
        LogSink().deliver(ITEMS).addCallback(accepted.append)

    assert accepted == [None]
    assert [formatEvent(event) for event in events] == [
        json.dumps(item.to_json(), separators=(",", ":")) for item in ITEMS
    ]
    assert json.loads(formatEvent(events[0])) == {
        "id": ITEMS[0].id,
        "imei": IMEI,
        "received_at": "2026-11-21T09:00:00.123Z",
        **WIKI_CODEC8_JSON["records"][0],
    }
    assert {(event["log_namespace"], event["log_level"]) for event in events} == {
        ("teltotwist.records", LogLevel.info)
    }


def test_twistd_log_shows_the_json_after_its_prefix() -> None:
    """twistd's log file: ``TIMESTAMP [teltotwist.records#info] {...}``."""
    with capturedLogs() as events:
        LogSink().deliver(ITEMS)
    output = io.StringIO()
    observer = textFileLogObserver(output)
    for event in events:
        observer(event)

    lines = output.getvalue().splitlines()
    assert len(lines) == len(ITEMS)
    for line, item in zip(lines, ITEMS, strict=True):
        _, logged = line.split(" [teltotwist.records#info] ")
        assert json.loads(logged) == item.to_json()


def test_is_named_log() -> None:
    assert LogSink().name == "log"
