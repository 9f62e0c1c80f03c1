"""The live view's endpoints over real HTTP: the page and its files, the
streams of the trackers and of one tracker's traffic from a real gateway
with a virtual tracker, and the bounds that keep a stalled client from
costing the trackers anything."""

from __future__ import annotations

import configparser
import json
import socket
from collections.abc import AsyncIterator
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

import teltotwist.control
from teltotwist.codec import AvlPacket, Codec, decode_frame, encode_frame, encode_login
from teltotwist.control.live import MAX_STREAMS
from teltotwist.control.openapi import DOCUMENT
from tests.command_api import Gateway, running_gateway
from tests.test_control_api import (
    IMEI,
    LOOPBACK,
    TOKEN,
    body_as_documented,
    options,
    start,
)
from tests.test_device_gateway import until
from tests.vectors import by_id

TRAFFIC = f"/v1/live/trackers/{IMEI}/traffic"
RECORDS = decode_frame(by_id("traccar-01-avl").data).records  # type: ignore[union-attr]
ACK_SIZE = 4


class EventReader(Protocol):
    """Reads a ``text/event-stream`` body into (event, data) pairs."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.ended = False
        self._buffer = b""

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        while b"\n\n" in self._buffer:
            block, self._buffer = self._buffer.split(b"\n\n", 1)
            fields = dict(
                line.split(": ", 1)
                for line in block.decode().split("\n")
                if not line.startswith(":")
            )
            if fields:
                self.events.append((fields["event"], json.loads(fields["data"])))

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.ended = True

    def named(self, name: str) -> list[Any]:
        return [data for event, data in self.events if event == name]

    def close(self) -> None:
        if not self.ended and self.transport is not None:
            self.transport.stopProducing()  # type: ignore[attr-defined]


class Sender(Protocol):
    """A tracker that sends *frame* again as soon as it is ACKed."""

    def __init__(self, frame: bytes) -> None:
        self.frame = frame
        self.acks = 0
        self._logged_in = False
        self._replies = b""

    def connectionMade(self) -> None:
        self.transport.write(encode_login(IMEI))  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        replies = self._replies + data
        if not self._logged_in and replies[:1] == b"\x01":
            self._logged_in, replies = True, replies[1:]
            self.transport.write(self.frame)  # type: ignore[union-attr]
        while len(replies) >= ACK_SIZE:
            self.acks, replies = self.acks + 1, replies[ACK_SIZE:]
            self.transport.write(self.frame)  # type: ignore[union-attr]
        self._replies = replies


@pytest_twisted.async_yield_fixture
async def gateway(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[Gateway]:
    async for running in running_gateway(monkeypatch, tmp_path):
        yield running


def assert_documented(reader: EventReader, path: str) -> None:
    """Every event of *reader* is one the OpenAPI document gives for *path*,
    its data as the document's schema says."""
    events = DOCUMENT["paths"][path]["get"]["x-events"]
    for event, data in reader.events:
        schema = {**events[event], "components": DOCUMENT["components"]}
        jsonschema.validate(data, schema)


async def opened(gateway: Gateway, path: str) -> EventReader:
    response = await gateway.api.get(path)
    assert response.code == 200
    assert response.headers.getRawHeaders("content-type") == [
        "text/event-stream; charset=utf-8"
    ]
    reader = EventReader()
    response.original.deliverBody(reader)
    return reader


@pytest_twisted.ensureDeferred
async def test_the_page_and_its_files_are_served_without_a_token(
    gateway: Gateway,
) -> None:
    page = await gateway.api.get("/", token=None)
    script = await gateway.api.get("/static/live.js", token=None)
    leaflet = await gateway.api.get("/static/leaflet/leaflet.js", token=None)
    icon = await gateway.api.get("/static/leaflet/images/marker-icon.png", token=None)

    assert page.code == 200
    assert page.headers.getRawHeaders("content-type") == ["text/html; charset=utf-8"]
    assert b"teltotwist live" in await page.content()
    assert b"sessionStorage" in await script.content()
    assert leaflet.code == icon.code == 200
    assert icon.headers.getRawHeaders("content-type") == ["image/png"]


@pytest_twisted.ensureDeferred
async def test_only_the_shipped_files_are_served(gateway: Gateway) -> None:
    for path in (
        "/static/",
        "/static/missing.js",
        "/static/../api.py",
        "/static/leaflet/LICENSE",
        "/static/..%2Fapi.py",
    ):
        response = await gateway.api.get(path, token=None)
        assert response.code == 404, path


@pytest_twisted.ensureDeferred
async def test_the_live_streams_need_the_token(gateway: Gateway) -> None:
    for path in ("/v1/live/trackers", TRAFFIC, "/v1/live/map"):
        response = await gateway.api.get(path, token=None)
        assert response.code == 401


@pytest_twisted.ensureDeferred
async def test_the_map_settings_default_to_openstreetmap(gateway: Gateway) -> None:
    response = await gateway.api.get("/v1/live/map")

    body = await body_as_documented(response, "/v1/live/map")
    assert body["tiles"] == "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    assert "OpenStreetMap" in body["attribution"]


