"""``twistd teltonika`` options: what an operator types, and what it builds."""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_twisted
from twisted.application.service import IServiceCollection
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.logger import capturedLogs, formatEvent
from twisted.python import usage

from teltotwist.codec import ImeiPolicy
from teltotwist.gateway.allowlist import ImeiAllowlist
from teltotwist.gateway.limits import DuplicateLogin
from teltotwist.gateway.models import TrackerModels
from teltotwist.gateway.proxied import ProxiedEndpoint
from teltotwist.gateway.service import GatewayService
from teltotwist.sinks.file import FileSink
from teltotwist.sinks.log import LogSink
from teltotwist.tap import Options, ReloadOnHangup, makeService
from teltotwist.testing import FakeTracker


def parse(*arguments: str) -> Options:
    options = Options()
    usage.Options.parseOptions(options, list(arguments))
    return options


def test_defaults_listen_on_5027_and_log_records() -> None:
    options = parse()

    assert options["port"] == "tcp:5027:backlog=1024"
    [sink] = options["sinks"]
    assert isinstance(sink, LogSink)
    assert options["udp-port"] is None
    assert options["allow-imeis"] is None


def test_imei_length_takes_a_length_or_a_range() -> None:
    assert parse()["imei-length"] == ImeiPolicy(15, 15)
    assert parse("--imei-length", "10-20")["imei-length"] == ImeiPolicy(10, 20)
    with pytest.raises(usage.UsageError, match="14-16"):
        parse("--imei-length", "40")


def test_port_takes_a_number_or_an_endpoint_string() -> None:
    assert parse("--port", "6000")["port"] == "tcp:6000:backlog=1024"
    endpoint = "tcp:6000:interface=127.0.0.1"
    assert parse("--port", endpoint)["port"] == endpoint


def test_port_behind_haproxy_reads_the_proxy_header_first() -> None:
    endpoint = parse("--port", "haproxy:tcp:6000")["endpoint"]
    assert isinstance(endpoint, ProxiedEndpoint)
    with pytest.raises(usage.UsageError, match="terminate TLS at the balancer"):
        parse("--port", "haproxy:ssl:6000:privateKey=k.pem:certKey=c.pem")


def test_sinks_are_repeatable_and_every_one_is_kept(tmp_path: Path) -> None:
    options = parse("--sink", f"file:{tmp_path / 'a.jsonl'}", "--sink", "log")

    kinds = [type(sink) for sink in options["sinks"]]
    assert kinds == [FileSink, LogSink]


def test_unknown_sink_kind_lists_the_kinds() -> None:
    with pytest.raises(usage.UsageError) as raised:
        parse("--sink", "carrier-pigeon:coop")

    message = str(raised.value)
    assert "carrier-pigeon" in message
    assert "file" in message and "log" in message


def test_same_sink_twice_is_refused(tmp_path: Path) -> None:
    spec = f"file:{tmp_path / 'a.jsonl'}"
    with pytest.raises(usage.UsageError, match="twice"):
        parse("--sink", spec, "--sink", spec)


@pytest.mark.parametrize(
    "option",
    [
        "--login-timeout",
        "--idle-timeout",
        "--sink-timeout",
        "--max-frame-size",
        "--udp-max-in-flight",
        "--udp-max-in-flight-per-imei",
        "--max-pending-per-address",
        "--duplicate-login-window",
        "--frame-timeout",
        "--max-buffered-bytes",
        "--sink-ready-timeout",
    ],
)
def test_limits_must_be_positive(option: str) -> None:
    with pytest.raises(usage.UsageError):
        parse(option, "0")


def test_duplicate_login_is_reject_by_default_or_replace() -> None:
    assert parse()["duplicate-login"] is DuplicateLogin.REJECT
    assert parse("--duplicate-login", "replace")["duplicate-login"] is (
        DuplicateLogin.REPLACE
    )
    with pytest.raises(usage.UsageError, match="'kick' is not replace or reject"):
        parse("--duplicate-login", "kick")


def test_a_cluster_member_is_named_host_and_pid_unless_told() -> None:
    assert parse()["cluster-settings"] is None
    assert parse()["instance-id"].endswith(f":{os.getpid()}")
    options = parse(
        "--cluster",
        "amqp://guest:guest@127.0.0.1/%2F?prefix=fleet-eu",
        "--instance-id",
        "gw-1",
    )

    assert options["cluster-settings"].prefix == "fleet-eu"
    assert options["instance-id"] == "gw-1"
    with pytest.raises(usage.UsageError, match="--cluster"):
        parse("--cluster", "http://127.0.0.1/")


def test_the_gateway_waits_for_its_sinks_as_long_as_told() -> None:
    root = makeService(parse("--sink-ready-timeout", "2.5"))

    [gateway] = [s for s in IServiceCollection(root) if isinstance(s, GatewayService)]
    assert gateway.sink_ready_timeout == 2.5
    assert parse()["sink-ready-timeout"] == 10


def test_missing_allowlist_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(usage.UsageError, match="no such file"):
        parse("--allow-imeis", str(tmp_path / "missing.txt"))


