"""A schema never replaces or alters what the library did not create (event_sinks.core.ownership).

``CREATE OR REPLACE VIEW`` replaces a *table* of the same name: the library's ``course_blocks`` view,
applied to a database holding Aspects' ``course_blocks`` table, would drop the table and its rows.
"""

from __future__ import annotations

import re

import pytest

from event_sinks import get_sink
from event_sinks.clickhouse import get_connection
from event_sinks.core import ownership
from event_sinks.core.visibility import ledger_schema
from event_sinks.errors import ConfigurationError

from .contract import create_aspects_tables


def outline_schema():
    return ledger_schema() + get_sink("course_outline").schema()


def seed_aspects_rows(connection, database: str) -> None:
    connection.command(
        f"INSERT INTO `{database}`.course_blocks (org, course_key, location, display_name, xblock_data_json, "
        "edited_on, dump_id, time_last_dumped) VALUES ('Org', 'course-v1:Org+C+R', "
        "'block-v1:Org+C+R+type@course+block@course', 'A course', '{}', '', generateUUIDv4(), "
        "'2024-07-10 19:58:24.094725+00:00')")


def test_a_database_holding_aspects_course_blocks_table_is_refused_naming_the_table(embedded):
    connection = get_connection()
    create_aspects_tables(connection, connection.database, with_view=False)
    seed_aspects_rows(connection, connection.database)
    with pytest.raises(ConfigurationError) as caught:
        ownership.refuse_foreign(connection.query, connection.database, outline_schema())
    message = str(caught.value)
    assert f"{connection.database}.course_blocks is a MergeTree table, not a view this library created" in message
    assert "CREATE OR REPLACE VIEW" in message and "a database of its own" in message
    assert connection.query(f"SELECT engine FROM system.tables WHERE database = '{connection.database}' "
                            "AND name = 'course_blocks'") == [("MergeTree",)]


def test_the_librarys_own_objects_may_be_applied_again(embedded):
    connection = get_connection()
    schema = outline_schema()
    ownership.refuse_foreign(connection.query, connection.database, schema)  # nothing there yet
    connection.apply_schema(schema)
    ownership.refuse_foreign(connection.query, connection.database, schema)  # our views (no comment): read ours
    rows = connection.query(ownership.OBJECTS_QUERY, {"db": connection.database, "names": ownership.names(schema)})
    assert {r[0] for r in rows} == set(ownership.names(schema))
    assert ownership.judge(rows, schema, connection.database) == []


@pytest.mark.parametrize(("statement", "reason"), [
    ("CREATE VIEW {db}.course_outline AS SELECT 1 AS one", "is a view this library did not create"),
    ("CREATE TABLE {db}.course_outline_dumps (x UInt8) ENGINE = MergeTree ORDER BY x COMMENT 'someone else'",
     "is a MergeTree table this library did not create (comment 'someone else')"),
    ("CREATE VIEW {db}.course_outline_dumps AS SELECT 1 AS one", "is a View, not a table of this library"),
])
def test_foreign_objects_with_the_names_of_ours_are_refused(embedded, statement, reason):
    connection = get_connection()
    connection.command(statement.format(db=f"`{connection.database}`"))
    with pytest.raises(ConfigurationError, match=re.escape(reason)):
        ownership.refuse_foreign(connection.query, connection.database, outline_schema())


def test_a_view_with_our_declared_comment_is_ours():
    schema = outline_schema()
    view = next(v for v in schema.views if v.name == "course_blocks")
    assert ownership.judge([("course_blocks", "View", view.comment, "CREATE VIEW x.course_blocks AS SELECT 1")],
                           schema, "x") == []
    reading = "CREATE VIEW x.course_blocks AS SELECT * FROM {}.course_outline"
    assert ownership.judge([("course_blocks", "View", "", reading.format("x"))], schema, "x") == []
    assert ownership.judge([("course_blocks", "View", "", reading.format("y"))], schema, "x") != []  # not ours here


def test_applying_our_schema_over_aspects_table_refuses_instead_of_replacing_it(embedded):
    connection = get_connection()
    create_aspects_tables(connection, connection.database, with_view=False)
    seed_aspects_rows(connection, connection.database)
    try:
        with pytest.raises(ConfigurationError, match="course_blocks is a MergeTree table"):
            connection.apply_schema(outline_schema())
    finally:  # today: the table was replaced by the view, its row gone
        engine = connection.query(f"SELECT engine FROM system.tables WHERE database = '{connection.database}' "
                                  "AND name = 'course_blocks'")
        assert engine == [("MergeTree",)], f"Aspects' course_blocks was replaced: now {engine}"
