"""The course sinks end to end: real OLX exports -> rows -> engine -> views."""

from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from event_sinks import dump, get_sink
from event_sinks.clickhouse import get_connection
from event_sinks.courses.sources import OlxSource, set_course_source

DEMO = Path(__file__).resolve().parents[2] / "event_sinks" / "demo" / "course"
DEMO_KEY = "course-v1:EventSinks+Demo101+2026"

#: From ../shared/courses/SOURCES.md: course key and total blocks.
REAL_COURSES = {
    "olx-example-course": ("course-v1:OpenedX+OLXex+2025", 43),
    "openedx-test-course": ("course-v1:TestX+Course+1", 89),
    "openedx-demo-course": ("course-v1:OpenedX+DemoX+DemoCourse", 401),
    "demo-course-zh-cn": ("course-v1:edx+DemoX+course", 150),
    "harvardx-studio-advanced": ("course-v1:HarvardX+StudioAdv1+2T2019", 909),
    "dartmouthx-envx": ("course-v1:DartmouthX+DART.ENVS.02X+course", 917),
    "mitx-8mrev-partial": ("course-v1:MITx+8.MReV+2013_Summer", 1300 - 1),  # minus the dangling pointer
}


@pytest.fixture
def olx(embedded):
    """Install an OLX course source for the test; returns a function taking paths."""

    def install(*paths, **kwargs):
        set_course_source(OlxSource(paths, **kwargs))

    yield install
    set_course_source(None)


def q(sql, **params):
    engine = get_connection()
    return engine.query(sql.replace("{db}", f"`{engine.database}`"), params)


def test_demo_course_outline_in_the_views(olx):
    olx(DEMO)
    for name in ("course_outline", "block_relationships"):
        summary = dump(name, [DEMO_KEY])
        assert summary.count("dumped") == 1, summary.failed
    rows = q(
        "SELECT depth, block_type, display_name, section_ordinal, subsection_ordinal, unit_ordinal, graded, "
        "format, visible_to_staff_only FROM {db}.course_outline WHERE course_key = {k:String} "
        "ORDER BY order_in_course",
        k=DEMO_KEY,
    )
    assert rows[0] == (0, "course", "Event Sinks Demo: Rivers of the World", 0, 0, 0, False, None, False)
    assert rows[1] == (1, "chapter", "Welcome", 1, 0, 0, False, None, False)
    names = [r[2] for r in rows]
    # The Nile subsection is graded Homework; its blocks inherit graded, not format.
    nile = names.index("The Nile")
    assert rows[nile][3:8] == (2, 1, 0, True, "Homework")
    assert rows[nile + 1][2:8] == ("Watch: the Nile from source to sea", 2, 1, 1, True, None)
    # policy.json makes the Yangtze subsection graded; the Chinese title survives the engine.
    yangtze = names.index("长江 (The Yangtze)")
    assert rows[yangtze][6:8] == (True, "Homework")
    # A video without display_name gets Open edX's fallback (its url_name).
    assert "yangtze video" in names
    # The staff-only chapter passes visible_to_staff_only down to its descendants.
    staff = names.index("Staff notes")
    assert all(r[8] for r in rows[staff:]) and not any(r[8] for r in rows[:staff])
    assert len(rows) == 21

    labels = dict(q("SELECT display_name, label FROM {db}.course_blocks WHERE course_key = {k:String}", k=DEMO_KEY))
    assert labels["Quiz: the Nile"] == "2:1:2 - Quiz: the Nile"
    titles = q(
        "SELECT course_name, section_title, subsection_title FROM {db}.course_blocks "
        "WHERE display_name = 'How long is the Nile?'"
    )
    assert titles == [("Event Sinks Demo: Rivers of the World", "Great Rivers", "The Nile")]
    # the section and subsection of every block, by location too: written with the rows, no join
    places = q("SELECT b.section_location = s.location AND s.depth = 1, b.subsection_location = ss.location "
               "FROM {db}.course_blocks AS b JOIN {db}.course_blocks AS s ON s.location = b.section_location "
               "JOIN {db}.course_blocks AS ss ON ss.location = b.subsection_location WHERE b.depth >= 2")
    assert places and all(a and b for a, b in places)
    assert "JOIN" not in get_sink("course_outline").views()[0].select  # readers' labels cost no join


