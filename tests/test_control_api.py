"""The HTTP API: real requests (treq) to the real listening API in front of
a real gateway built by ``tap.makeService``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import attrs
import jsonschema
import pytest
import pytest_twisted
import treq
from twisted.application.service import IService, IServiceCollection
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import capturedLogs, formatEvent
from twisted.python import usage
from zope.interface import implementer

from teltotwist.codec import AvlPacket, decode_frame
from teltotwist.control.api import MAX_REQUEST_BODY
from teltotwist.control.auth import TOKEN_VARIABLE
from teltotwist.control.openapi import DOCUMENT
from teltotwist.control.service import ApiService
from teltotwist.gateway.fleet import LocalFleet
from teltotwist.gateway.service import GatewayService
from teltotwist.sinks.interfaces import ISinkReadiness
from teltotwist.tap import Options, makeService
from teltotwist.testing import RecordingSink
from tests.vectors import by_id

TOKEN = "s3cret-token-for-the-tests"
IMEI = "356307042441013"
LOOPBACK = "tcp:0:interface=127.0.0.1"


class Link:
    """A tracker's connection as the registry sees it; records its closing."""

    def __init__(self) -> None:
        self.closed: list[str] = []

    def close(self, reason: str) -> None:
        self.closed.append(reason)


@implementer(ISinkReadiness)
class SwitchableSink(RecordingSink):
    """A recording sink whose readiness the test sets."""

    ready = True

    def whenReady(self) -> Deferred[None]:
        return succeed(None)


@attrs.define
class Api:
    url: str
    gateway: GatewayService
    root: IService
    sink: SwitchableSink

    def get(self, path: str, token: str | None = TOKEN, **kwargs: Any) -> Any:
        return self.request("GET", path, token, **kwargs)

    def request(
        self, method: str, path: str, token: str | None = TOKEN, **kwargs: Any
    ) -> Any:
        headers: dict[bytes | str, bytes | str] = (
            {} if token is None else {"Authorization": f"Bearer {token}"}
        )
        return treq.request(method, self.url + path, headers=headers, **kwargs)


def options(*arguments: str) -> Options:
    parsed = Options()
    usage.Options.parseOptions(parsed, ["--port", LOOPBACK, *arguments])
    return parsed


def services(root: IService) -> list[IService]:
    return list(IServiceCollection(root))


async def start(parsed: Options) -> Api:
    sink = SwitchableSink()
    parsed["sinks"] = [sink]
    root = makeService(parsed)
    [gateway] = [s for s in services(root) if isinstance(s, GatewayService)]
    [api] = [s for s in services(root) if isinstance(s, ApiService)]
    root.startService()
    address = await api.whenListening()
    await gateway.whenListening()
    assert isinstance(address, IPv4Address)
    return Api(f"http://127.0.0.1:{address.port}", gateway, root, sink)


@pytest_twisted.async_yield_fixture
async def api(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Api]:
    monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
    running = await start(options("--api", LOOPBACK))
    yield running
    await running.root.stopService()


def packet(vector: str) -> AvlPacket:
    decoded = decode_frame(by_id(vector).data)
    assert isinstance(decoded, AvlPacket)
    return decoded


def schema_of(path: str, method: str, status: int) -> dict[str, Any]:
    """The response schema the OpenAPI document gives, able to resolve its
    ``#/components`` references."""
    response = DOCUMENT["paths"][path][method]["responses"][str(status)]
    [content] = response["content"].values()
    return {**content["schema"], "components": DOCUMENT["components"]}


async def body_as_documented(
    response: Any, path: str, method: str = "get"
) -> dict[str, Any]:
    """The JSON body, after checking it against the document's schema."""
    assert response.headers.getRawHeaders("content-type") == ["application/json"]
    body: dict[str, Any] = json.loads(await response.content())
    jsonschema.validate(body, schema_of(path, method, response.code))
    return body


@pytest_twisted.ensureDeferred
async def test_trackers_are_listed_with_counts_and_last_position(api: Api) -> None:
    api.gateway.registry.tcp_logged_in(IMEI, "192.0.2.7:40000", Link())
    api.gateway.registry.tcp_packet(IMEI, packet("wiki-c8-tcp-1").records)

    response = await api.get("/v1/trackers")

    assert response.code == 200
    body = await body_as_documented(response, "/v1/trackers")
    [tracker] = body["trackers"]
    assert tracker["imei"] == IMEI
    assert (tracker["transport"], tracker["peer"]) == ("tcp", "192.0.2.7:40000")
    assert (tracker["packets"], tracker["records"]) == (1, 1)
    assert tracker["last_record"]["timestamp"] == "2019-06-10T10:04:46.000Z"


