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
    bound = bind_sockets(description, None, "", None, workers=1)
    inherited = os.dup(bound.tracker.fileno(1))  # as a worker gets it
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
            bind_sockets(f"tcp:{port}:interface=127.0.0.1", None, "", None, workers=2)


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
            workers=2,
        )
    try:
        assert bound.api is None
        assert bound.udp is not None
        assert set(bound.child_fds(1)) == {3, 4}
    finally:
        bound.close()


def test_each_worker_has_a_socket_of_the_tracker_port_and_connections_spread() -> None:
    bound = bind_sockets("tcp:0:interface=127.0.0.1", 0, "127.0.0.1", None, workers=2)
    accepted = [0, 0]
    try:
        first, second = (bound.child_fds(worker) for worker in (1, 2))
        assert first[3] != second[3]
        assert first[4] == second[4]  # one UDP socket, shared
        for _ in range(200):
            with socket.create_connection(("127.0.0.1", bound.tracker.port)):
                for number, listening in enumerate(bound.tracker.sockets):
                    accepted[number] += accept_waiting(listening)
    finally:
        bound.close()

    # The kernel hashes each connection's addresses: about half each.
    assert sum(accepted) == 200
    assert min(accepted) >= 60, accepted


def accept_waiting(listening: socket.socket) -> int:
    """The connections waiting on *listening* (non-blocking), accepted."""
    accepted = 0
    while True:
        try:
            connection, _ = listening.accept()
        except BlockingIOError:
            return accepted
        connection.close()
        accepted += 1


def test_a_port_another_gateways_workers_listen_on_cannot_be_bound() -> None:
    bound = bind_sockets("tcp:0:interface=127.0.0.1", None, "", None, workers=2)
    try:
        with pytest.raises(CannotListenError):
            bind_sockets(
                f"tcp:{bound.tracker.port}:interface=127.0.0.1",
                None,
                "",
                None,
                workers=2,
            )
    finally:
        bound.close()
