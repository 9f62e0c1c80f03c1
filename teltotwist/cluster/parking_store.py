# -*- test-case-name: tests.test_cluster_parking_store,tests.test_cluster_hub -*-
"""The envelopes parked by a gateway's workers, kept across restarts of the
whole gateway, in an SQLite file in its state directory.

The parent writes on its reactor thread, as the workers' command stores do:
a park is an operator's command for a tracker offline everywhere (not
tracker traffic), and a one-row insert or delete in WAL mode with
``synchronous=NORMAL`` takes well under a millisecond, so a thread would
cost more than it saves. What the file holds is bounded by the
:class:`~teltotwist.cluster.router.Router` it mirrors: a row is written only
for an envelope the Router took.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import attrs

from teltotwist.cluster.bus import Envelope

FILE_NAME = "parked.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS parked (
    id INTEGER PRIMARY KEY,
    imei TEXT NOT NULL,
    kind TEXT NOT NULL,
    sender TEXT NOT NULL,
    correlation TEXT,
    body BLOB NOT NULL,
    expires_at REAL NOT NULL
)
"""


@attrs.frozen
class StoredPark:
    """An envelope parked for *imei* until *expires_at* (in seconds since
    the epoch); *key* names its row."""

    key: int
    imei: str
    envelope: Envelope
    expires_at: float


class SqliteParkingStore:
    """Parked envelopes in ``STATE_DIR/parked.sqlite3``; the directory and
    the file are created when opened."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / FILE_NAME
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._db:
            self._db.execute(_SCHEMA)
            self._db.execute("CREATE INDEX IF NOT EXISTS by_imei ON parked (imei)")
            self._db.execute(
                "CREATE INDEX IF NOT EXISTS by_expiry ON parked (expires_at)"
            )

    def load(self) -> list[StoredPark]:
        """The envelopes kept, oldest first."""
        rows = self._db.execute(
            "SELECT id, imei, kind, sender, correlation, body, expires_at "
            "FROM parked ORDER BY id"
        )
        return [
            StoredPark(
                key, imei, Envelope(kind, bytes(body), sender, correlation), expires_at
            )
            for key, imei, kind, sender, correlation, body, expires_at in rows
        ]

    def add(self, imei: str, envelope: Envelope, expires_at: float) -> int:
        """Keep *envelope* for *imei* until *expires_at*: the key of its
        row."""
        with self._db:
            row = self._db.execute(
                "INSERT INTO parked (imei, kind, sender, correlation, body, "
                "expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    imei,
                    envelope.kind,
                    envelope.sender,
                    envelope.correlation,
                    envelope.body,
                    expires_at,
                ),
            )
        assert row.lastrowid is not None
        return row.lastrowid

    def collected(self, imei: str) -> None:
        """The envelopes for *imei* were taken (or expired)."""
        with self._db:
            self._db.execute("DELETE FROM parked WHERE imei = ?", (imei,))

    def forget(self, key: int) -> None:
        """Drop the row *key* (an envelope the Router did not take)."""
        with self._db:
            self._db.execute("DELETE FROM parked WHERE id = ?", (key,))

    def expire(self, now: float) -> None:
        """Drop the envelopes expired at *now*."""
        with self._db:
            self._db.execute("DELETE FROM parked WHERE expires_at <= ?", (now,))

    def close(self) -> None:
        """Close the file."""
        self._db.close()
