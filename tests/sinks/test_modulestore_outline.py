"""The course sinks over the modulestore reader: detached blocks, failed blocks, courses the outline cannot number."""

from __future__ import annotations

import pytest

from event_sinks import dump
from event_sinks.clickhouse import get_connection
from event_sinks.courses.sources import ModulestoreSource, set_course_source
from event_sinks.testing.modulestore import StandInModuleStore, synthetic_course

KEY = "course-v1:Tabs+T1+R"
PLAIN = "course-v1:Tabs+Plain+R"  # the same course without detached blocks
N = 300
DETACHED = [("static_tab", "syllabus", "Syllabus"), ("about", "overview", None),
            ("course_info", "updates", "Course Updates"), ("course_info", "handouts", None)]
FAILING = "block-v1:Tabs+T1+R+type@problem+block@problem00000004"


def q(sql, **params):
    engine = get_connection()
    return engine.query(sql.replace("{db}", f"`{engine.database}`"), params)


@pytest.fixture
def store(embedded):
    store = StandInModuleStore([synthetic_course("Tabs", "T1", "R", N), synthetic_course("Tabs", "Plain", "R", N)])
    for block_type, block_id, name in DETACHED:
        store.add_block(KEY, block_type, block_id, fields={} if name is None else {"display_name": name})
    store.fail_to_load(FAILING)
    set_course_source(ModulestoreSource(store))
    for sink in ("course_outline", "block_relationships"):
        summary = dump(sink, [KEY, PLAIN])
        assert summary.count("dumped") == 2, summary.failed
    yield store
    set_course_source(None)


def detached_keys():
    return {f"block-v1:Tabs+T1+R+type@{t}+block@{i}" for t, i, _ in DETACHED}


def test_detached_blocks_are_dumped_once_each_after_the_outline(store):
    rows = q("SELECT location, block_type, display_name, parent_location, depth, order_in_course, section_ordinal, "
             "subsection_ordinal, unit_ordinal, detached FROM {db}.course_outline WHERE course_key = {k:String} "
             "ORDER BY order_in_course", k=KEY)
    assert len(rows) == N + len(DETACHED)
    outline, tail = rows[:N], rows[N:]
    assert not any(r[9] for r in outline) and all(r[9] for r in tail)
    # last, by type and id, at depth 0 without a parent or ordinals; unnamed ones take their class's name
    assert [(r[1], r[2], r[3], r[4], r[6:9]) for r in tail] == [
        ("about", "overview", None, 0, (0, 0, 0)), ("course_info", "Text", None, 0, (0, 0, 0)),
        ("course_info", "Course Updates", None, 0, (0, 0, 0)), ("static_tab", "Syllabus", None, 0, (0, 0, 0))]
    assert {r[0] for r in tail} == detached_keys()
    # the tree's rows are the same as without detached blocks: same order and ordinals
    plain = q("SELECT replaceOne(location, 'Plain', 'T1'), order_in_course, section_ordinal, subsection_ordinal, "
              "unit_ordinal FROM {db}.course_outline WHERE course_key = {k:String} ORDER BY order_in_course", k=PLAIN)
    assert [(r[0], r[5], r[6], r[7], r[8]) for r in outline] == [tuple(r) for r in plain]


def test_detached_blocks_are_not_the_course_root_in_the_views(store):
    names = q("SELECT course_name, count() FROM {db}.course_blocks WHERE course_key = {k:String} GROUP BY course_name",
              k=KEY)
    # one row per block (a second depth-0 row would multiply them), each named after the course
    assert names == [("Synthetic course T1 (300 blocks)", N + len(DETACHED))]
    labels = dict(q("SELECT location, label FROM {db}.course_blocks WHERE course_key = {k:String}", k=KEY))
    assert labels["block-v1:Tabs+T1+R+type@static_tab+block@syllabus"] == "0:0:0 - Syllabus"


def test_detached_blocks_have_no_edges(store):
    edges = q("SELECT parent_location, child_location FROM {db}.block_relationships WHERE course_key = {k:String}",
              k=KEY)
    assert len(edges) == N - 1
    assert detached_keys().isdisjoint(key for edge in edges for key in edge)


def test_a_block_that_fails_to_load_is_dumped_under_its_authored_key(store):
    rows = q("SELECT block_type, display_name, graded, due, order_in_course FROM {db}.course_outline "
             "WHERE location = {l:String}", l=FAILING)
    siblings = q("SELECT graded, due, order_in_course FROM {db}.course_outline WHERE location = {l:String}",
                 l=FAILING.replace("problem+block@problem00000004", "html+block@html00000003"))
    # no name of its own (the outline falls back to its id), its parent's inherited settings, its place
    assert rows == [("problem", "problem00000004", siblings[0][0], siblings[0][1], siblings[0][2] + 1)]
    edge = q("SELECT parent_location, child_type, position FROM {db}.block_relationships "
             "WHERE child_location = {l:String}", l=FAILING)
    assert edge == [("block-v1:Tabs+T1+R+type@vertical+block@unit00000001", "problem", 1)]
    assert q("SELECT count() FROM {db}.course_outline WHERE location LIKE '%type@error%'") == [(0,)]


def test_a_course_the_outline_cannot_number_fails_alone_and_says_why(embedded):
    """65,536 sections overflow the UInt16 section ordinals: that course fails, named, before any row is
    written; a title holding a lone surrogate (not encodable as UTF-8) is dumped with U+FFFD instead."""
    wide, odd = "course-v1:Wide+W+R", "course-v1:Odd+O+R"
    store = StandInModuleStore([synthetic_course("Wide", "W", "R", N), synthetic_course("Odd", "O", "R", N)])
    for i in range(65_536 - 10):  # the synthetic course has 10 sections
        store.add_block(wide, "chapter", f"extra{i}", parent="block-v1:Wide+W+R+type@course+block@course")
    store.add_block(odd, "chapter", "odd", parent="block-v1:Odd+O+R+type@course+block@course",
                    fields={"display_name": "odd \ud800 title"})
    set_course_source(ModulestoreSource(store))
    try:
        summary = dump("course_outline", [wide, odd])
    finally:
        set_course_source(None)
    status = {r.key: (r.status, r.error) for r in summary.results}
    assert status[odd][0] == "dumped"
    assert status[wide][0] == "failed"
    assert "block-v1:Wide+W+R+type@course+block@course has more than 65535 children" in status[wide][1]
    assert q("SELECT count() FROM {db}.course_outline WHERE course_key = {k:String}", k=wide) == [(0,)]
    assert q("SELECT display_name FROM {db}.course_outline WHERE location = {l:String}",
             l="block-v1:Odd+O+R+type@chapter+block@odd") == [("odd \ufffd title",)]
