# -*- test-case-name: tests.test_cluster_bus_contract -*-
"""The link between a ``--workers`` parent and one of its workers: AMP
over a UNIX socket pair, each side answering the commands of the parts
that use it (the hub's routing, the metrics)."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress
from twisted.internet.protocol import Factory
from twisted.protocols import amp
from twisted.python.failure import Failure

_PIECE = amp.MAX_VALUE_LENGTH


def fields(**kinds: amp.Argument) -> list[tuple[bytes, amp.Argument]]:
    """A command's arguments or response, by name."""
    return [(name.encode(), kind) for name, kind in kinds.items()]


def text() -> amp.Argument:
    """A string argument."""
    return amp.Unicode()  # type: ignore[no-untyped-call]


def put_large(strings: dict[bytes, bytes], key: bytes, value: bytes) -> None:
    """*value* under *key*, in as many AMP values as it takes (each holds
    at most 65,535 bytes): the count under *key*, the pieces after it."""
    pieces = [value[at : at + _PIECE] for at in range(0, len(value), _PIECE)]
    strings[key] = str(len(pieces)).encode()
    for index, piece in enumerate(pieces):
        strings[key + b".%d" % index] = piece


def get_large(strings: dict[bytes, bytes], key: bytes) -> bytes:
    """The value :func:`put_large` put under *key*."""
    count = int(strings[key])
    return b"".join(strings[key + b".%d" % index] for index in range(count))


class LargeBytes(amp.Argument):
    """Bytes longer than one AMP value may be."""

    def __init__(self) -> None:
        amp.Argument.__init__(self)  # type: ignore[no-untyped-call]

    def toBox(self, name: bytes, strings: Any, objects: Any, proto: Any) -> None:
        put_large(strings, name, objects[name.decode()])

    def fromBox(self, name: bytes, strings: Any, objects: Any, proto: Any) -> None:
        objects[name.decode()] = get_large(strings, name)


class _Responders:
    """Finds a command's responder among several locators."""

    def __init__(self) -> None:
        self.locators: list[amp.CommandLocator] = []

    def locateResponder(self, name: bytes) -> Any:
        for locator in self.locators:
            responder = locator.locateResponder(name)  # type: ignore[no-untyped-call]
            if responder is not None:
                return responder
        return None


class LinkProtocol(amp.BinaryBoxProtocol):
    """One end of a link: sends AMP commands with :attr:`dispatcher`
    (``dispatcher.callRemote``) and answers those of the locators given to
    :meth:`answer`; :attr:`closed` fires once the link closed. (Unlike
    ``amp.AMP``, it logs no line per connection.)"""

    def __init__(self) -> None:
        self._responders = _Responders()
        self.dispatcher = amp.BoxDispatcher(self._responders)  # type: ignore[no-untyped-call]
        amp.BinaryBoxProtocol.__init__(self, self.dispatcher)  # type: ignore[no-untyped-call]
        self.closed: Deferred[None] = Deferred()

    def answer(self, locator: amp.CommandLocator) -> None:
        """Answer the commands *locator* has responders for."""
        self._responders.locators.append(locator)

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        amp.BinaryBoxProtocol.connectionLost(self, reason)  # type: ignore[no-untyped-call]
        self.closed.callback(None)


class OneProtocol(Factory):
    """Builds *protocol*, once: for adopting a connection."""

    def __init__(self, protocol: LinkProtocol) -> None:
        self._protocol = protocol

    def buildProtocol(self, addr: IAddress | None) -> LinkProtocol:
        return self._protocol
