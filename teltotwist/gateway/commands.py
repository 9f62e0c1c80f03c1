# -*- test-case-name: tests.test_gateway_commands -*-
"""Commands to trackers: the command model and the :class:`CommandCenter`.

The center queues commands per tracker (first in, first out), hands one at a
time to the tracker's connection once it may take commands, matches the
answer, and gives every command an outcome: answered, not executed (Codec 14
nACK), timed out, expired (its TTL ran out before the tracker came) or failed
(the connection went after the command was written; it is never written again,
since it may have run). Queued commands survive a restart in a
:class:`CommandStorage`.

Answers carry no command id (Codec 12) or only the IMEI (Codec 14), so after a
timeout the next command waits out a grace period: an answer arriving in it
is the late one, dropped, and cannot be taken for the next command's.
"""

from __future__ import annotations

import enum
import math
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import attrs
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from teltotwist.codec import (
    Codec,
    CommandFrame,
    CommandMessage,
    CommandType,
    ImeiPolicy,
    format_timestamp_ms,
)
from teltotwist.gateway.events import DataPathEvents
from teltotwist.gateway.registry import TrackerLink

_log = Logger()

COMMAND_CODECS = frozenset({Codec.CODEC12, Codec.CODEC14})
"""The codecs a command can be sent with."""
MAX_PAYLOAD = 1024
"""The longest command, in bytes (a Teltonika command is an SMS-sized text)."""
_STOPPED_BEFORE_ANSWER = "the gateway stopped before the answer; not sent again"
_REPLACED_BEFORE_ANSWER = (
    "the tracker logged in again before the answer; not sent again"
)


class CommandStatus(enum.StrEnum):
    """Where a command is in its life; the last five are final."""

    QUEUED = "queued"
    SENT = "sent"
    ANSWERED = "answered"
    NOT_EXECUTED = "not_executed"
    TIMED_OUT = "timed_out"
    EXPIRED = "expired"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return self not in (CommandStatus.QUEUED, CommandStatus.SENT)


class NotConnectedError(Exception):
    """The tracker is not connected, and the command may not be queued."""


class QueueFullError(Exception):
    """Too many commands are queued (for this tracker or in all)."""


@attrs.define
class Command:
    """One command to one tracker, and what became of it.

    *payload* is the command's bytes; *is_text* says it was given as text.
    Times are milliseconds since the epoch.
    """

    id: str
    imei: str
    codec: Codec
    payload: bytes
    is_text: bool
    created_at_ms: int
    expires_at_ms: int
    status: CommandStatus = CommandStatus.QUEUED
    sent_at_ms: int | None = None
    answered_at_ms: int | None = None
    response: bytes | None = None
    error: str | None = None

    def frame(self) -> CommandFrame:
        """The command frame to write to the tracker."""
        imei = self.imei if self.codec is Codec.CODEC14 else None
        return CommandFrame(
            self.codec, (CommandMessage(CommandType.COMMAND, self.payload, imei=imei),)
        )

    def to_json(self) -> dict[str, Any]:
        """The command object of the HTTP API."""
        body: dict[str, Any] = {"id": self.id, "imei": self.imei, "codec": self.codec}
        if self.is_text:
            body["command"] = self.payload.decode("ascii")
        else:
            body["hex"] = self.payload.hex()
        response = self.response
        return {
            **body,
            "status": str(self.status),
            "created_at": format_timestamp_ms(self.created_at_ms),
            "sent_at": _timestamp(self.sent_at_ms),
            "answered_at": _timestamp(self.answered_at_ms),
            "response": None if response is None else _text(response),
            "response_hex": None if response is None else response.hex(),
            "error": self.error,
        }


def _timestamp(ms: int | None) -> str | None:
    return None if ms is None else format_timestamp_ms(ms)


def _text(response: bytes) -> str:
    return response.decode("ascii", errors="replace")


class CommandLink(TrackerLink, Protocol):
    """A live TCP connection, as the center hands it commands."""

    def send_command(self, frame: CommandFrame) -> None:
        """Write *frame* once the tracker waits for no ACK (one at a time)."""

    def abandon_command(self) -> None:
        """Stop waiting for the answer to the command handed over."""


