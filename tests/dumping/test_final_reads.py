"""Views read a current table FINAL within the granules the key's index selects, and stay exact.

Why: on the engine's default (``use_skip_indexes_if_final_exact_mode = 1``) a FINAL read adds every
granule sharing sorting-key values with those a skip index kept; a course read through
``course_blocks`` then read twice the granules its course fills (benchmarks/read_path.py, Q2/Q3).
The views turn that off (:data:`event_sinks.clickhouse.ddl.FINAL_SKIP_SETTING`), which is exact only
because a row's versions share its identity and the identity names the key; the second test holds
the view to the source's rows across parts and granules. An engine without the setting (older
servers refuse a view that names it) gets the views without it.
"""

from __future__ import annotations

import pytest

from event_sinks import dump
from event_sinks.clickhouse import Connection
from event_sinks.clickhouse import connection as connection_module
from event_sinks.clickhouse.ddl import FINAL_SKIP_SETTING
from event_sinks.courses.sources import ModulestoreSource, set_course_source
from event_sinks.testing.modulestore import StandInModuleStore, synthetic_course

BLOCKS = 5_000  # three courses: 15,000 rows, two granules of 8,192; course B straddles them


def key(course: str) -> str:
    return f"course-v1:Fin+{course}+R"


@pytest.fixture
def store(embedded):
    store = StandInModuleStore([synthetic_course("Fin", c, "R", BLOCKS) for c in "ABC"])
    set_course_source(ModulestoreSource(store))
    summary = dump("course_outline", [key(c) for c in "ABC"])
    assert summary.count("dumped") == 3, summary.failed
    yield store
    set_course_source(None)


def locations(engine: Connection, view: str, course: str) -> set[str]:
    return {r[0] for r in engine.query(f"SELECT location FROM `{engine.database}`.{view} "  # noqa: S608 - test names
                                       "WHERE course_key = {k:String}", {"k": key(course)})}


def plan(engine: Connection, view: str, course: str) -> str:
    return "\n".join(r[0] for r in engine.query(
        f"EXPLAIN indexes = 1 SELECT location FROM `{engine.database}`.{view} "  # noqa: S608 - test names
        "WHERE course_key = {k:String}", {"k": key(course)}))


def test_a_course_read_keeps_to_the_granules_its_index_selects(store, embedded):
    engine = Connection(embedded)
    for view in ("course_outline", "course_blocks"):
        shown = plan(engine, view, "B")
        assert "course_key_range" in shown, shown  # the key's minmax index is used ...
        assert "PrimaryKeyExpand" not in shown, shown  # ... and its selection is not widened


def test_the_views_show_each_courses_latest_dump_across_parts_and_granules(store, embedded):
    engine = Connection(embedded)
    before = {c: locations(engine, "course_blocks", c) for c in "ABC"}
    assert all(len(before[c]) == BLOCKS for c in "ABC")
    smaller = synthetic_course("Fin", "B", "R", 3_000)  # a new version of B: 2,000 blocks gone
    store.add_course(smaller)
    assert dump("course_outline", [key("B")]).count("dumped") == 1
    parts = engine.value("SELECT count() FROM system.parts WHERE database = {db:String} AND "
                         "table = 'course_outline_current' AND active", {"db": engine.database})
    assert parts >= 2  # the first dump's and B's at least: the read merges them
    expected = {str(location.for_branch(None)) for location in _locations(smaller)}  # as the sink writes them
    for view in ("course_outline", "course_blocks"):
        assert locations(engine, view, "B") == expected
        assert locations(engine, view, "A") == before["A"] and locations(engine, view, "C") == before["C"]


def _locations(root) -> list:
    found, stack = [], [root]
    while stack:
        block = stack.pop()
        found.append(block.location)
        stack.extend(block.get_children())
    return found


def test_an_engine_without_the_setting_gets_views_without_it(embedded, monkeypatch):
    engine = Connection(embedded)
    monkeypatch.setattr(connection_module, "FINAL_SKIP_SETTING", "no_such_setting_in_any_engine")
    set_course_source(ModulestoreSource(StandInModuleStore([synthetic_course("Fin", "A", "R", 300)])))
    try:
        assert dump("course_outline", [key("A")], connection=engine).count("dumped") == 1
    finally:
        set_course_source(None)
    ddl = engine.value("SELECT create_table_query FROM system.tables WHERE database = {db:String} "
                       "AND name = 'course_blocks'", {"db": engine.database})
    assert FINAL_SKIP_SETTING not in ddl and " FINAL" in ddl
    assert len(locations(engine, "course_blocks", "A")) == 300


def test_an_engine_with_the_setting_gets_views_with_it(store, embedded):
    engine = Connection(embedded)
    for view in ("course_outline", "course_blocks"):
        ddl = engine.value("SELECT create_table_query FROM system.tables WHERE database = {db:String} "
                           "AND name = {v:String}", {"db": engine.database, "v": view})
        assert f"SETTINGS {FINAL_SKIP_SETTING} = 0" in ddl
