"""The UDP listener: ACK only what the sinks hold, echo both ids, drop resends."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import cast

import attrs
import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, DeferredQueue
from twisted.internet.interfaces import (
    IListeningPort,
    IReactorTime,
    IReactorUDP,
    IUDPTransport,
)
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogEvent, LogLevel, capturedLogs, formatEvent
from zope.interface import implementer

from teltotwist.catalogue import load_catalogue
from teltotwist.codec import (
    AvlPacket,
    Codec,
    ImeiPolicy,
    UdpDatagram,
    decode_udp,
    encode_udp,
)
from teltotwist.codec.udp import UdpHeader, decode_udp_payload
from teltotwist.gateway.dedupe import RecentIds
from teltotwist.gateway.dispatch import Dispatcher
from teltotwist.gateway.events import DataPathEvents, LoginResult, Rejection, Transport
from teltotwist.gateway.faultlog import DEFAULT_BURST
from teltotwist.gateway.limits import Limits
from teltotwist.gateway.models import NamingFor, TrackerModels
from teltotwist.gateway.udp import TeltonikaUdpProtocol
from teltotwist.testing import RecordingSink
from tests.observer import RecordingObserver
from tests.vectors import UDP_VALID, Vector, by_id, vector_id

PEER = ("192.0.2.7", 40123)
RECEIVED_AT_MS = 1_763_715_600_123
WINDOW = 600.0
SINK_TIMEOUT = 30.0
MAX_DATAGRAM_SIZE = 8192


@implementer(IUDPTransport)
class RecordingTransport:
    """A UDP port that keeps what is written to it."""

    def __init__(self) -> None:
        self.written: list[tuple[bytes, tuple[str, int] | None]] = []

    def write(self, packet: bytes, addr: tuple[str, int] | None = None) -> None:
        self.written.append((packet, addr))

    def connect(self, host: str, port: int) -> None:
        raise NotImplementedError("the listener never connects")

    def getHost(self) -> IPv4Address:
        return IPv4Address("UDP", "127.0.0.1", 5027)

    def stopListening(self) -> None:
        return None

    def setBroadcastAllowed(self, enabled: bool) -> None:
        raise NotImplementedError("the listener never broadcasts")

    def getBroadcastAllowed(self) -> bool:
        return False


@attrs.define
class Gateway:
    protocol: TeltonikaUdpProtocol
    transport: RecordingTransport
    sink: RecordingSink
    clock: MemoryReactorClock
    observer: RecordingObserver

    def receive(self, data: bytes) -> None:
        self.protocol.datagramReceived(data, PEER)

    @property
    def acks(self) -> list[str]:
        """The hex of every ACK written, all of them to PEER."""
        assert all(addr == PEER for _, addr in self.transport.written)
        return [packet.hex() for packet, _ in self.transport.written]


def delivered_ids(gateway: Gateway) -> list[str]:
    """The ids of every item delivered, in order."""
    return [item.id for batch in gateway.sink.deliveries for item in batch]


def make_gateway(
    allow: Callable[[str], bool] = lambda imei: True,
    limits: Limits = Limits(),
    naming: NamingFor = lambda imei: None,
) -> Gateway:
    clock = MemoryReactorClock()
    sink = RecordingSink()
    events = DataPathEvents()
    observer = RecordingObserver()
    events.add(observer)
    protocol = TeltonikaUdpProtocol(
        Dispatcher([sink], SINK_TIMEOUT, clock, events),
        allow,
        clock,
        limits=limits,
        dedupe_window=WINDOW,
        now_ms=lambda: RECEIVED_AT_MS,
        events=events,
        naming=naming,
    )
    transport = RecordingTransport()
    protocol.makeConnection(transport)
    return Gateway(protocol, transport, sink, clock, observer)


@pytest.fixture
def gateway() -> Gateway:
    return make_gateway()


@contextmanager
def udp_log() -> Iterator[list[str]]:
    """The text of each ``teltotwist.udp`` event logged inside the block."""
    messages: list[str] = []
    with capturedLogs() as events:
        yield messages
    messages.extend(
        formatEvent(event) for event in events if _is_udp(event, LogLevel.warn)
    )


def _is_udp(event: LogEvent, level: LogLevel) -> bool:
    return bool(
        event.get("log_namespace") == "teltotwist.udp"
        and event.get("log_level") is level
    )


def resent(data: bytes, avl_packet_id: int) -> bytes:
    """*data* as a tracker resends it after a lost ACK: same records, new id."""
    return encode_udp(attrs.evolve(decode_udp(data), avl_packet_id=avl_packet_id))


def codec8_datagram(avl_packet_id: int, vector_ids: Sequence[str]) -> bytes:
    """One datagram carrying the records of several Codec 8 vectors."""
    records = tuple(
        record
        for vid in vector_ids
        for record in decode_udp(by_id(vid).data).packet.records
    )
    datagram = UdpDatagram(
        0xCAFE, avl_packet_id, "352093086403655", AvlPacket(Codec.CODEC8, records)
    )
    return encode_udp(datagram)


C8 = by_id("wiki-c8-udp-1").data
C8_ACK = "0005cafe010501"


@pytest.mark.parametrize("vector", UDP_VALID, ids=vector_id)
def test_a_delivered_datagram_is_acked_with_both_ids(
    gateway: Gateway, vector: Vector
) -> None:
    reference = vector.reference
    gateway.receive(vector.data)

    echoed = f"0005{reference['packet_id']}01{reference['avl_packet_id']:02x}"
    counted = echoed + f"{reference['count1']:02x}"
    assert gateway.acks == [reference.get("expected_ack", counted)]
    [batch] = gateway.sink.deliveries
    assert [item.to_json()["imei"] for item in batch] == [reference["imei"]]
    assert [item.to_json()["timestamp"] for item in batch] == [
        utc_text(record["timestamp_ms"]) for record in reference["records"]
    ]


def utc_text(timestamp_ms: int) -> str:
    moment = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_sinks_get_the_record_json(gateway: Gateway) -> None:
    gateway.receive(C8)

    [[item]] = gateway.sink.deliveries
    record = item.to_json()
    assert re.fullmatch(r"352093086403655:1560407006000:[0-9a-f]{16}", record.pop("id"))
    assert record == {
        "imei": "352093086403655",
        "received_at": "2025-11-21T09:00:00.123Z",
        "codec": "8",
        "timestamp": "2019-06-13T06:23:26.000Z",
        "priority": 1,
        "longitude": 0.0,
        "latitude": 0.0,
        "altitude": 0,
        "angle": 0,
        "satellites": 0,
        "speed": 0,
        "event_id": 1,
        "io": {"21": 3, "1": 1, "66": 23996},
    }


def test_records_that_cannot_be_made_drop_the_datagram_as_undecodable() -> None:
    """Decoded records whose naming fails (here, a naming that is not one)
    drop the datagram with a warning, unacknowledged, as an undecodable one."""
    gateway = make_gateway(naming=lambda imei: object())  # type: ignore[arg-type,return-value]

    with udp_log() as log:
        gateway.receive(C8)

    assert gateway.acks == []
    assert gateway.sink.deliveries == []
    [line] = log
    assert line.startswith(
        "Dropped an undecodable datagram from 192.0.2.7:40123: "
        "records not made: AttributeError("
    )


def test_a_failing_duplicate_check_is_an_unexpected_error_not_bad_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only making the records counts as the datagram's fault: a bug after
    that is logged with its traceback, not dropped as undecodable."""

    def broken(self: RecentIds, item_id: str, now: float) -> bool:
        raise LookupError("dedupe broken")

    monkeypatch.setattr(RecentIds, "seen", broken)
    gateway = make_gateway()

    with capturedLogs() as events:
        gateway.receive(C8)

    assert gateway.acks == []
    [event] = [event for event in events if _is_udp(event, LogLevel.critical)]
    assert "dedupe broken" in str(event["log_failure"].value)
    assert not [event for event in events if _is_udp(event, LogLevel.warn)]


