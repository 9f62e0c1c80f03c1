# -*- test-case-name: tests.test_tap -*-
"""``twistd teltonika`` / ``twist teltonika``: the command-line options."""

from __future__ import annotations

import atexit
import gc
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from twisted.application.service import IService, MultiService, Service
from twisted.copyright import version as twisted_version
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure

from teltotwist.catalogue import load_catalogue
from teltotwist.cluster.amqp import AmqpBus, parse_cluster_url
from teltotwist.cluster.bus import IClusterBus
from teltotwist.cluster.exposition import ExpositionGatherer, WorkersExposition
from teltotwist.cluster.hub import Hub, HubBus
from teltotwist.cluster.link import LinkProtocol
from teltotwist.cluster.listeners import (
    API_FD,
    TRACKER_FD,
    UDP_FD,
    InheritedSocket,
    bind_sockets,
    shareable,
)
from teltotwist.cluster.member import ClusterMember
from teltotwist.cluster.parking_store import SqliteParkingStore
from teltotwist.cluster.supervisor import (
    KILL_MARGIN,
    WorkerSupervisor,
    worker_command,
)
from teltotwist.cluster.worker import (
    ParentLink,
    worker_member_id,
    worker_sink_spec,
    worker_state_dir,
)
from teltotwist.cluster.worker_log import worker_log_observer
from teltotwist.codec import ImeiPolicy
from teltotwist.control.api import ApiResource, ApiSite, MetricsExposition
from teltotwist.control.auth import (
    TOKEN_VARIABLE,
    ApiToken,
    TokenError,
    configured_token,
)
from teltotwist.control.command_endpoints import CommandEndpoints
from teltotwist.control.live import (
    OPENSTREETMAP_ATTRIBUTION,
    OPENSTREETMAP_TILES,
    LiveEndpoints,
    MapTiles,
)
from teltotwist.control.metrics import GatewayMetrics
from teltotwist.control.service import ApiService
from teltotwist.gateway.allowlist import AllowlistError, ImeiAllowlist, parse_allowlist
from teltotwist.gateway.fleet import Fleet, LocalFleet
from teltotwist.gateway.limits import DuplicateLogin, Limits
from teltotwist.gateway.models import ModelsError, TrackerModels
from teltotwist.gateway.proxied import tracker_endpoint
from teltotwist.gateway.service import (
    DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_SINK_READY_TIMEOUT,
    GatewayService,
)
from teltotwist.gateway.service import makeService as makeGateway
from teltotwist.gateway.traffic import LocalTraffic, TrafficSource
from teltotwist.sinks import IRecordSink, SinkConfigurationError
from teltotwist.sinks.registry import make_sink, sink_factories
from teltotwist.version import teltotwist_version

_DEFAULTS = Limits()
DEFAULT_API = "tcp:8027:interface=127.0.0.1"
LISTEN_BACKLOG = 1024
"""Connections the kernel completes while the gateway is busy (Twisted's
default is 50): under a flood, a tracker's connection waits in the queue
instead of having its SYN dropped and retried a second later."""
FULL_COLLECTION_AFTER = 100
"""Collections of the middle generation between two full ones (Python's
default is 10). A burst of packets keeps tens of thousands of objects
alive until its ACKs; they reach the oldest generation, and with the
startup's objects frozen that alone called for a full collection most
seconds, each stopping the reactor for some 20 ms. Garbage in reference
cycles, which only a full collection frees, is rare in the gateway: a few
hundred objects wait longer, no more."""
_log = Logger()


def _positive(kind: type[float] | type[int]) -> Any:
    def convert(text: str) -> float | int:
        value = kind(text)
        if value <= 0:
            raise ValueError(f"{text} is not a positive number")
        return value

    convert.coerceDoc = "Must be positive."  # type: ignore[attr-defined]
    return convert


def _duplicate_login(text: str) -> DuplicateLogin:
    try:
        return DuplicateLogin(text)
    except ValueError:
        choices = " or ".join(policy.value for policy in DuplicateLogin)
        raise ValueError(f"{text!r} is not {choices}") from None


_duplicate_login.coerceDoc = "replace or reject."  # type: ignore[attr-defined]


