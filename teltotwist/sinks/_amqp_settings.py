# -*- test-case-name: tests.test_sinks_amqp -*-
"""The AMQP sink's settings, from the URL of ``--sink amqp:URL``."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from string import Formatter
from urllib.parse import quote, unquote, urlsplit

import attrs
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint

from teltotwist.codec.imei import MAX_LOGIN_LENGTH
from teltotwist.gateway.items import Item
from teltotwist.sinks import _url
from teltotwist.sinks._url import client_tls
from teltotwist.sinks.interfaces import SinkConfigurationError

PASSWORD_VARIABLE = "TELTOTWIST_AMQP_PASSWORD"
"""The environment variable holding the password when the URL has none."""
MAX_ROUTING_KEY = 255
"""Bytes in an AMQP routing key or exchange name (a ``shortstr``)."""
ROUTING_KEY_FIELDS = frozenset({"imei", "kind"})
OPTIONS = ("exchange", "routing_key", "declare")


@attrs.frozen
class AmqpSettings:
    """``--sink amqp:URL``, parsed: where and how the sink publishes."""

    host: str
    port: int
    vhost: str = "/"
    username: str = "guest"
    password: str = attrs.field(default="guest", repr=False)
    tls: bool = False
    cafile: str | None = None
    """PEM certificates to trust instead of the system's, for ``amqps``."""
    exchange: str = "teltonika"
    routing_key: str = "teltonika.{imei}"
    """A template: ``{imei}`` and ``{kind}`` (``records`` or ``unparsed``)."""
    declare: bool = True
    """Declare the exchange (topic, durable), or only check that it exists."""

    @property
    def broker(self) -> Broker:
        """The broker part of the settings."""
        return Broker(
            host=self.host,
            port=self.port,
            vhost=self.vhost,
            username=self.username,
            password=self.password,
            tls=self.tls,
            cafile=self.cafile,
        )

    @property
    def url(self) -> str:
        """The broker and exchange as a URL without the password, for logs."""
        return f"{self.broker.url}?exchange={quote(self.exchange, safe='')}"

    def routing_key_for(self, item: Item) -> str:
        return self.routing_key.format(imei=item.imei, kind=kind_of(item))


def kind_of(item: Item) -> str:
    """``records``, ``unparsed`` or ``command_result`` (the names the mqtt
    sink's topics use too)."""
    return item.kind


def parse_url(url: str, environment: Mapping[str, str]) -> AmqpSettings:
    """The settings of ``--sink amqp:URL``, taking the password from
    :data:`PASSWORD_VARIABLE` in *environment* when the URL has none.

    :raises SinkConfigurationError: saying what is wrong, never quoting the
        password.
    """
    broker, options = parse_broker_url(
        url,
        environment,
        password_variable=PASSWORD_VARIABLE,
        known_options=OPTIONS,
        user="the amqp sink",
        example="--sink amqp:amqp://teltotwist@rabbitmq.example/telematics",
    )
    return AmqpSettings(
        **attrs.asdict(broker),
        exchange=_exchange(options.get("exchange", "teltonika")),
        routing_key=_routing_key(options.get("routing_key", "teltonika.{imei}")),
        declare=_url.boolean("declare", options.get("declare", "true")),
    )


@attrs.frozen
class Broker:
    """Where a RabbitMQ broker is and how to log in: the part of an AMQP URL
    before its ``?options``."""

    host: str
    port: int
    vhost: str
    username: str
    password: str = attrs.field(repr=False)
    tls: bool
    cafile: str | None

    @property
    def url(self) -> str:
        """``amqp://USER@HOST:PORT/VHOST``, without the password, for logs."""
        scheme = "amqps" if self.tls else "amqp"
        broker = _url.shown(scheme, self.username, self.host, self.port)
        vhost = "" if self.vhost == "/" else quote(self.vhost, safe="")
        return f"{broker}/{vhost}"

    def endpoint(self, reactor: IReactorTime, timeout: float) -> IStreamClientEndpoint:
        """Where to connect, over TLS for ``amqps``; *timeout* in seconds."""
        endpoint: IStreamClientEndpoint = HostnameEndpoint(
            reactor, self.host, self.port, timeout=timeout
        )
        if not self.tls:
            return endpoint
        return wrapClientTLS(client_tls(self.host, self.cafile), endpoint)


