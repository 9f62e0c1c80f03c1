# -*- test-case-name: tests.test_control_commands_api,tests.test_control_commands_outcomes -*-  # noqa: E501
"""The command endpoints of the HTTP API, on the
:class:`~teltotwist.gateway.fleet.Fleet` (one gateway's command center, or
a cluster's).

A request that sends a command may wait for its outcome (``wait`` seconds).
Waiting costs a connection and a timer, so at most :data:`MAX_WAITING`
requests wait at once; beyond that a request answers at once (``202``) and
its client follows the command with ``GET /v1/commands/{id}``. A client that
disconnects stops its wait.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from teltotwist.control.answers import Answer, error_answer, json_answer
from teltotwist.control.command_request import parse_command_request
from teltotwist.gateway.commands import (
    CommandStatus,
    NotConnectedError,
    QueueFullError,
)
from teltotwist.gateway.fleet import CommandOrder, Fleet, FleetUnavailableError, Json

MAX_WAITING = 256
"""Requests waiting for a command's outcome at once, at most."""


class CommandEndpoints:
    """Sends, shows and lists commands for the API."""

    def __init__(self, fleet: Fleet, max_waiting: int = MAX_WAITING) -> None:
        self._fleet = fleet
        self._max_waiting = max_waiting
        self._waiting = 0

    def send(self, imei: str, body: bytes) -> Answer | Deferred[Answer]:
        """``POST /v1/trackers/{imei}/commands``: ``200`` with a final
        outcome, ``202`` while queued or sent once the wait is over, ``400``
        for a bad request, ``409`` for a tracker not connected (and no
        ``ttl``), ``429`` when too many commands are queued, ``503`` when
        the cluster could not be asked. Cancel the Deferred to stop
        waiting."""
        try:
            wanted = parse_command_request(body)
        except ValueError as error:
            return error_answer(400, str(error))
        wait = wanted.wait if self._waiting < self._max_waiting else 0
        sent = self._fleet.send(
            CommandOrder(
                imei, wanted.text, wanted.payload, wanted.codec, wanted.ttl, wait
            )
        )
        if wait:
            self._waiting += 1
            sent.addBoth(self._waited)
        return sent.addCallbacks(_command_answer, _refused)

    def show(self, command_id: str) -> Deferred[Answer]:
        """``GET /v1/commands/{id}``: the command object, or ``404``."""
        return self._fleet.command(command_id).addCallbacks(_shown, _refused)

    def recent(self, imei: str) -> Deferred[Answer]:
        """``GET /v1/trackers/{imei}/commands``: its commands, newest first."""
        return self._fleet.commands(imei).addCallbacks(
            lambda commands: json_answer(200, {"commands": commands}), _refused
        )

    def _waited(self, outcome: Json | Failure) -> Json | Failure:
        self._waiting -= 1
        return outcome


def _command_answer(command: Json) -> Answer:
    """The command object: ``200`` once final, ``202`` while queued or sent."""
    final = CommandStatus(command["status"]).final
    return json_answer(200 if final else 202, command)


def _shown(command: Json | None) -> Answer:
    if command is None:
        return error_answer(404, "no such command")
    return json_answer(200, command)


def _refused(failure: Failure) -> Answer:
    """The answer to a command the fleet refused; other failures pass."""
    error = failure.value
    match error:
        case ValueError():  # the center's checks
            return error_answer(400, str(error))
        case NotConnectedError():
            return error_answer(409, str(error))
        case QueueFullError():
            return error_answer(429, str(error))
        case FleetUnavailableError():
            return error_answer(503, str(error))
    return failure  # type: ignore[return-value]