class Options(usage.Options):
    """Options of the ``teltonika`` plugin."""

    synopsis = "[options]"
    longdesc = (
        "Receive Teltonika trackers (Codec 8, 8 Extended, 16) and deliver every "
        "record to every sink; a tracker is acknowledged only once all sinks "
        "accepted its records. Without --sink, records are logged as JSON lines."
    )
    optParameters: ClassVar[list[list[Any]]] = [
        [
            "state-dir",
            None,
            "teltotwist-state",
            "Directory keeping queued commands across restarts (created "
            "when the first command is queued, or at start with --workers; "
            "relative to the working directory).",
        ],
        [
            "port",
            "p",
            "5027",
            "TCP port, or a server endpoint string such as "
            "tcp:5027:interface=127.0.0.1 or "
            "ssl:5027:privateKey=key.pem:certKey=cert.pem; behind a load "
            "balancer sending the PROXY protocol, haproxy:tcp:5027.",
        ],
        ["udp-port", None, None, "Also receive UDP on this port", _positive(int)],
        ["udp-interface", None, "", "Interface for the UDP port; empty: all."],
        [
            "udp-max-in-flight",
            None,
            _DEFAULTS.udp_max_in_flight,
            "Most UDP datagrams awaiting the sinks at once; more are dropped "
            "unacknowledged (their trackers resend them)",
            _positive(int),
        ],
        [
            "udp-max-in-flight-per-imei",
            None,
            _DEFAULTS.udp_max_in_flight_per_imei,
            "Most UDP datagrams of one IMEI awaiting the sinks at once",
            _positive(int),
        ],
        [
            "allow-imeis",
            None,
            None,
            "File of IMEIs allowed to log in, one per line; others are refused. "
            "Re-read when it changes or on SIGHUP. Default: all may log in.",
        ],
        [
            "models",
            None,
            None,
            "CSV file of imei,model lines naming each tracker's model, for the "
            "records' attributes. Re-read when it changes or on SIGHUP.",
        ],
        [
            "default-model",
            None,
            None,
            "Model of the trackers not in --models. Default: unknown (only the "
            "IO ids every model reads alike are named).",
        ],
        [
            "imei-length",
            None,
            None,
            "Digits a login must have to be taken for a tracker: N, or MIN-MAX "
            "for fleets with other identifiers (at most 32). Default: 15.",
            ImeiPolicy.parse,
        ],
        [
            "login-timeout",
            None,
            _DEFAULTS.login_timeout,
            "Seconds a new connection has to send its IMEI",
            _positive(float),
        ],
        [
            "idle-timeout",
            None,
            _DEFAULTS.idle_timeout,
            "Seconds of silence before a tracker is disconnected",
            _positive(float),
        ],
        [
            "frame-timeout",
            None,
            _DEFAULTS.frame_timeout,
            "Seconds a started frame or login has to arrive in full",
            _positive(float),
        ],
        [
            "sink-timeout",
            None,
            _DEFAULTS.sink_timeout,
            "Seconds the sinks have to accept a packet",
            _positive(float),
        ],
        [
            "max-frame-size",
            None,
            _DEFAULTS.max_frame_size,
            "Largest frame accepted, in bytes",
            _positive(int),
        ],
        [
            "max-connections",
            None,
            _DEFAULTS.max_connections,
            "Most tracker connections at once; when reached, the oldest one "
            "without a login makes room",
            _positive(int),
        ],
        [
            "max-pending-per-address",
            None,
            _DEFAULTS.max_pending_per_address,
            "Most connections without a login from one address (IPv6: one /64); "
            "beyond it the oldest of them is closed",
            _positive(int),
        ],
        [
            "duplicate-login",
            None,
            _DEFAULTS.duplicate_login,
            "A login for an IMEI that is already connected: reject it while the "
            "current connection is active, or replace the current connection",
            _duplicate_login,
        ],
        [
            "duplicate-login-window",
            None,
            _DEFAULTS.duplicate_login_window,
            "Seconds since its last byte during which a connection counts as "
            "active for --duplicate-login reject",
            _positive(float),
        ],
        [
            "max-buffered-bytes",
            None,
            _DEFAULTS.max_buffered_bytes,
            "Bytes all connections together may hold in unfinished frames; "
            "past it, the connections with the oldest ones are closed",
            _positive(int),
        ],
        [
            "drain-timeout",
            None,
            DEFAULT_DRAIN_TIMEOUT,
            "Seconds deliveries in flight get to finish on shutdown",
            _positive(float),
        ],
        [
            "api",
            None,
            DEFAULT_API,
            "Where the HTTP API (trackers, health, metrics) listens, as a server "
            "endpoint string; none: no API.",
        ],
        [
            "api-token-file",
            None,
            None,
            "File holding the API's bearer token (else $TELTOTWIST_API_TOKEN; "
            "with neither, a token is generated and logged at start).",
        ],
        [
            "cluster",
            None,
            None,
            "Join the gateway instances sharing this RabbitMQ broker as one "
            "cluster (commands, tracker list, duplicate logins): "
            "amqp://USER[:PASSWORD]@HOST[:PORT]/VHOST[?prefix=NAME] (password "
            "also from $TELTOTWIST_CLUSTER_PASSWORD).",
        ],
        [
            "instance-id",
            None,
            None,
            "This instance's id in the cluster, unique while it runs. "
            "Default: HOST:PID.",
        ],
        [
            "map-tiles",
            None,
            OPENSTREETMAP_TILES,
            "Tile URL template of the live view's map ({z}/{x}/{y}); none: no "
            "tiles, positions on a plain background.",
        ],
        [
            "map-attribution",
            None,
            None,
            "The attribution the live view's map shows for its tiles (HTML); "
            "default: OpenStreetMap's with the default tiles, else none.",
        ],
        [
            "sink-ready-timeout",
            None,
            DEFAULT_SINK_READY_TIMEOUT,
            "Seconds to wait at start for the sinks to connect before listening anyway",
            _positive(float),
        ],
        [
            "workers",
            None,
            1,
            "Worker processes sharing the ports, each with its own sinks (a "
            "file sink writes one file per worker); 1: this process alone",
            _positive(int),
        ],
        [
            "as-worker",
            None,
            None,
            "Internal: run as this worker of a --workers parent, on the "
            "sockets it passes",
            _positive(int),
        ],
    ]

    optFlags: ClassVar[list[list[str | None]]] = [
        [
            "no-attributes",
            None,
            "Leave the records without attributes (their raw io only).",
        ],
    ]

    def __init__(self) -> None:
        usage.Options.__init__(self)
        self["sinks"] = []
        self._sink_specs: list[str] = []
        self.arguments: list[str] = []
        """The command-line arguments parsed, for the worker processes."""

    def parseOptions(self, options: list[str] | None = None) -> None:
        self.arguments = list(sys.argv[1:] if options is None else options)
        usage.Options.parseOptions(self, options)

    def opt_sink(self, spec: str) -> None:
        """Where records go, as KIND:ARG (repeatable; see --help-sinks)."""
        if spec in self._sink_specs:
            raise usage.UsageError(f"--sink {spec} is given twice")
        self._sink_specs.append(spec)
        try:
            self["sinks"].append(make_sink(spec))
        except SinkConfigurationError as error:
            raise usage.UsageError(str(error)) from None

    def opt_help_sinks(self) -> None:
        """List the sink kinds and exit."""
        for kind, factory in sorted(sink_factories().items()):
            print(f"{kind:<10} {factory.description}")
        raise SystemExit(0)

    def opt_version(self) -> None:
        """Print the versions of teltotwist and Twisted and exit."""
        print(f"teltotwist {teltotwist_version()}, Twisted {twisted_version}")
        raise SystemExit(0)

    def postOptions(self) -> None:
        if self["imei-length"] is None:
            self["imei-length"] = ImeiPolicy()
        if not self["sinks"]:
            self["sinks"].append(make_sink("log"))
        from twisted.internet import reactor  # noqa: PLC0415 - after --reactor

        worker = self["as-worker"]
        if worker is not None:
            self._tag_log_lines(worker)
            self["sinks"] = [
                make_sink(worker_sink_spec(spec, worker)) for spec in self._sink_specs
            ] or self["sinks"]
        port = self["port"]
        if port.isdigit():
            self["port"] = port = f"tcp:{port}:backlog={LISTEN_BACKLOG}"
        try:
            self["endpoint"] = tracker_endpoint(
                _listening_reactor(reactor, worker, TRACKER_FD), port
            )
        except Exception as error:
            raise usage.UsageError(f"--port {port}: {error}") from None
        self._api_options(_listening_reactor(reactor, worker, API_FD))
        if self["workers"] > 1:
            for option in ("port", "api"):
                if self[option] != "none" and not shareable(self[option]):
                    raise usage.UsageError(
                        f"--{option} {self[option]}: worker processes share "
                        "tcp:, tcp6:, ssl: and haproxy:tcp: ports only"
                    )
        self._naming_options(reactor)
        self._cluster_options()
        if self["allow-imeis"] is not None:
            path = Path(self["allow-imeis"])
            if not path.is_file():
                raise usage.UsageError(f"--allow-imeis: no such file: {path}")
            try:
                parse_allowlist(path.read_text(encoding="utf-8"), str(path))
            except (AllowlistError, OSError, UnicodeDecodeError) as error:
                raise usage.UsageError(f"--allow-imeis: {error}") from None

    def _tag_log_lines(self, worker: int) -> None:
        """Under ``twist`` (as its parent starts a worker) with a text log,
        each line names the worker."""
        runner = getattr(self, "parent", None)
        if runner is not None and runner.get("logFormat") == "text":
            runner["fileLogObserverFactory"] = worker_log_observer(worker)

    def _naming_options(self, reactor: Any) -> None:
        """``naming``: the :class:`TrackerModels` of --models and
        --default-model, or None for --no-attributes."""
        self["naming"] = None
        chosen = [f"--{name}" for name in ("models", "default-model") if self[name]]
        if self["no-attributes"]:
            if chosen:
                raise usage.UsageError(f"--no-attributes contradicts {chosen[0]}")
            return
        path = None if self["models"] is None else Path(self["models"])
        try:
            self["naming"] = TrackerModels(
                load_catalogue(), reactor, path, self["default-model"]
            )
        except ModelsError as error:
            raise usage.UsageError(str(error)) from None

    def _cluster_options(self) -> None:
        """``cluster-settings`` (None without --cluster) and ``instance-id``."""
        if self["instance-id"] is None:
            self["instance-id"] = f"{socket.gethostname()}:{os.getpid()}"
        self["cluster-settings"] = None
        if self["cluster"] is None:
            return
        try:
            self["cluster-settings"] = parse_cluster_url(self["cluster"], os.environ)
        except ValueError as error:
            message = str(error)
            if "--cluster" not in message:
                message = f"--cluster: {message}"
            raise usage.UsageError(message) from None

    def _api_options(self, reactor: Any) -> None:
        """``api-endpoint`` (None for ``--api none``) and ``api-token`` (None
        when none was chosen)."""
        self["api-endpoint"] = self["api-token"] = None
        if self["api"] == "none":
            return
        try:
            self["api-endpoint"] = serverFromString(reactor, self["api"])
        except Exception as error:
            raise usage.UsageError(f"--api {self['api']}: {error}") from None
        token_file = self["api-token-file"]
        try:
            self["api-token"] = configured_token(
                os.environ, None if token_file is None else Path(token_file)
            )
        except TokenError as error:
            raise usage.UsageError(str(error)) from None


