# -*- test-case-name: tests -*-
"""A Teltonika tracker in software, for testing a gateway without hardware.

It drives a route (:mod:`~teltotwist.device.route`), turns positions into AVL
records (:mod:`~teltotwist.device.telemetry`) with the IO ids of a tracker
model (:mod:`~teltotwist.device.model_io`) and speaks the tracker's side of
the TCP protocol (:class:`VirtualTracker`): login, stop-and-wait packets,
resends, reconnects with backoff, pings, and delayed answers to Codec 12 and
Codec 14 commands (:mod:`~teltotwist.device.answers`).
"""

from teltotwist.device.answers import Answer, answer_commands
from teltotwist.device.commands import CommandResponder
from teltotwist.device.model_io import READINGS, ModelIo
from teltotwist.device.read_time import ReadTime
from teltotwist.device.replies import Ack, LoginReply, ReplyReader
from teltotwist.device.route import (
    BUILT_IN_ROUTE,
    Position,
    RouteError,
    RoutePoint,
    RouteWalker,
    bearing_degrees,
    distance_metres,
    load_route,
)
from teltotwist.device.telemetry import DEFAULT_MODEL, TelemetrySource
from teltotwist.device.tracker import (
    DeviceEvent,
    EventKind,
    TrackerSettings,
    VirtualTracker,
)

__all__ = [
    "BUILT_IN_ROUTE",
    "DEFAULT_MODEL",
    "READINGS",
    "Ack",
    "Answer",
    "CommandResponder",
    "DeviceEvent",
    "EventKind",
    "LoginReply",
    "ModelIo",
    "Position",
    "ReadTime",
    "ReplyReader",
    "RouteError",
    "RoutePoint",
    "RouteWalker",
    "TelemetrySource",
    "TrackerSettings",
    "VirtualTracker",
    "answer_commands",
    "bearing_degrees",
    "distance_metres",
    "load_route",
]
