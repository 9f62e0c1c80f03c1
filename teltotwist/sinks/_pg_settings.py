# -*- test-case-name: tests.test_sinks_postgresql -*-
"""``--sink postgresql:URL``: the URL, checked and turned into
:class:`PostgresSettings`.

libpq parses the URL, so every libpq parameter (``sslmode``,
``sslrootcert``, ``connect_timeout`` ...) passes through as
``?NAME=VALUE``; the sink's own options are ``table`` and ``declare``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote, urlsplit, urlunsplit

import attrs
from psycopg import ProgrammingError
from psycopg.conninfo import conninfo_to_dict

from teltotwist.sinks import _url
from teltotwist.sinks.interfaces import SinkConfigurationError

PASSWORD_VARIABLE = "TELTOTWIST_PG_PASSWORD"
"""The environment variable holding the password when the URL has none."""
LIBPQ_PASSWORD_VARIABLE = "PGPASSWORD"
"""libpq's own variable, used when neither the URL nor
:data:`PASSWORD_VARIABLE` gives a password."""
DEFAULT_TABLE = "teltonika_records"
_OPTIONS = ("table", "declare")
_SCHEMES = ("postgresql", "postgres")
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
MAX_IDENTIFIER = 63
"""Bytes in a PostgreSQL identifier."""
LONGEST_SUFFIX = "_command_results"
"""The longest suffix the sink adds to the table name for its other tables."""


@attrs.frozen
class PostgresSettings:
    """Where and how the ``postgresql`` sink stores items."""

    connection: Mapping[str, str] = attrs.field(repr=False)
    """libpq's connection parameters (``host``, ``dbname``, ``password``,
    ``sslmode`` ...)."""
    schema: str | None = None
    """The schema of the tables; None for the first of the ``search_path``."""
    table: str = DEFAULT_TABLE
    """The records' table; unparsed frames and command results go to
    ``TABLE_unparsed`` and ``TABLE_command_results``."""
    declare: bool = True
    """Create the tables and indexes that are missing when connecting."""

    @property
    def url(self) -> str:
        """The database and table as a URL without the password, for logs."""
        params = self.connection
        user = params.get("user")
        userinfo = "" if user is None else quote(user, safe="") + "@"
        host = params.get("host", "")
        if ":" in host and "," not in host:
            host = f"[{host}]"
        port = params.get("port")
        where = host if port is None else f"{host}:{port}"
        database = quote(params.get("dbname", ""), safe="")
        return f"postgresql://{userinfo}{where}/{database}?table={self.qualified_table}"

    @property
    def qualified_table(self) -> str:
        """``SCHEMA.TABLE``, or ``TABLE`` without a schema."""
        return self.table if self.schema is None else f"{self.schema}.{self.table}"


def settings_from_url(url: str, environ: Mapping[str, str]) -> PostgresSettings:
    """The settings *url* describes; the password may come from *environ*.

    :raises SinkConfigurationError: naming what is wrong, never quoting the
        password.
    """
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise SinkConfigurationError(
            f"the PostgreSQL URL is malformed: {error}"
        ) from None
    if parts.scheme not in _SCHEMES:
        raise SinkConfigurationError(
            "the postgresql sink needs a postgresql:// URL, such as --sink "
            "postgresql:postgresql://teltotwist@db.example/telematics?table=records"
        )
    ours, libpq_query = _split_query(parts.query)
    options = _url.options(ours, _OPTIONS, "PostgreSQL")
    libpq_url = urlunsplit(parts._replace(query=libpq_query))
    try:
        connection = conninfo_to_dict(libpq_url)
    except ProgrammingError as error:
        # libpq's messages quote a bad parameter, never the whole URL.
        raise SinkConfigurationError(f"the PostgreSQL URL: {error}") from None
    given = connection.get("password")
    password = _url.password(
        None if given is None else quote(str(given)), PASSWORD_VARIABLE, environ
    )
    if password is None:
        password = environ.get(LIBPQ_PASSWORD_VARIABLE) or None
    parameters = {name: str(value) for name, value in connection.items()}
    parameters.pop("password", None)
    if password is not None:
        parameters["password"] = password
    schema, table = _table(options.get("table", DEFAULT_TABLE))
    return PostgresSettings(
        connection=parameters,
        schema=schema,
        table=table,
        declare=_url.boolean("declare", options.get("declare", "true")),
    )


def _split_query(query: str) -> tuple[str, str]:
    """The sink's own ``NAME=VALUE`` pairs, and libpq's."""
    ours: list[str] = []
    theirs: list[str] = []
    for pair in query.split("&") if query else ():
        name = pair.partition("=")[0]
        (ours if name in _OPTIONS else theirs).append(pair)
    return "&".join(ours), "&".join(theirs)


def _table(name: str) -> tuple[str | None, str]:
    """``TABLE`` or ``SCHEMA.TABLE``, each a lower-case SQL identifier."""
    schema, dot, table = name.rpartition(".")
    longest_table = MAX_IDENTIFIER - len(LONGEST_SUFFIX)
    if not (
        _is_identifier(table, longest_table)
        and (not dot or _is_identifier(schema, MAX_IDENTIFIER))
    ):
        raise SinkConfigurationError(
            f"table {name!r} must be TABLE or SCHEMA.TABLE, each of lower-case "
            "letters, digits and _ (not starting with a digit), the table at "
            f"most {longest_table} characters and the schema {MAX_IDENTIFIER}"
        )
    return (schema if dot else None), table


def _is_identifier(name: str, longest: int) -> bool:
    return bool(_IDENTIFIER.fullmatch(name)) and len(name) <= longest