def test_an_unchanged_course_dumped_by_an_older_revision_of_the_sink_is_dumped_again(olx, monkeypatch):
    olx(DEMO)
    outline = get_sink("course_outline")
    monkeypatch.setattr(type(outline), "revision", 1)  # as 0.1 dumped it (no titles on the rows)
    assert dump(outline, [DEMO_KEY], skip_unchanged=True).count("dumped") == 1
    assert dump(outline, [DEMO_KEY], skip_unchanged=True).count("skipped") == 1
    monkeypatch.undo()
    assert dump(outline, [DEMO_KEY], skip_unchanged=True).count("dumped") == 1  # the rows changed: dumped again
    assert dump(outline, [DEMO_KEY], skip_unchanged=True).count("skipped") == 1


def test_videos_with_event_counts_including_unwatched(olx):
    olx(DEMO)
    dump("course_outline", [DEMO_KEY])
    engine = get_connection()
    engine.command(f"CREATE TABLE `{engine.database}`.video_events (object_id String) ENGINE = MergeTree ORDER BY ()")
    videos = [
        r[0] for r in q("SELECT location FROM {db}.course_blocks WHERE block_type = 'video' ORDER BY order_in_course")
    ]
    assert len(videos) == 3
    engine.insert_columns("video_events", ["object_id"], ["String"], [[videos[0]] * 3 + [videos[2]]])
    report = q(
        "SELECT b.display_name, countIf(e.object_id != '') AS views FROM {db}.course_blocks AS b "
        "LEFT JOIN {db}.video_events AS e ON e.object_id = b.location "
        "WHERE b.course_key = {k:String} AND b.block_type = 'video' "
        "GROUP BY b.display_name, b.order_in_course ORDER BY b.order_in_course",
        k=DEMO_KEY,
    )
    assert report == [("Welcome video", 3), ("The Nile from the air", 0), ("yangtze video", 1)]


def test_removed_block_leaves_the_current_views(olx, tmp_path):
    course = tmp_path / "course"
    shutil.copytree(DEMO, course)
    olx(course)
    for name in ("course_outline", "block_relationships"):
        dump(name, [DEMO_KEY])
    quiz = "block-v1:EventSinks+Demo101+2026+type@vertical+block@nile_quiz_unit"
    assert q("SELECT count() FROM {db}.course_outline WHERE location = {l:String}", l=quiz) == [(1,)]
    seq = course / "sequential" / "nile.xml"
    seq.write_text(seq.read_text().replace('  <vertical url_name="nile_quiz_unit"/>\n', ""))
    for name in ("course_outline", "block_relationships"):
        summary = dump(name, [DEMO_KEY], skip_unchanged=True)
        assert summary.count("dumped") == 1  # the source version changed with the file
    assert q("SELECT count() FROM {db}.course_outline WHERE location = {l:String}", l=quiz) == [(0,)]
    assert q("SELECT count() FROM {db}.course_outline WHERE course_key = {k:String}", k=DEMO_KEY) == [(18,)]
    assert q(
        "SELECT count() FROM {db}.block_relationships "
        "WHERE child_location = {l:String} OR parent_location = {l:String}",
        l=quiz,
    ) == [(0,)]


def rebuild_preorder(edges, root):
    children = defaultdict(list)
    for parent, child, position in edges:
        children[parent].append((position, child))
    order, stack = [], [root]
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(child for _, child in sorted(children[node], reverse=True))
    return order


@pytest.mark.parametrize("name", sorted(REAL_COURSES))
def test_real_courses_round_trip(olx, shared_courses, name):
    course_key, total = REAL_COURSES[name]
    olx(shared_courses / name)
    for sink in ("course_outline", "block_relationships"):
        summary = dump(sink, [course_key])
        assert summary.count("dumped") == 1, summary.failed
    outline = q(
        "SELECT location, parent_location FROM {db}.course_outline "
        "WHERE course_key = {k:String} ORDER BY order_in_course",
        k=course_key,
    )
    assert len(outline) == total
    root = f"block-v1:{course_key.removeprefix('course-v1:')}+type@course+block@course"
    assert outline[0] == (root, None)
    edges = q(
        "SELECT parent_location, child_location, position FROM {db}.block_relationships WHERE course_key = {k:String}",
        k=course_key,
    )
    assert len(edges) == total - 1
    # The relationship rows alone rebuild the exact tree, in author order.
    assert rebuild_preorder(edges, root) == [loc for loc, _ in outline]
    parents = {child: parent for parent, child, _ in edges}
    assert all(parents.get(loc) == parent for loc, parent in outline[1:])