@pytest_twisted.ensureDeferred
async def test_one_tracker_or_404(api: Api) -> None:
    api.gateway.registry.udp_packet(
        IMEI, "192.0.2.9:5000", packet("wiki-c8-tcp-1").records
    )

    found = await api.get(f"/v1/trackers/{IMEI}")
    missing = await api.get("/v1/trackers/352093081452251")

    assert found.code == 200
    tracker = await body_as_documented(found, "/v1/trackers/{imei}")
    assert (tracker["imei"], tracker["transport"]) == (IMEI, "udp")
    assert missing.code == 404
    assert await body_as_documented(missing, "/v1/trackers/{imei}") == {
        "error": "no tracker with this IMEI now"
    }


@pytest_twisted.ensureDeferred
async def test_deleting_the_connection_closes_it(api: Api) -> None:
    link = Link()
    api.gateway.registry.tcp_logged_in(IMEI, "192.0.2.7:40000", link)

    closed = await api.request("DELETE", f"/v1/trackers/{IMEI}/connection")
    unknown = await api.request("DELETE", "/v1/trackers/352093081452251/connection")

    assert closed.code == 204
    assert await closed.content() == b""
    assert link.closed == ["closed through the HTTP API"]
    assert unknown.code == 404
    path = "/v1/trackers/{imei}/connection"
    assert "error" in await body_as_documented(unknown, path, "delete")


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token-of-some-length", f"Basic {TOKEN}", TOKEN],
)
@pytest_twisted.ensureDeferred
async def test_without_the_token_nothing_is_revealed(
    api: Api, authorization: str | None
) -> None:
    api.gateway.registry.tcp_logged_in(IMEI, "192.0.2.7:40000", Link())
    headers: dict[bytes | str, bytes | str] = (
        {} if authorization is None else {"Authorization": authorization}
    )
    answers = []
    with capturedLogs() as events:
        for method, path in [
            ("GET", f"/v1/trackers/{IMEI}"),
            ("GET", "/v1/trackers/352093081452251"),
            ("DELETE", f"/v1/trackers/{IMEI}/connection"),
            ("GET", "/v1/no/such/path"),
            ("PUT", "/v1/trackers"),
            ("GET", "/v1/openapi.json"),
            ("POST", f"/v1/trackers/{IMEI}/commands"),
            ("GET", f"/v1/trackers/{IMEI}/commands"),
            ("GET", "/v1/commands/5f0c9e0d4b1a4f6c8a7e2d3b1c0a9f8e"),
        ]:
            response = await treq.request(method, api.url + path, headers=headers)
            www = response.headers.getRawHeaders("www-authenticate")
            answers.append((response.code, www, await response.content()))

    assert answers == [
        (401, ["Bearer"], b'{"error":"a valid bearer token is needed"}')
    ] * len(answers)
    assert api.gateway.registry.get(IMEI) is not None
    logged = "\n".join(formatEvent(event) for event in events)
    assert "without a valid token" in logged
    assert IMEI not in logged


@pytest_twisted.ensureDeferred
async def test_unknown_paths_are_404_and_other_methods_405(api: Api) -> None:
    unknown = await api.get("/v1/nothing")
    root = await api.get("/nothing")
    post = await api.request("POST", "/v1/trackers")
    put = await api.request("PUT", f"/v1/trackers/{IMEI}/connection")

    assert (unknown.code, root.code) == (404, 404)
    assert json.loads(await unknown.content()) == {"error": "no such resource"}
    assert (post.code, put.code) == (405, 405)
    assert post.headers.getRawHeaders("allow") == ["GET"]
    assert put.headers.getRawHeaders("allow") == ["DELETE"]
    assert json.loads(await put.content()) == {"error": "method not allowed"}


@pytest_twisted.ensureDeferred
async def test_a_body_over_the_limit_is_413_and_not_kept(api: Api) -> None:
    response = await api.request(
        "POST", "/v1/trackers", data=b"x" * (MAX_REQUEST_BODY + 1)
    )

    assert response.code == 413
    assert json.loads(await response.content()) == {
        "error": f"request body over {MAX_REQUEST_BODY} bytes"
    }


