"""PostgresSink against the real PostgreSQL: rows in the contract's values,
no duplicate on resend, group commit, the documented schema and queries,
faults through a FaultProxy in front of the server, and the whole gateway
under ``twistd`` with the virtual tracker."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import pytest_twisted
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row
from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.endpoints import (
    TCP4ClientEndpoint,
    connectProtocol,
    serverFromString,
)
from twisted.internet.interfaces import IListeningPort
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

import teltotwist
from teltotwist.codec import AvlPacket, encode_login, tcp_ack
from teltotwist.control.health import not_ready_reasons
from teltotwist.gateway.items import (
    CommandResult,
    TrackerRecord,
    UnparsedFrame,
)
from teltotwist.sinks import SinkConfigurationError
from teltotwist.sinks.postgresql import (
    PASSWORD_VARIABLE,
    PostgresSettings,
    PostgresSink,
    PostgresSinkError,
    settings_from_url,
)
from teltotwist.sinks.registry import make_sink
from tests.conftest import running_twistd
from tests.faultproxy import FaultProxy
from tests.net import PortReportingEndpoint, TrackerClient
from tests.services import POSTGRESQL, require
from tests.vectors import TCP_AVL_VALID, by_id

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"
IMEI = "356307042441013"
OTHER_IMEI = "352093081452251"
RECEIVED_AT_MS = 1_795_251_600_123
ONE_RECORD = by_id("wiki-c8-tcp-1").data
FOURTEEN_RECORDS = by_id("traccar-26-avl").data
ATTRIBUTES = {"external_voltage": 12.682, "ignition": True, "temperature": -4.5}


def records(frame: bytes, imei: str = IMEI, **named: Any) -> list[TrackerRecord]:
    """The records of *frame* as the gateway delivers them from *imei*."""
    packet = teltotwist.decode(frame)
    assert isinstance(packet, AvlPacket)
    return [
        TrackerRecord(imei, packet.codec, record, RECEIVED_AT_MS, **named)
        for record in packet.records
    ]


RECORDS = records(FOURTEEN_RECORDS)
UNPARSED = UnparsedFrame(IMEI, b"\x00\x00\x00\x00\x00\x00\x00\x05\x8e\x01", "bad", 0)
COMMAND_RESULT = CommandResult(
    IMEI, {"id": "c-1", "status": "answered", "response": "ok"}, RECEIVED_AT_MS
)


# --- The database: each test in a schema of its own ------------------------


def admin(schema: str | None = None) -> psycopg.Connection[dict[str, Any]]:
    """A connection of the test's own, straight to the server (never through
    the proxy, which runs in the reactor this blocks); in *schema*."""
    host, port = require("PostgreSQL", POSTGRESQL)
    options = {} if schema is None else {"options": f"-c search_path={schema}"}
    conninfo = make_conninfo(
        host=host, port=port, dbname="test", user="postgres", **options
    )
    return psycopg.connect(conninfo, autocommit=True, row_factory=dict_row)


def query(schema: str, statement: str, *parameters: object) -> list[dict[str, Any]]:
    """The rows *statement* returns (none for a statement without rows)."""
    with admin(schema) as connection:
        cursor = connection.execute(statement.encode(), parameters or None)
        return cursor.fetchall() if cursor.description else []


@contextmanager
def scratch_schema() -> Iterator[str]:
    """A new schema, dropped with all it holds afterwards."""
    name = f"teltotwist_test_{uuid.uuid4().hex[:12]}"
    with admin() as connection:
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with admin() as connection:
            connection.execute(
                sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name))
            )


@pytest.fixture
def schema() -> Iterator[str]:
    with scratch_schema() as name:
        yield name


def settings(schema: str, port: int | None = None, **changes: Any) -> PostgresSettings:
    host, direct_port = require("PostgreSQL", POSTGRESQL)
    connection = {
        "host": host,
        "port": str(port or direct_port),
        "dbname": "test",
        "user": "postgres",
    }
    return PostgresSettings(connection, schema=schema, table="records", **changes)


Start = Callable[..., PostgresSink]


@pytest_twisted.async_yield_fixture
async def start() -> AsyncIterator[Start]:
    """Starts PostgresSinks (retrying every 50 ms); stops them after the test."""
    started: list[PostgresSink] = []

    def start_sink(settings: PostgresSettings, **options: Any) -> PostgresSink:
        options.setdefault("retry_policy", lambda attempt: 0.05)
        sink = PostgresSink(settings, reactor, **options)  # type: ignore[arg-type]
        sink.startService()
        started.append(sink)
        return sink

    yield start_sink
    for sink in started:
        if sink.running:
            await sink.stopService()


async def connected(
    start: Start, settings: PostgresSettings, **options: Any
) -> PostgresSink:
    sink = start(settings, **options)
    await sink.whenReady().addTimeout(10, reactor)
    return sink


@pytest_twisted.async_yield_fixture
async def proxy() -> AsyncIterator[tuple[FaultProxy, int]]:
    """A FaultProxy in front of PostgreSQL, and the port it listens on."""
    faults = FaultProxy(*require("PostgreSQL", POSTGRESQL))
    port = await faults.start()
    yield faults, port
    await faults.stop()


def sleep(seconds: float) -> Deferred[None]:
    return deferLater(reactor, seconds, lambda: None)


async def eventually(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the time allowed"
        await sleep(0.02)


def refusal(sink: PostgresSink) -> str:
    """The error of a delivery that *sink* fails at once."""
    delivery = sink.deliver(RECORDS[:1])
    assert delivery.called, "the delivery did not fail at once"
    failures: list[Failure] = []
    delivery.addErrback(failures.append)
    assert failures and failures[0].check(PostgresSinkError)
    return failures[0].getErrorMessage()


def stored_ids(schema: str) -> list[str]:
    return [row["id"] for row in query(schema, "SELECT id FROM records ORDER BY id")]


def as_record_json(row: dict[str, Any]) -> dict[str, Any]:
    """A records row as the record JSON it was stored from."""
    result = dict(row)
    for column in ("timestamp", "received_at"):
        moment: datetime = row[column]
        assert moment.microsecond % 1000 == 0
        result[column] = (
            moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{moment.microsecond // 1000:03d}Z"
        )
    for column in ("generation_type", "attributes"):
        if row[column] is None:
            del result[column]
    return result


# --- What a database user gets ---------------------------------------------


@pytest_twisted.ensureDeferred
async def test_each_record_is_one_row_holding_the_contract_values(
    schema: str, start: Start
) -> None:
    items = [
        record
        for number, vector in enumerate(TCP_AVL_VALID)
        for record in records(
            vector.data,
            IMEI if number % 2 else OTHER_IMEI,
            attributes=ATTRIBUTES if number % 3 else None,
        )
    ]
    sink = await connected(start, settings(schema))

    await sink.deliver(items)

    rows = query(schema, "SELECT * FROM records")
    # Some vectors hold the same record: one row each.
    assert {row["id"]: as_record_json(row) for row in rows} == {
        item.id: json.loads(item.line) for item in items
    }
    assert {item.codec.label for item in items} == {"8", "8E", "16"}


@pytest_twisted.ensureDeferred
async def test_a_resend_makes_no_duplicate_row(schema: str, start: Start) -> None:
    sink = await connected(start, settings(schema))

    await sink.deliver(RECORDS)
    await sink.deliver(RECORDS)  # resent later
    await gatherResults([sink.deliver(RECORDS), sink.deliver(RECORDS[3:])])  # together

    assert stored_ids(schema) == sorted(record.id for record in RECORDS)


@pytest_twisted.ensureDeferred
async def test_unparsed_frames_and_command_results_have_tables_of_their_own(
    schema: str, start: Start
) -> None:
    sink = await connected(start, settings(schema))

    await sink.deliver([UNPARSED, COMMAND_RESULT, *RECORDS[:1]])
    await sink.deliver([UNPARSED, COMMAND_RESULT])

    assert query(
        schema, "SELECT id, imei, received_at, error, raw FROM records_unparsed"
    ) == [
        {
            "id": UNPARSED.id,
            "imei": IMEI,
            "received_at": datetime(1970, 1, 1, tzinfo=UTC),
            "error": "bad",
            "raw": UNPARSED.raw,
        }
    ]
    assert query(schema, "SELECT * FROM records_command_results") == [
        {
            "id": COMMAND_RESULT.id,
            "imei": IMEI,
            "received_at": datetime.fromtimestamp(RECEIVED_AT_MS / 1000, UTC),
            "command_result": COMMAND_RESULT.command,
        }
    ]
    assert stored_ids(schema) == [RECORDS[0].id]


@pytest_twisted.ensureDeferred
async def test_a_nul_in_a_command_response_is_stored_as_u_fffd(
    schema: str, start: Start
) -> None:
    answer = {"id": "c-2", "status": "answered", "response": "GPS:\x001 Sat:\x00"}
    sink = await connected(start, settings(schema))

    await sink.deliver([CommandResult(IMEI, answer, RECEIVED_AT_MS), *RECORDS])

    [row] = query(schema, "SELECT command_result FROM records_command_results")
    assert row["command_result"]["response"] == "GPS:\ufffd1 Sat:\ufffd"
    assert len(stored_ids(schema)) == len(RECORDS)


@pytest_twisted.ensureDeferred
async def test_deliveries_made_during_a_transaction_commit_together_in_the_next(
    schema: str, start: Start
) -> None:
    sink = await connected(start, settings(schema))

    await gatherResults(
        [
            sink.deliver(RECORDS[:2]),
            sink.deliver(RECORDS[2:5]),
            sink.deliver(RECORDS[5:]),
        ]
    )

    transactions = query(
        schema, "SELECT count(*) AS rows FROM records GROUP BY xmin::text ORDER BY 1"
    )
    assert [row["rows"] for row in transactions] == [2, 12]


@pytest_twisted.ensureDeferred
async def test_a_failed_transaction_fails_every_delivery_in_it(
    schema: str, start: Start
) -> None:
    sink = await connected(start, settings(schema))
    refused = RECORDS[5]
    query(
        schema,
        f"ALTER TABLE records ADD CONSTRAINT refused CHECK (id <> '{refused.id}')",
    )

    deliveries: list[Deferred[Any]] = [
        sink.deliver(RECORDS[:1]),  # alone in the first transaction
        sink.deliver(RECORDS[1:5]).addErrback(lambda failure: failure.value),
        sink.deliver([UNPARSED, *RECORDS[5:]]).addErrback(
            lambda failure: failure.value
        ),
    ]
    outcomes: list[object] = await gatherResults(deliveries)

    assert outcomes[0] is None
    assert all(isinstance(outcome, PostgresSinkError) for outcome in outcomes[1:])
    assert 'violates check constraint "refused"' in str(outcomes[1])
    assert stored_ids(schema) == [RECORDS[0].id]
    assert query(schema, "SELECT id FROM records_unparsed") == []
    await sink.deliver(RECORDS[:5])  # the connection is still good
    assert stored_ids(schema) == sorted(record.id for record in RECORDS[:5])


# --- The schema ------------------------------------------------------------


def layout(schema: str) -> dict[str, object]:
    """The columns, keys and indexes of *schema*'s tables."""
    columns = query(
        schema,
        "SELECT table_name, column_name, data_type, is_nullable "
        "FROM information_schema.columns WHERE table_schema = %s "
        "ORDER BY table_name, ordinal_position",
        schema,
    )
    indexes = query(
        schema,
        "SELECT indexname, replace(indexdef, %s, '') AS definition "
        "FROM pg_indexes WHERE schemaname = %s ORDER BY indexname",
        f"{schema}.",
        schema,
    )
    return {"columns": columns, "indexes": indexes}


