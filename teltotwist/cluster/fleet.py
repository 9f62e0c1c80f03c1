# -*- test-case-name: tests.test_cluster_member -*-
"""The fleet of a whole cluster, for the API of any member.

A command goes to the member holding its tracker and its answer comes back;
for a tracker connected nowhere it is parked on the bus with its TTL (and
this member remembers it, to show it until a member collects it), as are
the commands still queued here when their tracker leaves. Tracker lists and
lookups ask every member and take the answers that come in time.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from teltotwist.cluster.bus import ClusterBusError, Envelope, IClusterBus
from teltotwist.cluster.membership import Membership
from teltotwist.cluster.presence import COMMAND_PARKED, COMMANDS_PARKED
from teltotwist.cluster.requests import Body, Requests, encode
from teltotwist.cluster.router import ParkingFullError
from teltotwist.gateway.commands import (
    Command,
    CommandCenter,
    CommandStatus,
    NotConnectedError,
    QueueFullError,
)
from teltotwist.gateway.fleet import (
    CommandOrder,
    FleetUnavailableError,
    Json,
    LocalFleet,
    TrackerListing,
)
from teltotwist.gateway.tcp import TeltonikaTcpFactory

COMMAND_REQUEST = "command.request"
"""To the member holding a tracker: send this command; the answer is the
command object, or the error."""
FLEET_QUERY = "fleet.query"
"""To every member: ``what`` (trackers, tracker, disconnect, command,
commands) about ``imei`` or ``id``; the answer's ``result`` is the member's
own."""

GATHER_WAIT = 2.0
"""Seconds a question to every member waits for the slowest."""
ANSWER_MARGIN = 2.0
"""Seconds a routed command waits for its answer beyond its own wait."""
MAX_PARKED_SHOWN = 10_000
"""Commands parked by this member that it remembers, to show them."""

_log = Logger()

_ERRORS: dict[str, type[Exception]] = {
    "invalid": ValueError,
    "not_connected": NotConnectedError,
    "queue_full": QueueFullError,
}


class ClusterFleet:
    """The :class:`~teltotwist.gateway.fleet.Fleet` of a cluster, seen
    from one member: *local* is this member's own; *membership* says which
    members to wait for; *counted* hears each command routed or
    parked."""

    def __init__(  # noqa: PLR0917 - each is a part the fleet spans
        self,
        bus: IClusterBus,
        requests: Requests,
        local: LocalFleet,
        factory: TeltonikaTcpFactory,
        clock: IReactorTime,
        membership: Membership,
        counted: Callable[[str], None] = lambda what: None,
    ) -> None:
        self._bus = bus
        self._requests = requests
        self._local = local
        self._factory = factory
        self._clock = clock
        self._membership = membership
        self._counted = counted
        self._parked: OrderedDict[str, Command] = OrderedDict()
        """The commands this member parked, until collected (bounded)."""

    # The Fleet.

    def trackers(self) -> Deferred[TrackerListing]:
        def listing(answers: dict[str, Body]) -> TrackerListing:
            trackers = [
                {**tracker, "member": member}
                for member, answer in answers.items()
                for tracker in answer["result"]
            ]
            trackers.sort(key=lambda tracker: (tracker["transport"], tracker["imei"]))
            return TrackerListing(trackers, sorted(answers))

        return self._ask_all({"what": "trackers"}).addCallback(listing)

    def tracker(self, imei: str) -> Deferred[Json | None]:
        def found(answers: dict[str, Body]) -> Json | None:
            trackers = [a["result"] for a in answers.values() if a["result"]]
            trackers.sort(key=lambda tracker: tracker["transport"])
            return trackers[0] if trackers else None

        return self._ask_all({"what": "tracker", "imei": imei}).addCallback(found)

    def disconnect(self, imei: str) -> Deferred[bool]:
        return self._ask_all({"what": "disconnect", "imei": imei}).addCallback(
            lambda answers: any(a["result"] for a in answers.values())
        )

    def send(self, order: CommandOrder) -> Deferred[Json]:
        if order.imei in self._factory.by_imei:
            return self._local.send(order)
        asked = self._requests.ask_tracker(
            order.imei, COMMAND_REQUEST, _order_body(order), order.wait + ANSWER_MARGIN
        )
        return asked.addCallback(self._sent, order)

    def command(self, command_id: str) -> Deferred[Json | None]:
        mine = self._local.center.get(command_id)
        if mine is not None:
            return succeed(mine.to_json())

        def found(answers: dict[str, Body]) -> Json | None:
            results = [a["result"] for a in answers.values() if a["result"]]
            results.sort(key=lambda result: result.get("parked", False))
            return results[0]["command"] if results else None

        return self._ask_all({"what": "command", "id": command_id}).addCallback(found)

    def commands(self, imei: str) -> Deferred[list[Json]]:
        def merged(answers: dict[str, Body]) -> list[Json]:
            by_id: dict[str, Json] = {}
            for answer in answers.values():
                for result in sorted(answer["result"], key=_held_last):
                    by_id[result["command"]["id"]] = result["command"]
            return sorted(
                by_id.values(), key=lambda command: command["created_at"], reverse=True
            )

        return self._ask_all({"what": "commands", "imei": imei}).addCallback(merged)

    # The other members' questions.

    def command_asked(self, request: Envelope, body: Body) -> None:
        """Another member routes a command to a tracker held here (or just
        gone: then the asker parks it)."""
        try:
            order = _order(body)
        except (KeyError, TypeError, ValueError) as error:
            self._requests.answer(request, {"error": "invalid", "message": str(error)})
            return
        if order.imei not in self._factory.by_imei:
            self._requests.answer(request, {"held": False})
            return
        sent = self._local.send(order)
        sent.addCallbacks(
            lambda command: self._requests.answer(request, {"command": command}),
            lambda failure: self._requests.answer(request, _error_body(failure.value)),
        )

    def query_asked(self, request: Envelope, body: Body) -> None:
        """Another member (or this one) asks every member about the fleet."""
        what = body.get("what")
        imei = str(body.get("imei", ""))
        result: Any = None
        if what == "trackers":
            result = self._local.tracker_objects()
        elif what == "tracker":
            state = self._factory.registry.get(imei)
            result = None if state is None else state.to_json()
        elif what == "disconnect":
            result = self._factory.registry.close(imei, "closed through the HTTP API")
        elif what == "command":
            result = self._command_here(str(body.get("id", "")))
        elif what == "commands":
            result = self._commands_here(imei)
        self._requests.answer(request, {"result": result})

    def hand_back(self, imei: str) -> None:
        """*imei*'s tracker left this member: park the commands still queued
        for it here, in order, for its next login at any member (the member
        holding it by then, this one included, collects them at once).
        Those the bus does not take stay queued here."""
        center = self._factory.commands
        taken = [] if center is None else center.take_queued(imei)
        if center is not None and taken:
            Deferred.fromCoroutine(self._park_in_turn(center, imei, taken))

    def collected(self, body: Body) -> None:
        """A member collected a command this one parked."""
        self._parked.pop(str(body.get("id")), None)

    # The machinery.

    def _ask_all(self, body: Body) -> Deferred[dict[str, Body]]:
        known = self._membership.known()

        def answered(answers: dict[str, Body]) -> dict[str, Body]:
            self._membership.left(known - answers.keys())
            return answers

        asked = self._requests.ask_all(FLEET_QUERY, body, known, GATHER_WAIT)
        return asked.addCallback(answered)

    def _sent(self, answer: Body | None, order: CommandOrder) -> Deferred[Json] | Json:
        if answer is None or answer.get("held") is False:
            return self._park(order)
        self._counted("routed")
        if "command" in answer:
            command: Json = answer["command"]
            return command
        error = _ERRORS.get(str(answer.get("error")), FleetUnavailableError)
        return fail(error(str(answer.get("message"))))

    def _park(self, order: CommandOrder) -> Deferred[Json]:
        """The tracker is connected nowhere: park the command for its TTL."""
        if order.ttl == 0:
            return fail(
                NotConnectedError(
                    f"tracker {order.imei} is not connected to the cluster"
                )
            )
        try:
            command = self._local.center.prepare(
                order.imei,
                text=order.text,
                payload=order.payload,
                codec=order.codec,
                ttl=order.ttl,
            )
        except ValueError as error:
            return fail(error)
        envelope = _parked_envelope(command, self._bus.member_id)
        parked = self._bus.park(order.imei, envelope, order.ttl)

        def kept(_: None) -> Json:
            self._counted("parked")
            self._remember(command)
            return command.to_json()

        return parked.addCallback(kept).addErrback(_parking_failed)

    async def _park_in_turn(
        self, center: CommandCenter, imei: str, taken: list[Command]
    ) -> None:
        for command in taken:
            self._remember(command)
        parked = 0
        for command in taken:
            ttl = command.expires_at_ms / 1000 - self._clock.seconds()
            envelope = _parked_envelope(command, self._bus.member_id)
            try:
                await self._bus.park(imei, envelope, ttl)
            except Exception as error:
                kept = taken[parked:]
                for unparked in kept:
                    self._parked.pop(unparked.id, None)
                center.put_back(kept)
                _log.warn(
                    "Cluster: commands for {imei} not handed back, {count} stay"
                    " queued here: {error}",
                    imei=imei,
                    count=len(kept),
                    error=error,
                )
                break
            center.handed_over(command)
            self._counted("parked")
            parked += 1
        if parked:
            notice = Envelope(
                COMMANDS_PARKED, encode({"imei": imei}), self._bus.member_id
            )
            self._bus.send_to_tracker(imei, notice).addErrback(lambda _: None)

    def _remember(self, command: Command) -> None:
        self._parked[command.id] = command
        while len(self._parked) > MAX_PARKED_SHOWN:
            self._parked.popitem(last=False)

    def _parked_here(self, command_id: str) -> Command | None:
        command = self._parked.get(command_id)
        if command is None:
            return None
        if command.expires_at_ms <= self._clock.seconds() * 1000:
            command.status = CommandStatus.EXPIRED
            command.error = "the tracker did not connect within the TTL"
        return command

    def _command_here(self, command_id: str) -> Body | None:
        command = self._local.center.get(command_id)
        if command is not None:
            return {"command": command.to_json()}
        command = self._parked_here(command_id)
        if command is not None:
            return {"command": command.to_json(), "parked": True}
        return None

    def _commands_here(self, imei: str) -> list[Body]:
        held = [{"command": c.to_json()} for c in self._local.center.recent(imei)]
        parked = [
            {"command": command.to_json(), "parked": True}
            for command_id in list(self._parked)
            if (command := self._parked_here(command_id)) is not None
            and command.imei == imei
        ]
        return held + parked


def _held_last(result: Body) -> bool:
    """Sorts parked commands first, so that a held one overrides them."""
    return not result.get("parked", False)


def _parked_envelope(command: Command, sender: str) -> Envelope:
    """*command*, parked for its tracker's next login, by *sender*."""
    body = {
        "command": command.to_json(),
        "created_at_ms": command.created_at_ms,
        "expires_at_ms": command.expires_at_ms,
    }
    return Envelope(COMMAND_PARKED, encode(body), sender)


