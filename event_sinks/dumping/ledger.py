"""The ledger, written and read: the insert that commits a dump, its read-back, the versions and keys of current dumps.

Its tables and views are declared in :mod:`event_sinks.core.visibility`; this module is the only
code that writes the ledger (ADR 0001: one small insert per dump is the commit).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime

from ..clickhouse import Connection
from ..clickhouse.encoding import micros
from ..core import visibility

#: Pauses (seconds) before reading a dump's rows or ledger rows again when some are missing on a
#: cluster: a load balancer may send the read to a replica that has not fetched them yet.
REPLICA_WAITS = (0.1, 0.3, 0.6, 1.0, 2.0)


def commit(
    connection: Connection, sink: str, keys: list[str], dump_id: uuid.UUID, dumped_at: datetime,
    versions: Mapping[str, str], counts: Mapping[str, int], *, deleted: bool,
) -> None:
    """Make a dump visible (invariant 2): one ledger row per key, all in one insert.

    The insert carries a token of its own, so a replay by the driver adds no second row; whether it
    was applied at all is for :func:`missing` to tell.
    """
    n = len(keys)
    completed = connection.server_time()
    log = visibility.LOG
    connection.insert_columns(
        log.name, log.column_names, log.column_types,
        [[sink] * n, list(keys), [dump_id] * n, [dumped_at] * n, [completed] * n,
         [versions.get(k, "") for k in keys], [counts.get(k, 0) for k in keys], [deleted] * n],
        token=f"{dump_id}-ledger",
    )


def superseded(connection: Connection, sink: str, keys: list[str], dumped_at: datetime) -> set[str]:
    """The keys of ``keys`` with a complete dump (or tombstone) that began reading after ``dumped_at``.

    Such a dump outranks one of ``dumped_at`` for good, and its run prunes the rows of older dumps, an
    unfinished one's included: rows missing from an older dump of those keys are no fault.
    """
    sql = (
        f"SELECT DISTINCT key FROM {connection.renderer.qualified(visibility.LOG_TABLE)} "  # noqa: S608 - only validated identifiers
        "WHERE sink = {sink:String} AND key IN {keys:Array(String)} "
        "AND dumped_at > fromUnixTimestamp64Micro({at:Int64}, 'UTC')"
    )
    return {row[0] for row in connection.query(sql, {"sink": sink, "keys": list(keys), "at": micros(dumped_at)})}


def missing(connection: Connection, sink: str, keys: list[str], dump_id: uuid.UUID, dumped_at: datetime) -> list[str]:
    """The keys whose ledger row of ``dump_id`` the engine does not hold, read back after :func:`commit`.

    An acknowledged insert is not always an applied one (a gateway answering for the server, a
    server queueing asynchronous inserts); pruning after such a commit would delete the only dump
    the ledger names. Empty when the commit is there. A key whose ledger holds a dump that began later
    (:func:`superseded`) is not missing: that dump outranks this one for good, and retention compacts
    the ledger rows older than it (:mod:`.retention`), this one's included.
    """
    sql = (
        f"SELECT DISTINCT key FROM {connection.renderer.qualified(visibility.LOG_TABLE)} "  # noqa: S608 - only validated identifiers
        "WHERE sink = {sink:String} AND key IN {keys:Array(String)} "
        "AND dumped_at = fromUnixTimestamp64Micro({at:Int64}, 'UTC') AND dump_id = {dump_id:UUID}"
    )
    params = {"sink": sink, "keys": list(keys), "at": micros(dumped_at), "dump_id": dump_id}
    waits = iter(REPLICA_WAITS if connection.settings.cluster else ())
    while True:
        found = {row[0] for row in connection.query(sql, params)}
        lacking = [key for key in keys if key not in found]
        pause = next(waits, None) if lacking else None
        if pause is None:
            break
        time.sleep(pause)
    if lacking:
        newer = superseded(connection, sink, lacking, dumped_at)
        lacking = [key for key in lacking if key not in newer]
    return lacking


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
    return bool(connection.value(f"EXISTS TABLE {view}"))


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