@pytest.fixture
def other_schema() -> Iterator[str]:
    with scratch_schema() as name:
        yield name


@pytest_twisted.ensureDeferred
async def test_the_sink_creates_the_documented_tables(
    schema: str, other_schema: str, start: Start
) -> None:
    query(other_schema, (EXAMPLES / "postgresql_schema.sql").read_text())

    await connected(
        start,
        PostgresSettings(
            settings(schema).connection, schema=schema, table="teltonika_records"
        ),
    )

    assert layout(schema) == layout(other_schema)
    assert layout(schema)["indexes"]


@pytest_twisted.ensureDeferred
async def test_with_declare_false_the_sink_waits_for_the_tables(
    schema: str, start: Start
) -> None:
    sink = start(settings(schema, declare=False))
    await eventually(lambda: "declare=false" in sink.status)
    assert not sink.ready
    assert "no table " in refusal(sink)

    query(
        schema,
        (EXAMPLES / "postgresql_schema.sql")
        .read_text()
        .replace("teltonika_records", "records"),
    )
    await sink.whenReady().addTimeout(10, reactor)
    await sink.deliver(RECORDS)

    assert stored_ids(schema) == sorted(record.id for record in RECORDS)


@pytest.fixture
def writer_role(schema: str) -> Iterator[str]:
    """A role that may only use *schema* and insert into tables made there."""
    role = f"teltotwist_test_{uuid.uuid4().hex[:12]}"
    with admin() as connection:
        for statement in (
            "CREATE ROLE {role} LOGIN",
            "GRANT USAGE ON SCHEMA {schema} TO {role}",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} "
            "GRANT INSERT ON TABLES TO {role}",
        ):
            connection.execute(
                sql.SQL(statement).format(
                    role=sql.Identifier(role), schema=sql.Identifier(schema)
                )
            )
    yield role
    with admin() as connection:
        connection.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        connection.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest_twisted.ensureDeferred