class CommandStorage(Protocol):
    """Where commands are kept across restarts."""

    def save(self, command: Command) -> None:
        """Keep *command* as it is now."""

    def load(self) -> list[Command]:
        """The commands kept, oldest first."""

    def forget(self, command_id: str) -> None:
        """Keep the command no longer (it waits elsewhere now)."""

    def close(self) -> None:
        """Release the storage (the gateway stops)."""


@attrs.define
class _Connection:
    """A tracker's live connection, as the center sees it."""

    link: CommandLink
    ready: bool = False
    current: Command | None = None
    """The command handed to the connection (queued until written, then sent)."""
    answer_timer: IDelayedCall | None = None
    late_answer_timer: IDelayedCall | None = None
    """Runs after a timeout: meanwhile an answer is the late one, and no
    command is written."""


@attrs.frozen
class CommandLimits:
    """How long commands wait and how many are kept."""

    answer_timeout: float = 60.0
    """Seconds from writing a command to its answer."""
    late_answer_grace: float = 5.0
    """Seconds after a timeout before the next command is written; an answer
    arriving meanwhile is the timed-out command's, and is dropped."""
    max_queued_per_imei: int = 16
    max_queued: int = 10_000
    history_per_imei: int = 50
    """Finished commands listed per tracker by :meth:`CommandCenter.recent`."""
    history: int = 10_000
    """Commands kept in all (queued ones are always kept)."""


