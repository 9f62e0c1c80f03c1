# -*- test-case-name: tests.test_control_api,tests.test_control_commands_api -*-
"""The fleet as the HTTP API sees it: the trackers it lists and acts on,
and the commands sent to them.

One gateway's fleet is its own registry and command center
(:class:`LocalFleet`); a cluster's spans every member, which is why every
answer is a Deferred. Trackers and commands come as the API's JSON objects.
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.defer import TimeoutError as WaitOver
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from teltotwist.gateway.commands import Command, CommandCenter, NotConnectedError
from teltotwist.gateway.registry import TrackerRegistry, TrackerState

Json = dict[str, Any]


class FleetUnavailableError(Exception):
    """The fleet could not be asked (a cluster whose bus is down, or whose
    member holding the tracker did not answer)."""


@attrs.frozen
class TrackerListing:
    """The trackers connected now; in a cluster, the ids of the *members*
    that answered in time (None for one gateway)."""

    trackers: list[Json]
    members: list[str] | None = None


@attrs.frozen
class CommandOrder:
    """A command to send: *text* or *payload*, with its codec, TTL (seconds
    it may wait for its tracker) and how long the request waits for it."""

    imei: str
    text: str | None
    payload: bytes | None
    codec: int
    ttl: float
    wait: float


class Fleet(Protocol):
    """The trackers and their commands."""

    def trackers(self) -> Deferred[TrackerListing]:
        """Every tracker connected (or heard over UDP) now."""

    def tracker(self, imei: str) -> Deferred[Json | None]:
        """The tracker object, or None when it is not connected."""

    def disconnect(self, imei: str) -> Deferred[bool]:
        """Close the tracker's TCP connection; False when it has none."""

    def send(self, order: CommandOrder) -> Deferred[Json]:
        """Send a command; fires with its object once final, or when
        ``order.wait`` is over.

        :raises ValueError: for a bad command (through the Deferred, as
            every error here).
        :raises ~teltotwist.gateway.commands.NotConnectedError: for a
            tracker not connected and no TTL.
        :raises ~teltotwist.gateway.commands.QueueFullError: when too many
            commands wait.
        :raises FleetUnavailableError: when the fleet could not be asked.
        """

    def command(self, command_id: str) -> Deferred[Json | None]:
        """The command object, or None for an unknown id."""

    def commands(self, imei: str) -> Deferred[list[Json]]:
        """The tracker's commands, newest first."""


class LocalFleet:
    """The fleet of one gateway: its registry and command center (None:
    the gateway sends no commands)."""

    def __init__(
        self,
        registry: TrackerRegistry,
        center: CommandCenter | None,
        clock: IReactorTime,
    ) -> None:
        self._registry = registry
        self._center = center
        self._clock = clock
        self._objects: dict[tuple[str, str], tuple[_Signature, Json]] = {}
        """The tracker objects made last, each with the state it shows."""

    def trackers(self) -> Deferred[TrackerListing]:
        return succeed(TrackerListing(self.tracker_objects()))

    def tracker_objects(self) -> list[Json]:
        """The tracker objects, at once; one is made again only for a
        tracker heard from since (the live view asks every second). The
        objects are shared: read them, do not change them."""
        objects = {}
        for state in self._registry.trackers():
            key = (state.imei, str(state.transport))
            signature = _signature(state)
            made = self._objects.get(key)
            if made is None or made[0] != signature:
                made = (signature, state.to_json())
            objects[key] = made
        self._objects = objects
        return [tracker for _, tracker in objects.values()]

    def tracker(self, imei: str) -> Deferred[Json | None]:
        state = self._registry.get(imei)
        return succeed(None if state is None else state.to_json())

    def disconnect(self, imei: str) -> Deferred[bool]:
        return succeed(self._registry.close(imei, "closed through the HTTP API"))

    def send(self, order: CommandOrder) -> Deferred[Json]:
        try:
            command = self.center.submit(
                order.imei,
                text=order.text,
                payload=order.payload,
                codec=order.codec,
                ttl=order.ttl,
            )
        except Exception as error:
            return fail(error)
        return self.outcome(command, order.wait)

    def outcome(self, command: Command, wait: float) -> Deferred[Json]:
        """*command*'s object once final, or after *wait* seconds."""
        if wait == 0 or command.status.final:
            return succeed(command.to_json())
        waiting = self.center.outcome(command.id)
        waiting.addTimeout(wait, self._clock)

        def wait_over(failure: Failure) -> Command:
            failure.trap(WaitOver)
            return command

        return waiting.addErrback(wait_over).addCallback(Command.to_json)

    def command(self, command_id: str) -> Deferred[Json | None]:
        command = self.center.get(command_id)
        return succeed(None if command is None else command.to_json())

    def commands(self, imei: str) -> Deferred[list[Json]]:
        return succeed([command.to_json() for command in self.center.recent(imei)])

    @property
    def center(self) -> CommandCenter:
        """The command center.

        :raises ~teltotwist.gateway.commands.NotConnectedError: when the
            gateway sends no commands.
        """
        if self._center is None:
            raise NotConnectedError("this gateway sends no commands")
        return self._center


_Signature = tuple[int, int, str, int]


def _signature(state: TrackerState) -> _Signature:
    """What changes in a tracker's JSON when anything does."""
    return (state.packets, state.last_seen_ms, state.peer, state.connected_at_ms)
