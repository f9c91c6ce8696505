"""Aspects' table shapes: ``course_blocks`` and ``course_overviews`` as tutor-contrib-aspects creates them.

The columns, types, primary keys and sorting keys are those of tutor-contrib-aspects' migration 0007
(``event_sink`` database), which aspects-dbt's ``models/courses/sources.yml`` reads unchanged since. A
table that is absent is created with this shape (``ON CLUSTER`` and ``ReplicatedMergeTree`` when
``EVENT_SINKS["CLUSTER"]`` is set, as Aspects does); a table that exists is checked, never altered: it
must be a MergeTree-family table (or a Distributed table over one) holding every column the feed writes,
with a type that takes it.
"""

from __future__ import annotations

from typing import Any

import attrs

from ..clickhouse import Connection
from ..core.schema import identifier, quote
from ..errors import ConfigurationError


@attrs.frozen
class AspectsColumn:
    """One column of an Aspects table: its name, its type, and its DEFAULT expression ('' for none)."""

    name: str
    type: str
    default: str = ""


@attrs.frozen
class AspectsTable:
    """One of Aspects' event-sink tables."""

    name: str
    columns: tuple[AspectsColumn, ...]
    primary_key: tuple[str, ...]
    order_by: tuple[str, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _columns(*spec: tuple[str, ...]) -> tuple[AspectsColumn, ...]:
    return tuple(AspectsColumn(*column) for column in spec)


COURSE_BLOCKS = AspectsTable(
    "course_blocks",
    _columns(
        ("org", "String"), ("course_key", "String"), ("location", "String"), ("display_name", "String"),
        ("xblock_data_json", "String"), ("order", "Int32", "0"), ("edited_on", "String"), ("dump_id", "UUID"),
        ("time_last_dumped", "String"),
    ),
    primary_key=("org", "course_key", "location", "edited_on"),
    order_by=("org", "course_key", "location", "edited_on", "order"),
)

COURSE_OVERVIEWS = AspectsTable(
    "course_overviews",
    _columns(
        ("org", "String"), ("course_key", "String"), ("display_name", "String"), ("course_start", "String"),
        ("course_end", "String"), ("enrollment_start", "String"), ("enrollment_end", "String"),
        ("self_paced", "Bool"), ("course_data_json", "String"), ("created", "String"), ("modified", "String"),
        ("dump_id", "UUID"), ("time_last_dumped", "String"),
    ),
    primary_key=("org", "course_key", "modified", "time_last_dumped"),
    order_by=("org", "course_key", "modified", "time_last_dumped"),
)

TABLES = (COURSE_BLOCKS, COURSE_OVERVIEWS)

#: Types an existing column may have for the values the feed writes into it.
ACCEPTED_TYPES = {
    "String": {"String", "LowCardinality(String)", "Nullable(String)", "LowCardinality(Nullable(String))"},
    "Int32": {"Int32", "Int64", "Nullable(Int32)", "Nullable(Int64)"},
    "UUID": {"UUID", "Nullable(UUID)"},
    "Bool": {"Bool", "Nullable(Bool)", "UInt8"},
}


def on_cluster(cluster: str | None) -> str:
    """The ``ON CLUSTER`` clause of Aspects' DDL ('' without a cluster)."""
    return f" ON CLUSTER {quote(cluster)}" if cluster else ""


def create_database(database: str, cluster: str | None = None) -> str:
    """The database of Aspects' tables, when it is absent."""
    return f"CREATE DATABASE IF NOT EXISTS {quote(database)}{on_cluster(cluster)}"


def create_table(table: AspectsTable, database: str, cluster: str | None = None) -> str:
    """Aspects' CREATE statement for ``table`` in ``database`` (never replaces: ``IF NOT EXISTS``)."""
    columns = ",\n    ".join(
        f"{quote(c.name)} {c.type}" + (f" DEFAULT {c.default}" if c.default else "") for c in table.columns)
    engine = "ReplicatedMergeTree" if cluster else "MergeTree"
    key = ", ".join(quote(c) for c in table.primary_key)
    order = ", ".join(quote(c) for c in table.order_by)
    return (
        f"CREATE TABLE IF NOT EXISTS {quote(database)}.{quote(table.name)}{on_cluster(cluster)} (\n    {columns}\n)\n"
        f"ENGINE = {engine}\nPRIMARY KEY ({key})\nORDER BY ({order})"
    )


def statements(database: str, cluster: str | None = None) -> list[str]:
    """Every statement that makes Aspects' tables where they are absent."""
    identifier(database, "EVENT_SINKS['ASPECTS']['DATABASE']")
    return [create_database(database, cluster), *(create_table(t, database, cluster) for t in TABLES)]


def describe(connection: Connection, database: str, table: AspectsTable) -> tuple[str | None, dict[str, str]]:
    """The engine of ``database.table`` (None when absent) and its columns' types."""
    found = connection.query(
        "SELECT engine FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        {"db": database, "t": table.name})
    if not found:
        return None, {}
    columns = connection.query(
        "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String}",
        {"db": database, "t": table.name})
    return found[0][0], dict(columns)


def problems(engine: str, columns: dict[str, Any], table: AspectsTable, database: str) -> list[str]:
    """What keeps the feed from writing into an existing ``database.table`` (empty when nothing does)."""
    where = f"{database}.{table.name}"
    if not (engine.endswith("MergeTree") or engine == "Distributed"):
        return [f"{where} is a {engine}, not a table the feed can insert into (Aspects makes a MergeTree table)"]
    found = []
    for column in table.columns:
        have = columns.get(column.name)
        if have is None:
            found.append(f"{where} has no column {column.name!r} (Aspects' {column.type})")
        elif have not in ACCEPTED_TYPES[column.type]:
            found.append(f"{where}.{column.name} is {have}, not Aspects' {column.type}")
    return found


def ensure(connection: Connection, database: str, table: AspectsTable, *, create: bool) -> None:
    """Make ``database.table`` with Aspects' shape when absent (if ``create``), else check it; never alter it.

    Raises :class:`ConfigurationError` naming the table and what is wrong with it.
    """
    engine, columns = describe(connection, database, table)
    if engine is None:
        if not create:
            raise ConfigurationError(
                f"Aspects' table {database}.{table.name} does not exist and EVENT_SINKS['AUTO_CREATE_SCHEMA'] is "
                "False: create it with Aspects' migrations, or with the statements of "
                "`python -m event_sinks.aspects ddl`")
        cluster = connection.settings.cluster
        connection.command(create_database(database, cluster))
        connection.command(create_table(table, database, cluster))
        return
    found = problems(engine, columns, table, database)
    if found:
        raise ConfigurationError("cannot feed Aspects: " + "; ".join(found) + " (the feed never alters a table "
                                 "it did not create)")
