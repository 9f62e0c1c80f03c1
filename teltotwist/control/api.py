# -*- test-case-name: tests.test_control_api -*-
"""The HTTP API (twisted.web): trackers under ``/v1``, health and metrics,
and the live view's page at ``/``.

JSON in and out; every error is ``{"error": "..."}``. Every ``/v1`` request
is checked for the token before anything else, so a request without it
learns nothing, not even whether a path or an IMEI exists. Bounded against
abuse: request bodies over :data:`MAX_REQUEST_BODY` are discarded unread
(413), only the listed methods are served (405), idle connections close,
and refused tokens are logged rate-limited, with the peer but not the path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from teltotwist.control.answers import Answer, error_answer, json_answer
from teltotwist.control.auth import ApiToken
from teltotwist.control.command_endpoints import CommandEndpoints
from teltotwist.control.event_stream import EventStream
from teltotwist.control.health import Readiness, not_ready_reasons
from teltotwist.control.live import LiveEndpoints
from teltotwist.control.openapi import DOCUMENT
from teltotwist.control.static_files import StaticFiles
from teltotwist.gateway.faultlog import FaultLog
from teltotwist.gateway.fleet import Fleet, FleetUnavailableError, Json, TrackerListing

MAX_REQUEST_BODY = 64 * 1024
"""Bytes of a request body kept at most; a longer one is answered 413."""

IDLE_TIMEOUT = 60.0
"""Seconds an HTTP connection may stay silent before it is closed."""

PROMETHEUS_TEXT = b"text/plain; version=0.0.4; charset=utf-8"
_log = Logger()


class MetricsExposition(Protocol):
    """The gateway's metrics, as ``/metrics`` serves them."""

    def exposition(self) -> bytes | Deferred[bytes]:
        """The metrics in the Prometheus text format (gathered, for those of
        several processes)."""


_Handler = Callable[[], Answer | Deferred[Answer] | EventStream]


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
        fleet: Fleet,
        gateway: Readiness,
        metrics: MetricsExposition,
        token: ApiToken,
        clock: IReactorTime,
        *,
        commands: CommandEndpoints | None = None,
        readiness_checks: Sequence[Callable[[], str | None]] = (),
        live: LiveEndpoints | None = None,
    ) -> None:
        Resource.__init__(self)
        self._fleet = fleet
        self._checks = readiness_checks
        self._gateway = gateway
        self._metrics = metrics
        self._token = token
        self._commands = commands
        self._live = live
        self._static = StaticFiles() if live is not None else None
        self._faults = FaultLog(_log, clock)

    def render(self, request: Request) -> bytes | int:
        answer = self._answer(request)
        if isinstance(answer, EventStream):
            return NOT_DONE_YET
        if not isinstance(answer, Deferred):
            return _respond(request, answer)
        request.notifyFinish().addErrback(lambda _: answer.cancel())
        answer.addErrback(_unless_disconnected)
        answer.addCallback(_finish, request).addErrback(
            lambda failure: _log.failure("HTTP API: answering failed", failure)
        )
        return NOT_DONE_YET

    def _answer(self, request: Request) -> Answer | Deferred[Answer] | EventStream:
        if isinstance(request, ApiRequest) and request.body_too_large:
            return error_answer(413, f"request body over {MAX_REQUEST_BODY} bytes")
        segments = [s.decode("utf-8", "replace") for s in request.postpath or []]
        if segments[:1] == ["v1"] and not self._token.admits(
            request.getHeader(b"authorization")
        ):
            self._faults.warn(
                "api-token",
                "HTTP API: request from {peer} without a valid token",
                peer=_peer(request),
            )
            return error_answer(
                401, "a valid bearer token is needed", (b"www-authenticate", b"Bearer")
            )
        methods = self._route(segments, request)
        if methods is None:
            return error_answer(404, "no such resource")
        handler = methods.get(request.method)
        if handler is None:
            allowed = b", ".join(sorted(methods))
            return error_answer(405, "method not allowed", (b"allow", allowed))
        return handler()

    def _route(
        self, segments: list[str], request: Request
    ) -> dict[bytes, _Handler] | None:
        """The handlers of the path, by method; None for no such path."""
        methods: dict[bytes, _Handler] | None = None
        match segments:
            case ["healthz"]:
                methods = {b"GET": lambda: json_answer(200, {"status": "ok"})}
            case ["readyz"]:
                methods = {b"GET": self._readiness}
            case ["metrics"]:
                methods = {b"GET": self._exposition}
            case ["v1", "openapi.json"]:
                methods = {b"GET": lambda: json_answer(200, DOCUMENT)}
            case ["v1", "trackers"]:
                methods = {b"GET": self._trackers}
            case ["v1", "trackers", imei]:
                methods = {b"GET": lambda: self._tracker(imei)}
            case ["v1", "trackers", imei, "connection"]:
                methods = {b"DELETE": lambda: self._disconnect(imei)}
        if self._commands is not None:
            methods = methods or _command_routes(self._commands, segments, request)
        if self._live is not None and self._static is not None:
            methods = methods or _live_routes(
                self._live, self._static, segments, request
            )
        return methods

    def _readiness(self) -> Answer:
        reasons = not_ready_reasons(self._gateway)
        reasons.extend(filter(None, (check() for check in self._checks)))
        if reasons:
            return json_answer(503, {"status": "not ready", "reasons": reasons})
        return json_answer(200, {"status": "ready"})

    def _exposition(self) -> Answer | Deferred[Answer]:
        exposed = self._metrics.exposition()
        if isinstance(exposed, Deferred):
            return exposed.addCallback(lambda body: Answer(200, body, PROMETHEUS_TEXT))
        return Answer(200, exposed, PROMETHEUS_TEXT)

    def _trackers(self) -> Deferred[Answer]:
        return self._fleet.trackers().addCallbacks(_listing, _unavailable)

    def _tracker(self, imei: str) -> Deferred[Answer]:
        return self._fleet.tracker(imei).addCallbacks(_tracker, _unavailable)

    def _disconnect(self, imei: str) -> Deferred[Answer]:
        return self._fleet.disconnect(imei).addCallbacks(_disconnected, _unavailable)