async def test_a_role_that_may_only_insert_is_enough_once_the_tables_exist(
    schema: str, writer_role: str, start: Start
) -> None:
    made = await connected(start, settings(schema))
    await made.stopService()
    connection = {**settings(schema).connection, "user": writer_role}

    sink = await connected(start, PostgresSettings(connection, schema, "records"))
    await sink.deliver([*RECORDS, *RECORDS, UNPARSED, COMMAND_RESULT])

    assert stored_ids(schema) == sorted(record.id for record in RECORDS)


@pytest_twisted.ensureDeferred
async def test_a_table_partitioned_by_month_as_documented_takes_records(
    schema: str, start: Start
) -> None:
    query(schema, (EXAMPLES / "postgresql_partitioned.sql").read_text())
    sink = await connected(
        start,
        PostgresSettings(
            settings(schema).connection, schema=schema, table="teltonika_records"
        ),
    )
    june_2019 = records(ONE_RECORD)

    await sink.deliver(RECORDS + june_2019)
    await sink.deliver(june_2019)  # resent

    partitions = query(
        schema,
        "SELECT tableoid::regclass::text AS partition, count(*) AS rows "
        "FROM teltonika_records GROUP BY 1 ORDER BY 1",
    )
    assert partitions == [
        {"partition": "teltonika_records_2019_06", "rows": 1},
        {"partition": "teltonika_records_default", "rows": 14},
    ]


