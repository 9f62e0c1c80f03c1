"""``teltotwist command``: the CLI against a real gateway's real API, with
the virtual tracker answering."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from teltotwist.cli import main
from teltotwist.control.auth import TOKEN_VARIABLE
from tests.command_api import Gateway, running_gateway
from tests.test_cli import twisted_modules_loaded
from tests.test_control_api import IMEI, TOKEN


@pytest_twisted.async_yield_fixture
async def gateway(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[Gateway]:
    async for running in running_gateway(monkeypatch, tmp_path):
        yield running


async def command(gateway: Gateway, *arguments: str) -> int:
    """Run ``teltotwist command --api URL ARGUMENTS`` off the reactor's
    thread (it blocks on its request while the reactor serves it)."""
    argv = ["command", "--api", gateway.api.url, *arguments]
    status: int = await deferToThread(main, argv)
    return status


@pytest_twisted.ensureDeferred
async def test_the_answer_is_printed(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    await gateway.connected()

    status = await command(gateway, IMEI, "getinfo", "--wait", "10")

    assert status == 0
    assert capsys.readouterr().out.startswith("RTC:")


@pytest_twisted.ensureDeferred
async def test_a_codec14_hex_command_as_json(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    await gateway.connected()

    status = await command(
        gateway, IMEI, b"getver".hex(), "--hex", "--codec", "14", "--json"
    )

    printed = json.loads(capsys.readouterr().out)
    assert status == 0
    assert (printed["codec"], printed["hex"], printed["status"]) == (
        14,
        "676574766572",
        "answered",
    )
    assert printed["response"].startswith("Ver:")


@pytest_twisted.ensureDeferred
async def test_a_queued_command_prints_its_status_and_exits_2(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    status = await command(gateway, IMEI, "getinfo", "--ttl", "60", "--wait", "0")

    out = capsys.readouterr().out
    assert status == 2
    assert out.startswith("queued: not sent yet")
    [listed] = gateway.api.gateway.factory.commands.recent(IMEI)  # type: ignore[union-attr]
    assert out.rstrip().endswith(f"(command {listed.id})")


@pytest_twisted.ensureDeferred
async def test_a_tracker_not_connected_is_reported(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    status = await command(gateway, IMEI, "getinfo")

    assert status == 1
    assert capsys.readouterr().err == (
        f"teltotwist command: {gateway.api.url}/v1/trackers/{IMEI}/commands: "
        f"409 tracker {IMEI} is not connected\n"
    )


def test_bad_options_are_refused_before_any_request(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
    for arguments in (["--codec", "13"], ["--wait", "-1"]):
        with pytest.raises(SystemExit) as exited:
            main(["command", IMEI, "getinfo", *arguments])
        assert exited.value.code == 2
    assert "--wait: must be 0 or more seconds" in capsys.readouterr().err


def test_it_imports_no_twisted() -> None:
    loaded = twisted_modules_loaded(
        "command", IMEI, "getinfo", "--api", "http://127.0.0.1:1"
    )
    assert loaded == "[]"
