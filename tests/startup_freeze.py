"""What the garbage collector sees of a gateway from ``teltotwist.tap``,
in a process of its own: ``python -m tests.startup_freeze DIRECTORY``.

It logs as twistd does, to a file (stderr) that keeps no event: in a test
process Twisted buffers the log events, and they would keep the connections
alive. It starts the gateway, logs trackers in over real loopback sockets,
closes them, and prints one JSON object: how many objects are frozen, how
many middle collections a full one waits for, whether a full collection
walks the startup objects and the connections, and how many connection
objects remain once the connections closed.
"""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path
from typing import Any

from twisted.application.service import IServiceCollection
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.task import deferLater, react
from twisted.logger import globalLogBeginner, textFileLogObserver
from twisted.python import usage

from teltotwist.gateway.service import GatewayService
from teltotwist.gateway.tcp import TeltonikaTcpFactory, TeltonikaTcpProtocol
from teltotwist.tap import Options, makeService
from tests.net import PortReportingEndpoint, TrackerClient

TRACKERS = 20
FIRST_IMEI = 356307042441000


def connections_walked(factory: TeltonikaTcpFactory) -> int:
    """The factory's connection objects a full collection walks."""
    return sum(
        isinstance(thing, TeltonikaTcpProtocol) and thing.factory is factory
        for thing in gc.get_objects()
    )


async def observe(reactor: Any, directory: Path) -> dict[str, int | bool]:
    options = Options()
    arguments = ["--port", "tcp:0:interface=127.0.0.1", "--api", "none"]
    arguments += ["--sink", f"file:{directory / 'records.jsonl'}"]
    usage.Options.parseOptions(options, [*arguments, "--state-dir", str(directory)])
    endpoint = PortReportingEndpoint(options["endpoint"])
    options["endpoint"] = endpoint
    root = makeService(options)
    [gateway] = [s for s in IServiceCollection(root) if isinstance(s, GatewayService)]
    root.startService()
    try:
        port = (await endpoint.port).getHost().port  # type: ignore[attr-defined]
        await gateway.whenListening()
        seen: dict[str, int | bool] = {
            "frozen": gc.get_freeze_count(),
            "full_collection_after": gc.get_threshold()[2],
            "factory_walked": any(
                thing is gateway.factory for thing in gc.get_objects()
            ),
        }
        server = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
        trackers = [
            await connectProtocol(server, TrackerClient()) for _ in range(TRACKERS)
        ]
        for number, tracker in enumerate(trackers):
            tracker.send(b"\x00\x0f" + str(FIRST_IMEI + number).encode())
            await tracker.read(1)
        seen["connections_walked"] = connections_walked(gateway.factory)
        for tracker in trackers:
            assert tracker.transport is not None
            tracker.transport.loseConnection()
            await tracker.closed
        while gateway.factory.connections:
            await deferLater(reactor, 0.01, lambda: None)
        gc.collect()
        seen["connections_left"] = connections_walked(gateway.factory)
        return seen
    finally:
        await root.stopService()


async def main(reactor: Any, directory: str) -> None:
    print(json.dumps(await observe(reactor, Path(directory))))


if __name__ == "__main__":
    globalLogBeginner.beginLoggingTo(
        [textFileLogObserver(sys.stderr)], redirectStandardIO=False
    )
    react(main, sys.argv[1:])