@pytest_twisted.ensureDeferred
async def test_the_documented_queries_answer_as_documented(
    schema: str, start: Start
) -> None:
    sink = await connected(
        start,
        PostgresSettings(
            settings(schema).connection, schema=schema, table="teltonika_records"
        ),
    )
    june = records(by_id("wiki-c8-tcp-3").data)  # 2 records, 2019-06-10
    await sink.deliver(
        records(ONE_RECORD) + june + records(FOURTEEN_RECORDS, OTHER_IMEI)
    )

    def run(name: str) -> list[dict[str, Any]]:
        return query(schema, (EXAMPLES / f"postgresql_{name}.sql").read_text())

    latest = run("latest_positions")
    track = run("track")
    per_day = run("records_per_day")

    mine = records(ONE_RECORD) + june
    newest_mine = max(mine, key=lambda item: item.record.timestamp_ms)
    newest_other = max(RECORDS, key=lambda item: item.record.timestamp_ms)
    assert [(row["imei"], row["latitude"], row["longitude"]) for row in latest] == [
        (OTHER_IMEI, newest_other.record.latitude, newest_other.record.longitude),
        (IMEI, newest_mine.record.latitude, newest_mine.record.longitude),
    ]
    in_the_hour = sorted(
        (item for item in mine if _in_june_10th_10h(item)),
        key=lambda item: item.record.timestamp_ms,
    )
    assert in_the_hour
    assert [row["timestamp"].timestamp() * 1000 for row in track] == [
        item.record.timestamp_ms for item in in_the_hour
    ]
    expected_days: dict[tuple[str, str], int] = {}
    for item in mine + records(FOURTEEN_RECORDS, OTHER_IMEI):
        day = datetime.fromtimestamp(item.record.timestamp_ms / 1000, UTC).date()
        key = (day.isoformat(), item.imei)
        expected_days[key] = expected_days.get(key, 0) + 1
    by_imei = sorted(expected_days.items(), key=lambda entry: entry[0][1])
    newest_day_first = sorted(by_imei, key=lambda entry: entry[0][0], reverse=True)
    assert [
        (row["day"].isoformat(), row["imei"], row["records"]) for row in per_day
    ] == [(day, imei, count) for (day, imei), count in newest_day_first]


