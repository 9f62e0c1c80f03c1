"""Commands over the HTTP API: real requests (treq) to the real listening API
of a gateway built by ``tap.makeService``, with the virtual tracker
answering over real loopback TCP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest
import pytest_twisted
from prometheus_client.parser import text_string_to_metric_families
from twisted.web.client import ResponseNeverReceived

from teltotwist import tap
from teltotwist.control.command_endpoints import CommandEndpoints
from tests.command_api import (
    COMMANDS,
    Gateway,
    documented,
    polled,
    running_gateway,
)
from tests.test_control_api import IMEI


@pytest_twisted.async_yield_fixture
async def gateway(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[Gateway]:
    async for running in running_gateway(monkeypatch, tmp_path):
        yield running


@pytest_twisted.ensureDeferred
async def test_a_command_answered_within_the_wait_is_200_with_the_response(
    gateway: Gateway,
) -> None:
    await gateway.connected()

    response = await gateway.send({"command": "getinfo", "wait": 10})

    assert response.code == 200
    command = await documented(response, COMMANDS, "post")
    assert (command["status"], command["command"], command["codec"]) == (
        "answered",
        "getinfo",
        12,
    )
    assert command["response"].startswith("RTC:")
    assert bytes.fromhex(command["response_hex"]).decode() == command["response"]
    assert command["sent_at"] <= command["answered_at"]
    assert command["error"] is None


@pytest_twisted.ensureDeferred
async def test_a_codec14_command_is_answered_as_raw_hex_too(
    gateway: Gateway,
) -> None:
    await gateway.connected()

    response = await gateway.send({"hex": b"getver".hex(), "codec": 14})

    command = await documented(response, COMMANDS, "post")
    assert (response.code, command["status"], command["codec"]) == (200, "answered", 14)
    assert command["hex"] == "676574766572"
    assert "command" not in command
    assert command["response"].startswith("Ver:")


@pytest_twisted.ensureDeferred
async def test_202_when_the_wait_is_over_then_the_answer_shows_by_id(
    gateway: Gateway,
) -> None:
    await gateway.connected(answer_delay=(0.5, 0.5))

    response = await gateway.send({"command": "getgps", "wait": 0.1})

    assert response.code == 202
    early = await documented(response, COMMANDS, "post")
    assert early["status"] in {"queued", "sent"}
    path = f"/v1/commands/{early['id']}"
    later = await polled(
        gateway,
        path,
        "/v1/commands/{id}",
        lambda body: body["status"] not in {"queued", "sent"},
    )

    assert later["status"] == "answered"
    assert later["response"].startswith("GPS:")
    missing = await gateway.api.get("/v1/commands/no-such-id")
    assert missing.code == 404
    assert await documented(missing, "/v1/commands/{id}") == {
        "error": "no such command"
    }


@pytest_twisted.ensureDeferred
async def test_409_for_a_tracker_not_connected_without_a_ttl(
    gateway: Gateway,
) -> None:
    response = await gateway.send({"command": "getinfo"})

    assert response.code == 409
    assert await documented(response, COMMANDS, "post") == {
        "error": f"tracker {IMEI} is not connected"
    }
    listed = await gateway.api.get(COMMANDS.format(imei=IMEI))
    assert (await documented(listed, COMMANDS))["commands"] == []


@pytest_twisted.ensureDeferred
async def test_a_queued_command_is_delivered_when_the_tracker_logs_in(
    gateway: Gateway,
) -> None:
    queued = await gateway.send({"command": "getver", "ttl": 60, "wait": 0})
    command = await documented(queued, COMMANDS, "post")
    assert (queued.code, command["status"], command["sent_at"]) == (202, "queued", None)

    waiting = gateway.send({"command": "getinfo", "ttl": 60, "wait": 20})
    gateway.tracker()
    answered = await waiting

    assert answered.code == 200
    second = await documented(answered, COMMANDS, "post")
    assert second["status"] == "answered"
    first = await documented(
        await gateway.api.get(f"/v1/commands/{command['id']}"), "/v1/commands/{id}"
    )
    assert first["status"] == "answered"
    assert first["response"].startswith("Ver:")
    listed = await gateway.api.get(COMMANDS.format(imei=IMEI))
    body = await documented(listed, COMMANDS)
    assert [c["id"] for c in body["commands"]] == [second["id"], command["id"]]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"getinfo", "the body is not JSON"),
        (b"[" * 50_000, "the body is not JSON"),
        (b"", "the body is not JSON"),
        (b'["getinfo"]', "the body is not a JSON object"),
        ({}, 'give either "command" or "hex"'),
        ({"command": "getinfo", "hex": "00"}, 'give either "command" or "hex"'),
        ({"command": 7}, '"command" must be a string, not 7'),
        ({"command": None}, '"command" must be a string, not None'),
        ({"hex": "0g"}, '"hex" must be pairs of hex digits'),
        ({"hex": "abc"}, '"hex" must be pairs of hex digits'),
        ({"command": "getinfo", "tll": 60}, "unknown field 'tll'"),
        ({"command": "getinfo", "codec": 13}, "codec must be 12 or 14, not 13"),
        ({"command": "getinfo", "codec": "14"}, "\"codec\" must be 12 or 14, not '14'"),
        ({"command": "getinfo", "codec": True}, '"codec" must be 12 or 14, not True'),
        ({"command": "getinfo", "wait": 301}, '"wait" must be 0 to 300 seconds'),
        ({"command": "getinfo", "wait": -1}, '"wait" must be 0 to 300 seconds'),
        ({"command": "getinfo", "wait": "5"}, '"wait" must be 0 to 300 seconds'),
        (b'{"command": "getinfo", "ttl": NaN}', '"ttl" must be 0 to 2.592e+06'),
        ({"command": "getinfo", "ttl": 1e9}, '"ttl" must be 0 to 2.592e+06'),
        ({"command": ""}, "a command text is printable ASCII"),
        ({"command": "getinfo\n"}, "a command text is printable ASCII"),
        ({"hex": "00" * 1025}, "a command holds 1 to 1024 bytes, not 1025"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_bad_requests_are_400_and_say_why(
    gateway: Gateway, body: object, error: str
) -> None:
    await gateway.connected()

    response = await gateway.send(body)

    assert response.code == 400
    assert (await documented(response, COMMANDS, "post"))["error"].startswith(error)


@pytest_twisted.ensureDeferred
async def test_a_bad_imei_is_400(gateway: Gateway) -> None:
    response = await gateway.send({"command": "getinfo", "ttl": 60}, imei="12ab")

    assert response.code == 400
    assert "error" in await documented(response, COMMANDS, "post")


@pytest_twisted.ensureDeferred
async def test_waits_are_capped_and_a_client_that_goes_frees_its_wait(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(
        tap, "CommandEndpoints", partial(CommandEndpoints, max_waiting=1)
    )
    async for gateway in running_gateway(monkeypatch, tmp_path):
        request = {"command": "getinfo", "ttl": 60, "wait": 300}
        first = gateway.send(request)
        await until_listed(gateway, 1)

        refused_wait = await gateway.send(request)
        first.cancel()
        with pytest.raises(ResponseNeverReceived):
            await first
        await gateway.api.get("/healthz")  # after the server saw it go
        waiting = gateway.send({**request, "wait": 20})
        await until_listed(gateway, 3)
        gateway.tracker()
        answered = await waiting

        assert refused_wait.code == 202
        assert (await documented(refused_wait, COMMANDS, "post"))["status"] == "queued"
        assert answered.code == 200
        assert (await documented(answered, COMMANDS, "post"))["status"] == "answered"


async def until_listed(gateway: Gateway, count: int) -> None:
    """Until the API lists *count* commands for :data:`IMEI`."""
    await polled(
        gateway,
        COMMANDS.format(imei=IMEI),
        COMMANDS,
        lambda body: len(body["commands"]) == count,
    )


@pytest_twisted.ensureDeferred
async def test_commands_are_counted_in_the_metrics(gateway: Gateway) -> None:
    refused = await gateway.send({"command": "getinfo"})
    expired = await gateway.send({"command": "getinfo", "ttl": 0.05, "wait": 5})
    await gateway.connected()
    answered = await gateway.send({"command": "getinfo"})

    metrics = await gateway.api.get("/metrics", token=None)

    assert (refused.code, expired.code, answered.code) == (409, 200, 200)
    assert (await documented(expired, COMMANDS, "post"))["status"] == "expired"
    text = (await metrics.content()).decode()
    counts = {
        sample.labels["status"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "teltotwist_commands"
        for sample in family.samples
        if sample.name == "teltotwist_commands_total"
    }
    assert counts == {
        "queued": 2,
        "sent": 1,
        "answered": 1,
        "not_executed": 0,
        "timed_out": 0,
        "expired": 1,
        "failed": 0,
    }