def test_records_are_named_by_the_model_of_their_imei() -> None:
    models = TrackerModels(load_catalogue(), MemoryReactorClock(), None, "FMB920")
    gateway = make_gateway(naming=models)

    gateway.receive(C8)

    [[item]] = gateway.sink.deliveries
    record = item.to_json()
    assert record["io"] == {"21": 3, "1": 1, "66": 23996}
    assert record["attributes"] == {
        "gsm_signal": 3,
        "digital_input_1": 1,
        "external_voltage": 23.996,
    }


def test_a_resend_under_a_new_avl_id_is_acked_but_not_delivered_again(
    gateway: Gateway,
) -> None:
    gateway.receive(C8)
    gateway.clock.advance(WINDOW - 1)
    gateway.receive(resent(C8, avl_packet_id=6))

    assert gateway.acks == [C8_ACK, "0005cafe010601"]
    assert len(gateway.sink.deliveries) == 1


def test_only_the_new_records_of_a_resend_are_delivered(gateway: Gateway) -> None:
    gateway.receive(codec8_datagram(1, ["wiki-c8-udp-1", "traccar-51-avl"]))
    first_ids = delivered_ids(gateway)

    gateway.receive(
        codec8_datagram(2, ["traccar-51-avl", "wiki-fmb920pdf-udp", "wiki-c8-udp-1"])
    )

    assert gateway.acks == ["0005cafe010102", "0005cafe010203"]
    [_, second] = gateway.sink.deliveries
    assert len(second) == 1
    assert second[0].id not in first_ids


