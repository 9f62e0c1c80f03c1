# -*- test-case-name: tests.test_control_api -*-
"""The HTTP API (twisted.web): trackers under ``/v1``, health and metrics.

JSON in and out; every error is ``{"error": "..."}``. Every ``/v1`` request
is checked for the token before anything else, so a request without it
learns nothing, not even whether a path or an IMEI exists. Bounded against
abuse: request bodies over :data:`MAX_REQUEST_BODY` are discarded unread
(413), only the listed methods are served (405), idle connections close,
and refused tokens are logged rate-limited, with the peer but not the path.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

import attrs
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from teltotwist.control.auth import ApiToken
from teltotwist.control.health import Readiness, not_ready_reasons
from teltotwist.control.openapi import DOCUMENT
from teltotwist.gateway.faultlog import FaultLog
from teltotwist.gateway.registry import TrackerRegistry

MAX_REQUEST_BODY = 64 * 1024
"""Bytes of a request body kept at most; a longer one is answered 413."""

IDLE_TIMEOUT = 60.0
"""Seconds an HTTP connection may stay silent before it is closed."""

PROMETHEUS_TEXT = b"text/plain; version=0.0.4; charset=utf-8"
_JSON = b"application/json"
_log = Logger()


class MetricsExposition(Protocol):
    """The gateway's metrics, as ``/metrics`` serves them."""

    def exposition(self) -> bytes:
        """The metrics in the Prometheus text format."""


@attrs.frozen
class _Answer:
    status: int
    body: bytes = b""
    content_type: bytes = _JSON
    headers: tuple[tuple[bytes, bytes], ...] = ()


def _json(status: int, value: object) -> _Answer:
    return _Answer(status, json.dumps(value, separators=(",", ":")).encode())


def _error(status: int, message: str, *headers: tuple[bytes, bytes]) -> _Answer:
    return attrs.evolve(_json(status, {"error": message}), headers=headers)


_Handler = Callable[[], _Answer]


class ApiRequest(Request):
    """A request that keeps at most :data:`MAX_REQUEST_BODY` bytes of its
    body; beyond that it only notes that the body was too large."""

    body_too_large = False
    _body_bytes = 0

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > MAX_REQUEST_BODY:
            self.body_too_large = True
        Request.gotLength(self, 0 if self.body_too_large else length)

    def handleContentChunk(self, data: bytes) -> None:
        self._body_bytes += len(data)
        if self._body_bytes > MAX_REQUEST_BODY:
            self.body_too_large = True
        if not self.body_too_large:
            Request.handleContentChunk(self, data)


class ApiResource(Resource):
    """Every path of the API, routed here, so that each answer is JSON."""

    isLeaf = True

    def __init__(
        self,
        registry: TrackerRegistry,
        gateway: Readiness,
        metrics: MetricsExposition,
        token: ApiToken,
        clock: IReactorTime,
    ) -> None:
        Resource.__init__(self)
        self._registry = registry
        self._gateway = gateway
        self._metrics = metrics
        self._token = token
        self._faults = FaultLog(_log, clock)

    def render(self, request: Request) -> bytes:
        answer = self._answer(request)
        request.setResponseCode(answer.status)
        for name, value in answer.headers:
            request.setHeader(name, value)
        if answer.status != 204:
            request.setHeader(b"content-type", answer.content_type)
        return answer.body

    def _answer(self, request: Request) -> _Answer:
        if isinstance(request, ApiRequest) and request.body_too_large:
            return _error(413, f"request body over {MAX_REQUEST_BODY} bytes")
        segments = [s.decode("utf-8", "replace") for s in request.postpath or []]
        if segments[:1] == ["v1"] and not self._token.admits(
            request.getHeader(b"authorization")
        ):
            self._faults.warn(
                "api-token",
                "HTTP API: request from {peer} without a valid token",
                peer=_peer(request),
            )
            return _error(
                401, "a valid bearer token is needed", (b"www-authenticate", b"Bearer")
            )
        methods = self._route(segments)
        if methods is None:
            return _error(404, "no such resource")
        handler = methods.get(request.method)
        if handler is None:
            allowed = b", ".join(sorted(methods))
            return _error(405, "method not allowed", (b"allow", allowed))
        return handler()

    def _route(self, segments: list[str]) -> dict[bytes, _Handler] | None:
        """The handlers of the path, by method; None for no such path."""
        methods: dict[bytes, _Handler] | None = None
        match segments:
            case ["healthz"]:
                methods = {b"GET": lambda: _json(200, {"status": "ok"})}
            case ["readyz"]:
                methods = {b"GET": self._readiness}
            case ["metrics"]:
                methods = {b"GET": self._exposition}
            case ["v1", "openapi.json"]:
                methods = {b"GET": lambda: _json(200, DOCUMENT)}
            case ["v1", "trackers"]:
                methods = {b"GET": self._trackers}
            case ["v1", "trackers", imei]:
                methods = {b"GET": lambda: self._tracker(imei)}
            case ["v1", "trackers", imei, "connection"]:
                methods = {b"DELETE": lambda: self._disconnect(imei)}
        return methods

    def _readiness(self) -> _Answer:
        reasons = not_ready_reasons(self._gateway)
        if reasons:
            return _json(503, {"status": "not ready", "reasons": reasons})
        return _json(200, {"status": "ready"})

    def _exposition(self) -> _Answer:
        return _Answer(200, self._metrics.exposition(), PROMETHEUS_TEXT)

    def _trackers(self) -> _Answer:
        trackers = [state.to_json() for state in self._registry.trackers()]
        return _json(200, {"trackers": trackers})

    def _tracker(self, imei: str) -> _Answer:
        state = self._registry.get(imei)
        if state is None:
            return _error(404, "no tracker with this IMEI now")
        return _json(200, state.to_json())

    def _disconnect(self, imei: str) -> _Answer:
        if not self._registry.close(imei, "closed through the HTTP API"):
            return _error(404, "no TCP connection for this IMEI")
        return _Answer(204)


class ApiSite(Site):
    """The HTTP factory serving the API, with its bounds and no access log:
    that would put IMEIs from unauthenticated paths into the log, and a line
    for each scrape of ``/metrics``."""

    noisy = False
    requestFactory = ApiRequest

    def __init__(self, resource: ApiResource) -> None:
        Site.__init__(self, resource, timeout=IDLE_TIMEOUT)

    def log(self, request: Any) -> None:
        pass


def _peer(request: Request) -> str:
    address = request.getClientAddress()
    host = getattr(address, "host", None)
    return str(address) if host is None else f"{host}:{getattr(address, 'port', '')}"
