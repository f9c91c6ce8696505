"""The ledger, written and read: the insert that commits a dump, the versions and keys of current dumps.

Its tables and views are declared in :mod:`event_sinks.core.visibility`; this module is the only
code that writes the ledger (ADR 0001: one small insert per dump is the commit).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime

from ..clickhouse import Connection
from ..core import visibility


def commit(
    connection: Connection, sink: str, keys: list[str], dump_id: uuid.UUID, dumped_at: datetime,
    versions: Mapping[str, str], counts: Mapping[str, int], *, deleted: bool,
) -> None:
    """Make a dump visible (invariant 2): one ledger row per key, all in one insert."""
    n = len(keys)
    completed = datetime.now(UTC)
    log = visibility.LOG
    connection.insert_columns(
        log.name, log.column_names, log.column_types,
        [[sink] * n, list(keys), [dump_id] * n, [dumped_at] * n, [completed] * n,
         [versions.get(k, "") for k in keys], [counts.get(k, 0) for k in keys], [deleted] * n],
    )


def current_versions(connection: Connection, sink: str, keys: Iterable[str] | None = None) -> dict[str, str]:
    """Source version of the latest complete dump per key of ``sink`` (tombstones excluded)."""
    sql = (
        f"SELECT key, source_version FROM {connection.renderer.qualified(visibility.CURRENT_VIEW)} "  # noqa: S608 - only validated identifiers
        "WHERE sink = {sink:String} AND NOT deleted"
    )
    params: dict = {"sink": sink}
    if keys is not None:
        sql += " AND key IN {keys:Array(String)}"
        params["keys"] = list(keys)
    return dict(connection.query(sql, params))


#: Keys per query of :func:`current_keys`: a page of the ledger, however many keys a sink has.
KEYS_PAGE = 10_000


def exists(connection: Connection) -> bool:
    """Whether the ledger's current-dumps view exists (a dry run never creates it)."""
    view = connection.renderer.qualified(visibility.CURRENT_VIEW)
    return bool(connection.query(f"EXISTS TABLE {view}")[0][0])


def current_keys(connection: Connection, sink: str, *, page: int = KEYS_PAGE) -> Iterator[str]:
    """Every key of ``sink`` whose latest complete dump is not a tombstone, in key order.

    Read a page of ``page`` keys per query (the next page starts after the last key seen), so a sink
    with millions of keys is never one result in memory nor one query per key.
    """
    view = connection.renderer.qualified(visibility.CURRENT_VIEW)
    after: str | None = None  # the first page starts at the smallest key, even an empty one
    while True:
        sql = (
            f"SELECT key FROM {view} WHERE sink = {{sink:String}} AND NOT deleted"  # noqa: S608 - only validated identifiers
            + ("" if after is None else " AND key > {after:String}")
            + " ORDER BY key LIMIT {page:UInt64}"
        )
        rows = connection.query(sql, {"sink": sink, "after": after or "", "page": page})
        for (key,) in rows:
            yield key
        if len(rows) < page:
            return
        after = rows[-1][0]
