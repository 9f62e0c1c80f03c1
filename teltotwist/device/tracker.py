# -*- test-case-name: tests.test_device_tracker -*-
"""The tracker's side of the TCP protocol, on a Twisted client endpoint.

What a Teltonika tracker does: log in with its IMEI; keep records in a bounded
flash; send one packet at a time and wait for its ACK; on a missing ACK or a
wrong count close the link, reconnect and resend the same bytes; after a
rejected login or a lost link, reconnect with a growing delay; ping when idle;
answer Codec 12 and 14 commands after a delay, never ACKing them and never
while a packet waits for its ACK. Everything it does is reported to an
observer as a :class:`DeviceEvent`. A load generator can pace it: make it
record only on demand, pack ahead, or hold each packet until released.
"""

from __future__ import annotations

import enum
import math
import random
import socket
from collections import deque
from collections.abc import Callable, Sequence

import attrs
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import connectProtocol
from twisted.internet.interfaces import (
    IDelayedCall,
    IReactorTime,
    IStreamClientEndpoint,
    ISystemHandle,
)
from twisted.internet.protocol import Protocol
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from teltotwist.catalogue import load_catalogue
from teltotwist.codec import (
    AvlRecord,
    Codec,
    CodecError,
    CommandFrame,
    Frame,
    decode_frame,
    encode_avl_frame,
    encode_frame,
    encode_login,
)
from teltotwist.device.answers import ANSWERED_CODECS, Answer, answer_commands
from teltotwist.device.commands import CommandResponder
from teltotwist.device.read_time import ReadTime
from teltotwist.device.replies import Ack, LoginReply, ReplyReader
from teltotwist.device.route import BUILT_IN_ROUTE, RoutePoint, RouteWalker
from teltotwist.device.telemetry import DEFAULT_MODEL, TelemetrySource

PING = b"\xff"

MAX_PENDING_COMMANDS = 8
"""Command frames received and not yet answered; more are ignored."""


class EventKind(enum.Enum):
    """What happened; a load generator counts these."""

    CONNECTING = "connecting"
    LOGGED_IN = "logged in"
    REJECTED = "rejected"
    SENT = "sent"
    ACKED = "acked"
    RESEND = "resend"
    PING = "ping"
    COMMAND = "command"
    LINK_DOWN = "link down"
    RECONNECTING = "reconnecting"
    FLASH_FULL = "flash full"
    WROTE = "wrote"
    READ = "read"


@attrs.frozen
class DeviceEvent:
    """One thing the tracker did or saw, with a readable :attr:`message`."""

    kind: EventKind
    message: str
    records: int = 0
    """SENT, RESEND, ACKED: the packet's record count."""
    latency: float | None = None
    """ACKED: seconds from the (last) send to the ACK."""
    delay: float | None = None
    """RECONNECTING: seconds until the next attempt."""
    data: bytes = b""
    """WROTE, READ: the bytes on the wire."""


Observer = Callable[[DeviceEvent], None]


@attrs.frozen
class TrackerSettings:
    """How the tracker behaves; times are in seconds."""

    imei: str
    codec: Codec = Codec.CODEC8
    model: str = DEFAULT_MODEL
    """The tracker model whose IO ids it sends (see :class:`ModelIo`)."""
    records_per_packet: int = 1
    interval: float = 10.0
    """A packet is due every *interval*: one record every
    ``interval / records_per_packet``."""
    ack_timeout: float = 10.0
    """The "server response timeout": for the login reply and each ACK."""
    ping_interval: float | None = 60.0
    """Send ``0xFF`` after this long without writing; None: never."""
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    flash_capacity: int = 10_000
    """Records kept while unsent; when full the oldest is overwritten."""
    answer_delay: tuple[float, float] = (0.3, 1.0)
    """A command is answered after a delay drawn from this range."""

    def __attrs_post_init__(self) -> None:
        if not (self.imei.isascii() and self.imei.isdigit() and len(self.imei) <= 32):
            raise ValueError(f"IMEI must be up to 32 digits, not {self.imei!r}")
        if not self.codec.carries_records:
            raise ValueError(f"codec {self.codec.label} carries no AVL records")
        load_catalogue().model_named(self.model)  # UnknownModelError: a ValueError
        if not 1 <= self.records_per_packet <= 255:
            raise ValueError(
                f"records per packet must be 1..255, not {self.records_per_packet}"
            )
        if self.flash_capacity < self.records_per_packet:
            raise ValueError("flash_capacity must hold at least one packet")
        positive = ["interval", "ack_timeout", "backoff_initial", "backoff_max"]
        if self.ping_interval is not None:
            positive.append("ping_interval")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)}")
        shortest, longest = self.answer_delay
        if not (0 <= shortest <= longest and math.isfinite(longest)):
            raise ValueError(
                f"answer delay must be 0 <= {shortest} <= {longest}, and finite"
            )


