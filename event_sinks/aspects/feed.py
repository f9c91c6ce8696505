"""Aspects' tables fed at commit: the hook the dumper calls right after a dump's ledger row is in.

With ``EVENT_SINKS["ASPECTS"]["ENABLED"]``, every committed dump of ``course_outline`` is copied into
Aspects' ``course_blocks`` and every committed dump of ``course_overviews`` into Aspects'
``course_overviews`` (one ``INSERT ... SELECT`` each, :mod:`.rows`), and every tombstone of those sinks
deletes the key's rows written up to it. Only committed dumps are copied -- the hook runs after the
ledger insert, reading that dump's rows by ``dump_id`` -- so a dump that crashed never reaches Aspects,
and Aspects' readers (which keep per location the row of the latest ``time_last_dumped``) see a whole
dump or the previous one.

What the dump's table lacks travels with the statement as parameters: for ``course_blocks`` the
completion modes, tags and video play windows the walk that made the dump recorded on its course
(:func:`block_params`, the course the dump's job read); for ``course_overviews`` ``created`` and
``course_data_json`` read from the sink's model (:func:`overview_params`). Where no ``course_overviews``
sink runs (outside the LMS/CMS), each ``course_outline`` dump also writes its course's
``course_overviews`` row from the course root's settings (:func:`copy_overviews_from_courses`), and its
tombstone deletes that row too.

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
from ..courses.modulestore import read_course_tags
from ..courses.sources import shared_course
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


def insert_statement(connection: Connection, feed: Feed, opts: Options, available: Sequence[str] | None, *,
                     guard: bool = False) -> str:
    """The INSERT ... SELECT copying one dump of ``feed`` into Aspects' table (``guard``: see rows.not_copied)."""
    database = opts["DATABASE"]
    if feed.table is COURSE_BLOCKS:
        return rows.course_blocks_insert(connection.database, feed.dumps_table, database, opts["UNIT_NUMBERING"],
                                         guard=guard)
    if available is None:
        available = [name for (name,) in connection.query(
            "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String}",
            {"db": connection.database, "t": feed.dumps_table})]
    return rows.course_overviews_insert(connection.database, feed.dumps_table, database, available, guard=guard)


def no_params(feed: Feed) -> dict[str, list[Any]]:
    """The extra parameters of ``feed``'s insert when nothing is known beyond the dump's own rows."""
    if feed.table is COURSE_BLOCKS:
        return dict(rows.NO_BLOCK_PARAMS)
    return {"data_keys": [], "data_json": [], "created": []}


def copy_dump(connection: Connection, feed: Feed, keys: Sequence[str], dump_id: uuid.UUID, opts: Options, *,
              available: Sequence[str] | None = None, params: Mapping[str, Any] | None = None,
              count: bool = True) -> list[str]:
    """Copy the committed rows of dump ``dump_id`` of ``keys`` into Aspects' table (one insert); returns those copied.

    Keys of which Aspects' table already holds rows of this dump are left out: a replay writes nothing twice
    (Aspects' MergeTree tables have no deduplication window for ``insert_deduplication_token`` to use).
    ``params``: what the dump's table lacks (:func:`block_params`, :func:`overview_params`); none by default.
    ``count``: find those keys first (one query; the keys returned are those copied); without, the insert
    itself leaves them out (one statement fewer, the hook's path; every key is returned).
    """
    database = prepare(connection, feed.table, opts)
    todo = list(keys)
    if count:
        present = dict(connection.query(rows.count_dump(database, feed.table), {"keys": todo, "dump_id": dump_id}))
        todo = [key for key in todo if not present.get(key)]
    if todo:
        connection.command(insert_statement(connection, feed, opts, available, guard=not count),
                           {**no_params(feed), **(params or {}), "keys": todo, "dump_id": dump_id,
                            "token": f"event_sinks:{feed.table.name}:{dump_id}"})
    return todo


def block_params(keys: Sequence[str]) -> dict[str, list[Any]]:
    """What ``course_blocks`` needs beyond the outline's table, from the courses this dump read.

    The dump's job holds its course read (``shared_reads``), and the walk that made the dump's rows
    filled the course's :class:`~event_sinks.courses.course.WalkExtras`: each block type's completion
    mode, the tag ids of tagged blocks, the videos' play windows. Without that read (``sync``, long
    after the dump) there is nothing: completion modes '', tags [], video times 0.
    """
    modes: dict[str, str] = {}
    tags: dict[str, list[int]] = {}
    videos: dict[str, tuple[float, float]] = {}
    for key in keys:
        course = shared_course(key)
        if course is None:
            continue
        modes.update(course.extras.completion_modes)
        tags.update(course.extras.tags)
        videos.update(course.extras.videos)
    return rows.block_params(modes, tags, videos)


