# -*- test-case-name: tests.test_sinks_mqtt -*-
"""When paho-mqtt's threaded loop tries to connect again: the sink sets each
wait itself, so that its status can say when the next attempt is."""

from __future__ import annotations

from paho.mqtt.client import Client

FIRST_DELAY = 1
"""Seconds before the first retry; each failure in a row doubles it."""
MAX_DELAY = 30
"""The longest wait between attempts, in seconds."""


class ReconnectSchedule:
    """The waits of one paho client, used only in its thread (its callbacks)."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._delay: int | None = None
        self._first_attempt = True

    def connected(self) -> None:
        """The broker accepted the connection: the next failure waits least."""
        self._delay = None
        self._first_attempt = False

    def failed(self, *, raised: bool) -> int:
        """An attempt failed (*raised*: it could not even open the socket), or
        the connection was lost: set paho's next wait, and return the seconds
        until its next attempt."""
        delay = FIRST_DELAY if self._delay is None else min(self._delay * 2, MAX_DELAY)
        self._delay = delay
        self._client.reconnect_delay_set(delay, delay)
        twice = raised and self._first_attempt
        self._first_attempt = False
        # paho retries a first connection that raised in loop_forever(),
        # after one wait, then falls into its main loop, which waits again.
        return 2 * delay if twice else delay
