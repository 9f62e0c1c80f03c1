"""The gateway's own CPU per record, in one process, without sockets (issue 11).

An embedded gateway (``TeltonikaTcpFactory`` fed by ``FakeTracker``, a sink
that joins each packet's JSON lines and accepts at once, a reactor whose
timers cost nothing) takes ``--packets`` packets of ``--records`` records
from ``--trackers`` logged-in trackers: the virtual tracker's records of a
``--model`` in Codec ``--codec``, IO naming on, as ``teltotwist load`` sends
them. The figure is process CPU time per record, best of ``--rounds``: what
the data path costs with neither the kernel nor other processes in it.

Then each step is timed alone on the same records (best of the rounds):
decoding the frames, and making their items as the gateway does
(``tracker_records``: the IO named, the ids and JSON lines encoded). A build
with ``TELTOTWIST_COMPILE=1`` does both in C, and the report says whether it
did. What the whole costs beyond decoding and items is per packet: framing,
the session, dispatch and the ACK. The naming and the JSON lines of the
Python items are timed alone too, as parts of them.

Run from the repository root; to compare two versions of the code, run it
with each on ``PYTHONPATH``. ``--profile N`` prints cProfile's top N
functions over one run instead (cProfile inflates small calls: use it to
find where, not how much):

    python bench/bench_data_path.py
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.testing import MemoryReactorClock
from zope.interface import implementer

from teltotwist.catalogue import Naming, load_catalogue
from teltotwist.codec import AvlPacket, Codec, check_envelope, encode_frame
from teltotwist.codec.avl import decode_avl_payload_in_c
from teltotwist.codec.frame import PAYLOAD_START, decode_checked_frame
from teltotwist.device.telemetry import TelemetrySource
from teltotwist.gateway.dispatch import Dispatcher
from teltotwist.gateway.items import (
    Item,
    TrackerRecord,
    compiled_records,
    tracker_records,
)
from teltotwist.gateway.limits import Limits
from teltotwist.gateway.tcp import TeltonikaTcpFactory
from teltotwist.gateway.traffic import TrafficEvent
from teltotwist.sinks import IRecordSink
from teltotwist.testing import FakeTracker

IMEI_BASE = 356307042440000
RECEIVED_AT_MS = 1_795_251_600_000
WHOLE_PARTS = ("decode", "items")
"""The steps the whole path is made of; naming and JSON lines are part of the
items."""
CODECS = {codec.label: codec for codec in (Codec.CODEC8, Codec.CODEC8E, Codec.CODEC16)}


@implementer(IRecordSink)
class JoiningSink:
    """Joins each delivery's JSON lines, as a file sink would write them,
    and accepts at once."""

    name = "joining"

    def __init__(self) -> None:
        self.bytes = 0

    def deliver(self, items: Sequence[Item]) -> Deferred[None]:
        self.bytes += len(b"\n".join([item.line for item in items]))  # type: ignore[union-attr]
        return succeed(None)

    def close(self) -> Deferred[None]:
        return succeed(None)


class DiscardingWatcher:
    """A live view's watcher that keeps nothing."""

    def traffic(self, event: TrafficEvent) -> None:
        pass


def frames(
    model: str, codec: Codec, packets: int, records: int, trackers: int
) -> list[bytes]:
    """*packets* frames of the virtual tracker's records, one a second, for
    *trackers* in turn: as in a fleet, the trackers' records share seconds."""
    clocks = [MemoryReactorClock() for _ in range(trackers)]
    for clock in clocks:
        clock.advance(RECEIVED_AT_MS / 1000)
    sources = [
        TelemetrySource(clock, codec, rng=random.Random(number), model=model)
        for number, clock in enumerate(clocks)
    ]
    result = []
    for number in range(packets):
        clock, source = clocks[number % trackers], sources[number % trackers]
        batch = []
        for _ in range(records):
            clock.advance(1)
            batch.append(source.sample())
        result.append(encode_frame(AvlPacket(codec, tuple(batch))))
    return result


def best_cpu(rounds: int, run: Callable[[], object]) -> float:
    """The least process CPU time of *rounds* calls of *run*, in seconds."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return best


def whole_path(
    naming: Naming, trackers: int, data: list[bytes], watch: bool = False
) -> Callable[[], object]:
    """A run of *data* through an embedded gateway, round-robin over
    *trackers* logged-in trackers; each packet must be ACKed. With *watch*,
    the first tracker's traffic is watched, as by an open live view."""
    clock = MemoryReactorClock()
    dispatcher = Dispatcher([JoiningSink()], 60.0, clock)
    factory = TeltonikaTcpFactory(
        dispatcher, clock, limits=Limits(), naming=lambda imei: naming
    )
    fleet = [FakeTracker(factory, imei=str(IMEI_BASE + n)) for n in range(trackers)]
    for tracker in fleet:
        if tracker.login() != b"\x01":
            raise SystemExit("the embedded gateway refused a login")
    if watch:
        factory.traffic.watch(fleet[0].imei, DiscardingWatcher())

    def run() -> None:
        for number, frame in enumerate(data):
            if len(fleet[number % trackers].send(frame)) != 4:
                raise SystemExit("a packet was not ACKed")
            clock.advance(0)  # the read's reactor turn ends (see after_acks)

    return run


