"""docs/queries.md's "views per video" on the demo course, over xAPI statements shaped as Aspects stores them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from event_sinks import dump
from event_sinks.clickhouse import get_connection

from ..support import xapi
from .conftest import DEMO_KEY

QUERIES = Path(__file__).resolve().parents[2] / "docs" / "queries.md"
VIDEO = "block-v1:EventSinks+Demo101+2026+type@video+block@{}"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def documented_query() -> str:
    section = QUERIES.read_text(encoding="utf-8").split("## Views per video", 1)[1]
    return section.split("```sql", 1)[1].split("```", 1)[0].strip().rstrip(";")


def test_views_per_video_counts_plays_and_unwatched_videos_count_0(embedded, demo, database):
    assert dump("course_outline", [DEMO_KEY]).count("dumped") == 1
    connection = get_connection()
    events = f"{database}_xapi"
    xapi.create_tables(connection, events)
    for table in ("xapi_events_all", "xapi_events_all_parsed"):  # the copy stays until a merge: hold merges off
        connection.command(f"SYSTEM STOP MERGES `{events}`.{table}")
    name = "Event Sinks Demo: Rivers of the World"
    statements = (
        xapi.viewing(VIDEO.format("welcome_video"), "learner-a", START, plays=2, course_name=name)
        + xapi.viewing(VIDEO.format("welcome_video"), "learner-b", START + timedelta(hours=1), plays=1,
                       course_name=name)
        + xapi.viewing(VIDEO.format("nile_video"), "learner-a", START + timedelta(hours=2), plays=0,
                       course_name=name)  # loaded, never played
        + xapi.viewing(VIDEO.format("yangtze_video"), "learner-b", START + timedelta(hours=3), plays=1,
                       course_name=name)
        # the same video id in another course: not this course's video
        + xapi.viewing("block-v1:Other+Course+Run+type@video+block@welcome_video", "learner-a",
                       START + timedelta(hours=4), plays=5)
    )
    redelivered = [s for s in statements if s["verb"]["id"] == xapi.PLAYED and "yangtze" in s["object"]["id"]]
    xapi.insert(connection, events, statements)
    xapi.insert(connection, events, redelivered)  # sent again later (a retry): the same id, a second row until merged

    assert {s["verb"]["id"] for s in statements} == {xapi.INITIALIZED, xapi.PLAYED, xapi.PAUSED}
    assert statements[1]["object"]["id"] == f"{xapi.LMS_ROOT_URL}/xblock/{VIDEO.format('welcome_video')}"
    parsed = connection.query(f"SELECT count(), uniqExact(event_id) FROM `{events}`.xapi_events_all_parsed")
    assert parsed == [(len(statements) + 1, len(statements))]

    sql = documented_query().replace("xapi.", f"`{events}`.")
    sql = re.sub(r"\bFROM course_blocks\b", f"FROM `{connection.database}`.course_blocks", sql)
    assert connection.query(sql) == [
        ("1:1:1 - Welcome video", name, 3),
        ("2:1:1 - The Nile from the air", name, 0),
        ("2:2:1 - yangtze video", name, 1),
    ]
    # the query the docs had before: the object id is an IRI, not the usage key, so nothing ever matched
    old = connection.query(
        f"SELECT b.display_name, countIf(e.object_id != '') FROM `{connection.database}`.course_blocks AS b "
        f"LEFT JOIN `{events}`.xapi_events_all_parsed AS e ON e.object_id = b.location "
        "WHERE b.block_type = 'video' GROUP BY b.display_name, b.order_in_course ORDER BY b.order_in_course")
    assert [views for _, views in old] == [0, 0, 0]
