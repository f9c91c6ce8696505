"""``sink_schema --apply`` beside Aspects' tables: none of them changes unless the setting says to feed them."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command

from event_sinks import dump
from event_sinks.clickhouse import close_connections, get_connection

from .conftest import DEMO_KEY, switch_on
from .contract import create_aspects_tables, current_blocks, our_blocks

#: A row as platform-plugin-aspects writes it, before this library ever ran.
THEIR_ROW = ("'Org', 'course-v1:Org+C+R', 'block-v1:Org+C+R+type@course+block@course', 'A course', "
             "'{\"course\": \"C\", \"run\": \"R\", \"block_type\": \"course\", \"section\": 0, \"subsection\": 0, "
             "\"unit\": 0}', 1, '2024-03-12 10:00:00+00:00', generateUUIDv4(), '2024-07-10 19:58:24.094725+00:00'")


def objects(database: str) -> dict[str, tuple]:
    """Every object of ``database``: engine, CREATE statement, row count."""
    connection = get_connection()
    found = {}
    for name, engine, create in connection.query(
            "SELECT name, engine, create_table_query FROM system.tables WHERE database = {db:String}",
            {"db": database}):
        count = connection.query(f"SELECT count() FROM `{database}`.`{name}`")[0][0] if engine != "View" else None
        found[name] = (engine, create, count)
    return found


def test_sink_schema_apply_changes_none_of_aspects_tables_and_only_a_dump_adds_rows_when_on(
        embedded, settings, database, demo):
    aspects = f"{database}_aspects"
    connection = get_connection()
    create_aspects_tables(connection, aspects)
    connection.command(f"INSERT INTO `{aspects}`.course_blocks VALUES ({THEIR_ROW})")
    before = objects(aspects)
    assert before["course_blocks"][2] == 1 and before["dim_most_recent_course_blocks"][2] == 1

    out = StringIO()
    call_command("sink_schema", "--apply", stdout=out)  # the setting off (default)
    assert "applied" in out.getvalue() and objects(aspects) == before
    dump("course_outline", [DEMO_KEY])
    assert objects(aspects) == before  # off: nothing reaches Aspects

    switch_on(settings, aspects)
    call_command("sink_schema", "--apply", stdout=StringIO())
    assert objects(aspects) == before  # on: the schema still leaves Aspects' tables alone
    dump("course_outline", [DEMO_KEY])
    after = objects(aspects)
    assert {name: shape[:2] for name, shape in after.items()} == {name: shape[:2] for name, shape in before.items()}
    assert after["course_blocks"][2] == 1 + 21  # their row kept, our dump added; no ALTER, no new object
    connection = get_connection()
    assert [r for r in current_blocks(connection, aspects) if r[0] == DEMO_KEY] == our_blocks(connection)
    assert [r[0] for r in current_blocks(connection, aspects)].count("course-v1:Org+C+R") == 1  # theirs still shows
    close_connections()
