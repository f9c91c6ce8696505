"""Backfill runs of ``dump_sink``, recorded in ClickHouse so an interrupted backfill can resume.

``dump_sink`` writes a ``started`` row when a run begins and a ``finished`` row when it ends. A run
killed by Ctrl-C or a crash has no ``finished`` row; ``dump_sink --resume`` finds the latest such run
of the sink and skips every key that has a complete dump started after that run began (the ledger
already says which keys completed). Nothing is stored on the local disk, so a backfill can resume
from another machine or container.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from ..clickhouse import Connection
from ..core.schema import Column, Schema, Table
from ..core.visibility import CURRENT_VIEW, DATETIME

RUNS = Table(
    "event_sinks_runs",
    (
        Column("run_id", "UUID"),
        Column("sink", "LowCardinality(String)"),
        Column("state", "LowCardinality(String)", "started or finished"),
        Column("at", DATETIME),
        Column("summary", "String"),
    ),
    order_by=("sink", "at"),
    comment="dump_sink runs, for --resume",
)


def runs_schema() -> Schema:
    """The runs table."""
    return Schema((RUNS,))


def start_run(connection: Connection, sink: str) -> tuple[uuid.UUID, datetime]:
    """Record the start of a run; returns its id and start time."""
    run_id, at = uuid.uuid4(), datetime.now(UTC)
    _record(connection, run_id, sink, "started", at, "")
    return run_id, at


def finish_run(connection: Connection, run_id: uuid.UUID, sink: str, summary: str) -> None:
    """Record that a run ended (even with failed keys: those are reported, not resumed)."""
    _record(connection, run_id, sink, "finished", datetime.now(UTC), summary)


def _record(connection: Connection, run_id: uuid.UUID, sink: str, state: str, at: datetime, summary: str) -> None:
    connection.insert_columns(RUNS.name, RUNS.column_names, RUNS.column_types,
                          [[run_id], [sink], [state], [at], [summary]])


def interrupted_run_start(connection: Connection, sink: str) -> datetime | None:
    """Start time of the latest run of ``sink`` that never finished, or None."""
    table = connection.renderer.qualified(RUNS.name)
    rows = connection.query(
        f"SELECT run_id, min(at) AS started FROM {table} WHERE sink = {{sink:String}} "  # noqa: S608 - identifiers
        "GROUP BY run_id HAVING countIf(state = 'finished') = 0 ORDER BY started DESC LIMIT 1",
        {"sink": sink},
    )
    if not rows:
        return None
    started = rows[0][1]
    return started if started.tzinfo else started.replace(tzinfo=UTC)


def keys_done_since(connection: Connection, sink: str, since: datetime) -> set[str]:
    """Keys of ``sink`` whose current complete dump started at or after ``since``."""
    view = connection.renderer.qualified(CURRENT_VIEW)
    rows = connection.query(
        f"SELECT key FROM {view} WHERE sink = {{sink:String}} "  # noqa: S608 - identifiers
        "AND dumped_at >= {since:DateTime64(6, 'UTC')}",
        {"sink": sink, "since": since},
    )
    return {r[0] for r in rows}
