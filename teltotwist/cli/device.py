# -*- test-case-name: tests.test_device_cli -*-
"""``teltotwist device``: a virtual tracker, to test a gateway without hardware."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import clientFromString
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import react

from teltotwist.cli.arguments import CODECS, positive
from teltotwist.device import (
    BUILT_IN_ROUTE,
    DeviceEvent,
    EventKind,
    RouteError,
    RoutePoint,
    TrackerSettings,
    VirtualTracker,
    load_route,
)

_WIRE = (EventKind.WROTE, EventKind.READ)


def register(commands: Any) -> None:
    """Add the ``device`` sub-command to *commands* (an argparse subparsers)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "device",
        help="run a virtual tracker against a gateway",
        description=(
            "Play a Teltonika tracker: log in, drive a route and send its records "
            "one packet at a time, resend unacknowledged packets, reconnect with "
            "backoff, answer Codec 12 commands. Prints one line per event."
        ),
    )
    parser.add_argument(
        "--server",
        required=True,
        help="the gateway, as a Twisted client endpoint: tcp:HOST:PORT",
    )
    parser.add_argument("--imei", required=True, help="the IMEI to log in with")
    parser.add_argument(
        "--codec", choices=list(CODECS), default="8", help="AVL codec (default 8)"
    )
    parser.add_argument(
        "--records-per-packet",
        type=positive(int),
        default=1,
        metavar="N",
        help="records in each packet, 1..255 (default 1)",
    )
    parser.add_argument(
        "--interval",
        type=positive(float),
        default=10.0,
        metavar="SECONDS",
        help="send a packet every SECONDS (default 10)",
    )
    parser.add_argument(
        "--route", type=Path, help="a GPX or CSV (lat,lon) file; default: built in"
    )
    parser.add_argument(
        "--count",
        type=positive(int),
        metavar="N",
        help="exit after N packets are acknowledged (default: run forever)",
    )
    parser.add_argument(
        "--ack-timeout",
        type=positive(float),
        default=10.0,
        metavar="SECONDS",
        help="close, reconnect and resend when no ACK comes in time (default 10)",
    )
    parser.add_argument(
        "--ping",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="send a 0xFF ping after SECONDS idle; 0: never (default 60)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="print every frame in hex"
    )
    parser.set_defaults(run=run)


def run(arguments: argparse.Namespace) -> int:
    """Check the options, then run the tracker until --count or interrupted."""
    try:
        route = load_route(arguments.route) if arguments.route else BUILT_IN_ROUTE
        settings = TrackerSettings(
            imei=arguments.imei,
            codec=CODECS[arguments.codec],
            records_per_packet=arguments.records_per_packet,
            interval=arguments.interval,
            ack_timeout=arguments.ack_timeout,
            ping_interval=arguments.ping or None,
        )
    except (RouteError, ValueError) as error:
        print(f"teltotwist device: error: {error}", file=sys.stderr)
        return 2
    try:
        react(_run, (arguments, settings, route))
    except SystemExit as exit_:
        return int(exit_.code or 0)


async def _run(
    reactor: Any,
    arguments: argparse.Namespace,
    settings: TrackerSettings,
    route: Sequence[RoutePoint],
) -> None:
    try:
        endpoint = clientFromString(reactor, arguments.server)
    except (ValueError, TypeError) as error:
        print(
            f"teltotwist device: error: --server {arguments.server!r}: {error}",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    done: Deferred[None] = Deferred()
    acked = 0

    def observe(event: DeviceEvent) -> None:
        nonlocal acked
        if event.kind in _WIRE:
            if arguments.verbose:
                direction = ">" if event.kind is EventKind.WROTE else "<"
                _print(reactor, f"{direction} {event.data.hex()}")
            return
        _print(reactor, event.message)
        if event.kind is EventKind.ACKED:
            acked += 1
            if acked == arguments.count and not done.called:
                done.callback(None)

    tracker = VirtualTracker(endpoint, reactor, settings, route=route, observer=observe)
    reactor.addSystemEventTrigger("before", "shutdown", tracker.stop)
    tracker.start()
    await done
    await tracker.stop()


def _print(clock: IReactorTime, text: str) -> None:
    moment = datetime.fromtimestamp(clock.seconds(), UTC)
    print(f"{moment:%H:%M:%S.%f}"[:-3] + f" {text}", flush=True)