def _order_body(order: CommandOrder) -> Body:
    return {
        "imei": order.imei,
        "text": order.text,
        "hex": None if order.payload is None else order.payload.hex(),
        "codec": order.codec,
        "ttl": order.ttl,
        "wait": order.wait,
    }


def _order(body: Body) -> CommandOrder:
    payload = body["hex"]
    return CommandOrder(
        str(body["imei"]),
        None if body["text"] is None else str(body["text"]),
        None if payload is None else bytes.fromhex(payload),
        int(body["codec"]),
        float(body["ttl"]),
        float(body["wait"]),
    )


def _error_body(error: BaseException) -> Body:
    kind = next(
        (name for name, kind in _ERRORS.items() if isinstance(error, kind)),
        "unavailable",
    )
    return {"error": kind, "message": str(error)}


def _parking_failed(failure: Failure) -> Json:
    """A park the bus refused: too many parked (429), a TTL it cannot keep
    (400), or the bus down (503)."""
    if failure.check(ParkingFullError):
        raise QueueFullError(failure.getErrorMessage())
    failure.trap(ClusterBusError, ValueError)
    if failure.check(ValueError):  # a TTL the bus cannot keep
        return failure  # type: ignore[return-value]
    raise FleetUnavailableError(
        f"the command could not be parked: {failure.getErrorMessage()}"
    )
