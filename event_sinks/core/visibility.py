"""Where dumps live and how they become visible: the dump columns, the ledger table, the current views.

ClickHouse has no multi-statement transactions, but a single small INSERT is atomic. A dump writes
its rows (tagged with ``dump_id``/``dumped_at``/``source_version``) into the sink's ``*_dumps``
table in as many batches as it needs; nothing reads those rows directly. When the last batch is in,
one row goes into ``event_sinks_dump_log``: that insert is the commit. The ``event_sinks_current_dumps``
view picks, per sink and key, the logged dump with the latest ``dumped_at`` -- the server's clock when
the dump began reading its source, never a writer host's own clock -- and each sink's current view
joins on it. A crashed dump never reaches the log and so is never seen. See
``docs/decisions/0001-dump-visibility.rst``.

These are declarations only (part of the contract a sink's schema follows); writing the ledger is
:mod:`event_sinks.dumping.ledger`'s job.
"""

from __future__ import annotations

from .schema import Column, Schema, Table, View, identifier, quote

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


def current_rows_view(view_name: str, table: Table, key_column: str, sink_name: str) -> View:
    """The view of a sink's rows that belong to the latest complete dump of each key (invariant 4)."""
    identifier(sink_name, "sink name")  # rendered as a literal below: only a plain identifier may be
    columns = ", ".join(quote(c) for c in table.column_names)
    return View(
        view_name,
        f"SELECT {columns}\nFROM {{db}}.{quote(table.name)}\n"  # noqa: S608 - only validated identifiers
        f"WHERE ({quote(key_column)}, dump_id) IN (\n"
        f"    SELECT key, dump_id FROM {{db}}.{quote(CURRENT_VIEW)} WHERE sink = '{sink_name}')",
        comment=f"current rows of sink {sink_name}",
    )


def ledger_schema() -> Schema:
    """The ledger's table and view, shared by every sink."""
    return Schema((LOG,), (CURRENT,))