def test_service_carries_the_limits_and_the_allowlist(tmp_path: Path) -> None:
    allowlist = tmp_path / "imeis.txt"
    allowlist.write_text("356307042441013\n")
    options = parse(
        "--allow-imeis",
        str(allowlist),
        "--idle-timeout",
        "900",
        "--sink-timeout",
        "5",
        "--max-connections",
        "50",
        "--max-pending-per-address",
        "7",
        "--duplicate-login",
        "replace",
        "--duplicate-login-window",
        "30",
        "--frame-timeout",
        "12.5",
        "--max-buffered-bytes",
        "1048576",
        "--port",
        "tcp:0:interface=127.0.0.1",
    )

    root = makeService(options)

    services = list(IServiceCollection(root))
    [gateway] = [s for s in services if isinstance(s, GatewayService)]
    limits = gateway.factory.limits
    assert (limits.idle_timeout, limits.sink_timeout, limits.max_connections) == (
        900,
        5,
        50,
    )
    assert gateway.factory.admission.max_pending_per_address == 7
    assert limits.duplicate_login is DuplicateLogin.REPLACE
    assert limits.duplicate_login_window == 30
    assert (limits.frame_timeout, limits.max_buffered_bytes) == (12.5, 1_048_576)
    assert gateway.factory.allow("356307042441013")
    assert not gateway.factory.allow("356307042441014")


def test_udp_listener_carries_the_udp_caps_and_the_imei_policy() -> None:
    options = parse(
        "--udp-port",
        "5027",
        "--udp-max-in-flight",
        "50",
        "--udp-max-in-flight-per-imei",
        "2",
        "--imei-length",
        "10-20",
        "--port",
        "tcp:0:interface=127.0.0.1",
    )

    root = makeService(options)

    [gateway] = [s for s in IServiceCollection(root) if isinstance(s, GatewayService)]
    assert gateway.datagram_protocol is not None
    limits = gateway.datagram_protocol.limits
    assert (limits.udp_max_in_flight, limits.udp_max_in_flight_per_imei) == (50, 2)
    assert limits.imei_policy == ImeiPolicy(10, 20)


def test_reloading_the_allowlist_closes_the_sessions_it_no_longer_allows(
    tmp_path: Path,
) -> None:
    allowlist = tmp_path / "imeis.txt"
    allowlist.write_text("356307042441013\n352093081452251\n")
    root = makeService(
        parse("--allow-imeis", str(allowlist), "--port", "tcp:0:interface=127.0.0.1")
    )
    [reloadable] = [s for s in IServiceCollection(root) if isinstance(s, ImeiAllowlist)]
    [gateway] = [s for s in IServiceCollection(root) if isinstance(s, GatewayService)]
    kept = FakeTracker(gateway.factory, imei="356307042441013")
    revoked = FakeTracker(gateway.factory, imei="352093081452251")
    try:
        assert kept.login() == revoked.login() == b"\x01"

        allowlist.write_text("356307042441013\n")
        reloadable.reload()

        assert kept.connected
        assert not revoked.connected
    finally:
        for protocol in list(gateway.factory.connections):
            protocol.connectionLost()


def test_bad_allowlist_content_is_a_usage_error(tmp_path: Path) -> None:
    allowlist = tmp_path / "imeis.txt"
    allowlist.write_text("356307042441013\nnot-an-imei\n")
    with pytest.raises(usage.UsageError, match=r"imeis\.txt:2"):
        parse("--allow-imeis", str(allowlist))


def test_unusable_endpoint_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "key.pem"
    with pytest.raises(usage.UsageError, match="--port ssl:"):
        parse("--port", f"ssl:5027:privateKey={missing}:certKey={missing}")


@pytest_twisted.ensureDeferred
async def test_sighup_reloads_the_allowlist(tmp_path: Path) -> None:
    path = tmp_path / "imeis.txt"
    path.write_text("356307042441013\n")
    allowlist = ImeiAllowlist(path, reactor)
    hangup = ReloadOnHangup(allowlist.reload)
    hangup.startService()
    try:
        path.write_text("352093081452251\n")
        os.kill(os.getpid(), signal.SIGHUP)
        await deferLater(reactor, 0.05, lambda: None)
    finally:
        hangup.stopService()

    assert allowlist("352093081452251")
    assert not allowlist("356307042441013")


@pytest_twisted.ensureDeferred
async def test_sighup_without_an_allowlist_keeps_the_gateway_running() -> None:
    options = parse("--port", "tcp:0:interface=127.0.0.1")
    root = makeService(options)
    [hangup] = [s for s in IServiceCollection(root) if isinstance(s, ReloadOnHangup)]
    hangup.startService()
    try:
        with capturedLogs() as events:
            os.kill(os.getpid(), signal.SIGHUP)
            await deferLater(reactor, 0.05, lambda: None)
    finally:
        hangup.stopService()

    assert any("nothing to reload" in formatEvent(event) for event in events)