class ReloadOnHangup(Service):
    """Calls *reload* on SIGHUP while running, so that a SIGHUP (systemd's
    ``ExecReload``) never stops the gateway."""

    def __init__(self, reload: Callable[[], None]) -> None:
        self.reload = reload
        self._previous: Any = None

    def startService(self) -> None:
        from twisted.internet import reactor  # noqa: PLC0415

        Service.startService(self)
        self._previous = signal.signal(
            signal.SIGHUP,
            lambda *_: reactor.callFromThread(self.reload),  # type: ignore[attr-defined]
        )

    def stopService(self) -> None:
        signal.signal(signal.SIGHUP, self._previous or signal.SIG_DFL)
        Service.stopService(self)


def _listening_reactor(reactor: Any, worker: int | None, fd: int) -> Any:
    """What an endpoint listens with: *reactor*, or in a worker, the socket
    its parent passed at *fd*."""
    return reactor if worker is None else InheritedSocket(reactor, fd)


def _everyone(imei: str) -> bool:
    return True


def _reload_all(reloads: list[Callable[[], None]]) -> Callable[[], None]:
    """What SIGHUP does: call every one of *reloads*, or log that there is
    nothing to reload."""

    def reload() -> None:
        if not reloads:
            _log.info("SIGHUP: nothing to reload (no --allow-imeis, no --models)")
        for each in reloads:
            each()

    return reload


