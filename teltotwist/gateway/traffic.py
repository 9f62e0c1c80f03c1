# -*- test-case-name: tests.test_gateway_traffic -*-
"""The traffic tap: one tracker's frames both ways, for whoever watches it.

The TCP adapter hands each action of a session to :meth:`TrafficTap.action`
only while :attr:`TrafficTap.active` is true, so a gateway nobody watches pays
one attribute check per action and builds nothing. A watched tracker's
actions become :class:`TrafficEvent` objects, passed to its watchers; a
watcher that raises is logged and dropped, and none can delay an ACK: the
tap runs after the action it reports and never waits.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, Protocol

import attrs
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from teltotwist.codec import (
    CodecError,
    CommandFrame,
    command_frame_to_json,
    decode_frame,
    encode_login,
    format_timestamp_ms,
    login_reply,
)
from teltotwist.gateway.items import now_ms
from teltotwist.gateway.session import (
    Action,
    Close,
    CommandAnswered,
    CommandReceived,
    Deliver,
    LoggedIn,
    Send,
    SendCommand,
)

JsonObject = dict[str, Any]
_log = Logger()
_ACK_SIZE = 4


class Direction(enum.StrEnum):
    """Which way bytes went."""

    IN = "in"
    """From the tracker."""
    OUT = "out"
    """To the tracker."""


class TrafficKind(enum.StrEnum):
    """What a traffic event is."""

    LOGIN = "login"
    LOGIN_REPLY = "login_reply"
    DATA = "data"
    """An AVL data frame, with its decoded items."""
    ACK = "ack"
    COMMAND = "command"
    """A Codec 12-15 frame, either way."""
    CLOSING = "closing"
    """The gateway closes the connection (the note says why)."""
    LOGOUT = "logout"
    """The connection is gone."""


@attrs.frozen
class TrafficEvent:
    """One thing seen on a watched tracker's connection.

    *decoded* holds the record JSON objects of a data frame (with
    ``attributes`` when IO naming is on) or the command frame's JSON;
    *latency* is the seconds from a data frame to its ACK.
    """

    imei: str
    at_ms: int
    kind: TrafficKind
    direction: Direction | None = None
    data: bytes = b""
    decoded: tuple[JsonObject, ...] = ()
    latency: float | None = None
    note: str = ""

    def to_json(self) -> JsonObject:
        """The traffic object of the HTTP API."""
        result: JsonObject = {
            "imei": self.imei,
            "time": format_timestamp_ms(self.at_ms),
            "kind": str(self.kind),
            "direction": None if self.direction is None else str(self.direction),
            "size": len(self.data),
            "hex": self.data.hex(),
            "decoded": list(self.decoded),
        }
        if self.latency is not None:
            result["latency_ms"] = round(self.latency * 1000, 3)
        if self.note:
            result["note"] = self.note
        return result


class TrafficWatcher(Protocol):
    """Receives a tracker's traffic; must return quickly and never block."""

    def traffic(self, event: TrafficEvent) -> None:
        """*event* happened on the watched tracker's connection."""


