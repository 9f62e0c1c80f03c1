"""Trackers configured for TLS: ``--port ssl:...`` over a real TLS socket."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import reactor, ssl
from twisted.internet.endpoints import (
    SSL4ClientEndpoint,
    connectProtocol,
    serverFromString,
)
from twisted.internet.interfaces import IListeningPort

import teltotwist
from teltotwist.codec import tcp_ack
from teltotwist.testing import RecordingSink
from tests.net import PortReportingEndpoint, TrackerClient
from tests.vectors import by_id


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A throwaway key and certificate for 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / "key.pem", directory / "cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@pytest_twisted.ensureDeferred
async def test_records_arrive_over_tls(tmp_path: Path) -> None:
    key, cert = self_signed(tmp_path)
    sink = RecordingSink()
    endpoint = PortReportingEndpoint(
        serverFromString(
            reactor, f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
        )
    )
    service = teltotwist.makeService(reactor, endpoint, [sink])
    service.startService()
    try:
        port: IListeningPort = await endpoint.port
        number = port.getHost().port  # type: ignore[attr-defined]
        client_endpoint = SSL4ClientEndpoint(
            reactor, "127.0.0.1", number, ssl.CertificateOptions()
        )
        client: TrackerClient = await connectProtocol(client_endpoint, TrackerClient())
        client.send(b"\x00\x0f356307042441013")
        assert await client.read(1) == b"\x01"
        client.send(by_id("wiki-c8-tcp-1").data)
        assert await client.read(4) == tcp_ack(1)
    finally:
        await service.stopService()

    assert len(sink.items) == 1