def settle_collector(_: object = None) -> None:
    """The gateway listens: what exists now (the modules, the IO catalogue,
    the services) lives as long as the process. Move it out of the garbage
    collector's generations for good, so that a full collection, which stops
    the reactor, walks only what came later: connections and records. And
    make full collections rarer (:data:`FULL_COLLECTION_AFTER`): each walks
    every object alive, however long ago the last one ran.

    Garbage is collected first, so none is frozen. An object alive now that
    dies later is still freed by its reference count; only one in a
    reference cycle would stay, so nothing is frozen later than startup.
    """
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_AFTER)


def _exit_unable_to_listen(failure: Failure) -> None:
    """The gateway cannot listen, and logged why: stop, with exit status 1."""
    failure.trap(CannotListenError)
    _exit_unable_to_run()


def _exit_unable_to_run(_: object = None) -> None:
    """The gateway cannot run, and logged why: stop, with exit status 1."""
    from twisted.internet import reactor  # noqa: PLC0415

    # twistd exits with 0 once its reactor stops; this runs after its
    # clean-up (the pid file), at the interpreter's exit.
    atexit.register(_exit_now, 1)
    reactor.callWhenRunning(reactor.stop)


def _exit_now(status: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def makeService(options: Options) -> IService:
    """The gateway service described by *options*."""
    from twisted.internet import reactor  # noqa: PLC0415

    if options["workers"] > 1 and options["as-worker"] is None:
        return _supervisor(options, reactor)
    root = MultiService()
    worker: int | None = options["as-worker"]
    state_dir = Path(options["state-dir"])
    parent: ParentLink | None = None
    if worker is not None:
        parent = ParentLink(reactor, worker, LinkProtocol())
        root.addService(parent)
        state_dir = worker_state_dir(state_dir, worker)
    allow: Callable[[str], bool] = _everyone
    reloads: list[Callable[[], None]] = []
    allowlist: ImeiAllowlist | None = None
    if options["allow-imeis"] is not None:
        try:
            allowlist = ImeiAllowlist(Path(options["allow-imeis"]), reactor)
        except AllowlistError as error:
            raise usage.UsageError(str(error)) from None
        root.addService(allowlist)
        allow = allowlist
        reloads.append(allowlist.reload)
    naming: TrackerModels | None = options["naming"]
    if naming is not None:
        root.addService(naming)
        if naming.path is not None:
            reloads.append(naming.reload)
    root.addService(ReloadOnHangup(_reload_all(reloads)))
    limits = Limits(
        login_timeout=options["login-timeout"],
        idle_timeout=options["idle-timeout"],
        frame_timeout=options["frame-timeout"],
        sink_timeout=options["sink-timeout"],
        max_frame_size=options["max-frame-size"],
        max_connections=options["max-connections"],
        max_pending_per_address=options["max-pending-per-address"],
        duplicate_login=options["duplicate-login"],
        duplicate_login_window=options["duplicate-login-window"],
        max_buffered_bytes=options["max-buffered-bytes"],
        imei_policy=options["imei-length"],
        udp_max_in_flight=options["udp-max-in-flight"],
        udp_max_in_flight_per_imei=options["udp-max-in-flight-per-imei"],
    )
    sinks: list[IRecordSink] = options["sinks"]
    gateway = makeGateway(
        reactor,
        options["endpoint"],
        sinks,
        allow=allow,
        limits=limits,
        udp_port=options["udp-port"],
        udp_interface=options["udp-interface"],
        drain_timeout=options["drain-timeout"],
        sink_ready_timeout=options["sink-ready-timeout"],
        state_dir=state_dir,
        naming=(lambda imei: None) if naming is None else naming,
        udp_reactor=_listening_reactor(reactor, worker, UDP_FD),
    )
    if allowlist is not None:
        allowlist.on_reload(gateway.factory.close_disallowed)
    gateway.whenListening().addCallbacks(settle_collector, _exit_unable_to_listen)
    if parent is not None:
        gateway.whenListening().addCallback(lambda _: parent.up())
    metrics = GatewayMetrics(gateway.registry, version=teltotwist_version())
    gateway.events.add(metrics)
    member = None
    bus = _cluster_bus(options, reactor, parent)
    if bus is not None:
        member = ClusterMember(bus, gateway, reactor, metrics.cluster_command)
        # Joined before the gateway listens, left after it stopped.
        root.addService(member)
    root.addService(gateway)
    if options["api-endpoint"] is not None:
        exposition: MetricsExposition = metrics
        if parent is not None:
            exposition = WorkersExposition(
                parent.protocol, parent.number, metrics.exposition
            )
        root.addService(_api(options, gateway, exposition, member, reactor))
    return root


def _cluster_bus(
    options: Options, reactor: Any, parent: ParentLink | None
) -> IClusterBus | None:
    """The bus of the cluster this process is a member of: RabbitMQ's with
    --cluster (each worker a member of its own), else a worker's parent's;
    None for a single process on its own."""
    if options["cluster-settings"] is not None:
        member_id = options["instance-id"]
        if parent is not None:
            member_id = f"{member_id}/w{parent.number}"
        return AmqpBus(options["cluster-settings"], member_id, reactor)
    if parent is not None:
        return HubBus(worker_member_id(parent.number), parent.protocol)
    return None


def _supervisor(options: Options, reactor: Any) -> IService:
    """The parent of ``--workers``: it binds the ports and runs the workers,
    which share one API token."""
    root = MultiService()
    environment: dict[str, str] = {}
    if options["api-endpoint"] is not None:
        token = options["api-token"] or ApiToken.generate()
        environment[TOKEN_VARIABLE] = token.value
        if token.generated:
            _log.info(
                "HTTP API token generated for this run (set {variable} or "
                "--api-token-file to choose one): {token}",
                variable=TOKEN_VARIABLE,
                token=token.value,
            )
    supervisor = WorkerSupervisor(
        reactor,
        options["workers"],
        lambda: bind_sockets(
            options["port"],
            options["udp-port"],
            options["udp-interface"],
            None if options["api-endpoint"] is None else options["api"],
            workers=options["workers"],
        ),
        lambda number, sockets: worker_command(
            reactor, options.arguments, number, sockets
        ),
        environment=environment,
        link=_parent_link(reactor, Path(options["state-dir"])),
        stop_timeout=options["drain-timeout"] + KILL_MARGIN,
    )
    supervisor.whenListening().addErrback(_exit_unable_to_listen)
    supervisor.whenGivenUp().addCallback(_exit_unable_to_run)
    root.addService(supervisor)
    root.addService(ReloadOnHangup(supervisor.hangup))
    return root


def _parent_link(reactor: Any, state_dir: Path) -> Callable[[int], LinkProtocol]:
    """The parent's end of each worker's link: the hub between the
    workers, its parked commands kept in *state_dir*, and the gathering of
    their metrics."""
    store = SqliteParkingStore(state_dir)
    # Once the workers stopped: the services stop before the reactor's
    # shutdown, the "after" phase comes last.
    reactor.addSystemEventTrigger("after", "shutdown", store.close)
    hub = Hub(reactor, store=store)
    gatherer = ExpositionGatherer(reactor)

    def link(number: int) -> LinkProtocol:
        protocol = LinkProtocol()
        hub.attach(protocol)
        gatherer.attach(number, protocol)
        return protocol

    return link


def _api(
    options: Options,
    gateway: GatewayService,
    metrics: MetricsExposition,
    member: ClusterMember | None,
    reactor: Any,
) -> ApiService:
    """The HTTP API in front of *gateway* (or of its cluster, through
    *member*) and its commands, with the metrics observing it."""
    token = options["api-token"] or ApiToken.generate()
    center = gateway.factory.commands
    fleet: Fleet = LocalFleet(gateway.registry, center, reactor)
    traffic: TrafficSource = LocalTraffic(gateway.traffic)
    checks: list[Callable[[], str | None]] = []
    if member is not None:
        fleet = member.fleet
        traffic = member.traffic
        checks.append(member.not_ready_why)
    commands = None if center is None else CommandEndpoints(fleet)
    live = LiveEndpoints(fleet, traffic, reactor, _tiles(options))
    resource = ApiResource(
        fleet,
        gateway,
        metrics,
        token,
        reactor,
        commands=commands,
        readiness_checks=checks,
        live=live,
    )
    return ApiService(options["api-endpoint"], ApiSite(resource), token)


def _tiles(options: Options) -> MapTiles:
    """The live view's map tiles as ``--map-tiles`` and ``--map-attribution``
    say."""
    url = options["map-tiles"]
    attribution = options["map-attribution"]
    if url == "none":
        return MapTiles(None, attribution or "")
    if attribution is None:
        attribution = OPENSTREETMAP_ATTRIBUTION if url == OPENSTREETMAP_TILES else ""
    return MapTiles(url, attribution)
