"""Backfill runs of ``dump_sink``, recorded in ClickHouse so an interrupted backfill can resume.

``dump_sink`` writes a ``started`` row when a run begins and a ``finished`` row when it ends. A run
killed by Ctrl-C or a crash has no ``finished`` row; ``dump_sink --resume`` finds the latest such run
of the sink and *continues it*, under the same run id: it writes a ``resumed`` row, skips every key
that has a complete dump started after that run began (the ledger already says which keys completed)
unless the key's source changed since that dump, and its ``finished`` row closes the run. So a resume
that is interrupted in turn is resumed with the work of both, and once a resume finishes there is
nothing left to resume (the next ``--resume`` is a plain run). Nothing is stored on the local disk,
so a backfill can resume from another machine or container.

Every time recorded here is ClickHouse's (:meth:`Connection.server_time`), never the writing host's:
dumps carry the server's time (``dumped_at``), and a run's start is compared with them. A host whose
clock is minutes fast or slow then resumes exactly where it stopped, and so does another host.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

import attrs

from ..clickhouse import Connection
from ..core.schema import Column, Schema, Table
from ..core.sink import Sink
from ..core.visibility import CURRENT_VIEW, DATETIME
from . import ledger

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
    """Record the start of a run; returns its id and start time (the server's clock)."""
    run_id, at = uuid.uuid4(), connection.server_time()
    _record(connection, run_id, sink, "started", at, "")
    return run_id, at


def resume_run(connection: Connection, run_id: uuid.UUID, sink: str) -> None:
    """Record that run ``run_id`` (interrupted) is continued; its start stays the one it had."""
    _record(connection, run_id, sink, "resumed", connection.server_time(), "")


def finish_run(connection: Connection, run_id: uuid.UUID, sink: str, summary: str) -> None:
    """Record that a run ended (even with failed keys: those are reported, not resumed)."""
    _record(connection, run_id, sink, "finished", connection.server_time(), summary)


def _record(connection: Connection, run_id: uuid.UUID, sink: str, state: str, at: datetime, summary: str) -> None:
    connection.insert_columns(RUNS.name, RUNS.column_names, RUNS.column_types,
                          [[run_id], [sink], [state], [at], [summary]])


def interrupted_run(connection: Connection, sink: str) -> tuple[uuid.UUID, datetime] | None:
    """Id and start time of the latest run of ``sink`` that never finished, or None."""
    table = connection.renderer.qualified(RUNS.name)
    rows = connection.query(
        f"SELECT run_id, min(at) AS started FROM {table} WHERE sink = {{sink:String}} "  # noqa: S608 - identifiers
        "GROUP BY run_id HAVING countIf(state = 'finished') = 0 ORDER BY started DESC LIMIT 1",
        {"sink": sink},
    )
    if not rows:
        return None
    run_id, started = rows[0]
    run_id = run_id if isinstance(run_id, uuid.UUID) else uuid.UUID(str(run_id))
    return run_id, started if started.tzinfo else started.replace(tzinfo=UTC)


def interrupted_run_start(connection: Connection, sink: str) -> datetime | None:
    """Start time of the latest run of ``sink`` that never finished, or None."""
    found = interrupted_run(connection, sink)
    return found[1] if found else None


def dumps_since(connection: Connection, sink: str, since: datetime) -> dict[str, str]:
    """Key -> source version of each key of ``sink`` whose current complete dump started at or after ``since``."""
    view = connection.renderer.qualified(CURRENT_VIEW)
    rows = connection.query(
        f"SELECT key, source_version FROM {view} WHERE sink = {{sink:String}} "  # noqa: S608 - identifiers
        "AND dumped_at >= {since:DateTime64(6, 'UTC')}",
        {"sink": sink, "since": since},
    )
    return {key: version for key, version in rows}


def keys_done_since(connection: Connection, sink: str, since: datetime) -> set[str]:
    """Keys of ``sink`` whose current complete dump started at or after ``since``."""
    return set(dumps_since(connection, sink, since))


@attrs.frozen
class Resumption:
    """What a resumed run still has to dump, of the keys it selected."""

    remaining: list[str]
    #: keys skipped: dumped since the interrupted run began, their source unchanged since
    done: int
    #: keys dumped since the run began whose source changed since: dumped again
    changed: int


def resumption(sink: Sink, selected: Iterable[str], done: Mapping[str, str], started: datetime) -> Resumption:
    """Which of ``selected`` a run resuming the one that ``started`` must still dump.

    ``done`` holds the keys dumped since then with the source version of their dump. Such a key is
    skipped unless its source moved on: a version other than its dump's (a course published since
    it was dumped), or -- for a sink without versions -- a key the sink lists as changed since the
    run began. A key whose version cannot be read is kept: its dump will say what is wrong.
    """
    remaining: list[str] = []
    skipped = changed = 0
    changed_since: set[str] | None = None
    with sink.job():  # a version check and the dump after it read the source once
        for raw in selected:
            try:
                key = sink.normalize_key(raw)
            except Exception:  # a malformed key is no ledger key: its dump reports it
                remaining.append(raw)
                continue
            if key not in done:
                remaining.append(raw)
                continue
            try:
                version = sink.version(key)
            except Exception:
                remaining.append(raw)
                continue
            if version is None:
                if changed_since is None:
                    listed = sink.keys_since(started)
                    changed_since = set(listed) if listed is not None else set()
                moved = key in changed_since or raw in changed_since
            else:
                moved = bool(version) and version != done[key]
            if moved:
                changed += 1
                remaining.append(raw)
            else:
                skipped += 1
    return Resumption(remaining, skipped, changed)


def current_keys_snapshot(connection: Connection, sink: str) -> set[str]:
    """The keys of ``sink`` with a current (non-tombstone) dump, read from the ledger page by page.

    Empty when there is no ledger yet (a dry run creates none). Take it before listing the source.
    """
    return set(ledger.current_keys(connection, sink)) if ledger.exists(connection) else set()


def unlisted_keys(sink: Sink, current: Iterable[str], listed: Iterable[str], keep: Iterable[str] = ()) -> list[str]:
    """The keys of ``current`` that ``listed`` (the source's listing) and ``keep`` do not name, sorted.

    The ledger holds keys as :meth:`Sink.normalize_key` made them, so each listed key counts both as
    given and normalized; a listed key the sink cannot normalize still protects its raw text.
    """
    named: set[str] = set()
    for raw in itertools.chain(listed, keep):
        named.add(raw)
        try:
            named.add(sink.normalize_key(raw))
        except Exception:  # a malformed listed key names no ledger key but its own text
            continue
    return sorted(key for key in current if key not in named)