class TrafficTap:
    """The watchers of each tracker's traffic, and the events for them.

    :param clock: times the ACK latency (reactor seconds).
    :param now_ms: stamps each event (wall clock, milliseconds).
    """

    def __init__(self, clock: IReactorTime, now_ms: Callable[[], int] = now_ms) -> None:
        self._clock = clock
        self._now_ms = now_ms
        self._watchers: dict[str, list[TrafficWatcher]] = {}
        self._delivering_since: dict[str, float] = {}
        self.active = False
        """True while any tracker is watched: the adapters check only this."""

    def watch(self, imei: str, watcher: TrafficWatcher) -> Callable[[], None]:
        """Pass *imei*'s traffic to *watcher* from now on; returns the call
        that stops it."""
        self._watchers.setdefault(imei, []).append(watcher)
        self.active = True
        return lambda: self._unwatch(imei, watcher)

    def action(self, imei: str | None, action: Action) -> None:
        """The session of *imei*'s connection produced *action*, carried out
        now; reported when *imei* is watched."""
        if imei is None or imei not in self._watchers:
            return
        for event in self._events(imei, action):
            self._report(event)

    def closed(self, imei: str | None) -> None:
        """*imei*'s connection is gone."""
        if imei is None or imei not in self._watchers:
            return
        self._delivering_since.pop(imei, None)
        self._report(TrafficEvent(imei, self._now_ms(), TrafficKind.LOGOUT))

    def _events(self, imei: str, action: Action) -> tuple[TrafficEvent, ...]:
        at = self._now_ms()
        match action:
            case LoggedIn():
                # The reply was written just before: the login came first.
                return (
                    TrafficEvent(
                        imei, at, TrafficKind.LOGIN, Direction.IN, encode_login(imei)
                    ),
                    TrafficEvent(
                        imei,
                        at,
                        TrafficKind.LOGIN_REPLY,
                        Direction.OUT,
                        login_reply(True),
                    ),
                )
            case Send(data=data) if len(data) == _ACK_SIZE:
                since = self._delivering_since.pop(imei, None)
                latency = None if since is None else self._clock.seconds() - since
                note = f"{int.from_bytes(data)} records acknowledged"
                return (
                    TrafficEvent(
                        imei,
                        at,
                        TrafficKind.ACK,
                        Direction.OUT,
                        data,
                        latency=latency,
                        note=note,
                    ),
                )
            case Deliver(items=items, frame=frame):
                self._delivering_since[imei] = self._clock.seconds()
                decoded = tuple(item.to_json() for item in items)
                return (
                    TrafficEvent(
                        imei, at, TrafficKind.DATA, Direction.IN, frame, decoded
                    ),
                )
            case (
                SendCommand(data=data)
                | CommandAnswered(data=data)
                | CommandReceived(data=data)
            ):
                direction = (
                    Direction.OUT if isinstance(action, SendCommand) else Direction.IN
                )
                return (
                    TrafficEvent(
                        imei, at, TrafficKind.COMMAND, direction, data, _command(data)
                    ),
                )
            case Close(reason=reason):
                return (TrafficEvent(imei, at, TrafficKind.CLOSING, note=reason),)
        return ()

    def _report(self, event: TrafficEvent) -> None:
        for watcher in list(self._watchers.get(event.imei, ())):
            try:
                watcher.traffic(event)
            except Exception:
                _log.failure("traffic watcher {watcher!r} failed", watcher=watcher)
                self._unwatch(event.imei, watcher)

    def _unwatch(self, imei: str, watcher: TrafficWatcher) -> None:
        watchers = self._watchers.get(imei)
        if watchers is None or watcher not in watchers:
            return
        watchers.remove(watcher)
        if not watchers:
            del self._watchers[imei]
            self._delivering_since.pop(imei, None)
        self.active = bool(self._watchers)


def _command(data: bytes) -> tuple[JsonObject, ...]:
    """The JSON of the command frame *data* (one that decoded before); the
    frame is decoded again only for a watched tracker."""
    try:
        frame = decode_frame(data)
    except CodecError:
        return ()
    return (command_frame_to_json(frame),) if isinstance(frame, CommandFrame) else ()


class LivePage(Protocol):
    """A live view's stream: where a watched tracker's traffic, or the
    trackers, go."""

    def send(self, event: str, data: Any) -> None:
        """Send one event named *event* (``traffic``, or a notice about the
        watch) with its JSON *data*; never blocks."""


class TrafficSource(Protocol):
    """The traffic of the trackers a live view can watch."""

    def watch(self, imei: str, page: LivePage) -> Callable[[], None]:
        """Send *imei*'s traffic to *page* from now on; returns the call
        that stops it."""


class PageWatcher:
    """Sends each traffic event of the watched tracker to its page."""

    def __init__(self, page: LivePage) -> None:
        self._page = page

    def traffic(self, event: TrafficEvent) -> None:
        self._page.send("traffic", event.to_json())


class LocalTraffic:
    """The :class:`TrafficSource` of one gateway: its own tap."""

    def __init__(self, tap: TrafficTap) -> None:
        self._tap = tap

    def watch(self, imei: str, page: LivePage) -> Callable[[], None]:
        return self._tap.watch(imei, PageWatcher(page))
