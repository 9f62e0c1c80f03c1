# -*- test-case-name: tests.test_gateway_tcp -*-
"""Where the gateway tells others which trackers it holds: in a cluster,
the other members, which may hold the same IMEI on another connection.

The TCP adapter asks before it accepts a login whose IMEI it does not hold
itself, and reports each login and logout; one gateway alone needs none.
"""

from __future__ import annotations

from typing import Protocol

from twisted.internet.defer import Deferred

from teltotwist.gateway.fleet import FleetUnavailableError

CLAIM_WAIT = 2.0
"""Seconds :meth:`Presence.claim` waits for the holder's answer."""


class HolderSilentError(FleetUnavailableError):
    """A member holds the tracker but did not answer in time: unlike a bus
    that cannot be asked, someone may be using the IMEI right now."""


class Presence(Protocol):
    """The trackers held elsewhere, as a login needs to know."""

    def claim(self, imei: str, peer: str) -> Deferred[str | None]:
        """A login for *imei* from *peer* is about to be accepted here:
        fires with why it may not be (another member holds the IMEI on an
        active connection, under ``--duplicate-login reject``), or None,
        once any connection elsewhere was closed.

        :raises HolderSilentError: (through the Deferred) when a member holds
            the IMEI but did not answer within :data:`CLAIM_WAIT`.
        :raises Exception: (through the Deferred) when the others cannot be
            asked (the bus is down)."""

    def logged_in(self, imei: str) -> None:
        """*imei* logged in here (after a claim, if it made one)."""

    def claim_dropped(self, imei: str) -> None:
        """A login claimed for *imei* will not follow: its connection closed
        while the claim was answered, or the claim found a conflict."""

    def logged_out(self, imei: str) -> None:
        """*imei*'s connection here closed (no newer one holds it here); a
        command handed to it but not written is queued again by then."""
