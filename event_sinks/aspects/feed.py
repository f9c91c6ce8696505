"""Aspects' tables fed at commit: the hook the dumper calls right after a dump's ledger row is in.

With ``EVENT_SINKS["ASPECTS"]["ENABLED"]``, every committed dump of ``course_outline`` is copied into
Aspects' ``course_blocks`` and every committed dump of ``course_overviews`` into Aspects'
``course_overviews`` (one ``INSERT ... SELECT`` each, :mod:`.rows`), and every tombstone of those sinks
deletes the key's rows written up to it. Only committed dumps are copied -- the hook runs after the
ledger insert, reading that dump's rows by ``dump_id`` -- so a dump that crashed never reaches Aspects,
and Aspects' readers (which keep per location the row of the latest ``time_last_dumped``) see a whole
dump or the previous one.

The hook never raises: the dump it follows is committed and visible in our views whatever happens to
the copy. A copy that failed (Aspects' table unreachable, or not in Aspects' shape) is logged as an
ERROR naming the dump, and :func:`event_sinks.aspects.sync` (``python -m event_sinks.aspects sync``)
copies every current dump Aspects is missing; the next dump of the key copies it anyway.
"""

from __future__ import annotations

import logging
import uuid
import weakref
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs

from ..clickhouse import Connection
from ..core.sink import Sink
from ..errors import ConfigurationError
from . import rows
from .ddl import COURSE_BLOCKS, COURSE_OVERVIEWS, TABLES, AspectsTable, ensure

log = logging.getLogger(__name__)


@attrs.frozen
class Feed:
    """Which of our sinks feeds which of Aspects' tables."""

    sink: str
    table: AspectsTable

    @property
    def dumps_table(self) -> str:
        return f"{self.sink}_dumps"


FEEDS: dict[str, Feed] = {
    "course_outline": Feed("course_outline", COURSE_BLOCKS),
    "course_overviews": Feed("course_overviews", COURSE_OVERVIEWS),
}

#: Aspects' tables made or checked through each connection (once per process and table).
_ready: weakref.WeakKeyDictionary[Connection, set[tuple[str, str]]] = weakref.WeakKeyDictionary()


Options = Mapping[str, Any]


def options(connection: Connection) -> Options:
    """``EVENT_SINKS["ASPECTS"]`` as the connection's settings hold it (every option present)."""
    return connection.settings.aspects


def aspects_database(connection: Connection, opts: Options) -> str:
    """Aspects' database; refused when it is the library's own (our views would take Aspects' table names)."""
    database = opts["DATABASE"]
    if database == connection.database:
        raise ConfigurationError(
            f"EVENT_SINKS['ASPECTS']['DATABASE'] is {database!r}, the library's own database: Aspects' tables "
            "course_blocks and course_overviews would have the names of the library's views there. Keep "
            "EVENT_SINKS['DATABASE'] apart (default 'event_sinks') and ASPECTS['DATABASE'] on Aspects' database "
            "(default 'event_sink')")
    return database


def prepare(connection: Connection, table: AspectsTable, opts: Options) -> str:
    """Aspects' tables made (those absent) and ``table`` checked, once per connection; returns their database.

    Both of Aspects' tables are made at the first copy into either: aspects-dbt reads course names from
    ``course_overviews`` for the blocks of ``course_blocks``, and its models fail on a missing source.
    """
    database = aspects_database(connection, opts)
    done = _ready.setdefault(connection, set())
    if (database, table.name) not in done:
        create = connection.settings.auto_create_schema
        for other in TABLES:
            if other is not table and (database, other.name) not in done:
                try:
                    ensure(connection, database, other, create=create)
                except ConfigurationError as exc:  # not ours to fix here: the copy into ``table`` goes on
                    log.warning("event_sinks: %s", exc)
                else:
                    done.add((database, other.name))
        ensure(connection, database, table, create=create)
        done.add((database, table.name))
    return database


def forget(connection: Connection) -> None:
    """Check Aspects' tables again at the next feed through ``connection`` (after they were dropped)."""
    _ready.pop(connection, None)


