"""A worker's log lines, as the worker writes them and its parent relays
them: each keeps its source and level, and a parent holds little of a line
that does not end."""

from __future__ import annotations

import io
from collections.abc import Sequence

from twisted.logger import LogEvent, Logger, LogLevel, capturedLogs, formatEvent

from teltotwist.cluster.worker_log import (
    LONGEST_LINE,
    WorkerLines,
    worker_log_observer,
)


def relayed(events: Sequence[LogEvent]) -> list[tuple[str, LogLevel, str]]:
    return [
        (event["log_system"], event["log_level"], formatEvent(event))
        for event in events
    ]


def test_a_worker_line_keeps_its_source_and_level_through_the_parent() -> None:
    written = io.StringIO()
    worker_log = Logger(
        namespace="teltotwist.example", observer=worker_log_observer(2)(written)
    )
    worker_log.warn("sink {name} is slow", name="amqp")
    worker_log.info("two\nlines")
    text = written.getvalue().encode()

    with capturedLogs() as events:
        lines = WorkerLines(Logger(), "w2", LogLevel.info)
        for at in range(len(text)):  # split anywhere, even mid-line
            lines.feed(text[at : at + 1])
        lines.flush()

    assert relayed(events) == [
        ("w2 teltotwist.example#warn", LogLevel.warn, "sink amqp is slow"),
        ("w2 teltotwist.example#info", LogLevel.info, "two"),
        ("w2", LogLevel.info, "\tlines"),
    ]


def test_a_line_that_does_not_end_is_logged_in_pieces_as_it_grows() -> None:
    with capturedLogs() as events:
        lines = WorkerLines(Logger(), "w1 stderr", LogLevel.warn)
        for _ in range(5):
            lines.feed(b"y" * (LONGEST_LINE // 2 + 1))
        pieces = len(events)
        lines.feed(b"\n")

    assert pieces == 2
    assert [len(formatEvent(event)) for event in events] == [
        LONGEST_LINE,
        LONGEST_LINE,
        LONGEST_LINE // 2 + 5,
    ]
    assert {event["log_system"] for event in events} == {"w1 stderr"}