def _listing(listing: TrackerListing) -> Answer:
    body: dict[str, object] = {"trackers": listing.trackers}
    if listing.members is not None:
        body["members"] = listing.members
    return json_answer(200, body)


def _tracker(tracker: Json | None) -> Answer:
    if tracker is None:
        return error_answer(404, "no tracker with this IMEI now")
    return json_answer(200, tracker)


def _disconnected(closed: bool) -> Answer:
    if not closed:
        return error_answer(404, "no TCP connection for this IMEI")
    return Answer(204)


def _unavailable(failure: Failure) -> Answer:
    failure.trap(FleetUnavailableError)
    return error_answer(503, failure.getErrorMessage())


def _command_routes(
    commands: CommandEndpoints, segments: list[str], request: Request
) -> dict[bytes, _Handler] | None:
    """The handlers of a command path, by method; None for another path."""
    match segments:
        case ["v1", "trackers", imei, "commands"]:
            return {
                b"GET": lambda: commands.recent(imei),
                b"POST": lambda: commands.send(imei, _body(request)),
            }
        case ["v1", "commands", command_id]:
            return {b"GET": lambda: commands.show(command_id)}
    return None


def _live_routes(
    live: LiveEndpoints, static: StaticFiles, segments: list[str], request: Request
) -> dict[bytes, _Handler] | None:
    """The handlers of the live view's paths, by method; None for another."""
    match segments:
        case ["v1", "live", "map"]:
            return {b"GET": live.map_settings}
        case ["v1", "live", "trackers"]:
            return {b"GET": lambda: live.trackers(request)}
        case ["v1", "live", "trackers", imei, "traffic"]:
            return {b"GET": lambda: live.traffic(request, imei)}
        case [""] | ["static", *_]:
            path = "/".join(segments[1:]) if segments[0] else "index.html"
            found = static.answer(path)
            return None if found is None else {b"GET": lambda: found}
    return None


def _body(request: Request) -> bytes:
    content = request.content
    return b"" if content is None else content.read()


def _respond(request: Request, answer: Answer) -> bytes:
    """Set *answer*'s status and headers on *request*; its body."""
    request.setResponseCode(answer.status)
    for name, value in answer.headers:
        request.setHeader(name, value)
    if answer.status != 204:
        request.setHeader(b"content-type", answer.content_type)
    return answer.body


def _finish(answer: Answer | None, request: Request) -> None:
    if answer is not None:
        request.write(_respond(request, answer))
        request.finish()


def _unless_disconnected(failure: Failure) -> Answer | None:
    """Nothing when the client went (its wait was cancelled); else log, and
    answer ``500``."""
    if failure.check(CancelledError):
        return None
    _log.failure("HTTP API: answering a request failed", failure)
    return error_answer(500, "the request failed; the gateway's log says why")


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
