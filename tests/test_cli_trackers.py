"""``teltotwist trackers``: the CLI against a real gateway's real API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from teltotwist.cli import main
from teltotwist.control.auth import TOKEN_VARIABLE
from tests.test_cli import twisted_modules_loaded
from tests.test_control_api import (
    IMEI,
    LOOPBACK,
    TOKEN,
    Api,
    Link,
    options,
    packet,
    start,
)


@pytest_twisted.async_yield_fixture
async def api(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Api]:
    monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
    running = await start(options("--api", LOOPBACK))
    running.gateway.registry.tcp_logged_in(IMEI, "192.0.2.7:40000", Link())
    running.gateway.registry.tcp_packet(IMEI, packet("wiki-c8-tcp-1").records)
    running.gateway.registry.tcp_logged_in("352093081452251", "192.0.2.8:1", Link())
    yield running
    await running.root.stopService()


async def trackers(*arguments: str) -> int:
    """Run ``teltotwist trackers ARGUMENTS`` off the reactor's thread (it
    blocks on its request while the reactor serves it)."""
    status: int = await deferToThread(main, ["trackers", *arguments])
    return status


@pytest_twisted.ensureDeferred
async def test_a_readable_table(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    status = await trackers("--api", api.url)

    header, first, second = capsys.readouterr().out.splitlines()
    assert status == 0
    assert header.split() == [
        "IMEI",
        "TRANSPORT",
        "PEER",
        "CONNECTED",
        "LAST",
        "SEEN",
        "PACKETS",
        "RECORDS",
        "LAST",
        "POSITION",
    ]
    assert first.split()[:3] == ["352093081452251", "tcp", "192.0.2.8:1"]
    assert first.split()[5:] == ["0", "0", "-"]
    assert second.split()[:3] == [IMEI, "tcp", "192.0.2.7:40000"]
    assert second.split()[5:7] == ["1", "1"]
    assert second.endswith("km/h at 2019-06-10T10:04:46.000Z")
    assert header.index("PACKETS") == first.index(" 0 ") + 1


@pytest_twisted.ensureDeferred
async def test_json_for_scripts(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    status = await trackers("--api", api.url, "--json")

    body = json.loads(capsys.readouterr().out)
    assert status == 0
    assert [tracker["imei"] for tracker in body["trackers"]] == [
        "352093081452251",
        IMEI,
    ]


@pytest_twisted.ensureDeferred
async def test_a_wrong_token_is_reported(
    api: Api, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_VARIABLE, "not-the-token-at-all")

    status = await trackers("--api", api.url)

    assert status == 1
    assert capsys.readouterr().err == (
        f"teltotwist trackers: {api.url}/v1/trackers: 401 "
        "a valid bearer token is needed\n"
    )


def test_without_a_token_it_says_which_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TOKEN_VARIABLE, raising=False)

    assert main(["trackers"]) == 1
    assert TOKEN_VARIABLE in capsys.readouterr().err


def test_an_unreachable_api_is_reported(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)

    assert main(["trackers", "--api", "http://127.0.0.1:1"]) == 1
    assert "cannot reach the API at http://127.0.0.1:1/v1/trackers" in (
        capsys.readouterr().err
    )


def test_it_imports_no_twisted() -> None:
    assert twisted_modules_loaded("trackers", "--api", "http://127.0.0.1:1") == "[]"
