"""Aspects' course_blocks fed from complete dumps: the layout, republishes, deletions, crashes, replays.

Every check reads Aspects' tables the way aspects-dbt does (tests/aspects/contract.py): per location the
row with the latest ``time_last_dumped``, blocks older than their course's latest dump taken as deleted.
What Aspects shows must be exactly what the library's own ``course_outline`` view shows.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from pathlib import Path

import pytest

from event_sinks import dump, get_sink
from event_sinks.aspects import committed, rows, sync
from event_sinks.aspects.__main__ import main
from event_sinks.aspects.feed import FEEDS, copy_dump, forget
from event_sinks.clickhouse import close_connections
from event_sinks.conf import get_settings
from event_sinks.errors import ConfigurationError
from event_sinks.sinks.course_outline import CourseOutlineSink

from .conftest import DEMO_KEY, switch_on
from .contract import (
    TIME_LAST_DUMPED,
    course_names,
    create_aspects_tables,
    current_blocks,
    labels_from_view,
    our_blocks,
)

QUIZ = "block-v1:EventSinks+Demo101+2026+type@vertical+block@nile_quiz_unit"
WELCOME_VIDEO = "block-v1:EventSinks+Demo101+2026+type@video+block@welcome_video"


def publish(key: str = DEMO_KEY, **kwargs):
    summary = dump("course_outline", [key], **kwargs)
    assert summary.count("dumped") == 1, summary.results
    return summary.results[0]


def q(connection, sql: str, **params):
    return connection.query(sql, params)


def dumped_at_of(connection, dump_id) -> str:
    (at,) = q(connection, f"SELECT dumped_at FROM `{connection.database}`.event_sinks_dump_log "
                          "WHERE dump_id = {d:UUID}", d=dump_id)[0]
    return at.strftime("%Y-%m-%d %H:%M:%S.%f+00:00")


def delete_quiz_and_rename_video(course) -> None:
    nile = course / "sequential" / "nile.xml"
    nile.write_text(nile.read_text().replace('  <vertical url_name="nile_quiz_unit"/>\n', ""))
    video = course / "video" / "welcome_video.xml"
    text = video.read_text()
    assert 'display_name="Welcome video"' in text
    video.write_text(text.replace('display_name="Welcome video"', 'display_name="Welcome, the film"'))


# -- a dump, in Aspects' layout -------------------------------------------------------------------------------


def test_a_committed_dump_reaches_aspects_course_blocks_in_aspects_layout(aspects_any_engine):
    connection, database = aspects_any_engine.connection, aspects_any_engine.database
    create_aspects_tables(connection, database)  # as Aspects made them, with a view that fires on INSERT
    result = publish()

    assert current_blocks(connection, database) == our_blocks(connection) != []
    stamps = q(connection, f"SELECT dump_id, time_last_dumped, count() FROM `{database}`.course_blocks "
                           "GROUP BY dump_id, time_last_dumped")
    assert stamps == [(result.dump_id, dumped_at_of(connection, result.dump_id), 21)]  # one stamp per dump
    assert TIME_LAST_DUMPED.match(stamps[0][1])
    orders = [r[0] for r in q(connection, f"SELECT `order` FROM `{database}`.course_blocks ORDER BY `order`")]
    assert orders == list(range(1, 22))  # 1-based pre-order, the course root first
    root, video = (q(connection, f"SELECT org, course_key, location, display_name, xblock_data_json, edited_on "
                                 f"FROM `{database}`.course_blocks WHERE location = {{l:String}}", l=loc)[0]
                   for loc in (f"block-v1:{DEMO_KEY[10:]}+type@course+block@course",
                               "block-v1:EventSinks+Demo101+2026+type@video+block@nile_video"))
    assert root[:4] == ("EventSinks", DEMO_KEY, f"block-v1:{DEMO_KEY[10:]}+type@course+block@course",
                        "Event Sinks Demo: Rivers of the World")
    assert json.loads(video[4]) == {
        "course": "Demo101", "run": "2026", "block_type": "video", "detached": 0, "graded": 1,
        "completion_mode": "completable", "section": 2, "subsection": 1, "unit": 1, "tags": [],
        "video_start_time": 0, "video_end_time": 0}  # the demo's videos set no play window
    assert list(json.loads(video[4])) == ["course", "run", "block_type", "detached", "graded", "completion_mode",
                                          "section", "subsection", "unit", "tags", "video_start_time",
                                          "video_end_time"]  # Aspects' key order, the video times last
    assert json.loads(root[4])["completion_mode"] == "aggregator" and "video_start_time" not in root[4]
    assert root[5] == ""  # OLX exports carry no edit time
    # aspects-dbt's materialized view saw the insert: the labels Aspects' dashboards show
    labels = labels_from_view(connection, database, DEMO_KEY)
    assert labels[QUIZ] == "2:1:2 - Quiz: the Nile" and len(labels) == 21


def test_the_feed_is_off_unless_enabled(embedded, demo, database, settings):
    settings.EVENT_SINKS = {**settings.EVENT_SINKS, "ASPECTS": {"DATABASE": f"{database}_aspects"}}
    close_connections()
    assert get_settings().aspects == {"ENABLED": False, "DATABASE": f"{database}_aspects", "UNIT_NUMBERING": "ours"}
    publish()
    from event_sinks.clickhouse import get_connection

    assert q(get_connection(), "SELECT count() FROM system.databases WHERE name = {d:String}",
             d=f"{database}_aspects") == [(0,)]


def test_absent_tables_are_made_with_aspects_ddl(aspects):
    connection, database = aspects.connection, aspects.database
    publish()
    columns = q(connection, "SELECT table, name, type, default_expression, is_in_primary_key, is_in_sorting_key "
                            "FROM system.columns WHERE database = {d:String} ORDER BY table, position", d=database)
    blocks = [c[1:] for c in columns if c[0] == "course_blocks"]
    assert blocks == [
        ("org", "String", "", 1, 1), ("course_key", "String", "", 1, 1), ("location", "String", "", 1, 1),
        ("display_name", "String", "", 0, 0), ("xblock_data_json", "String", "", 0, 0), ("order", "Int32", "0", 0, 1),
        ("edited_on", "String", "", 1, 1), ("dump_id", "UUID", "", 0, 0), ("time_last_dumped", "String", "", 0, 0),
    ]
    engines = dict(q(connection, "SELECT name, engine FROM system.tables WHERE database = {d:String}", d=database))
    assert engines == {"course_blocks": "MergeTree", "course_overviews": "MergeTree"}  # both, for aspects-dbt
    keys = q(connection, "SELECT name, primary_key, sorting_key FROM system.tables WHERE database = {d:String} "
                         "ORDER BY name", d=database)
    assert keys[0] == ("course_blocks", "org, course_key, location, edited_on",
                       "org, course_key, location, edited_on, order")
    assert current_blocks(connection, database) == our_blocks(connection)


# -- republish, deletion, crash -------------------------------------------------------------------------------


def test_a_republish_with_a_deleted_and_a_renamed_block_shows_exactly_the_new_outline(aspects):
    connection, database = aspects.connection, aspects.database
    create_aspects_tables(connection, database)
    first = publish()
    delete_quiz_and_rename_video(aspects.course)
    second = publish(skip_unchanged=True)

    shown = current_blocks(connection, database)
    assert shown == our_blocks(connection)
    names = {row[1]: row[2] for row in shown}
    assert QUIZ not in names and names[WELCOME_VIDEO] == "Welcome, the film"
    assert not any(name == "Welcome video" for name in names.values())
    # The table keeps both dumps (Aspects' tables are append-only): the deleted block's last row is the
    # first dump's, older than the course's latest -- which is how a reader tells it is gone.
    latest = dict(q(connection, f"SELECT location, max(time_last_dumped) FROM `{database}`.course_blocks "
                                "GROUP BY location"))
    assert latest[QUIZ] == dumped_at_of(connection, first.dump_id) < dumped_at_of(connection, second.dump_id)
    assert latest[WELCOME_VIDEO] == dumped_at_of(connection, second.dump_id)
    # aspects-dbt's view: the renamed block's label is the new one; the deleted block stays in its table
    # (a view fed by INSERTs never removes a row): only the deleted-block rule leaves it out.
    labels = labels_from_view(connection, database, DEMO_KEY)
    assert labels[WELCOME_VIDEO] == "1:1:1 - Welcome, the film" and QUIZ in labels


def test_a_deleted_course_leaves_aspects_tables_and_a_new_publish_brings_it_back(aspects):
    connection, database = aspects.connection, aspects.database
    create_aspects_tables(connection, database)
    publish()
    publish()  # two dumps of the course: both go when it is deleted
    summary = dump("course_outline", [DEMO_KEY], delete=True)
    assert summary.count("deleted") == 1
    assert current_blocks(connection, database) == our_blocks(connection) == []
    assert q(connection, f"SELECT count() FROM `{database}`.course_blocks WHERE course_key = {{k:String}}",
             k=DEMO_KEY) == [(0,)]
    publish()  # the course comes back (a re-import under the same key): only its new dump shows
    assert current_blocks(connection, database) == our_blocks(connection) != []


def test_a_crashed_dump_reaches_neither_our_views_nor_aspects(aspects, monkeypatch):
    connection, database = aspects.connection, aspects.database
    create_aspects_tables(connection, database)
    publish()
    before = q(connection, f"SELECT dump_id, count() FROM `{database}`.course_blocks GROUP BY dump_id")
    delete_quiz_and_rename_video(aspects.course)
    real = CourseOutlineSink.batches

    def crash_after_the_first_batch(self, course, batch_size):
        batches = real(self, course, batch_size)
        yield next(batches)
        raise OSError("worker killed mid-dump")

    monkeypatch.setattr(CourseOutlineSink, "batches", crash_after_the_first_batch)
    summary = dump("course_outline", [DEMO_KEY], batch_size=5)
    assert summary.count("failed") == 1
    # five rows of the crashed dump are in course_outline_dumps, but it has no ledger row: nobody sees them
    assert q(connection, f"SELECT count() FROM `{connection.database}`.course_outline_dumps") == [(26,)]
    assert q(connection, f"SELECT dump_id, count() FROM `{database}`.course_blocks GROUP BY dump_id") == before
    assert current_blocks(connection, database) == our_blocks(connection)
    assert QUIZ in {row[1] for row in current_blocks(connection, database)}  # the previous outline, whole
    monkeypatch.undo()
    publish()
    assert current_blocks(connection, database) == our_blocks(connection)
    assert QUIZ not in {row[1] for row in current_blocks(connection, database)}


# -- failures, repair, replays -------------------------------------------------------------------------------


def test_a_copy_that_fails_is_logged_never_fails_the_dump_and_sync_repairs_it(aspects, caplog):
    connection, database = aspects.connection, aspects.database
    connection.command(f"CREATE DATABASE `{database}`")
    connection.command(f"CREATE VIEW `{database}`.course_blocks AS SELECT 1 AS one")  # not Aspects' table
    with caplog.at_level(logging.ERROR, "event_sinks.aspects"):
        result = publish()
    assert "Aspects' course_blocks missed dump" in caplog.text and "is a View" in caplog.text
    assert our_blocks(connection) != []  # the dump is committed whatever happened to the copy
    assert q(connection, "SELECT engine FROM system.tables WHERE database = {d:String} AND name = 'course_blocks'",
             d=database) == [("View",)]  # left as it was

    connection.command(f"DROP VIEW `{database}`.course_blocks")
    create_aspects_tables(connection, database)
    forget(connection)
    actions = sync()
    assert [(a.kind, a.sink, a.keys, a.dump_id) for a in actions] == [
        ("copy", "course_outline", (DEMO_KEY,), result.dump_id)]
    assert current_blocks(connection, database) == our_blocks(connection)
    assert sync() == []  # nothing left to do: safe to schedule


def test_sync_recopies_a_partial_copy_and_applies_a_missed_tombstone(aspects):
    connection, database = aspects.connection, aspects.database
    create_aspects_tables(connection, database, with_view=False)
    result = publish()
    connection.command(f"DELETE FROM `{database}`.course_blocks WHERE `order` > 10")  # a copy cut short
    (action,) = sync()
    assert (action.kind, action.dump_id) == ("recopy", result.dump_id)
    assert q(connection, f"SELECT count() FROM `{database}`.course_blocks") == [(21,)]

    switch_off = {**get_settings().aspects, "ENABLED": False}
    from django.conf import settings

    settings.EVENT_SINKS = {**settings.EVENT_SINKS, "ASPECTS": switch_off}
    close_connections()
    dump("course_outline", [DEMO_KEY], delete=True)  # deleted while the compatibility was off
    switch_on(settings, database)
    assert current_blocks(connection_now(), database) != []
    (action,) = sync()
    assert (action.kind, action.keys) == ("delete", (DEMO_KEY,))
    assert current_blocks(connection_now(), database) == [] and sync() == []


def connection_now():
    from event_sinks.clickhouse import get_connection

    return get_connection()


def test_replaying_a_copy_writes_nothing_twice(aspects):
    connection, database = aspects.connection, aspects.database
    create_aspects_tables(connection, database, with_view=False)
    result = publish()
    sink = get_sink("course_outline")
    committed(connection, sink, [DEMO_KEY], result.dump_id, None, deleted=False)  # the hook again, same dump
    assert copy_dump(connection, FEEDS["course_outline"], [DEMO_KEY], result.dump_id, get_settings().aspects) == []
    assert sync() == []
    assert q(connection, f"SELECT count() FROM `{database}`.course_blocks") == [(21,)]


def test_insert_deduplication_token_does_not_deduplicate_aspects_tables_and_a_duplicate_is_harmless(aspects):
    """Why the feed checks for a dump id itself: Aspects' non-replicated MergeTree ignores the token."""
    connection, database = aspects.connection, aspects.database
    create_aspects_tables(connection, database, with_view=False)
    result = publish()
    statement = rows.course_blocks_insert(connection.database, "course_outline_dumps", database, "ours")
    params = {"keys": [DEMO_KEY], "dump_id": result.dump_id, "token": f"event_sinks:course_blocks:{result.dump_id}",
              **rows.NO_BLOCK_PARAMS}
    connection.command(statement, params)  # the same insert, the same token, a second time
    assert q(connection, f"SELECT count() FROM `{database}`.course_blocks") == [(42,)]  # not deduplicated
    assert current_blocks(connection, database) == our_blocks(connection)  # identical rows: the same outline


