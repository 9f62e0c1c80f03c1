"""The sockets of ``--workers``: bound in the parent, adopted in a worker
with the wrapping its endpoint string asks for."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_twisted
from twisted.internet import reactor, ssl
from twisted.internet.endpoints import SSL4ClientEndpoint, connectProtocol
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IReactorSocket

import teltotwist
from teltotwist.cluster.listeners import InheritedSocket, bind_sockets, shareable
from teltotwist.codec import tcp_ack
from teltotwist.gateway.proxied import tracker_endpoint
from teltotwist.testing import RecordingSink
from tests.certificates import loopback_certificate
from tests.net import TrackerClient
from tests.vectors import by_id


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("tcp:5027", True),
        ("tcp6:5027:interface=\\:\\:1", True),
        ("ssl:5028:privateKey=key.pem", True),
        ("haproxy:tcp:5027", True),
        ("unix:/run/teltotwist.sock", False),
        ("systemd:domain=INET:index=0", False),
    ],
)
def test_workers_share_tcp_and_tls_ports_only(description: str, expected: bool) -> None:
    assert shareable(description) is expected


@pytest_twisted.ensureDeferred
async def test_a_tls_port_the_parent_bound_speaks_tls_in_the_worker(
    tmp_path: Path,
) -> None:
    key, cert = loopback_certificate(tmp_path)
    description = f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
    bound = bind_sockets(description, None, "", None)
    inherited = os.dup(bound.tracker.fileno())  # as a worker gets it
    adopting: Any = InheritedSocket(cast(IReactorSocket, reactor), inherited)
    sink = RecordingSink()
    service = teltotwist.makeService(
        reactor, tracker_endpoint(adopting, description), [sink]
    )
    service.startService()
    try:
        await service.whenListening()
        client: TrackerClient = await connectProtocol(
            SSL4ClientEndpoint(
                reactor, "127.0.0.1", bound.tracker.port, ssl.CertificateOptions()
            ),
            TrackerClient(),
        )
        client.send(b"\x00\x0f356307042441013")
        assert await client.read(1) == b"\x01"
        client.send(by_id("wiki-c8-tcp-1").data)
        assert await client.read(4) == tcp_ack(1)
    finally:
        await service.stopService()
        bound.close()

    assert len(sink.items) == 1


def test_a_tracker_port_in_use_cannot_be_bound() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(CannotListenError):
            bind_sockets(f"tcp:{port}:interface=127.0.0.1", None, "", None)


def test_an_api_port_in_use_leaves_the_workers_without_an_api() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        bound = bind_sockets(
            "tcp:0:interface=127.0.0.1",
            0,
            "127.0.0.1",
            f"tcp:{port}:interface=127.0.0.1",
        )
    try:
        assert bound.api is None
        assert bound.udp is not None
        assert set(bound.child_fds()) == {3, 4}
    finally:
        bound.close()
