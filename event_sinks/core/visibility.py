"""Where dumps live and how they become visible: the dump columns, the ledger, the current tables and views.

ClickHouse has no multi-statement transactions, but a single small INSERT is atomic (one part). A
dump writes its rows (tagged with ``dump_id``/``dumped_at``/``source_version``) into the sink's
``*_dumps`` table in as many batches as it needs; nothing reads those rows directly. When the last
batch is in, one ``INSERT ... SELECT`` copies the dump into the sink's ``*_current`` table as one
part -- the dump's rows, and an ``is_deleted`` row for each row of the key that the dump no longer
has -- and one row goes into ``event_sinks_dump_log``, the ledger of complete dumps.

The ``*_current`` table is a ``ReplacingMergeTree`` versioned by ``dumped_at`` (the server's clock
when the dump began reading its source, never a writer host's own clock) and sorted by the sink's
row identity; its view reads it ``FINAL``: per identity, the row of the latest dump, deleted rows
hidden. So a reader's cost follows the answer (a lookup by ``location`` is a primary-key lookup)
rather than the number of dumps, and a crashed dump never reaches it. The ledger's
``event_sinks_current_dumps`` view is what version checks and backfills read. See
``docs/decisions/0001-dump-visibility.rst`` and ``0007-current-tables.rst``.

These are declarations only (part of the contract a sink's schema follows); writing them is
:mod:`event_sinks.dumping`'s job.
"""

from __future__ import annotations

from .schema import FINAL_SETTINGS, Column, Index, Schema, Table, View, identifier, quote

LOG_TABLE = "event_sinks_dump_log"
CURRENT_VIEW = "event_sinks_current_dumps"
DATETIME = "DateTime64(6, 'UTC')"

#: Columns the dumper adds to every row of every sink (invariant 1).
DUMP_COLUMNS = (
    Column("dump_id", "UUID", "one id for all rows written by one dump"),
    Column("dumped_at", DATETIME, "when the dump started reading the source, on the server clock"),
    Column("source_version", "LowCardinality(String)", "version of the source the dump read"),
)

LOG = Table(
    LOG_TABLE,
    (
        Column("sink", "LowCardinality(String)"),
        Column("key", "String"),
        Column("dump_id", "UUID"),
        Column("dumped_at", DATETIME),
        Column("completed_at", DATETIME),
        Column("source_version", "String"),
        Column("rows", "UInt64"),
        Column("deleted", "Bool", "true for a tombstone: the key no longer exists at the source"),
    ),
    order_by=("sink", "key", "dumped_at"),
    comment="one row per complete dump; inserting it makes the dump visible",
)

CURRENT = View(
    CURRENT_VIEW,
    "SELECT sink, key, latest.1 AS dump_id, latest.2 AS dumped_at, latest.3 AS completed_at,\n"  # noqa: S608 - only validated identifiers
    "    latest.4 AS source_version, latest.5 AS rows, latest.6 AS deleted\n"
    "FROM (\n"
    "    SELECT sink, key,\n"
    "        argMax((dump_id, dumped_at, completed_at, source_version, rows, deleted),\n"
    "               (dumped_at, dump_id)) AS latest\n"
    f"    FROM {{db}}.{quote(LOG_TABLE)}\n"
    "    GROUP BY sink, key)",
    comment="the latest complete dump of every sink and key",
)


#: The column of the current tables that hides a row: the key's latest dump no longer has it.
IS_DELETED = Column("is_deleted", "UInt8", "1: the dump of this version no longer has this row of the key")


#: Numbers the rows of a key that share the rest of their identity (a sink that declares none):
#: 0, 1, ... in each such group, so that rows whose sorting values are unique keep an identity from
#: one dump to the next.
DUMP_ROW = Column("dump_row", "UInt32", "tells apart rows of a key that share their sorting values")


def dump_row_rank(identity: tuple[str, ...]) -> str:
    """SQL for :data:`DUMP_ROW`: a row's rank among the rows of its key that share the rest of ``identity``."""
    group = ", ".join(quote(c) for c in identity[:-1])
    return f"toUInt32(row_number() OVER (PARTITION BY {group}) - 1) AS {quote(DUMP_ROW.name)}"


def current_table(rows: Table, name: str, identity: tuple[str, ...], key_column: str, sink_name: str = "") -> Table:
    """The table of the latest complete dump's rows of every key, sorted by ``identity``.

    ``identity`` tells a key's rows apart (a ``ReplacingMergeTree`` keeps one row per identity: the
    one of the greatest ``dumped_at``); it may end with :data:`DUMP_ROW`. When it does not start with
    the key column, a ``minmax`` index on the key lets a read of one key skip the rest: the rows of a
    key are contiguous when the identity starts with something the key prefixes (a course's locations).
    """
    indexes = () if identity[0] == key_column else (Index(f"{key_column}_range", key_column, "minmax"),)
    numbered = (DUMP_ROW,) if DUMP_ROW.name in identity else ()
    listed = [quote(c) for c in rows.column_names] + ([dump_row_rank(identity)] if numbered else [])
    fill = (  # a database an earlier version wrote: its current dumps, as the ledger names them
        f"SELECT {', '.join(listed)}, 0 FROM {{db}}.{quote(rows.name)}\n"  # noqa: S608 - only validated identifiers
        f"WHERE ({quote(key_column)}, dump_id) IN (SELECT key, dump_id FROM {{db}}.{quote(CURRENT_VIEW)}\n"
        f"    WHERE sink = '{identifier(sink_name, 'sink name')}' AND NOT deleted)"
    ) if sink_name else ""
    return Table(
        name,
        rows.columns + numbered + (IS_DELETED,),
        order_by=identity,
        engine="ReplacingMergeTree",
        engine_args=("dumped_at", IS_DELETED.name),
        indexes=indexes,
        comment=f"the rows of the latest complete dump of every key of {rows.name}; read it FINAL",
        fill=fill,
    )


def current_rows_view(view_name: str, current: Table, columns: tuple[str, ...], sink_name: str) -> View:
    """The view readers query (invariant 4): per row identity the latest dump's row, deleted rows hidden."""
    identifier(sink_name, "sink name")
    listed = ", ".join(quote(c) for c in columns)
    return View(
        view_name,
        f"SELECT {listed}\nFROM {{db}}.{quote(current.name)} FINAL{FINAL_SETTINGS}",  # noqa: S608 - only validated identifiers
        comment=f"current rows of sink {sink_name}",
    )


def ledger_schema() -> Schema:
    """The ledger's table and view, shared by every sink."""
    return Schema((LOG,), (CURRENT,))