class CommandCenter:
    """Queues, sends and follows the commands to trackers.

    The TCP adapter reports each connection's life (``tracker_*`` and
    ``command_*`` methods); *results* receives every command that reached a
    final outcome; *events* hears every status a command enters.
    """

    def __init__(
        self,
        clock: IReactorTime,
        storage: CommandStorage | None = None,
        *,
        limits: CommandLimits = CommandLimits(),
        imei_policy: ImeiPolicy = ImeiPolicy(),
        results: Callable[[Command], object] = lambda command: None,
        events: DataPathEvents | None = None,
    ) -> None:
        self._clock = clock
        self._events = DataPathEvents() if events is None else events
        self._storage = storage
        self._limits = limits
        self._imei_policy = imei_policy
        self._results = results
        self._commands: OrderedDict[str, Command] = OrderedDict()
        self._queues: dict[str, deque[Command]] = {}
        self._queued = 0
        self._connections: dict[str, _Connection] = {}
        self._waiters: dict[str, list[Deferred[Command]]] = {}
        self._expiries: dict[str, IDelayedCall] = {}
        self._stopped = False
        if storage is not None:
            self._restore(storage.load())

    # The API's side.

    def submit(
        self,
        imei: str,
        *,
        text: str | None = None,
        payload: bytes | None = None,
        codec: int = Codec.CODEC12,
        ttl: float = 0.0,
        command_id: str | None = None,
        created_at_ms: int | None = None,
    ) -> Command:
        """Queue a command (*text*, or raw *payload*) for *imei* and send it
        as soon as the tracker may take it.

        :param ttl: seconds the command may wait for a tracker that is not
            connected; 0 sends it only to a connected tracker.
        :param command_id: the command's id, when it has one already (it
            came from another member of a cluster); by default a new one.
        :param created_at_ms: when the command was created, if before now
            (it came from another member).
        :raises ValueError: for a bad IMEI, command, codec or TTL, or an id
            already known.
        :raises NotConnectedError: when *ttl* is 0 and the tracker is not
            connected, or the center is stopped.
        :raises QueueFullError: when the tracker or the gateway has too many queued.
        """
        if self._stopped:
            raise NotConnectedError("the gateway is stopped")
        command = self.prepare(imei, text=text, payload=payload, codec=codec, ttl=ttl)
        if command_id is not None:
            if command_id in self._commands:
                raise ValueError(f"command {command_id} is already known")
            command.id = command_id
        if created_at_ms is not None:
            command.created_at_ms = created_at_ms
        if ttl == 0 and imei not in self._connections:
            raise NotConnectedError(f"tracker {imei} is not connected")
        queue = self._queues.get(imei, ())
        if len(queue) >= self._limits.max_queued_per_imei:
            raise QueueFullError(
                f"{self._limits.max_queued_per_imei} commands are queued for {imei}"
            )
        if self._queued >= self._limits.max_queued:
            raise QueueFullError(f"{self._limits.max_queued} commands are queued")
        self._remember(command)
        self._save(command)
        self._events.command(CommandStatus.QUEUED)
        self._enqueue(command)
        self._send_next(imei)
        return command

    def prepare(
        self,
        imei: str,
        *,
        text: str | None = None,
        payload: bytes | None = None,
        codec: int = Codec.CODEC12,
        ttl: float = 0.0,
    ) -> Command:
        """A new command, checked as :meth:`submit` checks it, but neither
        kept nor queued (a cluster parks it for a tracker connected nowhere).

        :raises ValueError: for a bad IMEI, command, codec or TTL.
        """
        problem = self._imei_policy.problem(imei)
        if problem is not None:
            raise ValueError(problem)
        body, is_text = _payload(text, payload)
        if codec not in COMMAND_CODECS:
            raise ValueError(f"codec must be 12 or 14, not {codec!r}")
        if not (math.isfinite(ttl) and ttl >= 0):
            raise ValueError(f"ttl must be a number of seconds >= 0, not {ttl!r}")
        now = self._now_ms()
        return Command(
            uuid.uuid4().hex,
            imei,
            Codec(codec),
            body,
            is_text,
            now,
            now + round(ttl * 1000),
        )

    def get(self, command_id: str) -> Command | None:
        """The command with this id, or None (unknown or forgotten)."""
        return self._commands.get(command_id)

    def recent(self, imei: str) -> list[Command]:
        """The tracker's commands, newest first (finished ones bounded by
        ``history_per_imei``)."""
        mine = [c for c in reversed(self._commands.values()) if c.imei == imei]
        pending = [c for c in mine if not c.status.final]
        done = [c for c in mine if c.status.final]
        kept = {id(c) for c in pending + done[: self._limits.history_per_imei]}
        return [c for c in mine if id(c) in kept]

    def outcome(self, command_id: str) -> Deferred[Command]:
        """Fires with the command once it has a final outcome. Cancel it to
        stop waiting.

        :raises KeyError: for an unknown id.
        """
        command = self._commands[command_id]
        if command.status.final:
            return succeed(command)
        waiters = self._waiters.setdefault(command_id, [])

        def stop_waiting(waiter: Deferred[Command]) -> None:
            if waiter in waiters:
                waiters.remove(waiter)

        waiter: Deferred[Command] = Deferred(stop_waiting)
        waiters.append(waiter)
        return waiter

    def take_queued(self, imei: str) -> list[Command]:
        """Take the commands queued for *imei*, a tracker not connected here,
        oldest first, out of the queue and out of :meth:`get` (a cluster
        hands them back, to wait for the tracker's login anywhere). Then
        each is either :meth:`handed_over`, or :meth:`put_back` when it
        could not be; meanwhile the storage keeps it."""
        if self._stopped or imei in self._connections:
            return []
        taken = list(self._queues.get(imei, ()))
        for command in taken:
            self._dequeue(command)
            del self._commands[command.id]
        return taken

    def handed_over(self, command: Command) -> None:
        """*command*, taken, waits elsewhere now: the storage forgets it, and
        a wait for its outcome here ends only at its own timeout."""
        self._waiters.pop(command.id, None)
        if self._storage is not None and not self._stopped:
            self._storage.forget(command.id)

    def put_back(self, commands: list[Command]) -> None:
        """*commands*, taken, could not be handed over: they go back to the
        head of their tracker's queue, in order."""
        for command in commands:
            self._commands[command.id] = command
        for command in reversed(commands):
            self._enqueue(command, first=True)
        for imei in {command.imei for command in commands}:
            self._send_next(imei)
            self._expire_due(imei)

    def stop(self) -> None:
        """The gateway stops: a command written and not answered fails (it is
        never written again); one handed over but not written, and every
        queued one, stays queued in the storage; the timers are cancelled
        and the storage is closed."""
        self._stopped = True
        for imei, connection in list(self._connections.items()):
            connection.link.abandon_command()
            self._release(imei, connection, _STOPPED_BEFORE_ANSWER)
        for call in self._expiries.values():
            call.cancel()
        self._expiries.clear()
        if self._storage is not None:
            self._storage.close()

    # The connection's side.

    def tracker_logged_in(self, imei: str, link: CommandLink) -> None:
        """*link* holds *imei* now; commands wait until :meth:`tracker_ready`.
        A connection it replaces is gone, as in :meth:`tracker_gone`."""
        replaced = self._connections.get(imei)
        if replaced is not None:
            replaced.link.abandon_command()
            self._release(imei, replaced, _REPLACED_BEFORE_ANSWER)
        self._connections[imei] = _Connection(link)

    def tracker_ready(self, imei: str, link: CommandLink) -> None:
        """The tracker on *link* may take commands."""
        connection = self._connection(imei, link)
        if connection is not None:
            connection.ready = True
            self._send_next(imei)

    def command_written(self, imei: str, link: CommandLink) -> None:
        """The command handed to *link* was written to the tracker."""
        connection = self._connection(imei, link)
        if connection is None or connection.current is None:
            return
        command = connection.current
        command.status = CommandStatus.SENT
        command.sent_at_ms = self._now_ms()
        self._save(command)
        self._events.command(CommandStatus.SENT)
        connection.answer_timer = self._clock.callLater(
            self._limits.answer_timeout, self._answer_timed_out, imei, connection
        )

    def command_answered(
        self, imei: str, link: CommandLink, message: CommandMessage, executed: bool
    ) -> None:
        """The tracker on *link* answered the command written to it."""
        connection = self._connection(imei, link)
        if connection is None:
            return
        if connection.current is None:
            self._late_answer(imei, connection, message)
            return
        command = connection.current
        command.response = message.payload
        command.answered_at_ms = self._now_ms()
        if executed:
            self._end_current(connection, CommandStatus.ANSWERED)
        else:
            self._end_current(
                connection,
                CommandStatus.NOT_EXECUTED,
                "the tracker's IMEI does not match (Codec 14 nACK)",
            )
        self._send_next(imei)

    def tracker_gone(self, imei: str, link: CommandLink) -> None:
        """*link* closed: a command written to it failed; one handed to it
        but not written goes back to the head of the queue."""
        connection = self._connection(imei, link)
        if connection is None:
            return
        self._release(
            imei, connection, "the connection closed before the answer; not sent again"
        )
        self._expire_due(imei)

    # The machinery.

    def _release(self, imei: str, connection: _Connection, failure: str) -> None:
        """Forget *connection*: its command written and not answered fails
        with *failure*; one handed to it but not written goes back to the
        head of the queue."""
        del self._connections[imei]
        _cancel(connection.late_answer_timer)
        command = connection.current
        if command is not None and command.status is CommandStatus.SENT:
            self._end_current(connection, CommandStatus.FAILED, failure)
        elif command is not None:
            connection.current = None
            self._enqueue(command, first=True)

    def _connection(self, imei: str, link: CommandLink) -> _Connection | None:
        connection = self._connections.get(imei)
        if connection is None or connection.link is not link:
            return None
        return connection

    def _now_ms(self) -> int:
        return int(self._clock.seconds() * 1000)

    def _enqueue(self, command: Command, first: bool = False) -> None:
        queue = self._queues.setdefault(command.imei, deque())
        if first:
            queue.appendleft(command)
        else:
            queue.append(command)
        self._queued += 1
        if command.id not in self._expiries:
            delay = max(0.0, (command.expires_at_ms - self._now_ms()) / 1000)
            self._expiries[command.id] = self._clock.callLater(
                delay, self._expiry_reached, command
            )

    def _dequeue(self, command: Command) -> None:
        queue = self._queues[command.imei]
        queue.remove(command)
        self._queued -= 1
        if not queue:
            del self._queues[command.imei]
        _cancel(self._expiries.pop(command.id, None))

    def _send_next(self, imei: str) -> None:
        connection = self._connections.get(imei)
        queue = self._queues.get(imei)
        if not (connection and connection.ready and queue):
            return
        if connection.current is not None or connection.late_answer_timer is not None:
            return
        command = queue[0]
        self._dequeue(command)
        connection.current = command
        connection.link.send_command(command.frame())

    def _expiry_reached(self, command: Command) -> None:
        self._expiries.pop(command.id, None)
        self._expire_due(command.imei)

    def _expire_due(self, imei: str) -> None:
        """Queued commands of a tracker that is not connected expire once
        their TTL is over; a connected tracker gets them in turn."""
        if imei in self._connections:
            return
        now = self._now_ms()
        for command in list(self._queues.get(imei, ())):
            if command.expires_at_ms <= now:
                self._dequeue(command)
                self._finish(
                    command,
                    CommandStatus.EXPIRED,
                    "the tracker did not connect within the TTL",
                )

    def _answer_timed_out(self, imei: str, connection: _Connection) -> None:
        connection.answer_timer = None
        self._end_current(
            connection,
            CommandStatus.TIMED_OUT,
            f"no answer within {self._limits.answer_timeout:g} s",
        )
        connection.late_answer_timer = self._clock.callLater(
            self._limits.late_answer_grace, self._grace_over, imei, connection
        )

    def _grace_over(self, imei: str, connection: _Connection) -> None:
        """No late answer came: stop waiting for it; the next command goes."""
        connection.late_answer_timer = None
        connection.link.abandon_command()
        self._send_next(imei)

    def _late_answer(
        self, imei: str, connection: _Connection, message: CommandMessage
    ) -> None:
        """The answer to a command that timed out: dropped; the next goes."""
        _log.info(
            "{imei}: late answer to a command that timed out, dropped: {answer}",
            imei=imei,
            answer=message.text or message.payload.hex(),
        )
        _cancel(connection.late_answer_timer)
        connection.late_answer_timer = None
        self._send_next(imei)

    def _end_current(
        self, connection: _Connection, status: CommandStatus, error: str | None = None
    ) -> None:
        command = connection.current
        assert command is not None
        connection.current = None
        _cancel(connection.answer_timer)
        connection.answer_timer = None
        self._finish(command, status, error)

    def _finish(
        self, command: Command, status: CommandStatus, error: str | None
    ) -> None:
        command.status = status
        command.error = error
        self._save(command)
        self._events.command(status)
        _log.info(
            "Command {id} to {imei}: {status}",
            id=command.id,
            imei=command.imei,
            status=status,
        )
        for waiter in self._waiters.pop(command.id, []):
            waiter.callback(command)
        try:
            self._results(command)
        except Exception:
            _log.failure("Command {id}: passing on its result failed", id=command.id)

    def _remember(self, command: Command) -> None:
        """Keep *command*; past ``history`` commands, the oldest finished go."""
        self._commands[command.id] = command
        excess = len(self._commands) - self._limits.history
        if excess <= 0:
            return
        oldest_finished = [c.id for c in self._commands.values() if c.status.final]
        for command_id in oldest_finished[:excess]:
            del self._commands[command_id]

    def _save(self, command: Command) -> None:
        if self._storage is not None:
            self._storage.save(command)

    def _restore(self, commands: Iterable[Command]) -> None:
        """Take up the stored commands: queued ones wait again; one that was
        written when the gateway stopped failed (it may have run)."""
        for command in commands:
            self._remember(command)
            if command.status is CommandStatus.QUEUED:
                self._enqueue(command)
            elif command.status is CommandStatus.SENT:
                command.status = CommandStatus.FAILED
                command.error = _STOPPED_BEFORE_ANSWER
                self._save(command)
                self._events.command(CommandStatus.FAILED)


def _payload(text: str | None, payload: bytes | None) -> tuple[bytes, bool]:
    """The command's bytes, and whether they were given as text."""
    if (text is None) == (payload is None):
        raise ValueError("give either a command text or a payload, not both")
    if text is not None:
        if not (text.isascii() and text.isprintable() and text.strip()):
            raise ValueError(f"a command text is printable ASCII, not {text!r}")
        body, is_text = text.encode("ascii"), True
    else:
        assert payload is not None
        body, is_text = payload, False
    if not 0 < len(body) <= MAX_PAYLOAD:
        raise ValueError(f"a command holds 1 to {MAX_PAYLOAD} bytes, not {len(body)}")
    return body, is_text


def _cancel(call: IDelayedCall | None) -> None:
    if call is not None and call.active():
        call.cancel()