# -- unit numbering ---------------------------------------------------------------------------------------------


def aspects_numbers(outline: list[tuple]) -> list[tuple[int, int, int]]:
    """platform-plugin-aspects' count over a pre-order list of (block_type, detached): the oracle."""
    section = subsection = unit = 0
    found = []
    for block_type, detached in outline:
        if detached:
            found.append((0, 0, 0))
            continue
        if block_type == "chapter":
            section, subsection, unit = section + 1, 0, 0
        elif block_type == "sequential":
            subsection, unit = subsection + 1, 0
        elif block_type == "vertical":
            unit += 1
        found.append((section, subsection, unit))
    return found


@pytest.mark.parametrize("numbering", ["ours", "aspects"])
def test_unit_numbering_ours_or_aspects(embedded, settings, database, demo, numbering):
    switch_on(settings, f"{database}_aspects", UNIT_NUMBERING=numbering)
    unit = demo / "vertical" / "nile_video_unit.xml"
    unit.write_text(unit.read_text().replace(
        '  <html url_name="nile_reading"/>\n',
        '  <html url_name="nile_reading"/>\n  <split_test display_name="Which map?">'
        '<vertical display_name="Group A"><html display_name="Map A">a</html></vertical>'
        '<vertical display_name="Group B"><html display_name="Map B">b</html></vertical></split_test>\n'))
    publish()
    connection = connection_now()
    database = f"{database}_aspects"
    outline = q(connection, f"SELECT block_type, detached, section_ordinal, subsection_ordinal, unit_ordinal, "
                            f"display_name FROM `{connection.database}`.course_outline ORDER BY order_in_course")
    shown = [row[4:7] for row in current_blocks(connection, database)]
    expected = aspects_numbers([r[:2] for r in outline]) if numbering == "aspects" else [r[2:5] for r in outline]
    assert shown == expected
    by_name = {r[5]: s for r, s in zip(outline, shown, strict=True)}
    # the split_test's two group verticals are units 2 and 3 for Aspects; the quiz after them unit 4 (ours: 2)
    assert by_name["Group B"] == ((2, 1, 3) if numbering == "aspects" else (2, 1, 1))
    assert by_name["Quiz: the Nile"] == ((2, 1, 4) if numbering == "aspects" else (2, 1, 2))
    assert aspects_numbers([r[:2] for r in outline]) != [r[2:5] for r in outline]


