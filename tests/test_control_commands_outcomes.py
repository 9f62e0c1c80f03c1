"""Every outcome of a command as a user of the HTTP API sees it: real
requests (treq) to the real listening API of a gateway built by
``tap.makeService``, the virtual tracker answering over loopback TCP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest
import pytest_twisted
from twisted.internet import reactor

from teltotwist.codec import format_timestamp_ms
from teltotwist.gateway.commands import CommandLimits
from tests.command_api import (
    COMMAND,
    COMMANDS,
    Gateway,
    documented,
    polled,
    running_gateway,
    settled,
    virtual_tracker,
)
from tests.test_device_gateway import until

QUICK_TIMEOUTS = CommandLimits(answer_timeout=0.3, late_answer_grace=0.2)


@pytest_twisted.async_yield_fixture
async def gateway(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[Gateway]:
    async for running in running_gateway(monkeypatch, tmp_path):
        yield running


async def a_packet_held(gateway: Gateway) -> None:
    """Until the gateway's sink holds a packet (it was told to hold)."""
    sink = gateway.api.sink
    await until(lambda: bool(sink.pending))


@pytest_twisted.ensureDeferred
async def test_a_queued_command_survives_a_restart_and_keeps_its_id(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The tracker is connected, its first packet still with the (held) sink,
    # so the command waits for the ACK when the gateway stops.
    tracker = None
    try:
        async for before in running_gateway(
            monkeypatch, tmp_path, "--drain-timeout", "0.1"
        ):
            before.api.sink.hold()
            tracker = virtual_tracker(before.port)
            await a_packet_held(before)
            response = await before.send({"command": "getver", "ttl": 60, "wait": 0})
            queued = await documented(response, COMMANDS, "post")
            assert (response.code, queued["status"]) == (202, "queued")
            port = before.port

        async for after in running_gateway(
            monkeypatch, tmp_path, "--port", f"tcp:{port}:interface=127.0.0.1"
        ):
            # The tracker reconnects by itself, resends its packet, and then
            # gets the command.
            done = await settled(after, queued["id"])

            assert done["status"] == "answered"
            assert done["response"].startswith("Ver:")
            assert done["created_at"] == queued["created_at"]
            assert [c["id"] for c in await after.commands()] == [queued["id"]]
    finally:
        if tracker is not None:
            await tracker.stop()


@pytest_twisted.ensureDeferred
async def test_a_queued_command_expires_when_the_tracker_does_not_come(
    gateway: Gateway,
) -> None:
    response = await gateway.send({"command": "getinfo", "ttl": 0.2, "wait": 0})
    queued = await documented(response, COMMANDS, "post")
    assert (response.code, queued["status"]) == (202, "queued")

    done = await settled(gateway, queued["id"])

    assert done["status"] == "expired"
    assert (done["sent_at"], done["response"]) == (None, None)
    assert done["error"] == "the tracker did not connect within the TTL"


@pytest_twisted.ensureDeferred
async def test_no_answer_within_the_timeout_is_200_timed_out(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async for gateway in running_gateway(
        monkeypatch, tmp_path, command_limits=QUICK_TIMEOUTS
    ):
        await gateway.connected(answer_delay=(1.0, 1.0))

        response = await gateway.send({"command": "getinfo", "wait": 5})

        assert response.code == 200
        command = await documented(response, COMMANDS, "post")
        assert command["status"] == "timed_out"
        assert command["sent_at"] is not None
        assert (command["answered_at"], command["response"]) == (None, None)
        assert command["error"] == "no answer within 0.3 s"


@pytest_twisted.ensureDeferred
async def test_a_codec_14_command_for_another_imei_is_200_not_executed(
    gateway: Gateway,
) -> None:
    tracker = await gateway.connected()
    # Logged in as IMEI, the tracker now takes itself for another one, so
    # the command addressed to IMEI is not its own.
    tracker.settings = attrs.evolve(tracker.settings, imei="356307042441999")

    response = await gateway.send({"command": "getver", "codec": 14})

    assert response.code == 200
    command = await documented(response, COMMANDS, "post")
    assert (command["status"], command["codec"]) == ("not_executed", 14)
    assert (command["response"], command["response_hex"]) == ("", "")
    assert command["answered_at"] is not None
    assert "IMEI does not match" in command["error"]


@pytest_twisted.ensureDeferred
async def test_the_connection_lost_before_the_answer_fails_the_command(
    gateway: Gateway,
) -> None:
    tracker = await gateway.connected(answer_delay=(5.0, 5.0))
    response = await gateway.send({"command": "getinfo", "ttl": 60, "wait": 0})
    sent = await documented(response, COMMANDS, "post")
    await polled(
        gateway,
        COMMAND.format(id=sent["id"]),
        COMMAND,
        lambda body: body["status"] == "sent",
    )

    await tracker.stop()
    done = await settled(gateway, sent["id"])

    assert done["status"] == "failed"
    assert done["error"] == "the connection closed before the answer; not sent again"
    assert (done["answered_at"], done["response"]) == (None, None)


@pytest_twisted.ensureDeferred
async def test_two_commands_are_answered_in_order_and_listed_newest_first(
    gateway: Gateway,
) -> None:
    await gateway.connected(answer_delay=(0.1, 0.1))

    first = await gateway.send({"command": "getinfo", "wait": 0})
    second = await gateway.send({"command": "getver", "wait": 10})

    assert (first.code, second.code) == (202, 200)
    later = await documented(second, COMMANDS, "post")
    earlier = await settled(gateway, (await documented(first, COMMANDS, "post"))["id"])
    assert (earlier["status"], later["status"]) == ("answered", "answered")
    assert earlier["response"].startswith("RTC:")
    assert later["response"].startswith("Ver:")
    assert earlier["answered_at"] <= later["sent_at"]
    listed = await gateway.commands()
    assert [c["id"] for c in listed] == [later["id"], earlier["id"]]


@pytest_twisted.ensureDeferred
async def test_a_command_while_a_packet_is_in_flight_is_sent_after_its_ack(
    gateway: Gateway,
) -> None:
    sink = gateway.api.sink
    sink.hold()
    await gateway.connected()
    await a_packet_held(gateway)

    response = await gateway.send({"command": "getinfo", "wait": 0})
    queued = await documented(response, COMMANDS, "post")
    assert (response.code, queued["status"]) == (202, "queued")
    assert (await gateway.command(queued["id"]))["status"] == "queued"
    acked_at = format_timestamp_ms(int(reactor.seconds() * 1000))
    sink.release()  # the ACK is written now
    sink.accept()
    done = await settled(gateway, queued["id"])

    assert done["status"] == "answered"
    assert done["sent_at"] >= acked_at
