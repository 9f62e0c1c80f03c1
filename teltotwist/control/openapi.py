# -*- test-case-name: tests.test_control_api -*-
"""The OpenAPI 3.1 document of the HTTP API, served at ``/v1/openapi.json``."""

from __future__ import annotations

from typing import Any

from teltotwist.control.command_request import DEFAULT_WAIT, MAX_TTL, MAX_WAIT
from teltotwist.control.openapi_live import LIVE_PATHS, LIVE_SCHEMAS
from teltotwist.gateway.commands import COMMAND_CODECS, CommandStatus

JsonObject = dict[str, Any]

_TIME = {"type": "string", "format": "date-time"}


def _json(description: str, schema: str) -> JsonObject:
    return {
        "description": description,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}
        },
    }


_UNAUTHORIZED = _json("No token, or not the API's token", "Error")
_IMEI = {
    "name": "imei",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
}

_COMMAND_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
}
_NULLABLE_TIME = {"oneOf": [_TIME, {"type": "null"}]}
_NULLABLE_TEXT = {"type": ["string", "null"]}
_CODECS = [int(codec) for codec in sorted(COMMAND_CODECS)]

DOCUMENT: JsonObject = {
    "openapi": "3.1.0",
    "info": {
        "title": "teltotwist HTTP API",
        "version": "1",
        "description": "The trackers a teltotwist gateway holds, commands to "
        "them, its health and its metrics, and the live view.",
    },
    "security": [{"bearer": []}],
    "paths": {
        "/v1/trackers": {
            "get": {
                "summary": "The trackers connected over TCP or heard over UDP "
                "within the idle timeout",
                "responses": {
                    "200": _json("The trackers, TCP ones first", "TrackerList"),
                    "401": _UNAUTHORIZED,
                },
            }
        },
        "/v1/trackers/{imei}": {
            "get": {
                "summary": "One tracker",
                "parameters": [_IMEI],
                "responses": {
                    "200": _json("The tracker", "Tracker"),
                    "401": _UNAUTHORIZED,
                    "404": _json("No such tracker now", "Error"),
                },
            }
        },
        "/v1/trackers/{imei}/connection": {
            "delete": {
                "summary": "Close the tracker's TCP connection",
                "parameters": [_IMEI],
                "responses": {
                    "204": {"description": "Closed"},
                    "401": _UNAUTHORIZED,
                    "404": _json("No TCP connection for this IMEI", "Error"),
                },
            }
        },
        "/v1/trackers/{imei}/commands": {
            "post": {
                "summary": "Send a command to the tracker, or queue it for its "
                "next login, and wait for the outcome up to wait seconds",
                "parameters": [_IMEI],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/CommandRequest"}
                        }
                    },
                },
                "responses": {
                    "200": _json("The command, with its final outcome", "Command"),
                    "202": _json(
                        "The command, queued or sent: no outcome yet", "Command"
                    ),
                    "400": _json("Not a valid command request", "Error"),
                    "401": _UNAUTHORIZED,
                    "409": _json("The tracker is not connected, and ttl is 0", "Error"),
                    "429": _json("Too many commands queued", "Error"),
                },
            },
            "get": {
                "summary": "The tracker's recent commands, newest first",
                "parameters": [_IMEI],
                "responses": {
                    "200": _json("The commands", "CommandList"),
                    "401": _UNAUTHORIZED,
                },
            },
        },
        "/v1/commands/{id}": {
            "get": {
                "summary": "One command",
                "parameters": [_COMMAND_ID],
                "responses": {
                    "200": _json("The command", "Command"),
                    "401": _UNAUTHORIZED,
                    "404": _json("No such command (or forgotten)", "Error"),
                },
            }
        },
        "/v1/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {
                    "200": {
                        "description": "The OpenAPI document",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "401": _UNAUTHORIZED,
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The Prometheus text format, version 0.0.4",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness: the process runs",
                "security": [],
                "responses": {"200": _json("Alive", "Health")},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: listening, and every sink ready",
                "security": [],
                "responses": {
                    "200": _json("Ready for trackers", "Health"),
                    "503": _json("Not ready, with the reasons", "NotReady"),
                },
            }
        },
        **LIVE_PATHS,
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}},
            },
            "Position": {
                "type": "object",
                "description": "The tracker's newest record by device time",
                "required": [
                    "timestamp",
                    "latitude",
                    "longitude",
                    "speed",
                    "altitude",
                    "angle",
                    "satellites",
                ],
                "properties": {
                    "timestamp": _TIME,
                    "latitude": {"type": "number"},
                    "longitude": {"type": "number"},
                    "speed": {"type": "integer", "description": "km/h"},
                    "altitude": {"type": "integer", "description": "metres"},
                    "angle": {"type": "integer"},
                    "satellites": {"type": "integer"},
                },
            },
            "Tracker": {
                "type": "object",
                "required": [
                    "imei",
                    "transport",
                    "peer",
                    "connected_at",
                    "last_seen",
                    "packets",
                    "records",
                    "last_record",
                ],
                "properties": {
                    "imei": {"type": "string"},
                    "transport": {"enum": ["tcp", "udp"]},
                    "peer": {"type": "string", "description": "HOST:PORT"},
                    "connected_at": _TIME,
                    "last_seen": _TIME,
                    "packets": {"type": "integer", "minimum": 0},
                    "records": {"type": "integer", "minimum": 0},
                    "last_record": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/Position"},
                            {"type": "null"},
                        ]
                    },
                    "member": {
                        "type": "string",
                        "description": "In a cluster: the instance holding it",
                    },
                },
            },
            "TrackerList": {
                "type": "object",
                "required": ["trackers"],
                "properties": {
                    "trackers": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/Tracker"},
                    },
                    "members": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "In a cluster: the instances that answered",
                    },
                },
            },
            "CommandRequest": {
                "type": "object",
                "description": "Either command (text) or hex (a raw payload)",
                "oneOf": [{"required": ["command"]}, {"required": ["hex"]}],
                "additionalProperties": False,
                "properties": {
                    "command": {"type": "string", "examples": ["getinfo"]},
                    "hex": {"type": "string", "pattern": "^([0-9a-fA-F]{2})+$"},
                    "codec": {"enum": _CODECS, "default": 12},
                    "wait": {
                        "type": "number",
                        "minimum": 0,
                        "maximum": MAX_WAIT,
                        "default": DEFAULT_WAIT,
                        "description": "Seconds to wait for the outcome",
                    },
                    "ttl": {
                        "type": "number",
                        "minimum": 0,
                        "maximum": MAX_TTL,
                        "default": 0,
                        "description": "Seconds the command may wait for a "
                        "tracker that is not connected; 0: only to a connected one",
                    },
                },
            },
            "Command": {
                "type": "object",
                "oneOf": [{"required": ["command"]}, {"required": ["hex"]}],
                "required": [
                    "id",
                    "imei",
                    "codec",
                    "status",
                    "created_at",
                    "sent_at",
                    "answered_at",
                    "response",
                    "response_hex",
                    "error",
                ],
                "properties": {
                    "id": {"type": "string"},
                    "imei": {"type": "string"},
                    "codec": {"enum": _CODECS},
                    "command": {"type": "string", "description": "The text sent"},
                    "hex": {"type": "string", "description": "The payload sent"},
                    "status": {"enum": [str(status) for status in CommandStatus]},
                    "created_at": _TIME,
                    "sent_at": _NULLABLE_TIME,
                    "answered_at": _NULLABLE_TIME,
                    "response": {
                        **_NULLABLE_TEXT,
                        "description": "The answer as text (non-ASCII bytes as U+FFFD)",
                    },
                    "response_hex": _NULLABLE_TEXT,
                    "error": {
                        **_NULLABLE_TEXT,
                        "description": "Why the command has no answer",
                    },
                },
            },
            "CommandList": {
                "type": "object",
                "required": ["commands"],
                "properties": {
                    "commands": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/Command"},
                    }
                },
            },
            "Health": {
                "type": "object",
                "required": ["status"],
                "properties": {"status": {"enum": ["ok", "ready"]}},
            },
            "NotReady": {
                "type": "object",
                "required": ["status", "reasons"],
                "properties": {
                    "status": {"const": "not ready"},
                    "reasons": {"type": "array", "items": {"type": "string"}},
                },
            },
            **LIVE_SCHEMAS,
        },
    },
}
"""The document; the tests hold every real response to its schemas."""
