# -*- test-case-name: tests.test_load_cli -*-
"""``teltotwist load``: many virtual trackers against one gateway.

Its options are in :mod:`teltotwist.cli.load_options`; this module, which
imports Twisted, is loaded only when the command runs."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import clientFromString
from twisted.internet.task import react

from teltotwist.cli.arguments import CODECS
from teltotwist.cli.load_options import CONNECTS_PER_SECOND
from teltotwist.device.telemetry import DEFAULT_MODEL
from teltotwist.load import Fleet, LoadPlan, Pace, Summary
from teltotwist.load.plan import interval_for_rate
from teltotwist.load.progress import Progress
from teltotwist.load.workers import (
    Coordinator,
    JsonProgress,
    WorkerError,
    run_worker,
)


def plan_from(arguments: argparse.Namespace) -> LoadPlan:
    """The plan the options describe; ValueError when they do not fit."""
    devices, per_packet = arguments.devices, arguments.records_per_packet
    interval = arguments.interval
    if arguments.rate is not None:
        interval = interval_for_rate(devices, per_packet, arguments.rate)
    ramp_up = arguments.ramp_up
    if ramp_up is None:
        ramp_up = min(devices / CONNECTS_PER_SECOND, arguments.duration / 2)
    pace = Pace.STEADY
    if arguments.flat_out:
        if arguments.burst:
            raise ValueError("--burst needs an interval: not with --flat-out")
        pace = Pace.FLAT_OUT
    elif arguments.burst:
        pace = Pace.BURST
    return LoadPlan(
        devices=devices,
        duration=arguments.duration,
        interval=interval,
        records_per_packet=per_packet,
        imei_base=arguments.imei_base,
        ramp_up=ramp_up,
        ack_timeout=arguments.ack_timeout,
        codec=CODECS[arguments.codec],
        model=arguments.model or DEFAULT_MODEL,
        pace=pace,
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
    load = _load(reactor, arguments, plan)
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
        if isinstance(load, Fleet) and arguments.worker:
            summary = await run_worker(load, sys.stdin, sys.stdout)
        else:
            summary = await load.run()
        progress.stop()
        _print(summary, arguments)
    except WorkerError as error:
        progress.stop()
        print(f"teltotwist load: error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        printed.callback(None)
    if not summary.records_acked:
        raise SystemExit(1)


def _load(
    reactor: Any, arguments: argparse.Namespace, plan: LoadPlan
) -> Fleet | Coordinator:
    """The fleet, or with ``--processes`` the coordinator of its workers."""
    try:
        endpoint = clientFromString(reactor, arguments.server)
    except (ValueError, TypeError) as error:
        print(
            f"teltotwist load: error: --server {arguments.server!r}: {error}",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    if arguments.processes > 1:
        server = arguments.server
        return Coordinator(plan, arguments.processes, server, reactor, reactor)
    return Fleet(plan, endpoint, reactor)


def _print(summary: Summary, arguments: argparse.Namespace) -> None:
    if arguments.worker:
        print(json.dumps({"summary": summary.to_json(histogram=True)}), flush=True)
    elif arguments.json:
        print(json.dumps(summary.to_json()), flush=True)
    else:
        print(summary.render(), flush=True)
