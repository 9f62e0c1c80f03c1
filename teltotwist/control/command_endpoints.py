# -*- test-case-name: tests.test_control_commands_api,tests.test_control_commands_outcomes -*-  # noqa: E501
"""The command endpoints of the HTTP API, on the gateway's
:class:`~teltotwist.gateway.commands.CommandCenter`.

A request that sends a command may wait for its outcome (``wait`` seconds).
Waiting costs a connection and a timer, so at most :data:`MAX_WAITING`
requests wait at once; beyond that a request answers at once (``202``) and
its client follows the command with ``GET /v1/commands/{id}``. A client that
disconnects stops its wait.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.defer import TimeoutError as WaitOver
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from teltotwist.control.answers import Answer, error_answer, json_answer
from teltotwist.control.command_request import parse_command_request
from teltotwist.gateway.commands import (
    Command,
    CommandCenter,
    NotConnectedError,
    QueueFullError,
)

MAX_WAITING = 256
"""Requests waiting for a command's outcome at once, at most."""


class CommandEndpoints:
    """Sends, shows and lists commands for the API."""

    def __init__(
        self, center: CommandCenter, clock: IReactorTime, max_waiting: int = MAX_WAITING
    ) -> None:
        self._center = center
        self._clock = clock
        self._max_waiting = max_waiting
        self._waiting = 0

    def send(self, imei: str, body: bytes) -> Answer | Deferred[Answer]:
        """``POST /v1/trackers/{imei}/commands``: ``200`` with a final
        outcome, ``202`` while queued or sent once the wait is over, ``400``
        for a bad request, ``409`` for a tracker not connected (and no
        ``ttl``), ``429`` when too many commands are queued. Cancel the
        Deferred to stop waiting."""
        try:
            wanted = parse_command_request(body)
            command = self._center.submit(
                imei,
                text=wanted.text,
                payload=wanted.payload,
                codec=wanted.codec,
                ttl=wanted.ttl,
            )
        except ValueError as error:  # a CommandRequestError, or the center's
            return error_answer(400, str(error))
        except NotConnectedError as error:
            return error_answer(409, str(error))
        except QueueFullError as error:
            return error_answer(429, str(error))
        if wanted.wait == 0 or self._waiting >= self._max_waiting:
            return _command_answer(command)
        self._waiting += 1
        waiting = self._center.outcome(command.id)
        waiting.addTimeout(wanted.wait, self._clock)
        waiting.addBoth(self._waited)
        return waiting.addCallbacks(
            _command_answer, lambda failure: _wait_over(failure, command)
        )

    def show(self, command_id: str) -> Answer:
        """``GET /v1/commands/{id}``: the command object, or ``404``."""
        command = self._center.get(command_id)
        if command is None:
            return error_answer(404, "no such command")
        return json_answer(200, command.to_json())

    def recent(self, imei: str) -> Answer:
        """``GET /v1/trackers/{imei}/commands``: its commands, newest first."""
        commands = [command.to_json() for command in self._center.recent(imei)]
        return json_answer(200, {"commands": commands})

    def _waited(self, outcome: Command | Failure) -> Command | Failure:
        self._waiting -= 1
        return outcome


def _command_answer(command: Command) -> Answer:
    """The command object: ``200`` once final, ``202`` while queued or sent."""
    return json_answer(200 if command.status.final else 202, command.to_json())


def _wait_over(failure: Failure, command: Command) -> Answer:
    failure.trap(WaitOver)
    return _command_answer(command)
