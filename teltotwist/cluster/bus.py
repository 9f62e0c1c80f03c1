# -*- test-case-name: tests.test_cluster_bus -*-
"""The messages between the members of one cluster: gateway instances on
several machines (over RabbitMQ), or the worker processes of one gateway
(over their parent).

A member is addressed three ways, as RabbitMQ routes: by the IMEIs it holds
(each member binds the IMEIs of its trackers), by its id (for replies), and
all together (a broadcast). A message for an IMEI that no member holds can be
*parked* until a member binds that IMEI and *collects* it: that is how a
command waits for a tracker that is offline everywhere.

The cluster's logic (command routing, duplicate logins, the fleet's tracker
list) is written once against :class:`IClusterBus`; each transport is one
implementation of it.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
from twisted.internet.defer import Deferred
from zope.interface import Attribute, Interface


@attrs.frozen
class Envelope:
    """One message: what it is (*kind*, e.g. ``command.request``), its JSON
    *body*, the id of the member that sent it, and, for a request and its
    answer, the *correlation* id they share."""

    kind: str
    body: bytes
    sender: str
    correlation: str | None = None


Receiver = Callable[[Envelope], None]
"""Called, on the reactor thread, with each message addressed to a member."""


class ClusterBusError(Exception):
    """The bus could not take a message: not connected, or the transport
    failed. The caller's action failed as a whole (nothing half-sent)."""


class IClusterBus(Interface):
    """One member's link to the other members of its cluster."""

    member_id: str = Attribute(
        "This member's id, unique in the cluster while it runs (the"
        " instance id, e.g. ``HOST:PID``)."
    )
    ready: bool = Attribute("True while connected: messages can be sent.")

    def start(receiver: Receiver) -> Deferred[None]:
        """Join the cluster; from now on *receiver* gets every message sent
        to this member, to an IMEI it binds, or to everyone. Fires once
        joined."""

    def stop() -> Deferred[None]:
        """Leave the cluster: this member's bindings go with it."""

    def bind(imei: str) -> Deferred[None]:
        """Messages sent to *imei* reach this member from now on (a tracker
        logged in here). Fires once the binding is in place."""

    def unbind(imei: str) -> Deferred[None]:
        """Messages sent to *imei* no longer reach this member."""

    def send_to_tracker(imei: str, envelope: Envelope) -> Deferred[bool]:
        """Send *envelope* to the member that binds *imei*; fires with
        False when no member does (the tracker is offline everywhere).

        :raises ClusterBusError: (through the Deferred) when not sent.
        """

    def send_to_member(member_id: str, envelope: Envelope) -> Deferred[None]:
        """Send *envelope* to one member, by id (an answer to a request)."""

    def broadcast(envelope: Envelope) -> Deferred[None]:
        """Send *envelope* to every member, this one included."""

    def park(imei: str, envelope: Envelope, ttl: float) -> Deferred[None]:
        """Keep *envelope* for *imei* for up to *ttl* seconds, until a
        member collects it; fires once it is kept durably (as durable as
        the transport is: the docs of each say)."""

    def collect(imei: str) -> Deferred[list[Envelope]]:
        """Take every envelope parked for *imei* and not expired, oldest
        first; each is handed to one collector only."""