# -- settings, the command line -------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "message"), [
    ({"ENABLED": "yes"}, "ENABLED expects True or False, found 'yes'"),
    ({"DATABASE": "event-sink"}, "DATABASE expects a plain identifier, found 'event-sink'"),
    ({"UNIT_NUMBERING": "mine"}, "UNIT_NUMBERING expects one of ['ours', 'aspects'], found 'mine'"),
    ({"TABLES": ["course_blocks"]}, "unknown options ['TABLES']"),
    (True, "expected a dict like"),
])
def test_bad_aspects_settings_are_refused_naming_the_option(settings, value, message):
    settings.EVENT_SINKS = {"ASPECTS": value}
    with pytest.raises(ConfigurationError, match=re.escape(f"EVENT_SINKS['ASPECTS']: {message}")):
        get_settings()


def test_aspects_database_may_not_be_the_librarys_own(embedded, settings, database, demo, caplog):
    switch_on(settings, database)
    with caplog.at_level(logging.ERROR, "event_sinks.aspects"):
        publish()
    assert "the library's own database" in caplog.text
    assert q(connection_now(), "SELECT count() FROM system.tables WHERE database = {d:String} AND "
                               "name = 'course_blocks' AND engine = 'View'", d=database) == [(1,)]  # ours, untouched


