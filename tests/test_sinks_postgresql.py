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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import pytest_twisted
from psycopg import sql
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
from teltotwist.gateway.items import (
    CommandResult,
    Item,
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
    return psycopg.connect(
        host=host,
        port=port,
        dbname="test",
        user="postgres",
        autocommit=True,
        row_factory=dict_row,
        **options,
    )


def query(schema: str, statement: str, *parameters: object) -> list[dict[str, Any]]:
    """The rows *statement* returns (none for a statement without rows)."""
    with admin(schema) as connection:
        cursor = connection.execute(statement.encode(), parameters or None)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture
def schema() -> Iterator[str]:
    name = f"teltotwist_test_{uuid.uuid4().hex[:12]}"
    with admin() as connection:
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    yield name
    with admin() as connection:
        connection.execute(
            sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name))
        )


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

    outcomes = await gatherResults(
        [
            sink.deliver(RECORDS[:1]),  # alone in the first transaction
            sink.deliver(RECORDS[1:5]).addErrback(lambda failure: failure.value),
            sink.deliver(RECORDS[5:]).addErrback(lambda failure: failure.value),
        ]
    )

    assert outcomes[0] is None
    assert all(isinstance(outcome, PostgresSinkError) for outcome in outcomes[1:])
    assert 'violates check constraint "refused"' in str(outcomes[1])
    assert stored_ids(schema) == [RECORDS[0].id]
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
    name = f"teltotwist_test_{uuid.uuid4().hex[:12]}"
    with admin() as connection:
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    yield name
    with admin() as connection:
        connection.execute(
            sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name))
        )


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
