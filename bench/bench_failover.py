"""Failover time of a three-instance cluster behind HAProxy.

It starts three gateways (``twistd -n teltonika --port haproxy:...
--cluster amqp://... --sink file:``) on the local RabbitMQ, under a cluster
prefix of their own, behind HAProxy run from ``docs/examples/haproxy.cfg``
(plus a line for the third instance), and drives them with ``teltotwist
load`` through HAProxy. At ``--kill-at`` seconds it lists the trackers of
the second instance (through the first one's API) and kills that instance
with SIGKILL. The failover time of a tracker is from the kill to the first
record of it that another instance filed (a record is filed just before its
ACK). It reports, over the killed instance's trackers, how many came back
and the median and largest failover time, and checks that the records
filed number at least the records the load says were ACKed.

The virtual trackers wait 1 s before reconnecting after a lost connection
(their ``backoff_initial``) and send a packet every ``--interval`` seconds:
both are in the figures. Exit status 0 when every tracker came back and the
records check out, 1 when not, 2 on error.

Run from a checkout (HAProxy and RabbitMQ as for the tests)::

    python bench/bench_failover.py
    python bench/bench_failover.py --devices 600 --duration 40 --json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import BenchError, child_environment, free_port, terminate

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "docs" / "examples" / "haproxy.cfg"
HAPROXY = Path("/usr/sbin/haproxy")
TOKEN = "a-token-for-the-failover-bench"
_LISTENING = re.compile(r"TeltonikaTcpFactory \(PROXY\) starting on (\d+)")
_API = re.compile(r"HTTP API on http://127\.0\.0\.1:(\d+)/")


class Gateway:
    """One instance: its process, ports, and file of records."""

    def __init__(self, directory: Path, cluster: str, number: int) -> None:
        directory.mkdir()
        self.directory = directory
        self.name = f"gateway-{number}"
        self.log = (directory / "twistd.log").open("w+")
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("twistd")),
                "--nodaemon",
                "--pidfile=",
                "teltonika",
                "--port",
                "haproxy:tcp:0:interface=127.0.0.1",
                "--api",
                "tcp:0:interface=127.0.0.1",
                "--sink",
                f"file:{directory / 'records.jsonl'}",
                "--cluster",
                cluster,
                "--instance-id",
                self.name,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=directory,
            env={**child_environment(), "TELTOTWIST_API_TOKEN": TOKEN},
        )
        self.port = self.api_port = 0

    def wait_started(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = (self.directory / "twistd.log").read_text()
            port, api = _LISTENING.search(text), _API.search(text)
            if port and api:
                self.port, self.api_port = int(port.group(1)), int(api.group(1))
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise BenchError(f"{self.name} did not start:\n{text}")

    def get(self, path: str) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.api_port}{path}",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, None

    def filed(self) -> list[dict[str, Any]]:
        """The records filed; a line cut short by SIGKILL is none."""
        records = []
        for line in (self.directory / "records.jsonl").read_text().splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if "timestamp" in item:
                records.append(item)
        return records


@contextmanager
def haproxy(directory: Path, gateways: list[Gateway]) -> Iterator[int]:
    """HAProxy in front of *gateways*; the port trackers connect to."""
    config = directory / "haproxy.cfg"
    config.write_text(
        CONFIG.read_text() + '    server gateway-3 "${GATEWAY_3}" port "${API_3}"\n'
    )
    port = free_port()
    environment = {**os.environ, "TRACKERS": f"127.0.0.1:{port}"}
    for number, gateway in enumerate(gateways, start=1):
        environment[f"GATEWAY_{number}"] = f"127.0.0.1:{gateway.port}"
        environment[f"API_{number}"] = str(gateway.api_port)
    process = subprocess.Popen(
        [str(HAPROXY), "-db", "-f", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=environment,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise BenchError("HAProxy did not listen") from None
                time.sleep(0.1)
        yield port
    finally:
        terminate(process, 10)


def delete_exchange(prefix: str) -> None:
    import pika  # type: ignore[import-untyped]  # noqa: PLC0415

    connection = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1"))
    connection.channel().exchange_delete(prefix)
    connection.close()


def run(arguments: argparse.Namespace, directory: Path) -> dict[str, Any]:
    prefix = f"teltotwist-bench-{uuid.uuid4().hex[:12]}"
    cluster = f"amqp://guest:guest@127.0.0.1:5672/%2F?prefix={prefix}"
    with ExitStack() as stack:
        stack.callback(delete_exchange, prefix)
        gateways = []
        for number in (1, 2, 3):
            gateway = Gateway(directory / f"gateway-{number}", cluster, number)
            stack.callback(terminate, gateway.process, 10)
            gateways.append(gateway)
        for gateway in gateways:
            gateway.wait_started()
        first, killed, _ = gateways
        deadline = time.monotonic() + 30
        while not all(g.get("/readyz")[0] == 200 for g in gateways):
            if time.monotonic() > deadline:
                raise BenchError("the instances did not become ready")
            time.sleep(0.2)
        port = stack.enter_context(haproxy(directory, gateways))
        load = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "teltotwist",
                "load",
                "--server",
                f"tcp:127.0.0.1:{port}",
                "--devices",
                str(arguments.devices),
                "--duration",
                str(arguments.duration),
                "--interval",
                str(arguments.interval),
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=child_environment(),
        )
        stack.callback(load.kill)
        time.sleep(arguments.kill_at)
        _, listing = first.get("/v1/trackers")
        held = {t["imei"] for t in listing["trackers"] if t["member"] == killed.name}
        killed.process.send_signal(signal.SIGKILL)
        killed_at = time.time()
        killed.process.wait()
        output, _ = load.communicate(timeout=arguments.duration + 120)
        summary = json.loads(output)
        survivors = [g for g in gateways if g is not killed]
        back: dict[str, float] = {}
        for gateway in survivors:
            for record in gateway.filed():
                received = _seconds(record["received_at"])
                imei = record["imei"]
                if imei in held and received > killed_at:
                    back[imei] = min(back.get(imei, received), received)
        ids = {record["id"] for g in gateways for record in g.filed()}
    times = sorted(at - killed_at for at in back.values())
    return {
        "devices": arguments.devices,
        "killed_trackers": len(held),
        "came_back": len(back),
        "failover_p50_s": round(statistics.median(times), 3) if times else None,
        "failover_max_s": round(times[-1], 3) if times else None,
        "records_acked": summary["records_acked"],
        "records_filed": len(ids),
        "load": summary,
    }


def _seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=300)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--kill-at", type=float, default=10.0)
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-failover-") as directory:
            report = run(arguments, Path(directory))
    except BenchError as error:
        print(f"bench_failover: {error}", file=sys.stderr)
        return 2
    if arguments.json:
        print(json.dumps(report))
    else:
        print(
            f"{report['killed_trackers']} of {report['devices']} trackers on the "
            f"killed instance; {report['came_back']} came back: failover "
            f"median {report['failover_p50_s']} s, max {report['failover_max_s']} s; "
            f"records filed {report['records_filed']} >= ACKed "
            f"{report['records_acked']}"
        )
    ok = report["came_back"] == report["killed_trackers"] > 0 and (
        report["records_filed"] >= report["records_acked"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
