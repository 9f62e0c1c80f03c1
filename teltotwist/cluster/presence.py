# -*- test-case-name: tests.test_cluster_member -*-
"""Which member holds which tracker: a login binds its IMEI on the bus (and
collects the commands parked for it), a logout unbinds it (and hands back
the commands still queued for it here), and a login for an IMEI held
elsewhere asks the holder first, so that the duplicate-login policy holds
across the cluster."""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from teltotwist.cluster.bus import Envelope, IClusterBus
from teltotwist.cluster.requests import Body, Requests, decode, encode
from teltotwist.gateway.commands import CommandCenter
from teltotwist.gateway.presence import CLAIM_WAIT
from teltotwist.gateway.tcp import TeltonikaTcpFactory

LOGIN_CLAIM = "login.claim"
"""To the member holding an IMEI: a login for it elsewhere; the answer's
``conflict`` says why it must be refused, or is null."""
COMMAND_PARKED = "command.parked"
"""Parked for an IMEI: a command (its API object, and ``expires_at_ms``)."""
COMMAND_COLLECTED = "command.collected"
"""To the member that parked a command: a member collected it (``id``)."""
COMMANDS_PARKED = "commands.parked"
"""To the member holding an IMEI: commands were just parked for it
(``imei``), after its login there collected; it collects them."""

_log = Logger()


class ClusterPresence:
    """The :class:`~teltotwist.gateway.presence.Presence` of one member:
    its trackers, as *bus* routes to them; *hand_back* is called with each
    IMEI that left, to park the commands still queued for it here;
    *counted* hears each command collected."""

    def __init__(  # noqa: PLR0917 - each is a part the presence spans
        self,
        bus: IClusterBus,
        requests: Requests,
        factory: TeltonikaTcpFactory,
        clock: IReactorTime,
        hand_back: Callable[[str], None],
        counted: Callable[[str], None] = lambda what: None,
    ) -> None:
        self._bus = bus
        self._requests = requests
        self._factory = factory
        self._clock = clock
        self._hand_back = hand_back
        self._counted = counted
        self._claimed: set[str] = set()
        """IMEIs a claim bound here, whose login has not followed yet."""

    def claim(self, imei: str, peer: str) -> Deferred[str | None]:
        """Ask the holder, if any; a login it lets go on binds the IMEI here
        before it is answered, so that the next login elsewhere asks here."""
        asked = self._requests.ask_tracker(
            imei, LOGIN_CLAIM, {"imei": imei, "peer": peer}, CLAIM_WAIT
        )
        return asked.addCallback(_conflict).addCallback(self._bind_unless, imei)

    def _bind_unless(self, conflict: str | None, imei: str) -> Deferred[str | None]:
        if conflict is not None:
            return succeed(conflict)
        self._claimed.add(imei)
        bound = self._bus.bind(imei)
        bound.addErrback(self._failed, "binding", imei)
        return bound.addCallback(lambda _: None)

    def logged_in(self, imei: str) -> None:
        if imei in self._claimed:  # its claim bound it
            self._claimed.discard(imei)
            self._collect(imei).addErrback(self._failed, "collecting for", imei)
            return
        bound = self._bus.bind(imei)
        bound.addCallback(lambda _: self._collect(imei))
        bound.addErrback(self._failed, "binding", imei)

    def claim_dropped(self, imei: str) -> None:
        """Undo the claim's binding, unless a connection here holds *imei*."""
        if imei not in self._claimed:
            return
        self._claimed.discard(imei)
        if imei not in self._factory.by_imei:
            unbound = self._bus.unbind(imei)
            unbound.addErrback(
                self._failed, "unbinding", imei, quiet=not self._bus.ready
            )

    def logged_out(self, imei: str) -> None:
        # Unbound even while the bus is down, so that it is not bound again
        # once reconnected; the failure then says only that it is down.
        unbound = self._bus.unbind(imei)
        unbound.addErrback(self._failed, "unbinding", imei, quiet=not self._bus.ready)
        self._hand_back(imei)

    def parked_asked(self, body: Body) -> None:
        """Commands were parked for an IMEI bound here: collect them, if
        its tracker is still here (else its next login does)."""
        imei = str(body["imei"])
        if imei in self._factory.by_imei:
            self._collect(imei).addErrback(self._failed, "collecting for", imei)

    def _collect(self, imei: str) -> Deferred[None]:
        return self._bus.collect(imei).addCallback(self._collected, imei)

    def claim_asked(self, request: Envelope, body: Body) -> None:
        """Another member asks whether a login for an IMEI held here may go
        on; the connection here is closed when it may."""
        imei, peer = str(body["imei"]), str(body["peer"])
        conflict = self._factory.claimed_elsewhere(imei, peer, request.sender)
        self._requests.answer(request, {"conflict": conflict})

    def _collected(self, parked: list[Envelope], imei: str) -> None:
        """Hand the commands parked for *imei* to the command center here,
        each keeping its id; tell each one's sender it was collected."""
        center = self._factory.commands
        for envelope in parked:
            try:
                body = decode(envelope)
                _submit(center, imei, body, self._clock.seconds())
            except Exception as error:
                _log.warn(
                    "Cluster: a command parked for {imei} was dropped: {error}",
                    imei=imei,
                    error=error,
                )
                continue
            self._counted("collected")
            notice = Envelope(
                COMMAND_COLLECTED,
                encode({"id": body["command"]["id"]}),
                self._bus.member_id,
            )
            self._bus.send_to_member(envelope.sender, notice).addErrback(lambda _: None)

    def _failed(
        self, failure: Failure, doing: str, imei: str, *, quiet: bool = False
    ) -> None:
        if quiet:
            return
        _log.warn(
            "Cluster: {doing} {imei} failed: {error}",
            doing=doing,
            imei=imei,
            error=failure.getErrorMessage(),
        )


def _conflict(answer: Body | None) -> str | None:
    conflict = None if answer is None else answer.get("conflict")
    return None if conflict is None else str(conflict)


def _submit(center: CommandCenter | None, imei: str, body: Body, now: float) -> None:
    """Queue the parked command *body* for *imei* in *center*.

    :raises Exception: when it cannot be (expired, malformed, refused).
    """
    if center is None:
        raise ValueError("this gateway sends no commands")
    command = body["command"]
    ttl = int(body["expires_at_ms"]) / 1000 - now
    if ttl <= 0:
        raise ValueError(f"command {command['id']} expired")
    text = command.get("command")
    created_at_ms = body.get("created_at_ms")  # absent from older members'
    center.submit(
        imei,
        text=text,
        payload=None if text is not None else bytes.fromhex(command["hex"]),
        codec=int(command["codec"]),
        ttl=ttl,
        command_id=str(command["id"]),
        created_at_ms=None if created_at_ms is None else int(created_at_ms),
    )