def _in_june_10th_10h(item: TrackerRecord) -> bool:
    start = datetime(2019, 6, 10, 10, tzinfo=UTC).timestamp() * 1000
    return start <= item.record.timestamp_ms < start + 3_600_000


# --- Faults ----------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_while_the_database_is_unreachable_deliveries_fail_at_once(
    schema: str, proxy: tuple[FaultProxy, int], start: Start
) -> None:
    faults, port = proxy
    sink = await connected(start, settings(schema, port), probe_interval=0.05)

    faults.refusing = True
    faults.cut()
    await eventually(lambda: not sink.ready)

    assert refusal(sink).startswith(
        f"not connected to {sink.settings.url} (reconnecting in the background): "
    )
    assert sink.status == refusal(sink)
    faults.refusing = False
    await sink.whenReady().addTimeout(10, reactor)
    await sink.deliver(RECORDS)
    assert stored_ids(schema) == sorted(record.id for record in RECORDS)


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param("muted", id="the commit lands, its answer is lost"),
        pytest.param("stalled", id="nothing reaches the server"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_a_cut_mid_transaction_means_no_ack_and_the_resend_is_stored_once(
    fault: str, schema: str, proxy: tuple[FaultProxy, int]
) -> None:
    faults, port = proxy
    sink = PostgresSink(settings(schema, port), reactor, retry_policy=lambda n: 0.05)  # type: ignore[arg-type]
    endpoint = PortReportingEndpoint(
        serverFromString(reactor, "tcp:0:interface=127.0.0.1")
    )
    gateway = teltotwist.makeService(reactor, endpoint, [sink], drain_timeout=0.5)
    gateway.startService()
    try:
        listening: IListeningPort = await endpoint.port
        gateway_port: int = listening.getHost().port  # type: ignore[attr-defined]
        tracker = await logged_in(gateway_port)
        tracker.send(ONE_RECORD)
        assert await tracker.read(4) == tcp_ack(1)

        setattr(faults, fault, True)
        tracker.send(FOURTEEN_RECORDS)
        if fault == "muted":
            await eventually(lambda: len(stored_ids(schema)) == 15)
        else:
            await sleep(0.2)
            assert len(stored_ids(schema)) == 1
        faults.cut()
        setattr(faults, fault, False)
        with pytest.raises(ConnectionError):
            await tracker.read(4)  # closed without an ACK
        assert tracker.received == b""

        await sink.whenReady().addTimeout(10, reactor)
        tracker = await logged_in(gateway_port)
        tracker.send(FOURTEEN_RECORDS)  # the tracker's resend
        assert await tracker.read(4) == tcp_ack(14)
    finally:
        await gateway.stopService()

    assert stored_ids(schema) == sorted(
        record.id for record in records(ONE_RECORD) + RECORDS
    )
    assert not sink.running


@pytest_twisted.ensureDeferred
async def test_readiness_says_why_the_sink_is_not_ready(
    schema: str, proxy: tuple[FaultProxy, int]
) -> None:
    faults, port = proxy
    faults.refusing = True
    sink = PostgresSink(settings(schema, port), reactor, retry_policy=lambda n: 0.05)  # type: ignore[arg-type]
    gateway = teltotwist.makeService(
        reactor,
        serverFromString(reactor, "tcp:0:interface=127.0.0.1"),
        [sink],
        sink_ready_timeout=0.2,
    )
    gateway.startService()
    try:
        await gateway.whenListening().addTimeout(10, reactor)
        await eventually(lambda: "the last attempt failed" in sink.status)
        reasons = not_ready_reasons(gateway)
        faults.refusing = False
        await sink.whenReady().addTimeout(10, reactor)
        assert not_ready_reasons(gateway) == []
    finally:
        await gateway.stopService()

    [reason] = reasons
    assert reason.startswith(
        f"sink {sink.name} not ready: not connected to {sink.settings.url} "
        "(reconnecting in the background): the last attempt failed: "
    )
    assert f'connection to server at "127.0.0.1", port {port} failed: ' in reason


async def logged_in(port: int) -> TrackerClient:
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
    tracker: TrackerClient = await connectProtocol(endpoint, TrackerClient())
    tracker.send(encode_login(IMEI))
    assert await tracker.read(1) == b"\x01"
    return tracker


@pytest_twisted.ensureDeferred
async def test_a_transaction_that_hangs_fails_after_the_commit_timeout(
    schema: str, proxy: tuple[FaultProxy, int], start: Start
) -> None:
    faults, port = proxy
    sink = await connected(start, settings(schema, port), commit_timeout=0.3)
    faults.stalled = True

    with pytest.raises(
        PostgresSinkError, match=r"did not commit: no commit within 0.3 s"
    ):
        await sink.deliver(RECORDS)

    assert stored_ids(schema) == []
    faults.stalled = False
    await sink.whenReady().addTimeout(10, reactor)  # on a new connection


@pytest_twisted.ensureDeferred
async def test_past_max_queued_items_deliveries_fail_at_once(
    schema: str, proxy: tuple[FaultProxy, int], start: Start
) -> None:
    faults, port = proxy
    sink = await connected(start, settings(schema, port), max_queued=10)
    faults.stalled = True
    in_flight = sink.deliver(RECORDS[:5])
    queued = sink.deliver(RECORDS[4:])

    assert refusal(sink).startswith(
        f"10 items await a transaction to {sink.settings.url}, and the sink allows 10"
    )
    faults.stalled = False
    faults.cut()
    for delivery in (in_flight, queued):
        with pytest.raises(PostgresSinkError):
            await delivery


@pytest_twisted.ensureDeferred
async def test_stopping_commits_the_queued_deliveries_first(
    schema: str, start: Start
) -> None:
    sink = await connected(start, settings(schema))
    first = sink.deliver(RECORDS[:4])
    second = sink.deliver(RECORDS[4:])

    await sink.stopService()

    assert first.called and second.called
    await gatherResults([first, second])
    assert stored_ids(schema) == sorted(record.id for record in RECORDS)
    assert "is not running" in refusal(sink)


# --- Configuration -----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "connection", "table"),
    [
        (
            "postgresql://teltotwist@db.example/fleet",
            {"user": "teltotwist", "host": "db.example", "dbname": "fleet"},
            (None, "teltonika_records"),
        ),
        (
            "postgres://u@[::1]:6432/db?table=telematics.positions&sslmode=verify-full"
            "&sslrootcert=/etc/ca.pem&declare=false",
            {
                "user": "u",
                "host": "::1",
                "port": "6432",
                "dbname": "db",
                "sslmode": "verify-full",
                "sslrootcert": "/etc/ca.pem",
            },
            ("telematics", "positions"),
        ),
    ],
)
def test_parses_urls(
    url: str, connection: dict[str, str], table: tuple[str | None, str]
) -> None:
    parsed = settings_from_url(url, {})

    assert dict(parsed.connection) == connection
    assert (parsed.schema, parsed.table) == table
    assert parsed.declare == ("declare=false" not in url)


