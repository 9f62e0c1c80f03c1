# -*- test-case-name: tests.test_control_api -*-
"""The HTTP API as a service of the gateway's application."""

from __future__ import annotations

from twisted.application.service import Service
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import (
    IAddress,
    IListeningPort,
    IStreamServerEndpoint,
)
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Site

from teltotwist.control.auth import TOKEN_VARIABLE, ApiToken


class ApiService(Service):
    """Serves *site* on *endpoint* while running.

    Once listening, it logs where, and, when the token was generated, a
    ready-to-paste request with it (once: it changes at each start). A port
    that cannot be bound is logged and the gateway goes on without its API:
    the trackers matter more.
    """

    log = Logger()

    def __init__(
        self, endpoint: IStreamServerEndpoint, site: Site, token: ApiToken
    ) -> None:
        self._endpoint = endpoint
        self._site = site
        self._token = token
        self._port: IListeningPort | None = None
        self._listening: Deferred[IListeningPort] | None = None
        self._waiters: list[Deferred[IAddress]] = []

    def startService(self) -> None:
        Service.startService(self)
        self._listening = self._endpoint.listen(self._site)
        self._listening.addCallbacks(self._listened, self._not_listened)

    def whenListening(self) -> Deferred[IAddress]:
        """Fires with the address listened on, once listening."""
        waiter: Deferred[IAddress] = Deferred()
        if self._port is not None:
            waiter.callback(self._port.getHost())
        else:
            self._waiters.append(waiter)
        return waiter

    def stopService(self) -> Deferred[None] | None:
        Service.stopService(self)
        port, self._port = self._port, None
        if port is not None:
            return port.stopListening()
        if self._listening is not None:
            self._listening.cancel()
        return None

    def _listened(self, port: IListeningPort) -> None:
        self._port = port
        address = port.getHost()
        url = _base_url(address)
        self.log.info("HTTP API on {url}", url=url)
        if self._token.generated:
            self.log.info(
                "HTTP API token generated for this run (set {variable} or "
                "--api-token-file to choose one): curl -H 'Authorization: "
                "Bearer {token}' {url}v1/trackers",
                variable=TOKEN_VARIABLE,
                token=self._token.value,
                url=url,
            )
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(address)

    def _not_listened(self, failure: Failure) -> None:
        self._listening = None
        if failure.check(CancelledError):
            return
        self.log.error(
            "HTTP API: cannot listen: {error}; the gateway runs without it",
            error=failure.getErrorMessage(),
        )


def _base_url(address: IAddress) -> str:
    """``http://HOST:PORT/`` for *address*; a wildcard host as loopback."""
    if isinstance(address, IPv4Address | IPv6Address):
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(address.host, address.host)
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{address.port}/"
    return f"http://{address}/"
