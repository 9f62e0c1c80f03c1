# -*- test-case-name: tests.test_sinks_postgresql -*-
"""The ``postgresql`` sink's connection: blocking psycopg calls, made only
in the sink's own writer thread, except :meth:`PostgresConnection.abort`.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from teltotwist.sinks._pg_schema import MISSING_TABLES, Tables

CONNECT_TIMEOUT = "10"
"""libpq's ``connect_timeout`` (seconds) unless the URL gives one."""
_DECLARE_LOCK = "SELECT pg_advisory_xact_lock(hashtext(%s))"


class MissingTablesError(Exception):
    """With ``declare=false``, a table the sink writes to does not exist."""


class PostgresConnection:
    """One connection, in autocommit mode. A batch is sent in pipeline mode,
    its statements up to the pipeline's one Sync: the server runs them in
    one implicit transaction, committed at the Sync, all in one round trip
    (``connection.transaction()`` would wait for the BEGIN and each
    statement in turn)."""

    def __init__(self, connection: psycopg.Connection[Any], tables: Tables) -> None:
        self._connection = connection
        # A descriptor of our own for the socket, so that abort() never hits
        # a descriptor number that libpq closed and the process reused.
        self._socket = socket.socket(fileno=os.dup(connection.fileno()))
        self._insert_records = tables.insert_records()
        self._insert_unparsed = tables.insert_unparsed()
        self._insert_command_results = tables.insert_command_results()

    @classmethod
    def open(
        cls, parameters: Mapping[str, str], tables: Tables, declare: bool
    ) -> PostgresConnection:
        """Connect, and check that the tables exist; create them if any is
        missing and *declare* (so a role that may only write to existing
        tables needs no more).

        :raises psycopg.Error: when the server cannot be reached or refuses.
        :raises MissingTablesError: without *declare*, naming the missing tables.
        """
        conninfo = make_conninfo(
            "", **{"connect_timeout": CONNECT_TIMEOUT, **parameters}
        )
        connection = psycopg.Connection.connect(conninfo, autocommit=True)
        try:
            missing = connection.execute(
                MISSING_TABLES, (tables.qualified(),)
            ).fetchall()
            if missing and not declare:
                names = ", ".join(name for (name,) in missing)
                raise MissingTablesError(
                    f"no table {names}, and declare=false: create the "
                    "tables of docs/sink-postgresql.rst, or leave declare out"
                )
            if missing:
                with connection.transaction():
                    # Gateways starting together declare one after the other.
                    connection.execute(_DECLARE_LOCK, (tables.qualified()[0],))
                    for statement in tables.declarations():
                        connection.execute(statement)
            return cls(connection, tables)
        except BaseException:
            connection.close()
            raise

    @property
    def broken(self) -> bool:
        """Whether the connection is lost (a failed batch left it usable
        otherwise)."""
        return self._connection.broken or self._connection.closed

    def write(
        self, records: list[bytes], unparsed: list[bytes], command_results: list[bytes]
    ) -> None:
        """Insert the items, each given as its record JSON, in one transaction.

        :raises psycopg.Error: when the transaction did not commit (or, when
            the connection was lost during the commit, may not have).
        """
        connection = self._connection
        with connection.pipeline():
            for statement, lines in (
                (self._insert_records, records),
                (self._insert_unparsed, unparsed),
                (self._insert_command_results, command_results),
            ):
                if lines:
                    connection.execute(statement, (_json_array(lines),))

    def probe(self) -> None:
        """A round trip to the server.

        :raises psycopg.Error: when the connection is lost.
        """
        self._connection.execute("SELECT 1")

    def abort(self) -> None:
        """Shut the socket down, from any thread: the call in progress fails
        at once, and so would any later one."""
        with contextlib.suppress(OSError):  # shut down already
            self._socket.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Close the connection (and abandon an open transaction)."""
        self._connection.close()
        self._socket.close()


def _json_array(lines: list[bytes]) -> Jsonb:
    """*lines*, JSON objects, as one ``jsonb`` parameter, without parsing them."""
    return Jsonb(b"[" + b",".join(lines) + b"]", dumps=_as_is)


def _as_is(document: Any) -> bytes:
    assert isinstance(document, bytes)
    return document
