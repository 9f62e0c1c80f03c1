# -*- test-case-name: tests.test_control_api -*-
"""The OpenAPI 3.1 document of the HTTP API, served at ``/v1/openapi.json``."""

from __future__ import annotations

from typing import Any

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

DOCUMENT: JsonObject = {
    "openapi": "3.1.0",
    "info": {
        "title": "teltotwist HTTP API",
        "version": "1",
        "description": "The trackers a teltotwist gateway holds, its health "
        "and its metrics.",
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
                },
            },
            "TrackerList": {
                "type": "object",
                "required": ["trackers"],
                "properties": {
                    "trackers": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/Tracker"},
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
        },
    },
}
"""The document; the tests hold every real response to its schemas."""