def test_sync_needs_the_compatibility_on(embedded):
    with pytest.raises(ConfigurationError, match=r"EVENT_SINKS\['ASPECTS'\]\['ENABLED'\] is False"):
        sync()


def test_the_command_line_prints_the_ddl_and_syncs(aspects, capsys):
    database = aspects.database
    assert main(["ddl", "--database", "event_sink"]) == 0
    out = capsys.readouterr().out
    assert "CREATE TABLE IF NOT EXISTS `event_sink`.`course_blocks` (" in out
    assert "PRIMARY KEY (`org`, `course_key`, `modified`, `time_last_dumped`)" in out
    from django.conf import settings

    settings.EVENT_SINKS = {**settings.EVENT_SINKS, "ASPECTS": {"ENABLED": False}}
    close_connections()
    result = publish()  # while off: nothing copied
    assert main(["sync", "--database", database, "--dry-run"]) == 0
    assert f"would copy course_outline: {DEMO_KEY}" in capsys.readouterr().out
    assert main(["sync", "--database", database]) == 0
    assert f"copy course_outline dump {result.dump_id}: {DEMO_KEY}" in capsys.readouterr().out
    assert current_blocks(connection_now(), database) == our_blocks(connection_now())
    assert main(["sync", "--database", "not-an-identifier"]) == 1
    assert "EVENT_SINKS['ASPECTS']: DATABASE expects a plain identifier" in capsys.readouterr().err