def test_a_record_twice_in_one_datagram_is_delivered_once(gateway: Gateway) -> None:
    gateway.receive(codec8_datagram(1, ["wiki-c8-udp-1", "wiki-c8-udp-1"]))

    assert gateway.acks == ["0005cafe010102"]
    assert len(delivered_ids(gateway)) == 1


def test_a_resend_during_delivery_waits_for_it(gateway: Gateway) -> None:
    gateway.sink.hold()
    gateway.receive(C8)
    gateway.receive(resent(C8, avl_packet_id=6))

    assert gateway.acks == []
    assert len(gateway.sink.deliveries) == 1

    gateway.sink.release()

    assert gateway.acks == [C8_ACK, "0005cafe010601"]
    assert len(gateway.sink.deliveries) == 1


def test_a_resend_during_a_failing_delivery_is_not_acked(gateway: Gateway) -> None:
    gateway.sink.hold()
    gateway.receive(C8)
    gateway.receive(resent(C8, avl_packet_id=6))

    with udp_log() as log:
        gateway.sink.release(OSError("broker gone"))

    assert gateway.acks == []
    assert len(log) == 2
    assert all("broker gone" in line for line in log)
    gateway.sink.accept()
    gateway.receive(resent(C8, avl_packet_id=7))
    assert gateway.acks == ["0005cafe010701"]
    assert len(gateway.sink.deliveries) == 2


def test_a_failed_delivery_is_not_acked_and_its_resend_is_delivered(
    gateway: Gateway,
) -> None:
    gateway.sink.fail_with(OSError("disk full"))
    with udp_log() as log:
        gateway.receive(C8)

    assert gateway.acks == []
    [line] = log
    for detail in ("352093086403655", "192.0.2.7:40123", "disk full"):
        assert detail in line

    gateway.sink.accept()
    gateway.receive(resent(C8, avl_packet_id=6))

    assert gateway.acks == ["0005cafe010601"]
    assert len(gateway.sink.deliveries) == 2
    assert gateway.sink.deliveries[0] == gateway.sink.deliveries[1]


def test_a_sink_timeout_is_not_acked(gateway: Gateway) -> None:
    gateway.sink.hold()
    with udp_log() as log:
        gateway.receive(C8)
        gateway.clock.advance(SINK_TIMEOUT)

    assert gateway.acks == []
    [line] = log
    assert "no answer within 30 s" in line


@pytest.mark.parametrize(
    "data",
    [
        by_id("wiki-c16-udp-published").data,
        C8[:40],
        C8[:-1] + b"\x02",
        bytes.fromhex("deadbeef"),
    ],
    ids=["length-field-wrong", "truncated", "record-counts-differ", "garbage"],
)
def test_an_undecodable_datagram_is_dropped(gateway: Gateway, data: bytes) -> None:
    with udp_log() as log:
        gateway.receive(data)

    assert gateway.acks == []
    assert gateway.sink.deliveries == []
    [line] = log
    assert line.startswith("Dropped an undecodable datagram from 192.0.2.7:40123: ")

    gateway.receive(C8)
    assert gateway.acks == [C8_ACK]