@pytest.mark.parametrize(
    ("arguments", "settings"),
    [
        (["--map-tiles", "none"], {"tiles": None, "attribution": ""}),
        (
            ["--map-tiles", "https://tiles.example/{z}/{x}/{y}.png"],
            {"tiles": "https://tiles.example/{z}/{x}/{y}.png", "attribution": ""},
        ),
        (
            [
                *("--map-tiles", "https://t.example/{z}/{x}/{y}.png"),
                *("--map-attribution", "&copy; Example"),
            ],
            {
                "tiles": "https://t.example/{z}/{x}/{y}.png",
                "attribution": "&copy; Example",
            },
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_other_tiles_or_none_can_be_configured(
    monkeypatch: pytest.MonkeyPatch, arguments: list[str], settings: dict[str, Any]
) -> None:
    monkeypatch.setenv("TELTOTWIST_API_TOKEN", TOKEN)
    api = await start(options("--api", LOOPBACK, *arguments))
    try:
        body = json.loads(await (await api.get("/v1/live/map")).content())
    finally:
        await api.root.stopService()
    assert body == settings


def test_every_file_of_the_page_ships_in_the_wheel() -> None:
    """setup.cfg's package data for teltotwist.control covers every file
    under static/, so an installed gateway serves the same page."""
    config = configparser.ConfigParser()
    config.read(Path(__file__).parent.parent / "setup.cfg")
    patterns = config["options.package_data"]["teltotwist.control"].split()
    package = Path(teltotwist.control.__file__).parent
    shipped = sorted(
        str(path.relative_to(package))
        for path in (package / "static").rglob("*")
        if path.is_file()
    )
    assert "static/leaflet/LICENSE" in shipped
    assert [
        name for name in shipped if not any(fnmatch(name, p) for p in patterns)
    ] == []


@pytest_twisted.ensureDeferred
async def test_the_trackers_stream_lists_a_tracker_then_its_changes(
    gateway: Gateway,
) -> None:
    await gateway.connected()
    reader = await opened(gateway, "/v1/live/trackers")
    try:
        await until(lambda: bool(reader.named("trackers")))
        [first] = reader.named("trackers")
        assert [tracker["imei"] for tracker in first["trackers"]] == [IMEI]

        def positioned() -> bool:
            changes = reader.named("changes")
            return any(
                tracker["last_record"] is not None
                for change in changes
                for tracker in change["trackers"]
            )

        await until(positioned)
        for tracker in gateway.trackers:
            await tracker.stop()
        await until(lambda: any(c["gone"] == [IMEI] for c in reader.named("changes")))
    finally:
        reader.close()
    assert_documented(reader, "/v1/live/trackers")


@pytest_twisted.ensureDeferred
async def test_the_traffic_stream_shows_frames_records_and_acks(
    gateway: Gateway,
) -> None:
    reader = await opened(gateway, TRAFFIC)
    try:
        gateway.tracker()
        await until(lambda: len(reader.named("traffic")) >= 4)
        login, reply, data, ack = reader.named("traffic")[:4]
    finally:
        reader.close()
    assert_documented(reader, "/v1/live/trackers/{imei}/traffic")

    assert (login["kind"], login["direction"]) == ("login", "in")
    assert (reply["kind"], reply["hex"]) == ("login_reply", "01")
    frame = bytes.fromhex(data["hex"])
    assert data["size"] == len(frame)
    assert len(decode_frame(frame).records) == len(data["decoded"])  # type: ignore[union-attr]
    assert data["decoded"][0]["imei"] == IMEI
    assert ack["kind"] == "ack" and ack["latency_ms"] >= 0


@pytest_twisted.ensureDeferred
async def test_a_closed_stream_stops_watching(gateway: Gateway) -> None:
    reader = await opened(gateway, TRAFFIC)
    assert gateway.api.gateway.traffic.active
    reader.close()

    await until(lambda: not gateway.api.gateway.traffic.active)


@pytest_twisted.ensureDeferred
async def test_streams_past_the_limit_are_refused_until_one_closes(
    gateway: Gateway,
) -> None:
    readers = [await opened(gateway, TRAFFIC) for _ in range(MAX_STREAMS)]
    try:
        refused = await gateway.api.get("/v1/live/trackers")
        readers.pop().close()
        accepted = await retried(gateway, "/v1/live/trackers")
        reader = EventReader()
        accepted.original.deliverBody(reader)
        readers.append(reader)
    finally:
        for reader in readers:
            reader.close()

    assert refused.code == 503
    assert json.loads(await refused.content()) == {
        "error": f"{MAX_STREAMS} live streams are open already; close one"
    }


async def retried(gateway: Gateway, path: str) -> Any:
    """The first answer to GET *path* that is not 503 (a closed stream is
    counted out once its connection is gone)."""
    for _ in range(500):
        response = await gateway.api.get(path)
        if response.code != 503:
            return response
        await response.content()
        await deferLater(reactor, 0.01, lambda: None)
    pytest.fail(f"GET {path} stayed refused")


@pytest_twisted.ensureDeferred
async def test_not_an_imei_is_not_found(gateway: Gateway) -> None:
    response = await gateway.api.get("/v1/live/trackers/abc/traffic")

    assert response.code == 404


@pytest_twisted.ensureDeferred
async def test_a_stalled_client_is_dropped_and_the_tracker_keeps_its_acks(
    gateway: Gateway,
) -> None:
    """A client that never reads its stream: once the events held for it pass
    the bound, it is disconnected; the tracker was ACKed all along."""
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", int(gateway.api.url.rsplit(":", 1)[1])))
    stalled.sendall(
        f"GET {TRAFFIC} HTTP/1.1\r\nHost: gateway\r\n"
        f"Authorization: Bearer {TOKEN}\r\n\r\n".encode()
    )
    traffic = gateway.api.gateway.traffic
    await until(lambda: traffic.active)
    tracker = Sender(encode_frame(AvlPacket(Codec.CODEC8E, RECORDS * 50)))
    await connectProtocol(
        TCP4ClientEndpoint(reactor, "127.0.0.1", gateway.port), tracker
    )
    try:
        await until(lambda: not traffic.active, timeout=60)
        acked_at_drop = tracker.acks
        await until(lambda: tracker.acks >= acked_at_drop + 10)
    finally:
        tracker.transport.loseConnection()  # type: ignore[union-attr]
        stalled.close()
    assert acked_at_drop > 0
