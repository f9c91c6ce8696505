"""Backfill and repair of Aspects' tables from the ledger: every current dump copied, every tombstone applied.

:func:`sync` compares, per fed sink, the current dumps of our ledger with Aspects' table:

- a current dump whose rows are missing there (never copied: the compatibility was off, or its copy
  failed) is copied; one copied in part (an insert that failed half-way) has its rows deleted and is
  copied again;
- a key whose current entry is a tombstone but which still has rows written before it there has them
  deleted.

Nothing is read from the courses: the rows come from the committed dumps. Running it again finds
nothing to do (each action is decided from what Aspects' table holds), so it is safe to schedule.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict

import attrs

from ..clickhouse import Connection, get_connection
from ..core import visibility
from ..core.schema import quote
from ..errors import ConfigurationError
from . import rows
from .feed import FEEDS, Feed, Options, aspects_database, copy_dump, delete_keys, prepare

log = logging.getLogger(__name__)


@attrs.frozen
class Action:
    """One thing :func:`sync` did (or, in a dry run, would do)."""

    kind: str  # "copy", "recopy" (a partial copy replaced), "delete" (a tombstone applied)
    sink: str
    keys: tuple[str, ...]
    dump_id: uuid.UUID | None = None

    def __str__(self) -> str:
        what = f" dump {self.dump_id}" if self.dump_id else ""
        return f"{self.kind} {self.sink}{what}: {', '.join(self.keys[:3])}" + (
            f" (+{len(self.keys) - 3})" if len(self.keys) > 3 else "")


def _exists(connection: Connection, database: str, name: str) -> bool:
    return bool(connection.value("SELECT count() FROM system.tables WHERE database = {db:String} AND name = {t:String}",
                                 {"db": database, "t": name}))


def _current(connection: Connection) -> str:
    return f"{quote(connection.database)}.{quote(visibility.CURRENT_VIEW)}"


def missing_dumps(connection: Connection, feed: Feed, database: str) -> list[tuple[str, uuid.UUID, int, int]]:
    """Current dumps of ``feed``'s sink that Aspects' table lacks in whole or in part: (key, dump_id, rows, have)."""
    current = _current(connection)
    table = f"{quote(database)}.{quote(feed.table.name)}"
    return [tuple(row) for row in connection.query(
        "SELECT c.key, c.dump_id, c.rows, ifNull(a.n, 0) AS have\n"  # noqa: S608 - only validated identifiers
        f"FROM (SELECT key, dump_id, rows FROM {current} WHERE sink = {{sink:String}} AND NOT deleted) AS c\n"
        "LEFT JOIN (SELECT course_key, dump_id, count() AS n\n"
        f"    FROM {table} WHERE dump_id IN (SELECT dump_id FROM {current} WHERE sink = {{sink2:String}})\n"
        "    GROUP BY course_key, dump_id) AS a\n"
        "ON a.course_key = c.key AND a.dump_id = c.dump_id\n"
        "WHERE ifNull(a.n, 0) < c.rows ORDER BY c.key",
        {"sink": feed.sink, "sink2": feed.sink})]


def stale_tombstones(connection: Connection, feed: Feed, database: str) -> list[tuple[str, object]]:
    """Keys whose current entry is a tombstone and which Aspects' table still holds rows from before: (key, at)."""
    current = _current(connection)
    table = f"{quote(database)}.{quote(feed.table.name)}"
    return [tuple(row) for row in connection.query(
        "SELECT c.key, c.dumped_at\n"  # noqa: S608 - only validated identifiers
        f"FROM (SELECT key, dumped_at, formatDateTime(dumped_at, '{rows.TIME_FORMAT}', 'UTC') AS until\n"
        f"      FROM {current} WHERE sink = {{sink:String}} AND deleted) AS c\n"
        "JOIN (SELECT course_key, min(time_last_dumped) AS oldest\n"
        f"    FROM {table} WHERE course_key IN (SELECT key FROM {current} WHERE sink = {{sink2:String}} AND deleted)\n"
        "    GROUP BY course_key) AS a\n"
        "ON a.course_key = c.key\n"
        "WHERE a.oldest <= c.until ORDER BY c.key",
        {"sink": feed.sink, "sink2": feed.sink})]


def sync(
    connection: Connection | None = None, *, dry_run: bool = False, options: Options | None = None,
) -> list[Action]:
    """Bring Aspects' tables up to the ledger (see the module docstring); returns what was (or would be) done.

    ``options``: ``EVENT_SINKS["ASPECTS"]`` to use (default: the connection's settings). Raises
    :class:`ConfigurationError` when its ``ENABLED`` is False. Aspects' tables are made (Aspects' DDL) when
    absent, unless ``dry_run``.
    """
    connection = connection or get_connection()
    opts = connection.settings.aspects if options is None else options
    if not opts["ENABLED"]:
        raise ConfigurationError("EVENT_SINKS['ASPECTS']['ENABLED'] is False: nothing feeds Aspects' tables; "
                                 "set it True to copy the library's dumps there")
    database = aspects_database(connection, opts)
    done: list[Action] = []
    if not _exists(connection, connection.database, visibility.CURRENT_VIEW):
        return done  # the library never dumped anything here
    for feed in FEEDS.values():
        if not _exists(connection, connection.database, feed.dumps_table):
            continue
        if not dry_run:
            prepare(connection, feed.table, opts)
        elif not _exists(connection, database, feed.table.name):
            keys = [key for (key,) in connection.query(
                f"SELECT key FROM {_current(connection)} WHERE sink = {{sink:String}} AND NOT deleted "  # noqa: S608
                "ORDER BY key", {"sink": feed.sink})]
            if keys:
                done.append(Action("copy", feed.sink, tuple(keys)))
            continue
        by_dump: dict[tuple[uuid.UUID, bool], list[str]] = defaultdict(list)
        for key, dump_id, _rows, have in missing_dumps(connection, feed, database):
            by_dump[(dump_id, bool(have))].append(key)
        for (dump_id, partial), keys in sorted(by_dump.items(), key=lambda item: item[1][0]):
            action = Action("recopy" if partial else "copy", feed.sink, tuple(keys), dump_id)
            if not dry_run:
                if partial:
                    connection.delete(rows.delete_dump(database, feed.table), {"keys": keys, "dump_id": dump_id},
                                      background=False)
                copy_dump(connection, feed, keys, dump_id, opts)
            log.info("event_sinks: Aspects sync: %s", action)
            done.append(action)
        for key, at in stale_tombstones(connection, feed, database):
            action = Action("delete", feed.sink, (key,))
            if not dry_run:
                delete_keys(connection, feed, [key], at, opts)  # type: ignore[arg-type]
            log.info("event_sinks: Aspects sync: %s", action)
            done.append(action)
    return done