def test_state_dir_is_created_at_the_first_command_and_kept_across_starts(
    tmp_path: Path,
) -> None:
    state_dir = tmp_path / "var" / "teltotwist"
    arguments = ("--state-dir", str(state_dir), "--api", "none", "--port", "tcp:0")

    def gateway() -> GatewayService:
        services = IServiceCollection(makeService(parse(*arguments)))
        [gateway] = [s for s in services if isinstance(s, GatewayService)]
        assert gateway.factory.commands is not None
        return gateway

    commands = gateway().factory.commands
    assert commands is not None
    assert not state_dir.exists()
    queued = commands.submit("356307042441013", text="getinfo", ttl=60)

    assert (state_dir / "commands.sqlite3").is_file()
    later = gateway().factory.commands
    assert later is not None
    assert later.get(queued.id) == queued
    commands.stop()
    later.stop()


def test_state_dir_defaults_to_teltotwist_state() -> None:
    assert parse()["state-dir"] == "teltotwist-state"


def gateway_of(options: Options) -> GatewayService:
    root = makeService(options)
    [gateway] = [s for s in IServiceCollection(root) if isinstance(s, GatewayService)]
    return gateway


def attributes(options: Options, imei: str, io: dict[int, int]) -> object:
    """What the gateway of *options* would name *io* from *imei*."""
    naming = gateway_of(options).factory.naming(imei)
    assert naming is not None
    return naming.attributes(io)


def test_records_are_named_by_default_without_guessing_a_model() -> None:
    options = parse("--port", "tcp:0:interface=127.0.0.1")

    assert attributes(options, "356307042441013", {66: 24079, 1: 1}) == {
        "digital_input_1": 1
    }


def test_models_file_and_default_model_name_each_tracker(tmp_path: Path) -> None:
    models = tmp_path / "models.csv"
    models.write_text("356307042441013,FMB640\n")
    options = parse(
        "--models",
        str(models),
        "--default-model",
        "fmb920",
        "--port",
        "tcp:0:interface=127.0.0.1",
    )

    voltages = [
        attributes(options, imei, {66: 24079})
        for imei in ("356307042441013", "352093081452251")
    ]
    assert voltages == [{"external_voltage": 24079}, {"external_voltage": 24.079}]


def test_no_attributes_turns_naming_off() -> None:
    options = parse("--no-attributes", "--port", "tcp:0:interface=127.0.0.1")

    assert gateway_of(options).factory.naming("356307042441013") is None


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (["--default-model", "FMB9200"], r"--default-model: .*near matches: .*FMB920"),
        (["--models", "{dir}/models.csv"], r"models\.csv:2: .*near matches"),
        (["--models", "{dir}/missing.csv"], "cannot read the models file"),
        (["--no-attributes", "--default-model", "FMB920"], "contradicts"),
    ],
)
def test_naming_usage_errors(
    tmp_path: Path, arguments: list[str], problem: str
) -> None:
    (tmp_path / "models.csv").write_text("356307042441013,FMB640\n1,FMB6400\n")
    with pytest.raises(usage.UsageError, match=problem):
        parse(*(argument.format(dir=tmp_path) for argument in arguments))


@pytest_twisted.ensureDeferred
async def test_sighup_reloads_the_allowlist_and_the_models(tmp_path: Path) -> None:
    allowlist, models = tmp_path / "imeis.txt", tmp_path / "models.csv"
    allowlist.write_text("356307042441013\n")
    models.write_text("356307042441013,FMB640\n")
    root = makeService(
        parse(
            "--allow-imeis",
            str(allowlist),
            "--models",
            str(models),
            "--port",
            "tcp:0:interface=127.0.0.1",
        )
    )
    services = list(IServiceCollection(root))
    [hangup] = [s for s in services if isinstance(s, ReloadOnHangup)]
    [naming] = [s for s in services if isinstance(s, TrackerModels)]
    [gateway] = [s for s in services if isinstance(s, GatewayService)]
    hangup.startService()
    try:
        allowlist.write_text("352093081452251\n")
        models.write_text("356307042441013,FMB920\n")
        os.kill(os.getpid(), signal.SIGHUP)
        await deferLater(reactor, 0.05, lambda: None)
    finally:
        hangup.stopService()

    assert gateway.factory.allow("352093081452251")
    assert naming("356307042441013").model == "FMB920"


def test_once_listening_startup_objects_are_frozen_and_closed_connections_freed(
    tmp_path: Path,
) -> None:
    """A full collection (which stops the reactor) walks no startup object,
    yet the connections made since are walked, and freed once closed; full
    collections come ten times less often than Python's default."""
    checkout = Path(__file__).resolve().parent.parent
    finished = subprocess.run(
        [sys.executable, "-m", "tests.startup_freeze", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=checkout,
        env={**os.environ, "PYTHONPATH": str(checkout)},
        timeout=60,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr
    seen = json.loads(finished.stdout)
    assert seen["frozen"] > 10_000  # the modules and the IO catalogue, at least
    assert seen["full_collection_after"] == 10 * gc.get_threshold()[2] == 100
    assert not seen["factory_walked"]
    assert seen["connections_walked"] == 20
    assert seen["connections_left"] == 0
