"""What Aspects holds and how it reads it, written from the contract, independent of event_sinks.aspects.

- ``create_aspects_tables``: ``course_blocks`` and ``course_overviews`` as tutor-contrib-aspects' migration
  0007 makes them (columns NOT NULL, ``order Int32 default 0``, ``self_paced BOOL``, plain MergeTree),
  and a materialized view shaped like aspects-dbt's ``dim_most_recent_course_blocks`` (it fires on
  INSERT only, keeps per location the row of the latest ``time_last_dumped``, ReplacingMergeTree by
  location).
- The reads: per location the row with the greatest ``time_last_dumped``; a block whose latest row is
  older than its course's latest dump is deleted; a course's name is its ``course_overviews`` row with
  the greatest ``modified``.
"""

from __future__ import annotations

import re

#: ``time_last_dumped``: ``str()`` of an aware UTC datetime with microseconds.
TIME_LAST_DUMPED = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00:00$")


def create_aspects_tables(connection, database: str, *, with_view: bool = True) -> None:
    """Aspects' event-sink tables (and the course blocks view aspects-dbt puts on them) in ``database``."""
    db = f"`{database}`"
    connection.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    connection.command(f"""
        CREATE TABLE IF NOT EXISTS {db}.course_overviews (
            org String NOT NULL, course_key String NOT NULL, display_name String NOT NULL,
            course_start String NOT NULL, course_end String NOT NULL, enrollment_start String NOT NULL,
            enrollment_end String NOT NULL, self_paced BOOL NOT NULL, course_data_json String NOT NULL,
            created String NOT NULL, modified String NOT NULL, dump_id UUID NOT NULL,
            time_last_dumped String NOT NULL
        ) engine = MergeTree
        PRIMARY KEY (org, course_key, modified, time_last_dumped)
        ORDER BY (org, course_key, modified, time_last_dumped)""")
    connection.command(f"""
        CREATE TABLE IF NOT EXISTS {db}.course_blocks (
            org String NOT NULL, course_key String NOT NULL, location String NOT NULL,
            display_name String NOT NULL, xblock_data_json String NOT NULL, order Int32 default 0,
            edited_on String NOT NULL, dump_id UUID NOT NULL, time_last_dumped String NOT NULL
        ) engine = MergeTree
        PRIMARY KEY (org, course_key, location, edited_on)
        ORDER BY (org, course_key, location, edited_on, order)""")
    if with_view:
        connection.command(f"""
            CREATE TABLE {db}.dim_most_recent_course_blocks (
                location String, block_name String, display_name_with_location String, course_order Int32,
                course_key String, graded Bool, time_last_dumped String
            ) ENGINE = ReplacingMergeTree ORDER BY (location)""")
        connection.command(f"""
            CREATE MATERIALIZED VIEW {db}.dim_most_recent_course_blocks_mv TO {db}.dim_most_recent_course_blocks AS
            SELECT b.location AS location, b.display_name AS block_name,
                toString(JSONExtractInt(b.xblock_data_json, 'section')) || ':'
                || toString(JSONExtractInt(b.xblock_data_json, 'subsection')) || ':'
                || toString(JSONExtractInt(b.xblock_data_json, 'unit')) || ' - ' || b.display_name
                    AS display_name_with_location,
                b.order AS course_order, b.course_key AS course_key,
                JSONExtractBool(b.xblock_data_json, 'graded') AS graded, b.time_last_dumped AS time_last_dumped
            FROM {db}.course_blocks AS b
            JOIN (SELECT location, max(time_last_dumped) AS latest FROM {db}.course_blocks GROUP BY location) AS l
                ON b.location = l.location AND b.time_last_dumped = l.latest""")


def current_blocks(connection, database: str, course_key: str | None = None) -> list[tuple]:
    """The blocks Aspects shows: (course_key, location, name, order, section, subsection, unit, graded, type)."""
    db = f"`{database}`"
    where = "WHERE b.course_key = {k:String}" if course_key else ""
    return connection.query(f"""
        SELECT DISTINCT b.course_key, b.location, b.display_name, b.order,
            JSONExtractInt(b.xblock_data_json, 'section'), JSONExtractInt(b.xblock_data_json, 'subsection'),
            JSONExtractInt(b.xblock_data_json, 'unit'), JSONExtractBool(b.xblock_data_json, 'graded'),
            JSONExtractString(b.xblock_data_json, 'block_type')
        FROM {db}.course_blocks AS b
        JOIN (SELECT location, max(time_last_dumped) AS latest FROM {db}.course_blocks GROUP BY location) AS l
            ON b.location = l.location AND b.time_last_dumped = l.latest
        JOIN (SELECT course_key, max(time_last_dumped) AS latest FROM {db}.course_blocks GROUP BY course_key) AS c
            ON b.course_key = c.course_key AND b.time_last_dumped = c.latest
        {where}
        ORDER BY b.course_key, b.order""", {"k": course_key or ""})


def our_blocks(connection, course_key: str | None = None) -> list[tuple]:
    """The same from the library's own view."""
    where = "WHERE course_key = {k:String}" if course_key else ""
    return connection.query(f"""
        SELECT course_key, location, display_name, toInt32(order_in_course + 1), section_ordinal,
            subsection_ordinal, unit_ordinal, graded, block_type
        FROM `{connection.database}`.course_outline {where}
        ORDER BY course_key, order_in_course""", {"k": course_key or ""})


def course_names(connection, database: str) -> list[tuple]:
    """(course_key, name) of every course, from its course_overviews row with the latest ``modified``."""
    db = f"`{database}`"
    return connection.query(f"""
        SELECT DISTINCT o.course_key, o.display_name
        FROM {db}.course_overviews AS o
        JOIN (SELECT org, course_key, max(modified) AS latest FROM {db}.course_overviews GROUP BY org, course_key) AS m
            ON o.org = m.org AND o.course_key = m.course_key AND o.modified = m.latest
        ORDER BY o.course_key""")


def labels_from_view(connection, database: str, course_key: str) -> dict[str, str]:
    """location -> ``display_name_with_location`` from the materialized view's table (after merging)."""
    return dict(connection.query(
        f"SELECT location, display_name_with_location FROM `{database}`.dim_most_recent_course_blocks FINAL "
        "WHERE course_key = {k:String}", {"k": course_key}))


def table_shapes(connection, database: str) -> dict[str, tuple]:
    """Each table's CREATE statement and row count: what "changed none of them" compares."""
    shapes = {}
    for name, create in connection.query(
            "SELECT name, create_table_query FROM system.tables WHERE database = {db:String} ORDER BY name",
            {"db": database}):
        shapes[name] = (create,)
    return shapes
