# -*- test-case-name: tests.test_device_cli -*-
"""``teltotwist device``: a virtual tracker, to test a gateway without hardware.

Its options are in :mod:`teltotwist.cli.device_options`; this module, which
imports Twisted, is loaded only when the command runs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import clientFromString
from twisted.internet.error import ConnectError
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.internet.task import react

from teltotwist.cli.arguments import CODECS
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
from teltotwist.device.capture import Capture, CaptureError, read_capture
from teltotwist.device.replay import ReplayError, replay

_WIRE = (EventKind.WROTE, EventKind.READ)


def run(arguments: argparse.Namespace) -> int:
    """Check the options, then run the tracker until --count or interrupted
    (or replay a capture)."""
    if arguments.replay is not None:
        return _run_replay(arguments)
    if arguments.imei is None:
        print("teltotwist device: error: --imei is needed", file=sys.stderr)
        return 2
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
        if arguments.answer_delay is not None:
            settings = attrs.evolve(settings, answer_delay=arguments.answer_delay)
        if arguments.model is not None:
            settings = attrs.evolve(settings, model=arguments.model)
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
    endpoint = _endpoint(reactor, arguments.server)
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


def _endpoint(reactor: Any, server: str) -> IStreamClientEndpoint:
    """``--server`` as an endpoint; exits with 2 when it is not one."""
    try:
        endpoint: IStreamClientEndpoint = clientFromString(reactor, server)
    except (ValueError, TypeError) as error:
        print(
            f"teltotwist device: error: --server {server!r}: {error}", file=sys.stderr
        )
        raise SystemExit(2) from None
    return endpoint


def _run_replay(arguments: argparse.Namespace) -> int:
    """Replay the capture ``--replay`` names: 0 once every frame is ACKed."""
    try:
        with arguments.replay.open(encoding="utf-8") as lines:
            capture = read_capture(lines)
    except (OSError, UnicodeDecodeError, CaptureError) as error:
        print(f"teltotwist device: error: {arguments.replay}: {error}", file=sys.stderr)
        return 2
    if arguments.imei is not None:
        capture = attrs.evolve(capture, imei=arguments.imei)
    try:
        react(_replay, (arguments, capture))
    except SystemExit as exit_:
        return int(exit_.code or 0)


async def _replay(
    reactor: Any, arguments: argparse.Namespace, capture: Capture
) -> None:
    endpoint = _endpoint(reactor, arguments.server)
    _print(
        reactor,
        f"replaying {len(capture.frames)} frames of {capture.imei} "
        f"({capture.skipped} other frames of the capture left out)",
    )
    try:
        acked = await replay(
            endpoint, reactor, capture, arguments.ack_timeout, partial(_print, reactor)
        )
    except (ReplayError, ConnectError) as error:
        _print(reactor, f"replay failed: {error}")
        raise SystemExit(1) from None
    _print(reactor, f"replayed: {acked} frames acknowledged")


def _print(clock: IReactorTime, text: str) -> None:
    moment = datetime.fromtimestamp(clock.seconds(), UTC)
    print(f"{moment:%H:%M:%S.%f}"[:-3] + f" {text}", flush=True)
