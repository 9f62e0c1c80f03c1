# -*- test-case-name: tests.test_cluster_requests,tests.test_cluster_member -*-
"""Requests between members and their answers, matched by correlation id.

A request goes to the member holding a tracker (one answer) or to every
member (a scatter-gather: the answers of those that answer in time). Every
wait is bounded, and so is the number of requests in flight.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import attrs
from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from teltotwist.cluster.bus import Envelope, IClusterBus
from teltotwist.gateway.fleet import FleetUnavailableError
from teltotwist.gateway.presence import HolderSilentError

ANSWER = "answer"
"""The kind of every answer; its correlation id names the request."""
MAX_IN_FLIGHT = 1024
"""Requests awaiting answers at once, at most; more are refused."""

Body = dict[str, Any]


def encode(body: Body) -> bytes:
    """A message body as the bus carries it."""
    return json.dumps(body, separators=(",", ":")).encode()


def decode(envelope: Envelope) -> Body:
    """A message's body.

    :raises ValueError: when it is not a JSON object.
    """
    body = json.loads(envelope.body)
    if not isinstance(body, dict):
        raise ValueError(f"a {envelope.kind} body is an object, not {body!r}")
    return body


@attrs.define
class _Pending:
    """A request's answers so far, and when it is complete."""

    done: Deferred[list[Body]]
    expected: frozenset[str]
    """The members whose answers complete it (empty: the first answer)."""
    timer: IDelayedCall | None = None
    answers: dict[str, Body] = attrs.Factory(dict)


class Requests:
    """The requests *bus*'s member has in flight."""

    def __init__(
        self, bus: IClusterBus, clock: IReactorTime, max_in_flight: int = MAX_IN_FLIGHT
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._max_in_flight = max_in_flight
        self._pending: dict[str, _Pending] = {}

    def ask_tracker(
        self, imei: str, kind: str, body: Body, timeout: float
    ) -> Deferred[Body | None]:
        """Ask the member holding *imei*: fires with its answer, or None when
        no member holds it.

        :raises HolderSilentError: (through the Deferred) when a member
            holds it but no answer came within *timeout* seconds.
        :raises FleetUnavailableError: (through the Deferred) when the bus
            is down.
        """
        try:
            correlation, pending = self._open(frozenset(), timeout)
        except FleetUnavailableError as error:
            return fail(error)
        envelope = Envelope(kind, encode(body), self._bus.member_id, correlation)
        sent = self._bus.send_to_tracker(imei, envelope)

        def delivered(reached: bool) -> Deferred[Body | None] | None:
            if not reached:
                self._close(correlation)
                return None
            return pending.done.addCallback(_first)

        return sent.addCallbacks(delivered, self._not_sent, errbackArgs=(correlation,))

    def ask_all(
        self, kind: str, body: Body, members: frozenset[str], timeout: float
    ) -> Deferred[dict[str, Body]]:
        """Ask every member: fires with the answers by member id, once
        *members* all answered or after *timeout* seconds.

        :raises FleetUnavailableError: (through the Deferred) when the bus
            is down.
        """
        try:
            correlation, pending = self._open(members, timeout)
        except FleetUnavailableError as error:
            return fail(error)
        envelope = Envelope(kind, encode(body), self._bus.member_id, correlation)
        sent = self._bus.broadcast(envelope)
        sent.addErrback(self._not_sent, correlation)
        return sent.addCallback(lambda _: pending.done).addCallback(
            lambda _: pending.answers
        )

    def answer(self, request: Envelope, body: Body) -> None:
        """Answer *request* (best effort: a lost answer is the asker's
        timeout)."""
        if request.correlation is None:
            return
        envelope = Envelope(
            ANSWER, encode(body), self._bus.member_id, request.correlation
        )
        self._bus.send_to_member(request.sender, envelope).addErrback(lambda _: None)

    def answered(self, envelope: Envelope, body: Body) -> None:
        """An answer came: complete its request if it is still awaited."""
        pending = self._pending.get(envelope.correlation or "")
        if pending is None:
            return
        pending.answers[envelope.sender] = body
        if not pending.expected or pending.expected <= pending.answers.keys():
            self._complete(envelope.correlation or "")

    def stop(self) -> None:
        """Stop waiting: every request in flight fails."""
        for correlation in list(self._pending):
            self._fail(correlation, FleetUnavailableError("the cluster member stopped"))

    def _open(self, expected: frozenset[str], timeout: float) -> tuple[str, _Pending]:
        if len(self._pending) >= self._max_in_flight:
            raise FleetUnavailableError(
                f"{self._max_in_flight} cluster requests are in flight"
            )
        correlation = uuid.uuid4().hex
        pending = _Pending(Deferred(), expected)
        pending.timer = self._clock.callLater(timeout, self._timed_out, correlation)
        self._pending[correlation] = pending
        return correlation, pending

    def _timed_out(self, correlation: str) -> None:
        pending = self._pending.get(correlation)
        if pending is None:
            return
        pending.timer = None
        if pending.expected:
            self._complete(correlation)
        else:
            self._fail(
                correlation,
                HolderSilentError("no cluster member answered in time"),
            )

    def _complete(self, correlation: str) -> None:
        pending = self._close(correlation)
        if pending is not None:
            pending.done.callback(list(pending.answers.values()))

    def _fail(self, correlation: str, error: FleetUnavailableError) -> None:
        pending = self._close(correlation)
        if pending is not None:
            pending.done.errback(error)

    def _close(self, correlation: str) -> _Pending | None:
        pending = self._pending.pop(correlation, None)
        if pending is not None and pending.timer is not None:
            pending.timer.cancel()
        return pending

    def _not_sent(self, failure: Any, correlation: str) -> None:
        self._close(correlation)
        raise FleetUnavailableError(
            f"the cluster bus did not take the request: {failure.getErrorMessage()}"
        )


def _first(answers: list[Body]) -> Body:
    return answers[0]