@pytest_twisted.ensureDeferred
async def test_health_and_metrics_need_no_token(api: Api) -> None:
    health = await api.get("/healthz", token=None)
    ready = await api.get("/readyz", token=None)
    metrics = await api.get("/metrics", token=None)

    assert await body_as_documented(health, "/healthz") == {"status": "ok"}
    assert ready.code == 200
    assert await body_as_documented(ready, "/readyz") == {"status": "ready"}
    assert metrics.code == 200
    assert metrics.headers.getRawHeaders("content-type") == [
        "text/plain; version=0.0.4; charset=utf-8"
    ]
    assert b"teltotwist_connections" in await metrics.content()


@pytest_twisted.ensureDeferred
async def test_not_ready_while_a_sink_is_not_or_once_stopping(api: Api) -> None:
    api.sink.ready = False
    sink_down = await api.get("/readyz", token=None)
    api.sink.ready = True
    await api.gateway.stopService()
    stopping = await api.get("/readyz", token=None)

    assert sink_down.code == stopping.code == 503
    assert await body_as_documented(sink_down, "/readyz") == {
        "status": "not ready",
        "reasons": ["sink recording not ready"],
    }
    assert (await body_as_documented(stopping, "/readyz"))["reasons"] == [
        "not listening for trackers"
    ]


@pytest_twisted.ensureDeferred
async def test_the_openapi_document_describes_every_endpoint(api: Api) -> None:
    response = await api.get("/v1/openapi.json")

    assert response.code == 200
    served = json.loads(await response.content())
    assert served == DOCUMENT
    assert served["openapi"].startswith("3.1")
    assert set(served["paths"]) == {
        "/v1/trackers",
        "/v1/trackers/{imei}",
        "/v1/trackers/{imei}/connection",
        "/v1/trackers/{imei}/commands",
        "/v1/commands/{id}",
        "/v1/openapi.json",
        "/metrics",
        "/healthz",
        "/readyz",
        "/",
        "/v1/live/map",
        "/v1/live/trackers",
        "/v1/live/trackers/{imei}/traffic",
    }
    assert served["components"]["schemas"]["Command"]["properties"]["codec"] == {
        "enum": [12, 14]
    }
    for schema in served["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


@pytest_twisted.ensureDeferred
async def test_a_generated_token_is_logged_once_with_a_usable_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(TOKEN_VARIABLE, raising=False)
    with capturedLogs() as events:
        running = await start(options("--api", LOOPBACK))
    try:
        lines = [formatEvent(event) for event in events]
        [line] = [line for line in lines if "Bearer" in line]
        token = line.split("Bearer ")[1].split("'")[0]
        assert f"{running.url}/v1/trackers" in line
        allowed = await running.get("/v1/trackers", token=token)
        refused = await running.get("/v1/trackers")
    finally:
        await running.root.stopService()

    assert (allowed.code, refused.code) == (200, 401)
    assert len(token) >= 32


@pytest_twisted.ensureDeferred
async def test_a_chosen_token_is_never_logged(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv(TOKEN_VARIABLE, "the-environment-token-loses")
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    with capturedLogs() as events:
        running = await start(
            options("--api", LOOPBACK, "--api-token-file", str(token_file))
        )
    try:
        response = await running.get("/v1/trackers")
    finally:
        await running.root.stopService()

    assert response.code == 200
    logged = "\n".join(formatEvent(event) for event in events)
    assert f"HTTP API on {running.url}/" in logged
    assert TOKEN not in logged


def test_the_api_listens_on_localhost_8027_by_default_or_not_at_all() -> None:
    assert options()["api"] == "tcp:8027:interface=127.0.0.1"
    assert not [
        s
        for s in services(makeService(options("--api", "none")))
        if isinstance(s, ApiService)
    ]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--api", "nonsense:1"], "--api nonsense:1"),
        (["--api-token-file", "/nonexistent/token"], "--api-token-file"),
    ],
)
def test_bad_api_options_are_usage_errors(arguments: list[str], message: str) -> None:
    with pytest.raises(usage.UsageError, match=message):
        options(*arguments)


def test_a_short_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_VARIABLE, "short")
    with pytest.raises(usage.UsageError, match="at least 16"):
        options()


@pytest_twisted.ensureDeferred
async def test_an_answer_that_fails_unexpectedly_is_a_500_and_logged(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        LocalFleet, "trackers", lambda self: fail(RuntimeError("the fleet broke"))
    )

    with capturedLogs() as events:
        response = await api.get("/v1/trackers")
        body = json.loads(await response.content())

    assert response.code == 500
    assert body == {"error": "the request failed; the gateway's log says why"}
    assert any("the fleet broke" in str(event.get("log_failure")) for event in events)
