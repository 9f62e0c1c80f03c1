"""An event stream on a real twisted.web channel over a memory transport:
what a client receives while it reads, while it does not, and when it
falls too far behind."""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from teltotwist.control.event_stream import KEEPALIVE_INTERVAL, EventStream

BOUND = 1000


class StreamResource(Resource):
    isLeaf = True

    def __init__(self, clock: MemoryReactorClock) -> None:
        Resource.__init__(self)
        self.clock = clock
        self.stream: EventStream | None = None
        self.closed = 0

    def render_GET(self, request: Request) -> int:
        self.stream = EventStream(request, self.clock, self._closed, BOUND)
        return NOT_DONE_YET

    def _closed(self) -> None:
        self.closed += 1


class Client:
    """An HTTP client's connection to the stream, in memory."""

    def __init__(self) -> None:
        self.clock = MemoryReactorClock()
        self.resource = StreamResource(self.clock)
        self.channel = Site(self.resource).buildProtocol(
            IPv4Address("TCP", "127.0.0.1", 1)
        )
        assert self.channel is not None
        self.transport = StringTransport()
        self.channel.makeConnection(self.transport)
        self.channel.dataReceived(b"GET /stream HTTP/1.1\r\nHost: gateway\r\n\r\n")
        assert self.resource.stream is not None
        self.stream = self.resource.stream
        self._read = 0

    def pause(self) -> None:
        """What the transport does when its send buffer is full."""
        assert self.transport.producer is not None
        self.transport.producer.pauseProducing()

    def resume(self) -> None:
        """What the transport does once its send buffer drained."""
        assert self.transport.producer is not None
        self.transport.producer.resumeProducing()

    def received(self) -> bytes:
        """The body bytes (chunked encoding removed) written since the last
        call."""
        written = self.transport.value()
        body = written[written.index(b"\r\n\r\n") + 4 :]
        data = b""
        while body:
            size, _, rest = body.partition(b"\r\n")
            data += rest[: int(size, 16)]
            body = rest[int(size, 16) + 2 :]
        new, self._read = data[self._read :], len(data)
        return new


def test_events_reach_a_reading_client_at_once_as_sse() -> None:
    client = Client()
    assert b"text/event-stream" in client.transport.value()
    client.received()

    client.stream.send("traffic", {"kind": "ack", "size": 4})

    assert client.received() == b'event: traffic\ndata: {"kind":"ack","size":4}\n\n'


def test_events_wait_while_the_connection_is_paused_then_come_in_order() -> None:
    client = Client()
    client.received()
    client.pause()

    for number in range(3):
        client.stream.send("n", number)
    assert client.received() == b""

    client.resume()
    assert client.received() == b"".join(
        b"event: n\ndata: %d\n\n" % number for number in range(3)
    )
    assert client.resource.closed == 0


def test_a_client_too_far_behind_is_disconnected_once() -> None:
    client = Client()
    client.pause()

    for _ in range(BOUND // 20 + 1):
        client.stream.send("n", "x" * 10)

    assert client.transport.disconnected  # aborted, not waiting for the buffer
    assert client.resource.closed == 1
    client.stream.send("n", "after")
    client.channel.connectionLost(Failure(ConnectionDone()))
    assert client.resource.closed == 1


def test_an_idle_stream_gets_a_keepalive_comment() -> None:
    client = Client()
    client.received()

    client.clock.advance(KEEPALIVE_INTERVAL)

    assert client.received() == b": keep-alive\n\n"


def test_a_client_that_goes_ends_the_stream() -> None:
    client = Client()

    client.channel.connectionLost(Failure(ConnectionDone()))

    assert client.resource.closed == 1
    assert not client.clock.getDelayedCalls()
