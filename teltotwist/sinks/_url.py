# -*- test-case-name: tests.test_sinks_url -*-
"""What the network sinks' URLs share: user and password (the password from
an environment variable rather than the command line), ``?NAME=VALUE``
options (booleans among them), a TLS cafile, and the URL as logs show it,
without the password."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from urllib.parse import quote, unquote

from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.internet.ssl import (
    Certificate,
    optionsForClientTLS,
    trustRootFromCertificates,
)

from teltotwist.sinks.interfaces import SinkConfigurationError

_BOOLEANS = {
    "true": True,
    "yes": True,
    "1": True,
    "false": False,
    "no": False,
    "0": False,
}

_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL
)


def user(quoted: str | None) -> str | None:
    """The percent-decoded user name of a URL; None if it has none."""
    return unquote(quoted) if quoted else None


def password(
    quoted: str | None, variable: str, environment: Mapping[str, str]
) -> str | None:
    """The password: the URL's, percent-decoded, or that of *variable* in
    *environment*; None if neither gives one.

    :raises SinkConfigurationError: when both give one, or *variable* is set
        but empty.
    """
    from_environment = environment.get(variable)
    if from_environment == "":
        raise SinkConfigurationError(
            f"{variable} is set but empty: give it the password, or unset it"
        )
    if quoted is not None and from_environment is not None:
        raise SinkConfigurationError(
            f"the password is given twice, in the URL and in {variable}: "
            f"keep {variable} (a command line is visible to every user)"
        )
    return unquote(quoted) if quoted is not None else from_environment


def options(query: str, known: Collection[str], label: str) -> dict[str, str]:
    """``NAME=VALUE&...``, percent-decoded; unlike a form, ``+`` stays ``+``.

    :raises SinkConfigurationError: for a pair without ``=``, a name not in
        *known*, or a name given twice; *label* (``AMQP``) names the URL.
    """
    found: dict[str, str] = {}
    for pair in query.split("&") if query else ():
        name, equals, value = pair.partition("=")
        if not equals:
            raise SinkConfigurationError(
                f"the {label} URL has {pair!r} in its query, not NAME=VALUE"
            )
        if name not in known:
            raise SinkConfigurationError(
                f"unknown {label} URL option {name!r}; the options are "
                + ", ".join(known)
            )
        if name in found:
            raise SinkConfigurationError(
                f"the {label} URL option {name!r} is given twice"
            )
        found[name] = unquote(value)
    return found


def boolean(name: str, value: str) -> bool:
    """The ``?NAME=VALUE`` option *name* as a boolean: true, yes, 1, false,
    no or 0, in any case.

    :raises SinkConfigurationError: for any other value.
    """
    try:
        return _BOOLEANS[value.lower()]
    except KeyError:
        raise SinkConfigurationError(
            f"{name} must be true or false, not {value!r}"
        ) from None


def shown(scheme: str, username: str | None, host: str, port: int) -> str:
    """``SCHEME://USER@HOST:PORT``: the URL for logs, never with a password."""
    userinfo = "" if username is None else quote(username, safe="") + "@"
    return f"{scheme}://{userinfo}{address(host, port)}"


def address(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def client_tls(host: str, cafile: str | None) -> IOpenSSLClientConnectionCreator:
    """TLS to *host*, verified against the system's certificate authorities
    or, with *cafile*, against the PEM certificates in it.

    :raises SinkConfigurationError: when *cafile* cannot be read or holds none.
    """
    if cafile is None:
        return optionsForClientTLS(host)
    try:
        with open(cafile, "rb") as file:
            pem = file.read()
    except OSError as error:
        raise SinkConfigurationError(
            f"cannot read cafile {cafile}: {error.strerror}"
        ) from error
    certificates = [
        Certificate.loadPEM(block) for block in _PEM_CERTIFICATE.findall(pem)
    ]
    if not certificates:
        raise SinkConfigurationError(f"cafile {cafile} holds no PEM certificate")
    trust = trustRootFromCertificates(certificates)  # type: ignore[no-untyped-call]
    return optionsForClientTLS(host, trust)