def parse_broker_url(
    url: str,
    environment: Mapping[str, str],
    *,
    password_variable: str,
    known_options: Collection[str],
    user: str,
    example: str,
) -> tuple[Broker, dict[str, str]]:
    """The broker of an ``amqp://`` or ``amqps://`` URL and its ``?options``
    (only *known_options*, plus ``cafile``), taking the password from
    *password_variable* in *environment* when the URL has none. *user* (who
    reads the URL) and *example* (a usable argument) name the right form when
    the URL is not one.

    :raises SinkConfigurationError: saying what is wrong, never quoting the
        password.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("amqp", "amqps") or not parts.netloc:
        raise SinkConfigurationError(
            f"{user} needs an amqp:// or amqps:// URL, such as {example}"
        )
    if not parts.hostname:
        raise SinkConfigurationError("the AMQP URL names no host")
    if parts.fragment:
        raise SinkConfigurationError(
            "the AMQP URL has a #fragment: write a # in the password as %23"
        )
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise SinkConfigurationError(
            "the AMQP URL's port must be a number from 1 to 65535"
        )
    tls = parts.scheme == "amqps"
    options = _url.options(parts.query, (*known_options, "cafile"), "AMQP")
    if "cafile" in options and not tls:
        raise SinkConfigurationError("cafile is for amqps:// URLs only")
    cafile = options.pop("cafile", None)
    if cafile is not None:
        client_tls(parts.hostname, cafile)
    username = _url.user(parts.username)
    broker = Broker(
        host=parts.hostname,
        port=port or (5671 if tls else 5672),
        vhost=_vhost(parts.path),
        username="guest" if username is None else username,
        password=_password(username, parts.password, password_variable, environment),
        tls=tls,
        cafile=cafile,
    )
    return broker, options


def _vhost(path: str) -> str:
    """``/NAME`` is the vhost NAME; no path, ``/`` and ``/%2F`` are ``/``."""
    name = path[1:]
    if "/" in name:
        raise SinkConfigurationError(
            f"the AMQP URL's path {path!r} must be one vhost name: write a / "
            "in it as %2F"
        )
    return unquote(name) or "/"


def _password(
    username: str | None,
    quoted: str | None,
    variable: str,
    environment: Mapping[str, str],
) -> str:
    password = _url.password(quoted, variable, environment)
    if password is not None:
        return password
    if username is None:
        return "guest"
    raise SinkConfigurationError(
        f"the AMQP URL names user {username!r} but no password: set "
        f"{variable} (a password in the URL shows in the process list)"
    )


def _exchange(name: str) -> str:
    if not name:
        raise SinkConfigurationError(
            "the exchange option needs a name: the sink publishes to a named "
            "exchange, not to the default one"
        )
    if len(name.encode()) > MAX_ROUTING_KEY:
        raise SinkConfigurationError(
            f"the exchange name is longer than {MAX_ROUTING_KEY} bytes"
        )
    return name


def _routing_key(template: str) -> str:
    try:
        fields = [
            (name, spec, conversion)
            for _, name, spec, conversion in Formatter().parse(template)
            if name is not None
        ]
    except ValueError as error:
        raise SinkConfigurationError(
            f"routing_key {template!r} is not a valid template: {error} "
            "(write a literal { or } as {{ or }})"
        ) from None
    for name, spec, conversion in fields:
        if name not in ROUTING_KEY_FIELDS or spec or conversion:
            raise SinkConfigurationError(
                f"routing_key {template!r} may use {{imei}} and {{kind}}, "
                f"not {{{name}{'!' + conversion if conversion else ''}"
                f"{':' + spec if spec else ''}}}"
            )
    longest = template.format(imei="0" * MAX_LOGIN_LENGTH, kind="unparsed")
    if len(longest.encode()) > MAX_ROUTING_KEY:
        raise SinkConfigurationError(
            f"routing_key {template!r} can make keys longer than "
            f"{MAX_ROUTING_KEY} bytes"
        )
    return template