def insert_statement(connection: Connection, feed: Feed, opts: Options, available: Sequence[str] | None) -> str:
    """The INSERT ... SELECT copying one dump of ``feed`` into Aspects' table."""
    database = opts["DATABASE"]
    if feed.table is COURSE_BLOCKS:
        return rows.course_blocks_insert(connection.database, feed.dumps_table, database, opts["UNIT_NUMBERING"])
    if available is None:
        available = [name for (name,) in connection.query(
            "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String}",
            {"db": connection.database, "t": feed.dumps_table})]
    return rows.course_overviews_insert(connection.database, feed.dumps_table, database, available)


def copy_dump(connection: Connection, feed: Feed, keys: Sequence[str], dump_id: uuid.UUID, opts: Options, *,
              available: Sequence[str] | None = None) -> list[str]:
    """Copy the committed rows of dump ``dump_id`` of ``keys`` into Aspects' table (one insert); returns those copied.

    Keys of which Aspects' table already holds rows of this dump are left out: a replay writes nothing twice
    (Aspects' MergeTree tables have no deduplication window for ``insert_deduplication_token`` to use).
    """
    database = prepare(connection, feed.table, opts)
    present = dict(connection.query(rows.count_dump(database, feed.table), {"keys": list(keys), "dump_id": dump_id}))
    keys = [key for key in keys if not present.get(key)]
    if keys:
        connection.command(insert_statement(connection, feed, opts, available),
                           {"keys": keys, "dump_id": dump_id, "token": f"event_sinks:{feed.table.name}:{dump_id}"})
    return keys


def tombstone_time(dumped_at: datetime) -> str:
    """A tombstone's time in ``time_last_dumped``'s format."""
    return dumped_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")


def delete_keys(connection: Connection, feed: Feed, keys: Sequence[str], dumped_at: datetime, opts: Options) -> None:
    """A tombstone: the rows of ``keys`` written up to ``dumped_at`` leave Aspects' table.

    aspects-dbt has no delete marker (platform-plugin-aspects never removes a deleted course: its blocks
    and overview stay), so a deleted key's rows are deleted -- those up to the tombstone only, so a
    course created again later under the same key keeps its newer rows. Nothing is made for a tombstone:
    an absent table has nothing to delete.
    """
    database = aspects_database(connection, opts)
    found = connection.query("SELECT engine FROM system.tables WHERE database = {db:String} AND name = {t:String}",
                             {"db": database, "t": feed.table.name})
    if not found:
        return
    prepare(connection, feed.table, opts)
    connection.delete(rows.tombstone_delete(database, feed.table),
                      {"keys": list(keys), "until": tombstone_time(dumped_at)}, background=False)


def committed(connection: Connection, sink: Sink, keys: Sequence[str], dump_id: uuid.UUID, dumped_at: datetime, *,
              deleted: bool) -> None:
    """The dumper's post-commit hook: copy (or tombstone) a just-committed dump into Aspects' tables.

    Called right after the ledger insert of every dump and tombstone of every sink; does nothing unless
    ``EVENT_SINKS["ASPECTS"]["ENABLED"]`` and the sink feeds one of Aspects' tables. Never raises.
    """
    opts = options(connection)
    if not opts["ENABLED"]:
        return
    feed = FEEDS.get(sink.name)
    if feed is None:
        return
    try:
        if deleted:
            delete_keys(connection, feed, keys, dumped_at, opts)
        else:
            available = sink.table().column_names if feed.table is COURSE_OVERVIEWS else None
            copy_dump(connection, feed, keys, dump_id, opts, available=available)
    except Exception as exc:
        what = "tombstone" if deleted else "dump"
        log.error(
            "event_sinks: Aspects' %s missed %s %s of %s %s (our views have it): %s: %s; "
            "`python -m event_sinks.aspects sync` copies it, as will the next dump of the key",
            feed.table.name, what, dump_id, sink.name, list(keys)[:5], type(exc).__name__, exc,
        )
    else:
        log.debug("event_sinks: Aspects' %s has %s %s of %s", feed.table.name, "tombstone" if deleted else "dump",
                  dump_id, list(keys)[:5])
