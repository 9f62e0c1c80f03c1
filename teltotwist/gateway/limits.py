# -*- test-case-name: tests.test_gateway_tcp -*-
"""The limits a connection lives within: timeouts, sizes, and which
identifiers count as a tracker."""

from __future__ import annotations

import attrs

from teltotwist.codec import DEFAULT_MAX_FRAME_SIZE, ImeiPolicy


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
    """Connections beyond this are closed as soon as they are accepted."""
    max_buffered_bytes: int = 32 * 1024 * 1024
    """Bytes all connections together may hold in unfinished frames and
    logins. Past it, the connections whose unfinished frame is oldest are
    closed. 32 MiB is 2.5 times what 10,000 trackers take when each is in
    the middle of a 1,280-byte frame (their documented maximum), and a
    twentieth of what 10,000 trickled 64 KiB frames would pin without it."""
    imei_policy: ImeiPolicy = ImeiPolicy()
    """Which logins are plausible trackers (15 digits by default); others are
    refused before the allowlist is asked."""
