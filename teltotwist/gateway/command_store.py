# -*- test-case-name: tests.test_gateway_command_store -*-
"""Commands kept across restarts, in an SQLite file in the state directory.

Writes happen on the reactor thread: a command changes state a handful of
times in its life, operators send commands (not trackers), and a one-row
upsert in WAL mode with ``synchronous=NORMAL`` takes well under a
millisecond, so a thread would cost more than it saves.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from teltotwist.codec import Codec
from teltotwist.gateway.commands import Command, CommandStatus

FILE_NAME = "commands.sqlite3"
DEFAULT_KEPT = 10_000
"""Finished commands kept; queued ones are always kept."""

_COLUMNS = (
    "id, imei, codec, payload, is_text, created_at_ms, expires_at_ms, status, "
    "sent_at_ms, answered_at_ms, response, error"
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY,
    imei TEXT NOT NULL,
    codec INTEGER NOT NULL,
    payload BLOB NOT NULL,
    is_text INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    status TEXT NOT NULL,
    sent_at_ms INTEGER,
    answered_at_ms INTEGER,
    response BLOB,
    error TEXT
)
"""


class SqliteCommandStore:
    """A :class:`~teltotwist.gateway.commands.CommandStorage` in
    ``STATE_DIR/commands.sqlite3``; the directory and the file are created
    when the first command is saved."""

    def __init__(self, state_dir: Path, kept: int = DEFAULT_KEPT) -> None:
        self.state_dir = state_dir
        self.path = state_dir / FILE_NAME
        self._kept = kept
        self._connection: sqlite3.Connection | None = None

    @property
    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self._connection = sqlite3.connect(self.path)
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=NORMAL")
            self._connection.execute(_SCHEMA)
            self._connection.commit()
        return self._connection

    def save(self, command: Command) -> None:
        """Keep *command* as it is now; past *kept* finished commands, the
        oldest go."""
        with self._db:
            self._db.execute(
                f"INSERT INTO commands ({_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                # An update in place keeps the row's place in the order.
                "ON CONFLICT (id) DO UPDATE SET status = excluded.status, "
                "sent_at_ms = excluded.sent_at_ms, "
                "answered_at_ms = excluded.answered_at_ms, "
                "response = excluded.response, error = excluded.error",
                (
                    command.id,
                    command.imei,
                    int(command.codec),
                    command.payload,
                    command.is_text,
                    command.created_at_ms,
                    command.expires_at_ms,
                    str(command.status),
                    command.sent_at_ms,
                    command.answered_at_ms,
                    command.response,
                    command.error,
                ),
            )
            if command.status.final:
                self._db.execute(
                    "DELETE FROM commands WHERE status NOT IN ('queued', 'sent') "
                    "AND id NOT IN (SELECT id FROM commands "
                    "WHERE status NOT IN ('queued', 'sent') "
                    "ORDER BY created_at_ms DESC LIMIT ?)",
                    (self._kept,),
                )

    def load(self) -> list[Command]:
        """The commands kept, oldest first."""
        if not self.path.exists():
            return []
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM commands ORDER BY created_at_ms, rowid"
        )
        return [
            Command(
                id,
                imei,
                Codec(codec),
                bytes(payload),
                bool(is_text),
                created_at_ms,
                expires_at_ms,
                CommandStatus(status),
                sent_at_ms,
                answered_at_ms,
                None if response is None else bytes(response),
                error,
            )
            for (
                id,
                imei,
                codec,
                payload,
                is_text,
                created_at_ms,
                expires_at_ms,
                status,
                sent_at_ms,
                answered_at_ms,
                response,
                error,
            ) in rows
        ]

    def forget(self, command_id: str) -> None:
        """Keep the command no longer (it waits elsewhere now)."""
        with self._db:
            self._db.execute("DELETE FROM commands WHERE id = ?", (command_id,))

    def close(self) -> None:
        """Close the file (the gateway stops)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