def test_real_course_labels(olx, shared_courses):
    olx(shared_courses / "openedx-demo-course", shared_courses / "demo-course-zh-cn")
    dump("course_outline", ["course-v1:OpenedX+DemoX+DemoCourse", "course-v1:edx+DemoX+course"])
    first = q(
        "SELECT location, label, course_name FROM {db}.course_blocks "
        "WHERE course_key = 'course-v1:OpenedX+DemoX+DemoCourse' AND depth = 2 ORDER BY order_in_course LIMIT 1"
    )
    assert first == [(
        "block-v1:OpenedX+DemoX+DemoCourse+type@sequential+block@4e1de5e13fc3422997fe246b40a43aa1",
        "1:1:0 - Introduction to the Open edX® platform",
        "Open edX Demo Course",
    )]
    zh = q(
        "SELECT display_name, section_ordinal FROM {db}.course_outline "
        "WHERE course_key = 'course-v1:edx+DemoX+course' AND depth = 1 ORDER BY order_in_course LIMIT 1"
    )
    assert zh == [("介绍", 1)]


def test_bad_course_key_is_a_clear_failure(olx):
    olx(DEMO)
    summary = dump("course_outline", ["not-a-course", "course-v1:Nobody+Here+2026"])
    assert [r.status for r in summary.results] == ["failed", "failed"]
    assert "expected a course key like 'course-v1:ORG+COURSE+RUN'" in summary.results[0].error
    assert "not among the OLX exports" in summary.results[1].error


def test_serialize_without_writing():
    set_course_source(OlxSource([DEMO]))
    try:
        rows = list(get_sink("block_relationships").serialize(DEMO_KEY))
    finally:
        set_course_source(None)
    assert len(rows) == 20 and rows[0][2] == f"block-v1:{DEMO_KEY[10:]}+type@course+block@course"


@pytest.mark.parametrize("name", ["openedx-test-course", "harvardx-studio-advanced"])
def test_modulestore_source_gives_the_same_rows_as_olx(shared_courses, name):
    """The same course shape through the modulestore reader (stand-in store) and the OLX reader."""
    from event_sinks.courses import read_olx
    from event_sinks.courses.sources import ModulestoreSource
    from event_sinks.testing.modulestore import store_from_course

    course_key = REAL_COURSES[name][0]
    olx_source = OlxSource([shared_courses / name])
    store = store_from_course(read_olx(shared_courses / name))
    for sink_name in ("course_outline", "block_relationships"):
        sink = get_sink(sink_name)
        set_course_source(olx_source)
        from_olx = list(sink.serialize(course_key))
        set_course_source(ModulestoreSource(store))
        from_store = list(sink.serialize(course_key))
        set_course_source(None)
        assert from_store == from_olx and len(from_olx) >= 88


# -- one course read per publish, whatever the number of course sinks ----------------------------------------


def test_both_course_sinks_dump_a_publish_from_one_full_read(embedded):
    from event_sinks.courses.sources import ModulestoreSource
    from event_sinks.dumping import dump_together
    from event_sinks.testing.modulestore import StandInModuleStore, synthetic_course

    store = StandInModuleStore([synthetic_course("One", "Read", "R", 300)])
    set_course_source(ModulestoreSource(store))
    try:
        key = "course-v1:One+Read+R"
        outline, relationships = dump_together(["course_outline", "block_relationships"], [key])
        assert outline.count("dumped") == 1 and relationships.count("dumped") == 1
        assert store.full_reads(key) == 1  # get_course(depth=None): once, for both sinks
        engine = get_connection()
        assert engine.query(f"SELECT count() FROM `{engine.database}`.course_outline")[0][0] == 300
        assert engine.query(f"SELECT count() FROM `{engine.database}`.block_relationships")[0][0] == 299

        # A duplicate trigger of the same publish: the cheap version (the course root) says unchanged.
        again = dump_together(["course_outline", "block_relationships"], [key])
        assert [s.count("skipped") for s in again] == [1, 1] and store.full_reads(key) == 1
    finally:
        set_course_source(None)
