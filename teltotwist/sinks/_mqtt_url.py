# -*- test-case-name: tests.test_sinks_mqtt -*-
"""``--sink mqtt:URL``: the URL, checked and turned into :class:`MqttSettings`."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from string import Formatter
from urllib.parse import urlsplit

import attrs

from teltotwist.gateway.items import Item
from teltotwist.sinks import _url
from teltotwist.sinks.interfaces import SinkConfigurationError

DEFAULT_TOPIC = "teltonika/{imei}/{kind}"
PASSWORD_VARIABLE = "TELTOTWIST_MQTT_PASSWORD"
VERSIONS = ("5", "3.1.1")
_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
_OPTIONS = ("topic", "client_id", "keepalive", "version")
_TOPIC_FIELDS = ("imei", "kind")
_MAX_KEEPALIVE = 65_535


def _new_client_id() -> str:
    """23 characters, the longest every MQTT 3.1.1 broker must accept."""
    return "teltotwist-" + secrets.token_hex(6)


@attrs.frozen
class MqttSettings:
    """Where and how the ``mqtt`` sink publishes."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    topic: str = DEFAULT_TOPIC
    """A template: ``{imei}``, and ``{kind}`` (``records`` or ``unparsed``)."""
    client_id: str = attrs.field(factory=_new_client_id)
    keepalive: int = 30
    """Seconds; a silent broker is given up after about twice as long."""
    version: str = "5"
    """The MQTT protocol version, one of :data:`VERSIONS`."""

    @property
    def address(self) -> str:
        """``host:port``, with an IPv6 host in brackets."""
        return _url.address(self.host, self.port)

    @property
    def url(self) -> str:
        """The broker's URL without the password or options, for the logs."""
        return _url.shown(
            "mqtts" if self.tls else "mqtt", self.username, self.host, self.port
        )

    def topic_for(self, item: Item) -> str:
        """The topic *item* is published on."""
        return self.topic.format(imei=item.imei, kind=item.kind)


def settings_from_url(url: str, environ: Mapping[str, str]) -> MqttSettings:
    """The settings *url* describes; the password may come from *environ*.

    :raises SinkConfigurationError: naming what is wrong with *url*.
    """
    if "#" in url:
        raise SinkConfigurationError(
            "the MQTT URL contains '#', which starts a URL fragment: a topic "
            "cannot hold the MQTT wildcard #, and a password must write it %23"
        )
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise SinkConfigurationError(f"the MQTT URL is malformed: {error}") from None
    if parts.password:
        url = url.replace(f":{parts.password}@", ":***@", 1)
    if parts.scheme not in _DEFAULT_PORTS:
        raise SinkConfigurationError(
            f"the mqtt sink needs an mqtt:// or mqtts:// URL, not {url!r}: "
            "--sink mqtt:mqtt://HOST:PORT?topic=teltonika/{imei}/{kind}"
        )
    if not parts.hostname:
        raise SinkConfigurationError(f"the MQTT URL {url!r} names no broker host")
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError as error:
        raise SinkConfigurationError(f"the MQTT URL {url!r}: {error}") from None
    if parts.path not in ("", "/"):
        raise SinkConfigurationError(
            f"the MQTT URL {url!r} has a path, {parts.path!r}: "
            "give the topic as ?topic=..."
        )
    options = _url.options(parts.query, _OPTIONS, "MQTT")
    username, password = _credentials(url, parts.username, parts.password, environ)
    client_id = options.get("client_id")
    if client_id == "":
        raise SinkConfigurationError("client_id is empty: leave it out instead")
    return MqttSettings(
        host=parts.hostname,
        port=port,
        tls=parts.scheme == "mqtts",
        username=username,
        password=password,
        topic=_topic(options.get("topic", DEFAULT_TOPIC)),
        keepalive=_keepalive(options.get("keepalive", "30")),
        version=_version(options.get("version", "5")),
        **({} if client_id is None else {"client_id": client_id}),
    )


def _credentials(
    url: str,
    quoted_username: str | None,
    quoted_password: str | None,
    environ: Mapping[str, str],
) -> tuple[str | None, str | None]:
    username = _url.user(quoted_username)
    password = _url.password(quoted_password, PASSWORD_VARIABLE, environ)
    if password is not None and not username:
        raise SinkConfigurationError(
            f"an MQTT password needs a user name: mqtt://USER@HOST:PORT with "
            f"{PASSWORD_VARIABLE} set, in {url!r}"
        )
    return username, password


def _topic(template: str) -> str:
    if not template:
        raise SinkConfigurationError("the MQTT topic is empty")
    if "+" in template or "#" in template:
        raise SinkConfigurationError(
            f"the MQTT topic {template!r} contains a wildcard (+ or #), which "
            "a topic to publish to may not"
        )
    try:
        fields = list(Formatter().parse(template))
    except ValueError as error:
        raise SinkConfigurationError(f"the MQTT topic {template!r}: {error}") from None
    for _, name, spec, conversion in fields:
        if name is not None and (name not in _TOPIC_FIELDS or spec or conversion):
            raise SinkConfigurationError(
                f"the MQTT topic {template!r} uses {{{name}}}; it may use only "
                "{imei} and {kind} (records or unparsed)"
            )
    return template


def _keepalive(text: str) -> int:
    if not (text.isascii() and text.isdigit() and 0 < int(text) <= _MAX_KEEPALIVE):
        raise SinkConfigurationError(
            f"keepalive must be a whole number of seconds from 1 to {_MAX_KEEPALIVE}, "
            f"not {text!r}"
        )
    return int(text)


def _version(text: str) -> str:
    if text not in VERSIONS:
        raise SinkConfigurationError(
            f"version must be one of {', '.join(VERSIONS)} (the MQTT protocol "
            f"version), not {text!r}"
        )
    return text