def test_a_datagram_from_an_imei_not_allowed_is_dropped() -> None:
    gateway = make_gateway(allow=lambda imei: imei != "352093086403655")
    with udp_log() as log:
        gateway.receive(C8)

    assert gateway.acks == []
    assert gateway.sink.deliveries == []
    [line] = log
    assert "352093086403655" in line

    gateway.receive(by_id("traccar-51-avl").data)
    assert gateway.acks == ["0005cafe012201"]


def from_imei(imei: str, avl_packet_id: int = 5) -> bytes:
    """C8's record as the tracker *imei* sends it (a record of its own: the
    IMEI is part of a record's id)."""
    datagram = decode_udp(C8)
    return encode_udp(attrs.evolve(datagram, imei=imei, avl_packet_id=avl_packet_id))


def with_garbage_payload(imei: bytes) -> bytes:
    """A datagram from *imei* whose payload is no AVL data at all."""
    body = bytes.fromhex("cafe0105") + len(imei).to_bytes(2, "big") + imei
    body += b"garbage"
    return len(body).to_bytes(2, "big") + body


def count_payload_decoding(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The IMEI of every datagram whose payload the listener decodes."""
    decoded: list[str] = []

    def counting(data: bytes, header: UdpHeader) -> UdpDatagram:
        decoded.append(header.imei)
        return decode_udp_payload(data, header)

    monkeypatch.setattr("teltotwist.gateway.udp.decode_udp_payload", counting)
    return decoded


STRANGER = "356307042441013"


def not_the_stranger(imei: str) -> bool:
    return imei != STRANGER


@pytest.mark.parametrize(
    ("imei", "reason"),
    [
        (STRANGER.encode(), f"IMEI {STRANGER} is not allowed"),
        (
            b"3563070424410",
            "implausible IMEI: 3563070424410 has 13 digits, not 15 digits",
        ),
    ],
    ids=["not-allowed", "implausible"],
)
def test_a_stranger_s_payload_is_never_decoded(
    monkeypatch: pytest.MonkeyPatch, imei: bytes, reason: str
) -> None:
    decoded = count_payload_decoding(monkeypatch)
    gateway = make_gateway(allow=not_the_stranger)
    with udp_log() as log:
        gateway.receive(with_garbage_payload(imei))

    assert log == [f"Dropped a datagram from 192.0.2.7:40123: {reason}"]
    assert decoded == []
    assert gateway.acks == []


def test_an_admitted_sender_s_payload_is_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded = count_payload_decoding(monkeypatch)
    gateway = make_gateway(allow=not_the_stranger)
    with udp_log() as log:
        gateway.receive(with_garbage_payload(b"352093086403655"))

    assert decoded == ["352093086403655"]
    [line] = log
    assert line.startswith("Dropped an undecodable datagram from 192.0.2.7:40123: ")


def test_the_imei_length_policy_is_the_operator_s() -> None:
    gateway = make_gateway(limits=Limits(imei_policy=ImeiPolicy(10, 20)))
    gateway.receive(from_imei("1234567890"))

    assert gateway.acks == [C8_ACK]


def test_datagrams_beyond_the_in_flight_cap_are_dropped_unacknowledged() -> None:
    gateway = make_gateway(limits=Limits(udp_max_in_flight=3))
    gateway.sink.hold()
    for imei in ("352093086403650", "352093086403651", "352093086403652"):
        gateway.receive(from_imei(imei))
    with udp_log() as log:
        gateway.receive(from_imei("352093086403653"))

    assert len(gateway.sink.deliveries) == 3
    assert log == [
        "Dropped a datagram from IMEI 352093086403653 at 192.0.2.7:40123, "
        "unacknowledged: 3 datagrams already await the sinks, the most allowed "
        "in all (1 dropped so far)"
    ]
    assert gateway.protocol.dropped_over_cap == 1

    gateway.sink.accept()
    gateway.sink.release_all()
    assert gateway.acks == [C8_ACK] * 3

    gateway.receive(from_imei("352093086403653", avl_packet_id=6))
    assert gateway.acks == [C8_ACK] * 3 + ["0005cafe010601"]


def test_one_imei_cannot_take_the_whole_budget() -> None:
    gateway = make_gateway(
        limits=Limits(udp_max_in_flight=10, udp_max_in_flight_per_imei=2)
    )
    gateway.sink.hold()
    gateway.receive(C8)
    gateway.receive(resent(C8, avl_packet_id=6))
    with udp_log() as log:
        gateway.receive(resent(C8, avl_packet_id=7))
    gateway.receive(from_imei(STRANGER, avl_packet_id=9))

    [line] = log
    assert line.endswith(
        "2 of its datagrams already await the sinks, the most allowed per IMEI "
        "(1 dropped so far)"
    )
    gateway.sink.release_all()
    assert gateway.acks == [C8_ACK, "0005cafe010601", "0005cafe010901"]


def test_a_datagram_keeps_its_place_until_every_delivery_it_awaits_settles() -> None:
    """Its own delivery may outlast a failed one it also awaits: freeing its
    place at the failure would let more deliveries run than the cap."""
    gateway = make_gateway(limits=Limits(udp_max_in_flight=2))
    gateway.sink.hold()
    gateway.receive(codec8_datagram(1, ["wiki-c8-udp-1"]))
    gateway.receive(codec8_datagram(2, ["wiki-c8-udp-1", "traccar-51-avl"]))
    gateway.sink.release(OSError("broker gone"))

    gateway.receive(from_imei(STRANGER, avl_packet_id=3))
    gateway.receive(from_imei("352093086403650", avl_packet_id=4))

    assert len(gateway.sink.pending) == 2
    assert gateway.protocol.dropped_over_cap == 1
    gateway.sink.release_all()
    assert gateway.acks == ["0005cafe010301"]


@pytest.mark.parametrize(
    ("limits", "data"),
    [
        (Limits(), bytes.fromhex("deadbeef")),
        (Limits(), with_garbage_payload(b"3563070424410")),
        (Limits(), with_garbage_payload(STRANGER.encode())),
        (Limits(udp_max_in_flight=1), from_imei("352093086403650")),
        (Limits(udp_max_in_flight_per_imei=1), resent(C8, avl_packet_id=6)),
    ],
    ids=["undecodable", "implausible", "not-allowed", "over-cap", "over-imei-cap"],
)
def test_a_flood_of_faults_logs_a_burst_then_a_count(
    limits: Limits, data: bytes
) -> None:
    gateway = make_gateway(allow=not_the_stranger, limits=limits)
    gateway.sink.hold()
    gateway.receive(C8)
    with udp_log() as log:
        for _ in range(100):
            gateway.receive(data)
        gateway.protocol.stopProtocol()

    assert len(log) == DEFAULT_BURST + 1
    assert log[-1].startswith(f"{100 - DEFAULT_BURST} more ")
    assert gateway.acks == []


def test_after_the_dedupe_window_a_resend_is_delivered_again(
    gateway: Gateway,
) -> None:
    gateway.receive(C8)
    gateway.clock.advance(WINDOW)
    gateway.receive(resent(C8, avl_packet_id=6))

    assert gateway.acks == [C8_ACK, "0005cafe010601"]
    assert len(gateway.sink.deliveries) == 2


def test_an_unexpected_error_is_logged_and_the_listener_goes_on() -> None:
    def allow(imei: str) -> bool:
        if imei == "352093086403655":
            raise LookupError("allowlist unreadable")
        return True

    gateway = make_gateway(allow)
    with capturedLogs() as events:
        gateway.receive(C8)

    [event] = [event for event in events if _is_udp(event, LogLevel.critical)]
    assert "192.0.2.7:40123" in formatEvent(event)
    assert "allowlist unreadable" in str(event["log_failure"].value)
    gateway.receive(by_id("traccar-51-avl").data)
    assert gateway.acks == ["0005cafe012201"]


def test_after_stop_accepting_datagrams_are_dropped(gateway: Gateway) -> None:
    gateway.protocol.stop_accepting()
    gateway.receive(C8)

    assert gateway.acks == []
    assert gateway.sink.deliveries == []


def test_drain_waits_for_deliveries_in_flight_and_their_acks(
    gateway: Gateway,
) -> None:
    gateway.sink.hold()
    gateway.receive(C8)
    gateway.receive(resent(C8, avl_packet_id=6))
    gateway.protocol.stop_accepting()
    drained = gateway.protocol.drain()
    drain_results: list[object] = []
    drained.addCallback(
        lambda result: drain_results.append((result, list(gateway.acks)))
    )

    assert drain_results == []
    gateway.sink.release()

    assert drain_results == [(None, [C8_ACK, "0005cafe010601"])]


def test_drain_fires_at_once_when_nothing_is_in_flight(gateway: Gateway) -> None:
    gateway.receive(C8)
    drain_results: list[None] = []

    gateway.protocol.drain().addCallback(drain_results.append)

    assert drain_results == [None]


class AckCatcher(DatagramProtocol):
    """A tracker's side of the socket: fires ``ack`` with the first reply."""

    def __init__(self) -> None:
        self.ack: Deferred[bytes] = Deferred()

    def datagramReceived(self, datagram: bytes, addr: tuple[str, int]) -> None:
        self.ack.callback(datagram)


async def stop(port: IListeningPort) -> None:
    stopped = port.stopListening()
    if stopped is not None:
        await stopped


@pytest_twisted.ensureDeferred
async def test_loopback_datagram_is_delivered_and_acked() -> None:
    clock = cast(IReactorTime, reactor)
    udp = cast(IReactorUDP, reactor)
    sink = RecordingSink()
    listener = TeltonikaUdpProtocol(
        Dispatcher([sink], SINK_TIMEOUT, clock), lambda imei: True, clock
    )
    tracker = AckCatcher()
    server = udp.listenUDP(0, listener, "127.0.0.1", MAX_DATAGRAM_SIZE)
    client = udp.listenUDP(0, tracker, "127.0.0.1", MAX_DATAGRAM_SIZE)
    server_address = cast(IPv4Address, server.getHost())
    try:
        assert tracker.transport is not None
        tracker.transport.write(C8, ("127.0.0.1", server_address.port))
        ack = await tracker.ack.addTimeout(5, clock)
    finally:
        await stop(client)
        await stop(server)

    assert ack.hex() == C8_ACK
    [[item]] = sink.deliveries
    assert item.to_json()["timestamp"] == "2019-06-13T06:23:26.000Z"


class AckQueue(DatagramProtocol):
    """A tracker's side of the socket: every reply, in order."""

    def __init__(self) -> None:
        self.acks: DeferredQueue[bytes] = DeferredQueue()

    def datagramReceived(self, datagram: bytes, addr: tuple[str, int]) -> None:
        self.acks.put(datagram)


class ObservedListener(TeltonikaUdpProtocol):
    """The listener, telling the test each time it has handled a datagram."""

    handled: DeferredQueue[None]

    def datagramReceived(self, datagram: bytes, addr: tuple[str, int]) -> None:
        super().datagramReceived(datagram, addr)
        self.handled.put(None)


@pytest_twisted.ensureDeferred
async def test_loopback_datagram_over_the_cap_is_acked_only_once_resent() -> None:
    clock = cast(IReactorTime, reactor)
    udp = cast(IReactorUDP, reactor)
    sink = RecordingSink()
    sink.hold()
    listener = ObservedListener(
        Dispatcher([sink], SINK_TIMEOUT, clock),
        lambda imei: True,
        clock,
        limits=Limits(udp_max_in_flight=1),
    )
    listener.handled = DeferredQueue()
    tracker = AckQueue()
    server = udp.listenUDP(0, listener, "127.0.0.1", MAX_DATAGRAM_SIZE)
    client = udp.listenUDP(0, tracker, "127.0.0.1", MAX_DATAGRAM_SIZE)
    to_server = ("127.0.0.1", cast(IPv4Address, server.getHost()).port)
    over_cap = from_imei(STRANGER, avl_packet_id=6)
    try:
        assert tracker.transport is not None
        tracker.transport.write(C8, to_server)
        tracker.transport.write(over_cap, to_server)
        for _ in range(2):
            await listener.handled.get().addTimeout(5, clock)
        assert listener.dropped_over_cap == 1

        sink.accept()
        sink.release_all()
        first = await tracker.acks.get().addTimeout(5, clock)
        tracker.transport.write(over_cap, to_server)
        second = await tracker.acks.get().addTimeout(5, clock)
    finally:
        await stop(client)
        await stop(server)

    assert [first.hex(), second.hex()] == [C8_ACK, "0005cafe010601"]
    assert len(sink.deliveries) == 2


def test_an_acknowledged_datagram_updates_the_registry(gateway: Gateway) -> None:
    gateway.receive(C8)
    gateway.receive(resent(C8, 6))
    gateway.clock.advance(0)  # the turn ends: the reports follow the ACKs

    state = gateway.protocol.registry.get("352093086403655")
    assert state is not None
    assert (state.transport, state.peer) == (Transport.UDP, "192.0.2.7:40123")
    assert (state.packets, state.records) == (2, 2)
    assert state.to_json()["last_record"]["timestamp"] == "2019-06-13T06:23:26.000Z"


def test_an_unacknowledged_datagram_leaves_the_registry_alone(
    gateway: Gateway,
) -> None:
    gateway.sink.fail_with(OSError("broker gone"))
    with udp_log():
        gateway.receive(C8)

    assert gateway.acks == []
    assert gateway.protocol.registry.get("352093086403655") is None
    assert gateway.observer.of("sink_delivered") == [("recording", 0, False)]


def test_an_observer_sees_the_imei_check_and_the_ack_latency(
    gateway: Gateway,
) -> None:
    gateway.sink.hold()
    gateway.receive(C8)
    gateway.clock.advance(0.5)
    gateway.sink.release()
    gateway.clock.advance(0)

    assert gateway.observer.seen == [
        ("login", Transport.UDP, LoginResult.ACCEPTED),
        ("sink_delivered", "recording", 0.5, True),
        ("records_acknowledged", Transport.UDP, Codec.CODEC8, 1, 0.5),
    ]


def test_an_observer_sees_why_datagrams_were_dropped() -> None:
    gateway = make_gateway(
        allow=lambda imei: imei != "352093086403650",
        limits=Limits(udp_max_in_flight=1),
    )
    gateway.sink.hold()
    with udp_log():
        gateway.receive(bytes.fromhex("deadbeef"))
        gateway.receive(from_imei("35209308640365"))
        gateway.receive(from_imei("352093086403650"))
        gateway.receive(from_imei("352093086403651"))
        gateway.receive(from_imei("352093086403652"))
        gateway.receive(with_garbage_payload(b"352093086403653"))

    assert [event for event in gateway.observer.seen if event[0] != "login"] == [
        ("rejected", Transport.UDP, Rejection.UNDECODABLE),
        ("rejected", Transport.UDP, Rejection.OVER_CAP),
        ("rejected", Transport.UDP, Rejection.OVER_CAP),
    ]
    assert gateway.observer.of("login") == [
        (Transport.UDP, LoginResult.IMPLAUSIBLE),
        (Transport.UDP, LoginResult.NOT_ALLOWED),
        (Transport.UDP, LoginResult.ACCEPTED),
        (Transport.UDP, LoginResult.ACCEPTED),
        (Transport.UDP, LoginResult.ACCEPTED),
    ]


def test_the_reports_of_an_ack_follow_the_acks_of_the_turn(gateway: Gateway) -> None:
    """Datagrams answered together are all ACKed before the registry hears
    of any; and the port stopping leaves no report behind."""
    gateway.sink.hold()
    gateway.receive(C8)
    gateway.receive(resent(C8, 6))
    gateway.sink.release_all()

    assert len(gateway.acks) == 2
    assert gateway.protocol.registry.get("352093086403655") is None
    gateway.protocol.stopProtocol()
    state = gateway.protocol.registry.get("352093086403655")
    assert state is not None and state.packets == 2
    assert gateway.clock.getDelayedCalls() == []