def test_the_password_comes_from_the_url_or_the_environment_never_both() -> None:
    url = "postgresql://u@h/db"
    for environ, password in [
        ({PASSWORD_VARIABLE: "s3cret"}, "s3cret"),
        ({"PGPASSWORD": "libpq's"}, "libpq's"),
        ({PASSWORD_VARIABLE: "ours", "PGPASSWORD": "libpq's"}, "ours"),
        ({}, None),
    ]:
        assert settings_from_url(url, environ).connection.get("password") == password
    assert (
        settings_from_url("postgresql://u:p%40ss@h/db", {}).connection["password"]
        == "p@ss"
    )
    with pytest.raises(SinkConfigurationError, match="given twice"):
        settings_from_url("postgresql://u:secret@h/db", {PASSWORD_VARIABLE: "s"})


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:secret@h/db", "needs a postgresql:// URL"),
        ("postgresql://u:secret@h/db?bogus=1", 'invalid URI query parameter: "bogus"'),
        ("postgresql://u:secret@h/db?table=Records", "lower-case"),
        ("postgresql://u:secret@h/db?table=a.b.c", "TABLE or SCHEMA.TABLE"),
        ("postgresql://u:secret@h/db?table=" + "t" * 48, "at most 47"),
        ("postgresql://u:secret@h/db?table=x;drop", "lower-case"),
        ("postgresql://u:secret@h/db?declare=maybe", "declare must be true or false"),
        ("postgresql://u:secret@h/db?table=a&table=b", "given twice"),
    ],
)
def test_refuses_unusable_urls_without_quoting_the_password(
    url: str, message: str
) -> None:
    with pytest.raises(SinkConfigurationError, match=message) as raised:
        settings_from_url(url, {})
    assert "secret" not in str(raised.value)


