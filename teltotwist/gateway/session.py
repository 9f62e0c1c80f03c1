# -*- test-case-name: tests.test_gateway_session -*-
"""One tracker connection as a pure state machine (sans-IO).

Bytes go in; actions come out: bytes to write, items to deliver before an ACK,
or a reason to close. No reactor, no sockets, no clock: the Twisted protocol
performs the actions, and tests drive the session byte by byte.

The states: awaiting the login, streaming, delivering (one packet in flight:
trackers are stop-and-wait, and anything arriving meanwhile waits its turn),
closed.

Commands to the tracker go one at a time, and only when the tracker waits for
no ACK: after its first packet since the login was ACKed (or after a quiet
spell, :meth:`TrackerSession.quiet`), with no packet delivering and no frame
half received. A tracker sends its stored records first, and reads anything
written meanwhile as a wrong ACK.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Sequence

import attrs

from teltotwist.catalogue import Naming
from teltotwist.codec import (
    COMMAND_CODECS,
    AvlPacket,
    Codec,
    CodecError,
    CommandFrame,
    CommandMessage,
    CommandType,
    Frame,
    ImeiPolicy,
    Login,
    StreamEvent,
    StreamFramer,
    check_envelope,
    decode_checked_frame,
    encode_frame,
    login_reply,
    tcp_ack,
)
from teltotwist.gateway.events import LoginResult, Rejection
from teltotwist.gateway.items import (
    Item,
    UnparsedFrame,
    records_not_made,
    tracker_records,
)

_CODEC_OFFSET = 8
_RECORD_COUNT_OFFSET = 9
_COMMAND_CODEC_IDS = frozenset(int(codec) for codec in COMMAND_CODECS)


class State(enum.Enum):
    """Where a session is in its life."""

    AWAITING_LOGIN = "awaiting login"
    CLAIMING = "claiming"
    """The login waits for :meth:`TrackerSession.login_claimed`."""
    STREAMING = "streaming"
    DELIVERING = "delivering"
    CLOSED = "closed"


@attrs.frozen
class Send:
    """Write these bytes to the tracker."""

    data: bytes


@attrs.frozen
class LoggedIn:
    """The tracker logged in and was accepted."""

    imei: str


@attrs.frozen
class ClaimLogin:
    """Ask whether *imei* is held elsewhere, then report back with
    :meth:`TrackerSession.login_claimed`; no reply goes before."""

    imei: str


@attrs.frozen
class Deliver:
    """Deliver *items* to the sinks, then report back with
    :meth:`TrackerSession.delivery_succeeded` or ``delivery_failed``.
    *frame* is the data frame as received (for the traffic tap)."""

    items: tuple[Item, ...]
    frame: bytes = attrs.field(eq=False, repr=False)


@attrs.frozen
class CommandReceived:
    """A Codec 12-15 frame from the tracker: never acknowledged. *data* is
    the frame as received."""

    frame: CommandFrame
    data: bytes = attrs.field(eq=False, repr=False)


@attrs.frozen
class CommandsReady:
    """The tracker may take commands from now on (once per connection)."""


@attrs.frozen
class SendCommand:
    """Write this command frame to the tracker: the command is sent now."""

    data: bytes


@attrs.frozen
class CommandAnswered:
    """The tracker answered the command outstanding: *executed* is False
    for a Codec 14 nACK (the IMEI did not match; nothing ran). *data* is
    the frame as received."""

    message: CommandMessage
    executed: bool
    data: bytes = attrs.field(eq=False, repr=False)


@attrs.frozen
class Discard:
    """A command frame that does not decode: log it; it is never ACKed."""

    reason: str


@attrs.frozen
class Close:
    """Close the connection; *reason* says why, for the log. *cause* is how
    the data path's events count it: a refused login, input turned away, or
    None for a close that judges nothing the tracker sent."""

    reason: str
    cause: LoginResult | Rejection | None = None


Action = (
    Send
    | LoggedIn
    | ClaimLogin
    | Deliver
    | CommandsReady
    | SendCommand
    | CommandAnswered
    | CommandReceived
    | Discard
    | Close
)


_READING = frozenset({State.AWAITING_LOGIN, State.STREAMING})

_ANSWERS: dict[Codec, dict[int, bool]] = {
    Codec.CODEC12: {CommandType.RESPONSE: True},
    Codec.CODEC14: {CommandType.RESPONSE: True, CommandType.NACK: False},
}
"""Per command codec: the message types answering it, and whether each
means the command ran."""


class TrackerSession:
    """The protocol of one TCP connection from a tracker.

    :param allow: says whether an IMEI may log in.
    :param now_ms: the clock stamping ``received_at`` (milliseconds).
    :param imei_policy: which logins are plausible trackers at all.
    :param claim: says why an allowed IMEI may not log in on this connection
        now (another connection holds it), or None.
    :param claims_elsewhere: says whether an IMEI's login must also be
        claimed elsewhere (:class:`ClaimLogin`) before it is answered.
    :param naming: the naming of an IMEI's records now (None: no attributes).
    """

    # A gateway holds one per connected tracker: slots keep each small.
    __slots__ = (
        "_ack",
        "_allow",
        "_claim",
        "_claiming",
        "_claims_elsewhere",
        "_command",
        "_framer",
        "_imei_policy",
        "_naming",
        "_now_ms",
        "_outstanding",
        "_waiting",
        "commands_ready",
        "imei",
        "state",
    )

    def __init__(
        self,
        allow: Callable[[str], bool],
        now_ms: Callable[[], int],
        max_frame_size: int,
        imei_policy: ImeiPolicy = ImeiPolicy(),
        claim: Callable[[str], str | None] = lambda imei: None,
        *,
        claims_elsewhere: Callable[[str], bool] = lambda imei: False,
        naming: Callable[[str], Naming | None] = lambda imei: None,
    ) -> None:
        self._allow = allow
        self._naming = naming
        self._claim = claim
        self._claims_elsewhere = claims_elsewhere
        self._claiming: str | None = None
        """The IMEI whose login waits for :meth:`login_claimed`."""
        self._imei_policy = imei_policy
        self._now_ms = now_ms
        self._framer = StreamFramer(max_frame_size)
        # Created only while events wait: an empty deque costs 760 bytes, and
        # most of a gateway's thousands of sessions are idle.
        self._waiting: deque[StreamEvent] | None = None
        self._ack = b""
        self.state = State.AWAITING_LOGIN
        self.imei: str | None = None
        self.commands_ready = False
        """True once the tracker may take commands."""
        self._command: CommandFrame | None = None
        """The command handed over, waiting to be written."""
        self._outstanding: Codec | None = None
        """The codec of the command written and not answered yet."""

    @property
    def buffered(self) -> int:
        """Bytes held of an unfinished login or frame (0 once closed)."""
        return 0 if self.state is State.CLOSED else self._framer.buffered

    def data_received(self, data: bytes) -> list[Action]:
        """Take bytes from the tracker; return what to do."""
        if self.state is State.CLOSED:
            return []
        try:
            events = self._framer.feed(data)
        except CodecError as error:
            return self._close(f"unframeable input: {error}", Rejection.FRAMING)
        if events:
            if self._waiting is None:
                self._waiting = deque(events)
            else:
                self._waiting.extend(events)
        actions = self._process()
        return actions + self._write_command()

    def delivery_succeeded(self) -> list[Action]:
        """The sinks hold the items of the last :class:`Deliver`: ACK them."""
        if self.state is not State.DELIVERING:
            return []
        self.state = State.STREAMING
        actions: list[Action] = [Send(self._ack), *self._process()]
        return actions + self._become_ready()

    def quiet(self) -> list[Action]:
        """The tracker sent nothing for a while after its login: it holds no
        stored records, so commands may go."""
        return self._become_ready()

    def send_command(self, frame: CommandFrame) -> list[Action]:
        """Write *frame* to the tracker as soon as it waits for no ACK.

        :raises RuntimeError: when another command is still handed over or
            outstanding (one at a time; see :meth:`abandon_command`).
        """
        if self._command is not None or self._outstanding is not None:
            raise RuntimeError("a command is already outstanding on this connection")
        if self.state is State.CLOSED:
            return []
        self._command = frame
        return self._write_command()

    def abandon_command(self) -> None:
        """Forget the command handed over or outstanding (its answer timed
        out): a late answer is reported as an unsolicited message."""
        self._command = None
        self._outstanding = None

    @property
    def command_written(self) -> bool:
        """True while a command was written and is not answered yet."""
        return self._outstanding is not None

    def _become_ready(self) -> list[Action]:
        if self.commands_ready:
            return self._write_command()
        if self.state is not State.STREAMING or self._framer.buffered:
            return []
        self.commands_ready = True
        return [CommandsReady(), *self._write_command()]

    def _write_command(self) -> list[Action]:
        frame = self._command
        if (
            frame is None
            or not self.commands_ready
            or self.state is not State.STREAMING
            or self._framer.buffered
            or self._waiting
        ):
            return []
        self._command = None
        self._outstanding = frame.codec
        return [SendCommand(encode_frame(frame))]

    def login_claimed(self, conflict: str | None) -> list[Action]:
        """The answer to :class:`ClaimLogin`: why the login may not be
        accepted (it is refused), or None (accepted unless a connection
        here took the IMEI meanwhile)."""
        imei = self._claiming
        if self.state is not State.CLAIMING or imei is None:
            return []
        self._claiming = None
        conflict = conflict or self._claim(imei)
        if conflict is not None:
            return self._refuse(conflict, LoginResult.DUPLICATE)
        actions = self._accept(imei)
        return actions + self._process()

    def delivery_failed(self, reason: str) -> list[Action]:
        """The sinks did not take the items: no ACK; the tracker will resend."""
        if self.state is State.CLOSED:
            return []
        return self._close(f"delivery failed, not acknowledged: {reason}")

    def timed_out(self, what: str) -> list[Action]:
        """A timer of the adapter's expired (no login, idle ...): close."""
        if self.state is State.CLOSED:
            return []
        return self._close(what, Rejection.TIMEOUT)

    def shed(self, reason: str) -> list[Action]:
        """The gateway needs this connection's memory back: close."""
        if self.state is State.CLOSED:
            return []
        return self._close(reason, Rejection.BUDGET)

    def replaced(self) -> list[Action]:
        """A newer connection logged in with this IMEI: close this one."""
        if self.state is State.CLOSED:
            return []
        return self._close("a newer connection logged in with the same IMEI")

    def close(self, reason: str) -> list[Action]:
        """The gateway closes this connection for *reason*."""
        if self.state is State.CLOSED:
            return []
        return self._close(reason)

    def connection_lost(self) -> None:
        """The connection is gone: nothing more will be done."""
        self.state = State.CLOSED
        self._waiting = None
        self._command = None

    def _close(
        self, reason: str, cause: LoginResult | Rejection | None = None
    ) -> list[Action]:
        self.connection_lost()
        return [Close(reason, cause)]

    def _process(self) -> list[Action]:
        actions: list[Action] = []
        waiting = self._waiting
        while waiting and self.state in _READING:
            actions.extend(self._handle(waiting.popleft()))
        if not waiting:
            self._waiting = None
        return actions

    def _handle(self, event: StreamEvent) -> Sequence[Action]:
        if isinstance(event, Login):
            return self._login(event.imei)
        if isinstance(event, Frame):
            if self.state is State.AWAITING_LOGIN:
                return self._close(
                    "a data frame came before the IMEI login", Rejection.FRAMING
                )
            return self._frame(event.data)
        return ()

    def _login(self, imei: str) -> Sequence[Action]:
        if self.state is not State.AWAITING_LOGIN:
            return self._close(
                f"a second login ({imei}) on one connection", Rejection.FRAMING
            )
        problem = self._imei_policy.problem(imei)
        if problem is not None:
            return self._refuse(f"login refused: {problem}", LoginResult.IMPLAUSIBLE)
        if not self._allow(imei):
            return self._refuse(f"IMEI {imei} is not allowed", LoginResult.NOT_ALLOWED)
        conflict = self._claim(imei)
        if conflict is not None:
            return self._refuse(conflict, LoginResult.DUPLICATE)
        if self._claims_elsewhere(imei):
            self._claiming = imei
            self.state = State.CLAIMING
            return [ClaimLogin(imei)]
        return self._accept(imei)

    def _accept(self, imei: str) -> list[Action]:
        self.imei = imei
        self.state = State.STREAMING
        return [Send(login_reply(True)), LoggedIn(imei)]

    def _refuse(self, reason: str, result: LoginResult) -> list[Action]:
        return [Send(login_reply(False)), *self._close(reason, result)]

    def _frame(self, frame: bytes) -> Sequence[Action]:
        assert self.imei is not None
        try:
            end = check_envelope(frame)
        except CodecError as error:
            return self._close(f"bad frame, not acknowledged: {error}", Rejection.CRC)
        received_at = self._now_ms()
        try:
            content = decode_checked_frame(frame, end)
        except CodecError as error:
            return self._undecodable(frame, str(error), received_at)
        if isinstance(content, CommandFrame):
            return [self._command_frame(content, frame)]
        try:
            items = self._items(content, received_at)
        except Exception as error:
            # Closing would wedge the tracker, which resends the same frame.
            return self._undecodable(frame, records_not_made(error), received_at)
        return self._deliver(items, len(content.records), frame)

    def _command_frame(self, frame: CommandFrame, data: bytes) -> Action:
        """The answer to the command outstanding, or an unsolicited message."""
        expected = (
            _ANSWERS.get(frame.codec, {}) if frame.codec is self._outstanding else {}
        )
        for message in frame.messages:
            executed = expected.get(message.type)
            if executed is not None:
                self._outstanding = None
                return CommandAnswered(message, executed, data)
        return CommandReceived(frame, data)

    def _undecodable(
        self, frame: bytes, error: str, received_at: int
    ) -> Sequence[Action]:
        """A frame past :func:`check_envelope` (so with a codec id and two
        counts) whose content does not decode, or whose records cannot be
        made into items.

        AVL data is kept as an :class:`UnparsedFrame` and ACKed with the count
        the tracker declared, so the tracker is not wedged resending it
        forever; a command frame is only logged (commands are never ACKed).
        """
        assert self.imei is not None
        if frame[_CODEC_OFFSET] in _COMMAND_CODEC_IDS:
            return [Discard(f"undecodable command frame: {error}")]
        count = frame[_RECORD_COUNT_OFFSET]
        unparsed = UnparsedFrame(self.imei, frame, error, received_at)
        return self._deliver((unparsed,), count, frame)

    def _items(self, packet: AvlPacket, received_at: int) -> tuple[Item, ...]:
        imei = self.imei
        assert imei is not None
        return tracker_records(imei, packet, received_at, self._naming(imei))

    def _deliver(
        self, items: tuple[Item, ...], count: int, frame: bytes
    ) -> Sequence[Action]:
        self._ack = tcp_ack(count)
        self.state = State.DELIVERING
        return [Deliver(items, frame)]