@attrs.define
class _Packet:
    """The packet in flight: kept, byte for byte, until its ACK."""

    number: int
    data: bytes
    count: int
    sent_at: float = 0.0
    attempts: int = 0


class _Link(Protocol):
    """One TCP connection; hands everything to its tracker.

    On a plain TCP connection it writes straight to the socket, at the moment
    it is asked to (the transport would write on the reactor's next turn):
    a packet's send time is when it went. Should the socket take less than
    all, the rest and everything after go through the transport, in order.
    """

    def __init__(self, tracker: VirtualTracker, read_time: ReadTime) -> None:
        self.tracker = tracker
        self.read_time = read_time
        self.reader = ReplyReader()
        self.closed: Deferred[None] = Deferred()
        self._socket: socket.socket | None = None

    def connectionMade(self) -> None:
        handle = ISystemHandle(self.transport, None)
        if handle is not None:
            descriptor = handle.getHandle()
            if isinstance(descriptor, socket.socket):
                self._socket = descriptor
        self.tracker._link_made(self)

    def dataReceived(self, data: bytes) -> None:
        # The time first: an ACK's latency ends when it is read, not once
        # the tracker has dealt with it.
        self.tracker._received(self, data, self.read_time.now())

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        self.tracker._link_lost(self, reason)
        self.closed.callback(None)

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        if self._socket is not None:
            try:
                sent = self._socket.send(data)
            except OSError:
                sent = 0  # the transport finds out what is wrong, and says so
            if sent == len(data):
                return
            data = data[sent:]
            self._socket = None
        self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.loseConnection()