def steps(naming: Naming, data: list[bytes]) -> dict[str, Callable[[], object]]:
    """Each step of the data path alone, over the records of *data*."""
    packets = []
    for frame in data:
        packet = decode_checked_frame(frame, check_envelope(frame))
        assert isinstance(packet, AvlPacket)
        packets.append(packet)
    imei = str(IMEI_BASE)
    codec = packets[0].codec
    records = [record for packet in packets for record in packet.records]

    def decode() -> None:
        for frame in data:
            decode_checked_frame(frame, check_envelope(frame))

    def items() -> None:
        for packet in packets:
            tracker_records(imei, packet, RECEIVED_AT_MS, naming)

    def name() -> None:
        for record in records:
            naming.attributes(record.io)

    named = [
        TrackerRecord.named(imei, codec, r, RECEIVED_AT_MS, naming) for r in records
    ]
    encode_line = TrackerRecord._encode

    def lines() -> None:
        for item in named:
            encode_line(item)

    return {"decode": decode, "items": items, "naming": name, "json_line": lines}


def workload(arguments: argparse.Namespace) -> tuple[Naming, list[bytes]]:
    """The naming of ``--model`` and the frames the arguments ask for."""
    data = frames(
        arguments.model,
        CODECS[arguments.codec],
        arguments.packets,
        arguments.records,
        arguments.trackers,
    )
    return load_catalogue().naming(arguments.model), data


def decoded_in(data: list[bytes]) -> str:
    """Where the gateway decodes the frames of *data*: "C" when the C decoder
    (``TELTOTWIST_COMPILE=1``) takes every one, else "Python"."""
    in_c = all(
        decode_avl_payload_in_c(frame, PAYLOAD_START, check_envelope(frame)) is not None
        for frame in data
    )
    return "C" if in_c else "Python"


def measure(arguments: argparse.Namespace) -> dict[str, Any]:
    naming, data = workload(arguments)
    records = arguments.packets * arguments.records
    run = whole_path(naming, arguments.trackers, data, arguments.watch)
    per_record = {"whole": best_cpu(arguments.rounds, run) / records * 1e6}
    for name, step in steps(naming, data).items():
        per_record[name] = best_cpu(arguments.rounds, step) / records * 1e6
    parts = sum(per_record[name] for name in WHOLE_PARTS)
    per_record["per_packet_share"] = per_record["whole"] - parts
    return {
        "model": arguments.model,
        "codec": arguments.codec,
        "packets": arguments.packets,
        "records_per_packet": arguments.records,
        "trackers": arguments.trackers,
        "watched": arguments.watch,
        "records_decoded_in": decoded_in(data),
        "items_made_in": "Python" if compiled_records() is None else "C",
        "microseconds_per_record": per_record,
    }


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--model", default="FMB920", help="default FMB920")
    parser.add_argument("--codec", default="8E", choices=list(CODECS))
    parser.add_argument("--packets", type=int, default=3000, help="default 3,000")
    parser.add_argument("--records", type=int, default=10, help="per packet")
    parser.add_argument("--trackers", type=int, default=100, help="default 100")
    parser.add_argument("--rounds", type=int, default=5, help="best of (default 5)")
    parser.add_argument(
        "--profile", type=int, metavar="N", help="print cProfile's top N functions"
    )
    parser.add_argument(
        "--watch",
        action="store_true",
        help="watch one tracker's traffic, as an open live view does",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    arguments = parser.parse_args(argv)
    for name in ("packets", "records", "trackers", "rounds"):
        if getattr(arguments, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return arguments


def profile(arguments: argparse.Namespace) -> None:
    """Print cProfile's top functions over one run of the whole path."""
    naming, data = workload(arguments)
    profiler = cProfile.Profile()
    profiler.runcall(whole_path(naming, arguments.trackers, data, arguments.watch))
    pstats.Stats(profiler).sort_stats("tottime").print_stats(arguments.profile)


def main(argv: Sequence[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    if arguments.profile:
        profile(arguments)
        return
    result = measure(arguments)
    if arguments.json:
        print(json.dumps(result))
        return
    print(
        f"{result['packets']:,} packets of {result['records_per_packet']} "
        f"{result['model']} records, Codec {result['codec']}, "
        f"{result['trackers']} trackers, records decoded in "
        f"{result['records_decoded_in']}, items made in {result['items_made_in']}; "
        "CPU per record, best of the rounds:"
    )
    for name, value in result["microseconds_per_record"].items():
        print(f"  {name:<18} {value:6.2f} µs")


if __name__ == "__main__":
    main()
