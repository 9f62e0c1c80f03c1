# -*- test-case-name: tests.test_sinks_postgresql -*-
"""The ``postgresql`` sink's SQL: the tables it creates, and the statements
that insert a batch of items given as one JSON array of record objects.

``docs/examples/postgresql_schema.sql`` shows the same tables for the
default table name; a test checks that the two agree.
"""

from __future__ import annotations

import attrs
from psycopg import sql

_RECORD_COLUMNS = (
    ("id", "text"),
    ("imei", "text"),
    ("timestamp", "timestamptz"),
    ("received_at", "timestamptz"),
    ("latitude", "double precision"),
    ("longitude", "double precision"),
    ("altitude", "integer"),
    ("angle", "integer"),
    ("satellites", "integer"),
    ("speed", "integer"),
    ("priority", "smallint"),
    ("event_id", "integer"),
    ("codec", "text"),
    ("generation_type", "smallint"),
    ("io", "jsonb"),
    ("attributes", "jsonb"),
)
"""The records table's columns, each a key of the record JSON, in order."""
_NULLABLE = frozenset({"generation_type", "attributes"})

_RECORDS_TABLE = """\
CREATE TABLE IF NOT EXISTS {records} (
{columns},
    PRIMARY KEY (id)
)"""
_RECORDS_INDEX = """\
CREATE INDEX IF NOT EXISTS {index} ON {records} (imei, "timestamp" DESC)"""
_UNPARSED_TABLE = """\
CREATE TABLE IF NOT EXISTS {unparsed} (
    id text PRIMARY KEY,
    imei text NOT NULL,
    received_at timestamptz NOT NULL,
    error text NOT NULL,
    raw bytea NOT NULL
)"""
_COMMAND_RESULTS_TABLE = """\
CREATE TABLE IF NOT EXISTS {command_results} (
    id text PRIMARY KEY,
    imei text NOT NULL,
    received_at timestamptz NOT NULL,
    command_result jsonb NOT NULL
)"""

# ON CONFLICT without a target: on the tables above only the primary key
# (id) can conflict, and it also suits a table partitioned by time, whose
# primary key must be (id, "timestamp").
_INSERT_RECORDS = """\
INSERT INTO {records} ({names})
SELECT {names} FROM jsonb_to_recordset(%s) AS r({typed})
ON CONFLICT DO NOTHING"""
_INSERT_UNPARSED = """\
INSERT INTO {unparsed} (id, imei, received_at, error, raw)
SELECT id, imei, received_at, error, decode(hex, 'hex')
FROM jsonb_to_recordset(%s)
    AS u(id text, imei text, received_at timestamptz, error text, hex text)
ON CONFLICT DO NOTHING"""
_INSERT_COMMAND_RESULTS = """\
INSERT INTO {command_results} (id, imei, received_at, command_result)
SELECT id, imei, received_at, command_result
FROM jsonb_to_recordset(%s)
    AS c(id text, imei text, received_at timestamptz, command_result jsonb)
ON CONFLICT DO NOTHING"""
MISSING_TABLES = sql.SQL(
    "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regclass(name) IS NULL"
)
"""The names, of those given as a text array, that name no table."""


@attrs.frozen
class Tables:
    """The sink's three tables, named after the records' *table*."""

    schema: str | None
    table: str

    @property
    def names(self) -> tuple[str, str, str]:
        """The records, unparsed frames and command results tables."""
        return self.table, f"{self.table}_unparsed", f"{self.table}_command_results"

    def declarations(self) -> list[sql.Composed]:
        """``CREATE ... IF NOT EXISTS`` for each table and index."""
        records, unparsed, command_results = map(self._identifier, self.names)
        columns = sql.SQL(",\n").join(
            sql.SQL("    {} {}{}").format(
                sql.Identifier(name),
                sql.SQL(kind),
                sql.SQL("" if name in _NULLABLE else " NOT NULL"),
            )
            for name, kind in _RECORD_COLUMNS
        )
        return [
            sql.SQL(_RECORDS_TABLE).format(records=records, columns=columns),
            sql.SQL(_RECORDS_INDEX).format(
                index=sql.Identifier(f"{self.table}_imei_timestamp"), records=records
            ),
            sql.SQL(_UNPARSED_TABLE).format(unparsed=unparsed),
            sql.SQL(_COMMAND_RESULTS_TABLE).format(command_results=command_results),
        ]

    def insert_records(self) -> sql.Composed:
        """Inserts the records of a JSON array parameter, skipping known ids."""
        names = sql.SQL(", ").join(sql.Identifier(name) for name, _ in _RECORD_COLUMNS)
        typed = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind))
            for name, kind in _RECORD_COLUMNS
        )
        return sql.SQL(_INSERT_RECORDS).format(
            records=self._identifier(self.names[0]), names=names, typed=typed
        )

    def insert_unparsed(self) -> sql.Composed:
        """Inserts the unparsed frames of a JSON array parameter."""
        return sql.SQL(_INSERT_UNPARSED).format(
            unparsed=self._identifier(self.names[1])
        )

    def insert_command_results(self) -> sql.Composed:
        """Inserts the command results of a JSON array parameter."""
        return sql.SQL(_INSERT_COMMAND_RESULTS).format(
            command_results=self._identifier(self.names[2])
        )

    def qualified(self) -> list[str]:
        """The tables' names as ``to_regclass`` takes them, quoted."""
        schema = "" if self.schema is None else f'"{self.schema}".'
        return [f'{schema}"{name}"' for name in self.names]

    def _identifier(self, name: str) -> sql.Identifier:
        if self.schema is None:
            return sql.Identifier(name)
        return sql.Identifier(self.schema, name)