def overview_params(sink: Sink, keys: Sequence[str]) -> dict[str, list[Any]]:
    """Per key, ``course_data_json`` and ``created`` from the sink's model objects (edx-platform's CourseOverview).

    Read at commit, one query for the dump's keys, of the fields the model has among ``created`` and
    Aspects' course_data_json keys (platform-plugin-aspects reads the same attributes of the same model);
    a field the model lacks is null; ``tags``: the courses' own tag ids where the platform has tagging.
    """
    model_class = getattr(sink, "model_class", None)
    if model_class is None:
        return {}
    data_keys, data_json, created = [], [], []
    try:
        model = model_class()
        have = {f.name for f in model._meta.concrete_fields}
        wanted = [name for name, _number in rows.COURSE_DATA_KEYS if name in have]
        fields = ["pk", *wanted, *(["created"] if "created" in have else [])]
        tags = read_course_tags([str(key) for key in keys])
        for values in model.objects.filter(pk__in=list(keys)).values(*fields):
            key = str(values["pk"])
            data_keys.append(key)
            data_json.append(rows.course_data_json(values, tags.get(key, ())))
            created.append(rows.str_or_empty(values.get("created")))
    except Exception as exc:  # the copy goes on with the dump's own columns
        log.warning("event_sinks: Aspects' course_overviews: the %s objects of %s cannot be read (%s: %s); "
                    "their created and course_data_json are left empty", sink.name, list(keys)[:5],
                    type(exc).__name__, exc)
        return {}
    return {"data_keys": data_keys, "data_json": data_json, "created": created}


def overviews_from_courses(connection: Connection) -> bool:
    """Whether the course_outline dumps write Aspects' ``course_overviews`` rows: when the library's
    ``course_overviews`` sink does not run here (outside the LMS/CMS: no CourseOverview model; or
    switched off with ``EVENT_SINKS["SINKS"]["course_overviews"]["ENABLED"] = False``)."""
    from ..registry import is_enabled, registry

    try:
        sink = registry.get("course_overviews")
        return not (is_enabled(sink) and sink.available())
    except Exception:  # not registered (or its settings fail, reported where they are used): nothing else feeds it
        return True


def copy_overviews_from_courses(connection: Connection, keys: Sequence[str], dump_id: uuid.UUID,
                                dumped_at: datetime, opts: Options) -> list[str]:
    """Aspects' ``course_overviews`` rows of ``keys`` from the courses this dump read (their root's settings).

    One row per course, with the dump's id and ``time_last_dumped``; ``modified`` is the course's edit
    time (``str()``), else the dump's time (OLX exports have no edit times), so a newer dump's row is
    the latest. ``created`` is '' (a course has no creation time of its own). Replays write nothing twice.
    """
    database = prepare(connection, COURSE_OVERVIEWS, opts)
    stamp = tombstone_time(dumped_at)
    written = []
    for key in keys:
        course = shared_course(key)
        if course is None:
            continue
        settings = course.settings
        connection.command(rows.course_overview_insert(database), {
            "org": course.org, "course_key": course.course_key, "display_name": course.display_name or "",
            "course_start": rows.str_or_empty(settings.get("start")),
            "course_end": rows.str_or_empty(settings.get("end")),
            "enrollment_start": rows.str_or_empty(settings.get("enrollment_start")),
            "enrollment_end": rows.str_or_empty(settings.get("enrollment_end")),
            "self_paced": bool(settings.get("self_paced")),
            "course_data_json": rows.course_data_json(settings, course.extras.tags.get(course.course_key, ())),
            "created": "", "modified": str(course.edited_on) if course.edited_on is not None else stamp,
            "dump_id": dump_id, "time_last_dumped": stamp, "token": f"event_sinks:course_overviews:{dump_id}:{key}",
            "keys": [course.course_key],
        })
        written.append(key)
    return written


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
            if feed.table is COURSE_BLOCKS and overviews_from_courses(connection):
                delete_keys(connection, FEEDS["course_overviews"], keys, dumped_at, opts)
        elif feed.table is COURSE_OVERVIEWS:
            copy_dump(connection, feed, keys, dump_id, opts, available=sink.table().column_names,
                      params=overview_params(sink, keys), count=False)
        else:
            copy_dump(connection, feed, keys, dump_id, opts, params=block_params(keys), count=False)
            if overviews_from_courses(connection):
                copy_overviews_from_courses(connection, keys, dump_id, dumped_at, opts)
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
