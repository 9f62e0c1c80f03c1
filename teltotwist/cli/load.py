# -*- test-case-name: tests.test_load_cli -*-
"""``teltotwist load``: many virtual trackers against one gateway."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import clientFromString
from twisted.internet.task import react

from teltotwist.cli.arguments import CODECS, positive
from teltotwist.load import Fleet, LoadPlan
from teltotwist.load.plan import interval_for_rate
from teltotwist.load.progress import Progress
from teltotwist.load.workers import Coordinator, JsonProgress, WorkerError

CONNECTS_PER_SECOND = 500
"""The default ramp-up starts this many trackers a second."""


def register(commands: Any) -> None:
    """Add the ``load`` sub-command to *commands* (an argparse subparsers)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "load",
        help="run many virtual trackers against a gateway and measure it",
        description=(
            "Start many virtual trackers, each with its own IMEI, spread over a "
            "ramp-up; let them send packets for a while; stop them once their "
            "last packet is ACKed; print what was ACKed and how fast."
        ),
    )
    parser.add_argument(
        "--server",
        required=True,
        help="the gateway, as a Twisted client endpoint: tcp:HOST:PORT",
    )
    parser.add_argument(
        "--devices",
        type=positive(int),
        required=True,
        metavar="N",
        help="how many trackers",
    )
    parser.add_argument(
        "--duration",
        type=positive(float),
        default=60.0,
        metavar="SECONDS",
        help="stop the trackers SECONDS after the first starts (default 60)",
    )
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument(
        "--interval",
        type=positive(float),
        default=1.0,
        metavar="SECONDS",
        help="each tracker sends a packet every SECONDS (default 1)",
    )
    pace.add_argument(
        "--rate",
        type=positive(float),
        metavar="RECORDS",
        help="instead of --interval: RECORDS per second from all trackers",
    )
    parser.add_argument(
        "--records-per-packet",
        type=positive(int),
        default=10,
        metavar="N",
        help="records in each packet, 1..255 (default 10)",
    )
    parser.add_argument(
        "--imei-base",
        type=int,
        default=350_000_000_000_000,
        metavar="IMEI",
        help="tracker n logs in as IMEI + n (default 350000000000000)",
    )
    parser.add_argument(
        "--ramp-up",
        type=float,
        metavar="SECONDS",
        help=(
            f"spread the trackers' starts over SECONDS (default: "
            f"{CONNECTS_PER_SECOND} a second, at most half the duration)"
        ),
    )
    parser.add_argument(
        "--ack-timeout",
        type=positive(float),
        default=10.0,
        metavar="SECONDS",
        help=(
            "a tracker reconnects and resends when no ACK comes in time; also "
            "the longest wait for the last ACKs at the end (default 10)"
        ),
    )
    parser.add_argument(
        "--codec", choices=list(CODECS), default="8", help="AVL codec (default 8)"
    )
    parser.add_argument(
        "--processes",
        type=positive(int),
        default=1,
        metavar="N",
        help="share the trackers among N worker processes (default 1)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the summary as one JSON object"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.set_defaults(run=run)


def plan_from(arguments: argparse.Namespace) -> LoadPlan:
    """The plan the options describe; ValueError when they do not fit."""
    devices, per_packet = arguments.devices, arguments.records_per_packet
    interval = arguments.interval
    if arguments.rate is not None:
        interval = interval_for_rate(devices, per_packet, arguments.rate)
    ramp_up = arguments.ramp_up
    if ramp_up is None:
        ramp_up = min(devices / CONNECTS_PER_SECOND, arguments.duration / 2)
    return LoadPlan(
        devices=devices,
        duration=arguments.duration,
        interval=interval,
        records_per_packet=per_packet,
        imei_base=arguments.imei_base,
        ramp_up=ramp_up,
        ack_timeout=arguments.ack_timeout,
        codec=CODECS[arguments.codec],
    )


def run(arguments: argparse.Namespace) -> int:
    """Check the options, run the load, print the summary."""
    try:
        plan = plan_from(arguments)
        plan.split(arguments.processes)  # refuses more processes than devices
    except ValueError as error:
        print(f"teltotwist load: error: {error}", file=sys.stderr)
        return 2
    if arguments.worker:
        # Ctrl-C reaches the whole process group: the coordinator alone
        # handles it, ending its workers with SIGTERM.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        react(_run, (arguments, plan))
    except SystemExit as exit_:
        return int(exit_.code or 0)


async def _run(reactor: Any, arguments: argparse.Namespace, plan: LoadPlan) -> None:
    try:
        endpoint = clientFromString(reactor, arguments.server)
    except (ValueError, TypeError) as error:
        print(
            f"teltotwist load: error: --server {arguments.server!r}: {error}",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    load: Fleet | Coordinator
    if arguments.processes > 1:
        load = Coordinator(plan, arguments.processes, arguments.server, reactor)
    else:
        load = Fleet(plan, endpoint, reactor)
    progress: Progress | JsonProgress
    if arguments.worker:
        progress = JsonProgress(load.snapshot, reactor, sys.stdout)
    else:
        progress = Progress(load.snapshot, reactor, sys.stderr)
    printed: Deferred[None] = Deferred()

    def interrupted() -> Deferred[None]:
        load.end()
        return printed

    reactor.addSystemEventTrigger("before", "shutdown", interrupted)
    progress.start()
    try:
        summary = await load.run()
        progress.stop()
        if arguments.worker:
            print(json.dumps({"summary": summary.to_json(histogram=True)}), flush=True)
        elif arguments.json:
            print(json.dumps(summary.to_json()), flush=True)
        else:
            print(summary.render(), flush=True)
    except WorkerError as error:
        progress.stop()
        print(f"teltotwist load: error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        printed.callback(None)
    if not summary.records_acked:
        raise SystemExit(1)
