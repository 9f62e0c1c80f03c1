# -*- test-case-name: tests.test_gateway_tcp -*-
"""The limits a connection lives within: timeouts, sizes, and which
identifiers count as a tracker."""

from __future__ import annotations

import enum

import attrs

from teltotwist.codec import DEFAULT_MAX_FRAME_SIZE, ImeiPolicy


class DuplicateLogin(enum.StrEnum):
    """What a login does to an IMEI's current connection (``--duplicate-login``)."""

    REPLACE = "replace"
    """The newest login wins; the current connection is closed."""
    REJECT = "reject"
    """A login is refused while the current connection is active."""


@attrs.frozen
class Limits:
    """How long to wait, and how much to take, before closing a connection."""

    login_timeout: float = 30.0
    """Seconds from connecting to the IMEI login."""
    idle_timeout: float = 600.0
    """Seconds without a byte from a logged-in tracker. Longer than the
    trackers' usual Open Link Timeout (300 s on FMB devices by default)."""
    frame_timeout: float = 30.0
    """Seconds a started frame or login has to arrive in full. Its bytes
    arriving do not extend it, so a peer trickling a frame cannot hold the
    connection and the bytes for ever."""
    sink_timeout: float = 20.0
    """Seconds the sinks have to accept a packet before it goes unacknowledged."""
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    """The largest frame accepted, in bytes."""
    max_connections: int = 10_000
    """Connections at once; when reached, the oldest one without a login
    makes room, and only when all are logged in is a connection refused."""
    max_pending_per_address: int = 1_000
    """Connections without a login from one address (IPv6: one /64); beyond
    it the oldest of them is closed. Logged-in trackers are not counted. At
    least the listening backlog, so that a fleet behind one carrier NAT
    reconnecting at once is not thinned out."""
    duplicate_login: DuplicateLogin = DuplicateLogin.REJECT
    """What a second login with the same IMEI does."""
    duplicate_login_window: float = 120.0
    """With :attr:`DuplicateLogin.REJECT`: seconds since the current
    connection last sent a byte during which it counts as active."""
    max_buffered_bytes: int = 8 * 1024 * 1024
    """Bytes all connections together may hold in unfinished frames and
    logins. Past it, the connections whose unfinished frame is oldest are
    closed. 8 MiB is more than 10,000 trackers take when each is in the
    middle of a 1,280-byte frame (their documented maximum; a real frame
    rarely spans two reads), and keeps a trickle attack's memory, with the
    allocator's fragmentation, under 50 MB (``bench/bench_hostile.py``)."""
    imei_policy: ImeiPolicy = ImeiPolicy()
    """Which logins are plausible trackers (15 digits by default); others are
    refused before the allowlist is asked."""
    command_quiet: float = 5.0
    """Seconds without data after a login after which commands may go to a
    tracker that sent no packet (one that did may take them after its first
    ACK)."""
    udp_max_in_flight: int = 500
    """UDP datagrams awaiting the sinks at once; more are dropped
    unacknowledged, and their trackers resend them."""
    udp_max_in_flight_per_imei: int = 4
    """UDP datagrams of one IMEI awaiting the sinks at once (a tracker waits
    for each ACK, so more are resends or a forgery)."""
