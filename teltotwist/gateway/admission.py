# -*- test-case-name: tests.test_gateway_admission -*-
"""Which connections get a slot, so that a flood cannot lock trackers out.

A connection that has not logged in yet proves nothing; a logged-in tracker
holds records its owner wants. So logged-in trackers are never displaced and
have no per-address cap (whole fleets share one carrier-NAT address), while
connections still waiting for their login yield their slots, oldest first:

* an address (an IPv6 /64, what a mobile network hands one device) with
  *max_pending_per_address* connections waiting gives up its oldest one;
* at *max_connections*, the oldest waiting connection anywhere goes;
* only when every slot holds a logged-in tracker is a new connection refused.

A real tracker logs in within a round trip of connecting, so it only loses its
slot if a whole cap's worth of connections arrive before its login. Behind a
load balancer every connection comes from the balancer's address: such a
connection is admitted with no address, and meets its address's cap once the
PROXY protocol header has told who sent it (:meth:`Admission.located`). Every
operation is O(1). Pure: no reactor, no sockets.
"""

from __future__ import annotations

import enum
import ipaddress
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

import attrs

Connection = TypeVar("Connection", bound=Hashable)

_IPV6_SITE_PREFIX = 64


class Crowding(enum.Enum):
    """Why a waiting connection was closed to make room."""

    ADDRESS = "address"
    GATEWAY = "gateway"


@attrs.frozen
class Admitted(Generic[Connection]):
    """The new connection has a slot; *evicted*, if any, must be closed."""

    evicted: Connection | None = None
    crowding: Crowding | None = None


@attrs.frozen
class Refused:
    """Every slot holds a logged-in tracker: close the new connection."""


def address_key(host: str) -> str:
    """The address that shares one per-address cap: the host itself, or its
    /64 for IPv6 (a device or a site holds a whole /64)."""
    try:
        parsed = ipaddress.ip_address(host)
    except ValueError:
        return host
    if not isinstance(parsed, ipaddress.IPv6Address):
        return host
    if parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(ipaddress.IPv6Network((parsed, _IPV6_SITE_PREFIX), strict=False))


class Admission(Generic[Connection]):
    """The slots of one listener: who waits for a login, who is logged in."""

    def __init__(self, max_connections: int, max_pending_per_address: int) -> None:
        self.max_connections = max_connections
        self.max_pending_per_address = max_pending_per_address
        self._waiting: OrderedDict[Connection, str | None] = OrderedDict()
        """The connections without a login, oldest first, with their address
        (None while not known yet)."""
        self._waiting_by_address: dict[str, OrderedDict[Connection, None]] = {}
        self._logged_in: set[Connection] = set()

    def __len__(self) -> int:
        """Connections holding a slot."""
        return len(self._waiting) + len(self._logged_in)

    @property
    def waiting(self) -> int:
        """Connections holding a slot without having logged in."""
        return len(self._waiting)

    def admit(
        self, connection: Connection, address: str | None
    ) -> Admitted[Connection] | Refused:
        """Give *connection*, just accepted from *address* (None: not known
        yet), a slot if any can be had; an evicted connection no longer holds
        one."""
        key = None if address is None else address_key(address)
        admitted = self._crowding(key)
        if admitted is None:
            if len(self) < self.max_connections:
                admitted = Admitted()
            elif self._waiting:
                admitted = Admitted(next(iter(self._waiting)), Crowding.GATEWAY)
            else:
                return Refused()
        self._wait(connection, key, admitted)
        return admitted

    def located(self, connection: Connection, address: str) -> Admitted[Connection]:
        """*connection*, admitted with no address, turns out to come from
        *address*: it counts towards that address's cap from now on."""
        if connection not in self._waiting or self._waiting[connection] is not None:
            return Admitted()
        key = address_key(address)
        admitted = self._crowding(key) or Admitted()
        self._wait(connection, key, admitted)
        return admitted

    def _crowding(self, key: str | None) -> Admitted[Connection] | None:
        """The eviction *key*'s cap calls for, if any."""
        same_address = None if key is None else self._waiting_by_address.get(key)
        if same_address and len(same_address) >= self.max_pending_per_address:
            return Admitted(next(iter(same_address)), Crowding.ADDRESS)
        return None

    def _wait(
        self, connection: Connection, key: str | None, admitted: Admitted[Connection]
    ) -> None:
        """*connection* waits for its login from *key*, in place of the
        connection *admitted* evicts."""
        if admitted.evicted is not None:
            self._stop_waiting(admitted.evicted)
        self._waiting[connection] = key
        if key is not None:
            self._waiting_by_address.setdefault(key, OrderedDict())[connection] = None

    def logged_in(self, connection: Connection) -> None:
        """*connection* logged in: its slot is safe from now on."""
        if self._stop_waiting(connection):
            self._logged_in.add(connection)

    def release(self, connection: Connection) -> None:
        """*connection* is gone: its slot is free."""
        self._logged_in.discard(connection)
        self._stop_waiting(connection)

    def _stop_waiting(self, connection: Connection) -> bool:
        if connection not in self._waiting:
            return False
        key = self._waiting.pop(connection)
        if key is None:
            return True
        same_address = self._waiting_by_address[key]
        del same_address[connection]
        if not same_address:
            del self._waiting_by_address[key]
        return True