def test_the_sink_kind_makes_a_sink_named_without_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PASSWORD_VARIABLE, "s3cret")
    sink = make_sink(
        "postgresql:postgresql://teltotwist@db.example:5433/fleet"
        "?table=telematics.positions&sslmode=require"
    )

    assert isinstance(sink, PostgresSink)
    assert sink.name == (
        "postgresql:postgresql://teltotwist@db.example:5433/fleet"
        "?table=telematics.positions"
    )
    assert sink.settings.connection["password"] == "s3cret"
    assert "s3cret" not in repr(sink.settings)


def test_importing_the_sink_imports_no_reactor() -> None:
    probe = (
        "import sys, teltotwist.sinks.postgresql; "
        "print('twisted.internet.reactor' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout == "False\n"


# --- Through twistd, with the virtual tracker ------------------------------


def test_the_virtual_trackers_records_reach_the_database_through_twistd(
    schema: str, tmp_path: Path
) -> None:
    host, port = require("PostgreSQL", POSTGRESQL)
    url = f"postgresql://postgres@{host}:{port}/test?table={schema}.records"
    (tmp_path / "models.csv").write_text(f"{IMEI},FMB640\n")
    with running_twistd(
        tmp_path, "--sink", f"postgresql:{url}", "--models", "models.csv"
    ) as twistd:
        finished = subprocess.run(
            [
                sys.executable,
                "-m",
                "teltotwist",
                "device",
                "--server",
                f"tcp:127.0.0.1:{twistd.port}",
                "--imei",
                IMEI,
                "--codec",
                "16",
                "--model",
                "FMB640",
                "--records-per-packet",
                "3",
                "--interval",
                "0.2",
                "--count",
                "2",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert finished.returncode == 0, finished.stderr
        twistd.process.terminate()
        twistd.process.communicate(timeout=30)

    # Both sinks got the same records: the file's JSON lines are the rows.
    filed = [
        json.loads(line)
        for line in (tmp_path / "records.jsonl").read_text().splitlines()
    ]
    rows = query(schema, "SELECT * FROM records ORDER BY timestamp, id")
    assert len(filed) == 6
    assert [as_record_json(row) for row in rows] == sorted(
        filed, key=lambda record: (record["timestamp"], record["id"])
    )
    assert all(row["attributes"] and row["generation_type"] is not None for row in rows)