class VirtualTracker:
    """A tracker driving *route*, connected to the server at *endpoint*."""

    def __init__(
        self,
        endpoint: IStreamClientEndpoint,
        clock: IReactorTime,
        settings: TrackerSettings,
        *,
        route: Sequence[RoutePoint] = BUILT_IN_ROUTE,
        observer: Observer = lambda event: None,
        report_wire: bool = True,
        read_time: ReadTime | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._endpoint = endpoint
        self._clock = clock
        self._observe = observer
        self._report_wire = report_wire
        """Report every write and read (WROTE, READ): a load generator that
        does not look at them saves their cost."""
        self._read_time = read_time or ReadTime(clock)
        """Stamps the reads; trackers sharing a reactor can share it."""
        rng = rng or random.Random()
        self._rng = rng
        self.telemetry = TelemetrySource(
            clock, settings.codec, RouteWalker(route, rng), rng, settings.model
        )
        self.responder = CommandResponder(settings.imei, clock.seconds())
        self.flash: deque[AvlRecord] = deque()
        self.last_record: AvlRecord | None = None
        self._sampler = LoopingCall.withCount(self._record_due)
        self._sampler.clock = clock
        self._link: _Link | None = None
        self._logged_in = False
        self._connecting: Deferred[_Link] | None = None
        self._in_flight: _Packet | None = None
        self._packed: _Packet | None = None
        """The next packet, packed while it waits for its release."""
        self._held = False
        self._releases = 0
        """Held: packets released and not sent yet."""
        self._commands: deque[CommandFrame] = deque()
        """Received, waiting for their answer delay."""
        self._answers: deque[Answer] = deque()
        """Answered, waiting for the ACK of the packet in flight."""
        self._packets = 0
        self._failures = 0
        self._timers: dict[str, IDelayedCall] = {}
        self._stopped = True

    def start(self, *, recording: bool = True, held: bool = False) -> None:
        """Connect, and record a position every ``interval /
        records_per_packet``; unless *recording* is False: then it records
        only when :meth:`record` is called. A *held* tracker sends a packet
        only once :meth:`release` lets it go (a load generator paces it)."""
        self._stopped = False
        self._held = held
        if recording:
            period = self.settings.interval / self.settings.records_per_packet
            self._sampler.start(period, now=True)
        self._connect()

    def stop(self) -> Deferred[None]:
        """Stop recording and close the link; fires once it is closed."""
        self._stopped = True
        if self._sampler.running:
            self._sampler.stop()
        for name in list(self._timers):
            self._cancel(name)
        self._forget_commands()
        if self._connecting is not None:
            self._connecting.cancel()
        link, self._link = self._link, None
        self._logged_in = False
        if link is None:
            return succeed(None)
        link.close()
        return link.closed

    # Recording

    def record(self, at: float | None = None) -> None:
        """Record a position now, or stamped with clock time *at* (a load
        generator records ahead); a full packet goes once the link is free."""
        record = self.telemetry.sample(at)
        self.last_record = record
        if len(self.flash) == self.settings.flash_capacity:
            self.flash.popleft()
            self._emit(EventKind.FLASH_FULL, "flash full: oldest record overwritten")
        self.flash.append(record)
        self._send_next()

    def _record_due(self, count: int) -> None:
        """Record the positions due: more than one when the reactor was late,
        so that a busy load generator does not thin out the records."""
        for _ in range(count):
            self.record()

    def release(self) -> None:
        """Held: let the next packet go, now if its records are in and the
        link is free, else as soon as they are (stop-and-wait: after the ACK
        of the packet in flight)."""
        self._releases += 1
        self._send_next()

    def pack(self) -> None:
        """Pack the next packet now if its records are in, even while the
        packet in flight waits for its ACK: a load generator packs ahead, so
        that the packet is only written when the link is free."""
        size = self.settings.records_per_packet
        if self._packed is not None or len(self.flash) < size:
            return
        flash = self.flash
        records = [flash.popleft().wire for _ in range(size)]
        self._packets += 1
        data = encode_avl_frame(self.settings.codec, records)
        self._packed = _Packet(self._packets, data, size)

    # The link

    def _connect(self) -> None:
        self._emit(EventKind.CONNECTING, "connecting")
        connecting = connectProtocol(self._endpoint, _Link(self, self._read_time))
        self._connecting = connecting
        connecting.addCallbacks(self._connected, self._not_connected)

    def _connected(self, link: _Link) -> None:
        self._connecting = None

    def _not_connected(self, failure: Failure) -> None:
        self._connecting = None
        if not self._stopped:
            self._emit(
                EventKind.LINK_DOWN, f"cannot connect: {failure.getErrorMessage()}"
            )
            self._reconnect_later()

    def _link_made(self, link: _Link) -> None:
        if self._stopped:
            link.close()
            return
        self._link = link
        self._write(encode_login(self.settings.imei))
        self._await_response()

    def _received(self, link: _Link, data: bytes, now: float) -> None:
        """*data* came on *link*, read at clock time *now*."""
        if link is not self._link:
            return
        if self._report_wire:
            self._emit(EventKind.READ, f"read {len(data)} bytes", data=data)
        try:
            replies = link.reader.feed(data)
        except CodecError as error:
            self._drop(f"unreadable reply: {error}")
            return
        for reply in replies:
            if self._link is not link:
                return
            if isinstance(reply, LoginReply):
                self._login_replied(reply.accepted)
            elif isinstance(reply, Ack):
                self._acked(reply.count, now)
            else:
                self._command(reply)

    def _link_lost(self, link: _Link, reason: Failure) -> None:
        if link is self._link:
            self._drop(f"connection lost: {reason.getErrorMessage()}")

    def _drop(self, reason: str) -> None:
        """Close the current link and try again later, as a tracker does."""
        link, self._link = self._link, None
        self._logged_in = False
        self._cancel("response")
        self._cancel("ping")
        unanswered = self._forget_commands()
        if link is not None:
            link.close()
        self._emit(EventKind.LINK_DOWN, f"link closed: {reason}")
        if unanswered:
            self._emit(
                EventKind.COMMAND,
                f"{unanswered} command frame(s) left unanswered with the link",
            )
        if not self._stopped:
            self._reconnect_later()

    def _reconnect_later(self) -> None:
        settings = self.settings
        doubling = 2 ** min(self._failures, 30)
        delay = min(settings.backoff_initial * doubling, settings.backoff_max)
        self._failures += 1
        self._emit(EventKind.RECONNECTING, f"reconnecting in {delay:g} s", delay=delay)
        self._timers["reconnect"] = self._clock.callLater(delay, self._reconnect)

    def _reconnect(self) -> None:
        del self._timers["reconnect"]
        self._connect()

    # The conversation

    def _login_replied(self, accepted: bool) -> None:
        self._cancel("response")
        if not accepted:
            self._emit(EventKind.REJECTED, "login rejected (00)")
            self._drop("login rejected")
            return
        self._logged_in = True
        self._emit(EventKind.LOGGED_IN, f"logged in as {self.settings.imei}")
        self._arm_ping()
        if self._in_flight is not None:
            self._transmit(self._in_flight)
        else:
            self._send_next()

    def _send_next(self) -> None:
        """Pack the next packet once its records are in and the link is free;
        send it then, or once released when held."""
        if not self._logged_in or self._in_flight is not None:
            return
        self.pack()
        if self._packed is None:
            return
        if self._held:
            if not self._releases:
                return
            self._releases -= 1
        self._in_flight, self._packed = self._packed, None
        self._transmit(self._in_flight)

    def _transmit(self, packet: _Packet) -> None:
        packet.attempts += 1
        if packet.attempts == 1:
            kind, what = EventKind.SENT, "sent"
        else:
            kind, what = EventKind.RESEND, f"resent (attempt {packet.attempts})"
        self._emit(
            kind,
            f"packet {packet.number} {what}: {_records(packet.count)}, "
            f"codec {self.settings.codec.label}, {len(packet.data)} bytes",
            records=packet.count,
        )
        packet.sent_at = self._clock.seconds()
        self._write(packet.data)
        self._await_response()

    def _acked(self, count: int, now: float) -> None:
        packet = self._in_flight
        if packet is None:
            self._drop(f"ACK of {count} with no packet in flight")
            return
        if count != packet.count:
            self._drop(
                f"ACK says {count} records, packet {packet.number} has {packet.count}"
            )
            return
        # The response timer stays: it finds nothing awaited when it fires,
        # unless the next send has moved it on (cheaper than a new one).
        self._in_flight = None
        self._failures = 0
        latency = now - packet.sent_at
        self._emit(
            EventKind.ACKED,
            f"packet {packet.number} acked: {_records(count)} "
            f"in {latency * 1000:.0f} ms",
            records=count,
            latency=latency,
        )
        self._write_answers()
        self._send_next()

    def _command(self, frame: Frame) -> None:
        try:
            content = decode_frame(frame.data)
        except CodecError as error:
            self._drop(f"undecodable frame from the server: {error}")
            return
        if (
            not isinstance(content, CommandFrame)
            or content.codec not in ANSWERED_CODECS
        ):
            self._drop("the server sent a frame that is no Codec 12 or 14 command")
            return
        if len(self._commands) + len(self._answers) >= MAX_PENDING_COMMANDS:
            self._emit(
                EventKind.COMMAND,
                f"command frame ignored: {MAX_PENDING_COMMANDS} wait for answers",
            )
            return
        self._commands.append(content)
        if "answer" not in self._timers:
            self._arm_answer()

    def _arm_answer(self) -> None:
        delay = self._rng.uniform(*self.settings.answer_delay)
        self._timers["answer"] = self._clock.callLater(delay, self._answer)

    def _answer(self) -> None:
        """Run the oldest command; its answer goes out once no packet waits."""
        del self._timers["answer"]
        now = self._clock.seconds()

        def respond(text: str) -> str:
            return self.responder.answer(text, now, self.last_record)

        commands = self._commands.popleft()
        self._answers.append(answer_commands(commands, self.settings.imei, respond))
        self._write_answers()
        if self._commands:
            self._arm_answer()

    def _forget_commands(self) -> int:
        """Drop what is not answered yet (answers go on the same link); how
        many command frames that was."""
        self._cancel("answer")
        unanswered = len(self._commands) + len(self._answers)
        self._commands.clear()
        self._answers.clear()
        return unanswered

    def _write_answers(self) -> None:
        if self._in_flight is not None:
            return
        while self._answers:
            answer = self._answers.popleft()
            self._write(encode_frame(answer.frame))
            for outcome in answer.outcomes:
                self._emit(EventKind.COMMAND, outcome)

    # Timers and writes

    def _write(self, data: bytes) -> None:
        assert self._link is not None
        if self._report_wire:
            self._emit(EventKind.WROTE, f"wrote {len(data)} bytes", data=data)
        self._link.write(data)
        if self._logged_in:
            self._arm_ping()

    def _await_response(self) -> None:
        """Wait at most the ACK timeout for the reply to what was just
        written: the login reply, or the ACK of the packet in flight."""
        self._move_timer("response", self.settings.ack_timeout, self._no_response)

    def _no_response(self) -> None:
        del self._timers["response"]
        if not self._logged_in:
            what = "login reply"
        elif self._in_flight is not None:
            what = f"ACK of packet {self._in_flight.number}"
        else:
            return  # answered in time
        self._drop(f"no {what} within {self.settings.ack_timeout:g} s")

    def _arm_ping(self) -> None:
        interval = self.settings.ping_interval
        if interval is not None:
            self._move_timer("ping", interval, self._ping)

    def _move_timer(self, name: str, delay: float, call: Callable[[], None]) -> None:
        """Let timer *name* call *call* in *delay* seconds. A timer moved
        later (as one is after every packet) costs the reactor nothing."""
        timer = self._timers.get(name)
        if timer is not None and timer.active():
            timer.reset(delay)
        else:
            self._timers[name] = self._clock.callLater(delay, call)

    def _ping(self) -> None:
        del self._timers["ping"]
        if self._in_flight is None:
            self._emit(EventKind.PING, "ping (idle)")
            self._write(PING)
        self._arm_ping()

    def _cancel(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None and timer.active():
            timer.cancel()

    def _emit(
        self,
        kind: EventKind,
        message: str,
        *,
        records: int = 0,
        latency: float | None = None,
        delay: float | None = None,
        data: bytes = b"",
    ) -> None:
        self._observe(DeviceEvent(kind, message, records, latency, delay, data))


def _records(count: int) -> str:
    return f"{count} record" if count == 1 else f"{count} records"
