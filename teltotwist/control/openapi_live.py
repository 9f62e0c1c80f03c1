# -*- test-case-name: tests.test_control_live -*-
"""The live view's part of the OpenAPI document: its page, its map settings
and its two Server-Sent Events streams.

OpenAPI 3.1 has no schema for the events of a stream: each stream's
``x-events`` names its events and the schema of each one's ``data``.
"""

from __future__ import annotations

from typing import Any

from teltotwist.control.event_stream import KEEPALIVE_INTERVAL, MAX_HELD_BYTES
from teltotwist.control.live import MAX_STREAMS, ROSTER_INTERVAL
from teltotwist.gateway.traffic import Direction, TrafficKind

JsonObject = dict[str, Any]

_EVENT_STREAM = {"text/event-stream": {"schema": {"type": "string"}}}
_UNAUTHORIZED = {
    "description": "No token, or not the API's token",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_BUSY = {
    "description": f"{MAX_STREAMS} live streams are open already",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_BOUNDS = (
    f"A comment line keeps the stream alive every {KEEPALIVE_INTERVAL:g} s. A "
    f"client more than {MAX_HELD_BYTES // 1024} KiB behind is disconnected."
)


def _ref(schema: str) -> JsonObject:
    return {"$ref": f"#/components/schemas/{schema}"}


LIVE_PATHS: JsonObject = {
    "/": {
        "get": {
            "summary": "The live view: a page for a browser (its files are "
            "under /static/)",
            "security": [],
            "responses": {
                "200": {
                    "description": "The page",
                    "content": {"text/html": {"schema": {"type": "string"}}},
                }
            },
        }
    },
    "/v1/live/map": {
        "get": {
            "summary": "The tiles of the live view's map",
            "responses": {
                "200": {
                    "description": "The tile URL template and its attribution",
                    "content": {"application/json": {"schema": _ref("MapSettings")}},
                },
                "401": _UNAUTHORIZED,
            },
        }
    },
    "/v1/live/trackers": {
        "get": {
            "summary": "The trackers, then what changes, as Server-Sent Events",
            "description": "First a `trackers` event with every tracker, then "
            f"every {ROSTER_INTERVAL:g} s a `changes` event with the trackers "
            "that changed or came, and the IMEIs gone, when there are any. " + _BOUNDS,
            "x-events": {"trackers": _ref("TrackerList"), "changes": _ref("Changes")},
            "responses": {
                "200": {"description": "The stream", "content": _EVENT_STREAM},
                "401": _UNAUTHORIZED,
                "503": _BUSY,
            },
        }
    },
    "/v1/live/trackers/{imei}/traffic": {
        "get": {
            "summary": "One tracker's traffic from now on, as Server-Sent Events",
            "description": "A `traffic` event for each frame either way, ACK, "
            "closing and logout of the tracker's TCP connections while the "
            "stream is open (the tracker need not be connected yet). With "
            "workers or in a cluster, also `holder` (the member the traffic "
            "comes from), `moved` (the tracker left that member) and `dropped` "
            "(events the holder did not forward). " + _BOUNDS,
            "parameters": [
                {
                    "name": "imei",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^[0-9]{1,20}$"},
                }
            ],
            "x-events": {
                "traffic": _ref("Traffic"),
                "holder": _ref("WatchHolder"),
                "moved": _ref("WatchMoved"),
                "dropped": _ref("WatchDropped"),
            },
            "responses": {
                "200": {"description": "The stream", "content": _EVENT_STREAM},
                "401": _UNAUTHORIZED,
                "404": {
                    "description": "Not an IMEI",
                    "content": {"application/json": {"schema": _ref("Error")}},
                },
                "503": _BUSY,
            },
        }
    },
}

LIVE_SCHEMAS: JsonObject = {
    "MapSettings": {
        "type": "object",
        "required": ["tiles", "attribution"],
        "properties": {
            "tiles": {
                "type": ["string", "null"],
                "description": "URL template with {z}, {x}, {y}; null: no tiles",
            },
            "attribution": {"type": "string", "description": "HTML"},
        },
    },
    "Changes": {
        "type": "object",
        "required": ["trackers", "gone"],
        "properties": {
            "trackers": {"type": "array", "items": _ref("Tracker")},
            "gone": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Traffic": {
        "type": "object",
        "required": ["imei", "time", "kind", "direction", "size", "hex", "decoded"],
        "properties": {
            "imei": {"type": "string"},
            "time": {"type": "string", "format": "date-time"},
            "kind": {"enum": [str(kind) for kind in TrafficKind]},
            "direction": {
                "enum": [*(str(direction) for direction in Direction), None],
                "description": "in: from the tracker; null for closing and logout",
            },
            "size": {"type": "integer", "minimum": 0},
            "hex": {"type": "string", "description": "The bytes, as sent"},
            "decoded": {
                "type": "array",
                "items": {"type": "object"},
                "description": "A data frame's record objects (with attributes "
                "when IO naming is on) or a command frame's JSON",
            },
            "latency_ms": {
                "type": "number",
                "description": "An ACK's: from its data frame to the ACK",
            },
            "note": {"type": "string"},
        },
    },
    "WatchHolder": {
        "type": "object",
        "required": ["imei", "member"],
        "properties": {
            "imei": {"type": "string"},
            "member": {"type": "string", "description": "The member holding it"},
        },
    },
    "WatchMoved": {
        "type": "object",
        "required": ["imei", "member", "why"],
        "properties": {
            "imei": {"type": "string"},
            "member": {"type": "string", "description": "The member it left"},
            "why": {"type": "string"},
        },
    },
    "WatchDropped": {
        "type": "object",
        "required": ["imei", "events", "why"],
        "properties": {
            "imei": {"type": "string"},
            "events": {"type": "integer", "minimum": 1},
            "why": {"type": "string"},
        },
    },
}
