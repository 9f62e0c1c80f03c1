"""Three ``twistd -n teltonika --cluster`` instances on the real RabbitMQ,
behind a real HAProxy run from ``docs/examples/haproxy.cfg``, with a fleet
from ``teltotwist load``: a command posted to one instance reaches a
tracker held by another and its answer comes back; one instance killed
with SIGKILL during the load loses nothing that was ACKed. And what an
instance of a cluster is when its broker is away, or with ``--workers``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pika  # type: ignore[import-untyped]
import pytest

from tests.conftest import running_twistd
from tests.services import RABBITMQ, free_port, require, require_program
from tests.test_cluster_workers import Gateway as Workers
from tests.test_haproxy import CONFIG, TOKEN, Instance, haproxy, instance

DEVICES = 30
LOAD_SECONDS = 25


@pytest.fixture
def haproxy_program() -> Path:
    return require_program("HAProxy", Path("/usr/sbin/haproxy"), "haproxy")


@pytest.fixture(autouse=True)
def _api_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELTOTWIST_API_TOKEN", TOKEN)


def call(
    gateway: Instance, method: str, path: str, body: object = None
) -> tuple[int, Any]:
    """The status and JSON of *method* *path* on *gateway*'s API."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{gateway.api_port}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def until(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.2)


def config_for_three(directory: Path) -> Path:
    """The documented configuration with a line for a third instance, as
    its comments say to add."""
    config = directory / "haproxy.cfg"
    config.write_text(
        CONFIG.read_text() + '    server gateway-3 "${GATEWAY_3}" port "${API_3}"\n'
    )
    return config


@contextmanager
def cluster_prefix() -> Iterator[str]:
    """A prefix of its own for this run; its exchange is deleted after."""
    require("RabbitMQ", RABBITMQ)
    prefix = f"teltotwist-test-{uuid.uuid4().hex[:12]}"
    try:
        yield prefix
    finally:
        connection = pika.BlockingConnection(pika.ConnectionParameters(*RABBITMQ))
        connection.channel().exchange_delete(prefix)
        connection.close()


def filed(directory: Path) -> list[dict[str, Any]]:
    """The items an instance filed; a line cut short by SIGKILL is not one
    (its packet was not ACKed)."""
    items = []
    for line in (directory / "records.jsonl").read_text().splitlines():
        try:
            items.append(json.loads(line))
        except ValueError:
            continue
    return items


def test_three_instances_route_commands_and_lose_nothing_when_one_dies(
    haproxy_program: Path, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        prefix = stack.enter_context(cluster_prefix())
        url = f"amqp://guest:guest@127.0.0.1:5672/%2F?prefix={prefix}"
        a, b, c = gateways = [
            stack.enter_context(
                instance(
                    tmp_path / f"gateway-{n}",
                    "--cluster",
                    url,
                    "--instance-id",
                    f"gateway-{n}",
                )
            )
            for n in (1, 2, 3)
        ]
        until(lambda: all(call(g, "GET", "/readyz")[0] == 200 for g in gateways))
        balancer = stack.enter_context(
            haproxy(haproxy_program, gateways, config_for_three(tmp_path))
        )
        load = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "teltotwist",
                "load",
                "--server",
                f"tcp:127.0.0.1:{balancer.port}",
                "--devices",
                str(DEVICES),
                "--duration",
                str(LOAD_SECONDS),
                "--records-per-packet",
                "5",
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        stack.callback(load.kill)

        def listing() -> dict[str, Any]:
            status, body = call(a, "GET", "/v1/trackers")
            assert status == 200
            return body  # type: ignore[no-any-return]

        until(lambda: len(listing()["trackers"]) == DEVICES)
        before = listing()
        held = {t["imei"]: t["member"] for t in before["trackers"]}
        on_c = next(imei for imei, member in held.items() if member == "gateway-3")

        status, command = call(
            a,
            "POST",
            f"/v1/trackers/{on_c}/commands",
            {"command": "getver", "wait": 20},
        )
        _, shown = call(b, "GET", f"/v1/commands/{command['id']}")

        b.twistd.process.send_signal(signal.SIGKILL)
        b.twistd.process.wait()
        on_b = {imei for imei, member in held.items() if member == "gateway-2"}
        until(
            lambda: (
                {t["imei"] for t in listing()["trackers"] if t["member"] != "gateway-2"}
                >= on_b
            )
        )
        after = listing()
        output, errors = load.communicate(timeout=LOAD_SECONDS + 60)
        summary = json.loads(output)
        stopped = [gateway.stop() for gateway in (a, c)]

    assert before["members"] == ["gateway-1", "gateway-2", "gateway-3"]
    assert sorted(set(held.values())) == ["gateway-1", "gateway-2", "gateway-3"]
    assert status == 200, command
    assert command["status"] == "answered"
    assert command["response"].startswith("Ver:")
    assert shown == command
    results = [
        item["command_result"]
        for item in filed(c.directory)
        if "command_result" in item
    ]
    assert results == [command]
    assert after["members"] == ["gateway-1", "gateway-3"]
    # The killed instance's trackers reconnected, and every record ACKed is
    # in the sinks: the records filed (a resent one twice, with one id)
    # number at least the records ACKed.
    assert summary["reconnects"] >= len(on_b) > 0
    assert summary["unacked"] == 0
    ids = {
        item["id"]
        for directory in (a.directory, b.directory, c.directory)
        for item in filed(directory)
        if "timestamp" in item
    }
    assert len(ids) >= summary["records_acked"] > 0, (summary, errors)
    assert "Traceback" not in "".join(log for _, log in stopped)


def test_an_instance_that_cannot_reach_the_clusters_broker_is_not_ready(
    tmp_path: Path,
) -> None:
    nowhere = f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"
    with instance(tmp_path / "gateway", "--cluster", nowhere) as gateway:
        status, body = call(gateway, "GET", "/readyz")

    assert status == 503
    assert body["reasons"] == ["cluster bus not connected"]


def test_the_workers_of_an_instance_are_each_a_member_of_its_cluster(
    tmp_path: Path,
) -> None:
    with ExitStack() as stack:
        prefix = stack.enter_context(cluster_prefix())
        url = f"amqp://guest:guest@127.0.0.1:5672/%2F?prefix={prefix}"
        twistd = stack.enter_context(
            running_twistd(
                tmp_path,
                "--workers",
                "2",
                "--api",
                "tcp:0:interface=127.0.0.1",
                "--cluster",
                url,
                "--instance-id",
                "gw",
            )
        )
        gateway = Workers(twistd, tmp_path)
        gateway.wait_for(r"(Listening for trackers on) .*sinks", 2)
        gateway.wait_for(r"Cluster: member.hello from (gw/w\d)", 2)

        (api_port,) = gateway.wait_for(r"HTTP API on http://127.0.0.1:(\d+)/")
        api = Instance(twistd, int(api_port), tmp_path)

        def members() -> list[str]:
            listed: list[str] = call(api, "GET", "/v1/trackers")[1]["members"]
            return listed

        until(lambda: members() == ["gw/w1", "gw/w2"])