def test_course_names_come_from_course_overviews(aspects):
    """No course_overviews sink runs here (its model lives inside Open edX): the outline's dump writes the row."""
    publish()
    assert course_names(aspects.connection, aspects.database) == [(DEMO_KEY, "Event Sinks Demo: Rivers of the World")]
    assert uuid.UUID(str(q(aspects.connection, f"SELECT any(dump_id) FROM `{aspects.database}`.course_blocks")[0][0]))


def test_the_verification_query_of_docs_aspects_md(aspects):
    connection, database = aspects.connection, aspects.database
    section = (Path(__file__).resolve().parents[2] / "docs" / "aspects.md").read_text().split("### Verification", 1)[1]
    sql = section.split("```sql", 1)[1].split("```", 1)[0].strip().rstrip(";")
    sql = sql.replace("event_sinks.", f"`{connection.database}`.").replace("event_sink.", f"`{database}`.")
    publish()
    assert connection.query(sql) == []  # they agree
    connection.command(f"DELETE FROM `{database}`.course_blocks WHERE `order` > 19")
    assert connection.query(sql) == [(DEMO_KEY, 21, 19)]
    sync()
    assert connection.query(sql) == []


def test_a_dump_whose_commit_fails_reaches_nothing(aspects, monkeypatch):
    connection, database = aspects.connection, aspects.database
    create_aspects_tables(connection, database, with_view=False)
    from event_sinks.dumping import ledger

    def refuse(*args, **kwargs):
        raise OSError("connection reset while inserting the ledger row")

    monkeypatch.setattr(ledger, "commit", refuse)
    assert dump("course_outline", [DEMO_KEY]).count("failed") == 1
    assert q(connection, f"SELECT count() FROM `{database}`.course_blocks") == [(0,)]  # all rows written, none copied
    monkeypatch.undo()
    publish()
    assert current_blocks(connection, database) == our_blocks(connection) != []


def test_a_tombstone_deletes_only_the_rows_written_before_it(aspects):
    connection, database = aspects.connection, aspects.database
    create_aspects_tables(connection, database, with_view=False)
    publish()
    later = "2099-01-01 00:00:00.000000+00:00"  # written after the tombstone (the course made again elsewhere)
    connection.command(
        f"INSERT INTO `{database}`.course_blocks (org, course_key, location, display_name, xblock_data_json, "
        "edited_on, dump_id, time_last_dumped) VALUES ('EventSinks', {k:String}, {l:String}, 'Again', '{}', '', "
        "generateUUIDv4(), {t:String})", {"k": DEMO_KEY, "l": WELCOME_VIDEO, "t": later})
    dump("course_outline", [DEMO_KEY], delete=True)
    assert q(connection, f"SELECT display_name, time_last_dumped FROM `{database}`.course_blocks") == [("Again", later)]
