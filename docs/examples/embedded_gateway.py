"""teltotwist inside your own Twisted program.

Give it the TCP port to listen on, or a Twisted server endpoint string::

    python embedded_gateway.py 5027
    python embedded_gateway.py tcp:5027:interface=127.0.0.1

It prints the id of every record it receives, and logs to standard error.
Stop it with Ctrl-C or SIGTERM: it stops in order, like ``twistd teltonika``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.task import react
from twisted.logger import globalLogBeginner, textFileLogObserver
from zope.interface import implementer

import teltotwist
from teltotwist import Limits
from teltotwist.gateway.items import Item
from teltotwist.sinks import IRecordSink


@implementer(IRecordSink)
class PrintingSink:
    """Prints the id of each record; a real sink would keep the records."""

    name = "print"

    def deliver(self, items: Sequence[Item]) -> Deferred[None]:
        for item in items:
            print(item.id, flush=True)
        # Firing the Deferred says "the records are safe": only now does the
        # tracker get its ACK. Fail it, and the tracker sends them again.
        return succeed(None)


async def main(reactor: Any, where: str) -> None:
    """Run the gateway on *where* until the reactor is stopped."""
    if where.isdigit():
        where = f"tcp:{where}"
    application = MultiService()  # your program's own services go here too
    gateway = teltotwist.makeService(
        reactor,
        serverFromString(reactor, where),
        [PrintingSink()],
        limits=Limits(idle_timeout=900),
    )
    application.addService(gateway)
    # On SIGINT or SIGTERM the reactor stops, and waits for this Deferred:
    # stop listening, let deliveries finish, close connections, stop sinks.
    reactor.addSystemEventTrigger("before", "shutdown", application.stopService)
    application.startService()
    await Deferred()  # never fires: run until the reactor stops


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} PORT|ENDPOINT")
    globalLogBeginner.beginLoggingTo(
        [textFileLogObserver(sys.stderr)], redirectStandardIO=False
    )
    react(main, sys.argv[1:])
