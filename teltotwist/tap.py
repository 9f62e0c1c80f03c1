# -*- test-case-name: tests.test_tap -*-
"""``twistd teltonika`` / ``twist teltonika``: the command-line options."""

from __future__ import annotations

import atexit
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from twisted.application.service import IService, MultiService, Service
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure

from teltotwist.codec import ImeiPolicy
from teltotwist.gateway.allowlist import AllowlistError, ImeiAllowlist, parse_allowlist
from teltotwist.gateway.limits import Limits
from teltotwist.gateway.service import (
    DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_SINK_READY_TIMEOUT,
)
from teltotwist.gateway.service import makeService as makeGateway
from teltotwist.sinks import IRecordSink, SinkConfigurationError
from teltotwist.sinks.registry import make_sink, sink_factories

_DEFAULTS = Limits()
_log = Logger()


def _positive(kind: type[float] | type[int]) -> Any:
    def convert(text: str) -> float | int:
        value = kind(text)
        if value <= 0:
            raise ValueError(f"{text} is not a positive number")
        return value

    convert.coerceDoc = "Must be positive."  # type: ignore[attr-defined]
    return convert


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
            "port",
            "p",
            "5027",
            "TCP port, or a server endpoint string such as "
            "tcp:5027:interface=127.0.0.1 or "
            "ssl:5027:privateKey=key.pem:certKey=cert.pem.",
        ],
        ["udp-port", None, None, "Also receive UDP on this port", _positive(int)],
        ["udp-interface", None, "", "Interface for the UDP port; empty: all."],
        [
            "allow-imeis",
            None,
            None,
            "File of IMEIs allowed to log in, one per line; others are refused. "
            "Re-read when it changes or on SIGHUP. Default: all may log in.",
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
            "Most tracker connections at once",
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
            "sink-ready-timeout",
            None,
            DEFAULT_SINK_READY_TIMEOUT,
            "Seconds to wait at start for the sinks to connect before listening anyway",
            _positive(float),
        ],
    ]

    def __init__(self) -> None:
        usage.Options.__init__(self)
        self["sinks"] = []
        self._sink_specs: set[str] = set()

    def opt_sink(self, spec: str) -> None:
        """Where records go, as KIND:ARG (repeatable; see --help-sinks)."""
        if spec in self._sink_specs:
            raise usage.UsageError(f"--sink {spec} is given twice")
        self._sink_specs.add(spec)
        try:
            self["sinks"].append(make_sink(spec))
        except SinkConfigurationError as error:
            raise usage.UsageError(str(error)) from None

    def opt_help_sinks(self) -> None:
        """List the sink kinds and exit."""
        for kind, factory in sorted(sink_factories().items()):
            print(f"{kind:<10} {factory.description}")
        raise SystemExit(0)

    def postOptions(self) -> None:
        if self["imei-length"] is None:
            self["imei-length"] = ImeiPolicy()
        if not self["sinks"]:
            self["sinks"].append(make_sink("log"))
        from twisted.internet import reactor  # noqa: PLC0415 - after --reactor

        port = self["port"]
        if port.isdigit():
            self["port"] = port = f"tcp:{port}"
        try:
            self["endpoint"] = serverFromString(reactor, port)
        except Exception as error:
            raise usage.UsageError(f"--port {port}: {error}") from None
        if self["allow-imeis"] is not None:
            path = Path(self["allow-imeis"])
            if not path.is_file():
                raise usage.UsageError(f"--allow-imeis: no such file: {path}")
            try:
                parse_allowlist(path.read_text(encoding="utf-8"), str(path))
            except (AllowlistError, OSError, UnicodeDecodeError) as error:
                raise usage.UsageError(f"--allow-imeis: {error}") from None


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


def _everyone(imei: str) -> bool:
    return True


def _nothing_to_reload() -> None:
    _log.info("SIGHUP: nothing to reload (no --allow-imeis)")


def _exit_unable_to_listen(failure: Failure) -> None:
    """The gateway cannot listen, and logged why: stop, with exit status 1."""
    failure.trap(CannotListenError)
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

    root = MultiService()
    allow: Callable[[str], bool] = _everyone
    reload: Callable[[], None] = _nothing_to_reload
    if options["allow-imeis"] is not None:
        try:
            allowlist = ImeiAllowlist(Path(options["allow-imeis"]), reactor)
        except AllowlistError as error:
            raise usage.UsageError(str(error)) from None
        root.addService(allowlist)
        allow, reload = allowlist, allowlist.reload
    root.addService(ReloadOnHangup(reload))
    limits = Limits(
        login_timeout=options["login-timeout"],
        idle_timeout=options["idle-timeout"],
        sink_timeout=options["sink-timeout"],
        max_frame_size=options["max-frame-size"],
        max_connections=options["max-connections"],
        imei_policy=options["imei-length"],
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
    )
    gateway.whenListening().addErrback(_exit_unable_to_listen)
    root.addService(gateway)
    return root
