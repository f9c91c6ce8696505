"""read_modulestore / list_course_keys over the stand-in store, and the stand-in's synthetic courses."""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
from opaque_keys.edx.keys import CourseKey

from event_sinks.courses import CourseReadError
from event_sinks.courses.modulestore import list_course_keys, read_modulestore
from event_sinks.errors import InvalidKeyError
from event_sinks.testing.modulestore import (
    BlockKey,
    CourseStructure,
    ItemNotFoundError,
    ModuleStoreEnum,
    StandInModuleStore,
    store_from_course,
    synthetic_course,
)

from .conftest import NEEDS_COURSES, read_real
from .test_olx_real_courses import SOURCES

KEY = "course-v1:SynthX+S101+2025"


@pytest.fixture(scope="module")
def synthetic():
    return StandInModuleStore([synthetic_course("SynthX", "S101", "2025", 1000)])


@NEEDS_COURSES
@pytest.mark.parametrize("name", sorted(SOURCES))
def test_same_blocks_as_the_olx_reader(name):
    olx, blocks = read_real(name)
    course = read_modulestore(olx.course_key, store=store_from_course(olx))
    assert (course.course_key, course.org, course.display_name, course.source_version) == (
        olx.course_key, olx.org, olx.display_name, olx.source_version)
    assert list(course.blocks()) == blocks


def test_synthetic_course_shape(synthetic):
    course = read_modulestore(KEY, store=synthetic)
    blocks = list(course.blocks())
    assert len(blocks) == 1000 and len({b.usage_key for b in blocks}) == 1000
    counts = Counter(b.block_type for b in blocks)
    # 1000 = course + 10 sections + 58 subsections x (1 + 4 units x (1 + 3 leaves)) + 3 extra leaves
    assert {k: counts[k] for k in ("course", "chapter", "sequential", "vertical")} == {
        "course": 1, "chapter": 10, "sequential": 58, "vertical": 232}
    assert counts["html"] + counts["problem"] + counts["video"] == 699
    assert min(counts["html"], counts["problem"], counts["video"]) == 233
    by_key = {b.usage_key: b for b in blocks}
    assert all(len(b.children) == 4 for b in blocks if b.block_type == "sequential")
    assert max(b.depth for b in blocks) == 4

    graded = [b for b in blocks if b.block_type == "sequential" and b.graded]
    assert graded and all(b.format == "Homework" and b.due is not None for b in graded)
    for seq in graded[:3]:
        for unit_key in seq.children:
            unit = by_key[unit_key]
            assert (unit.graded, unit.due, unit.format) == (True, seq.due, None)
            assert all(by_key[k].graded and by_key[k].due == seq.due for k in unit.children)
    assert any(b.block_type == "sequential" and not b.graded and b.due is None for b in blocks)

    staff = [b for b in blocks if b.depth == 1 and b.visible_to_staff_only]
    assert [b.display_name for b in staff] == ['Staff notes, "internal"']
    inside = {staff[0].usage_key}
    for block in blocks:
        if block.parent in inside:
            inside.add(block.usage_key)
            assert block.visible_to_staff_only
    assert len(inside) > 1
    assert not any(b.visible_to_staff_only for b in blocks if b.usage_key not in inside)

    names = [b.display_name for b in blocks if b.depth == 4]
    # every seventh leaf sets no name: it reads as its class's default, as in Open edX
    assert None not in names and {"Text", "Blank Problem", "Video"} <= set(names)
    assert any(n and '"' in n and "," in n and not n.isascii() for n in names)
    assert all(b.start == datetime(2025, 1, 6, tzinfo=UTC) for b in blocks)
    assert all(b.edited_on is not None and b.published_on == b.edited_on for b in blocks)


def test_synthetic_course_sizes_and_errors():
    for n in (100, 1234):
        store = StandInModuleStore([synthetic_course("A", "B", "C", n)])
        assert sum(1 for _ in read_modulestore("course-v1:A+B+C", store=store).blocks()) == n
    with pytest.raises(ValueError, match="too small"):
        synthetic_course("A", "B", "C", 20)


def test_keys_match_opaque_keys_for_branch_none(synthetic):
    root = synthetic.get_course(CourseKey.from_string(KEY))
    located, stack = {}, [root]
    while stack:
        block = stack.pop()
        located[str(block.location.for_branch(None))] = block
        stack.extend(block.get_children())
    # descendants carry the published branch, as split's do; the keys read never do
    assert root.get_children()[0].location.branch == ModuleStoreEnum.BranchName.published
    blocks = list(read_modulestore(KEY, store=synthetic).blocks())
    assert [b.usage_key for b in blocks[:1]] == ["block-v1:SynthX+S101+2025+type@course+block@course"]
    assert set(located) == {b.usage_key for b in blocks}
    for block in blocks[:50]:
        assert located[block.usage_key].display_name == block.display_name


def test_course_attributes_and_version(synthetic):
    course = read_modulestore(CourseKey.from_string(KEY), store=synthetic)
    root = synthetic.get_course(CourseKey.from_string(KEY))
    assert (course.course_key, course.org) == (KEY, "SynthX")
    assert course.display_name == "Synthetic course S101 (1000 blocks)"
    assert course.source_version == root.course_version and len(course.source_version) == 24
    assert course.edited_on == root.subtree_edited_on
    assert list(course.blocks()) == list(course.blocks())


def test_version_falls_back_to_subtree_edited_on():
    root = synthetic_course("A", "B", "C", 100)
    root.course_version = None
    course = read_modulestore("course-v1:A+B+C", store=StandInModuleStore([root]))
    assert course.source_version == root.subtree_edited_on.isoformat()


def test_reads_published_branch_with_whole_tree_and_restores_branch(synthetic):
    calls = []

    class Recording(StandInModuleStore):
        def get_course(self, course_key, depth=0, **kwargs):
            calls.append((str(course_key), depth, self.get_branch_setting()))
            return super().get_course(course_key, depth=depth, **kwargs)

    store = Recording([synthetic.get_courses()[0]])
    with store.branch_setting(ModuleStoreEnum.Branch.draft_preferred):
        blocks = read_modulestore(KEY, store=store).blocks()
        assert store.get_branch_setting() == ModuleStoreEnum.Branch.draft_preferred
        next(blocks)
        assert store.get_branch_setting() == ModuleStoreEnum.Branch.draft_preferred
    assert calls == [(KEY, None, "published-only")]


def test_missing_course_and_bad_key(synthetic):
    with pytest.raises(CourseReadError, match="not in the modulestore"):
        read_modulestore("course-v1:Nope+Nope+Nope", store=synthetic)
    with pytest.raises(InvalidKeyError):
        read_modulestore("not a key", store=synthetic)


def test_outside_edx_platform_the_error_says_so():
    with pytest.raises(CourseReadError, match="inside edx-platform"):
        read_modulestore(KEY)
    with pytest.raises(CourseReadError, match="inside edx-platform"):
        list_course_keys()


def test_list_course_keys_prefers_summaries():
    store = StandInModuleStore([synthetic_course("A", "B", "C", 100), synthetic_course("X", "Y", "Z", 100)])
    assert list(list_course_keys(store)) == ["course-v1:A+B+C", "course-v1:X+Y+Z"]

    class NoSummaries(StandInModuleStore):
        get_course_summaries = None

        def get_courses(self, **kwargs):
            return super().get_courses()

    legacy = NoSummaries(store.get_courses())
    assert list(list_course_keys(legacy)) == ["course-v1:A+B+C", "course-v1:X+Y+Z"]


def test_naive_and_offset_datetimes_become_utc():
    root = synthetic_course("A", "B", "C", 100)
    chapter = root.get_children()[0]
    chapter.start = datetime(2025, 3, 1, 12)
    chapter.due = datetime.fromisoformat("2025-03-01T12:00:00+02:00")
    block = list(read_modulestore("course-v1:A+B+C", store=StandInModuleStore([root])).blocks())[1]
    assert block.start == datetime(2025, 3, 1, 12, tzinfo=UTC) and block.start.tzinfo is UTC
    assert block.due == datetime(2025, 3, 1, 10, tzinfo=UTC) and block.due.tzinfo is UTC


# -- the stand-in as split behaves, and the reader against it ---------------------------------------------

TINY = "course-v1:TinyX+T1+2026"
DUE = datetime(2026, 3, 1, 12, tzinfo=UTC)


def tiny_store():
    """A course: a staff-only chapter -> a graded subsection (due DUE) -> a unit of html, problem, video."""
    store = StandInModuleStore()
    store.add_course(CourseStructure(CourseKey.from_string(TINY), "v1"))
    root = store.add_block(TINY, "course", "course", fields={"display_name": "Tiny"})
    chapter = store.add_block(TINY, "chapter", "ch", parent=root,
                              fields={"display_name": "Ch", "visible_to_staff_only": True})
    seq = store.add_block(TINY, "sequential", "seq", parent=chapter,
                          fields={"display_name": "Seq", "graded": True, "format": "Homework", "due": DUE})
    unit = store.add_block(TINY, "vertical", "unit", parent=seq, fields={"display_name": "Unit"})
    edited = datetime(2026, 1, 2, tzinfo=UTC)
    for kind in ("html", "problem", "video"):
        store.add_block(TINY, kind, f"{kind}_1", parent=unit, fields={"display_name": kind.title()}, edited_on=edited)
    return store


def tiny_key(block_type, block_id):
    return f"block-v1:TinyX+T1+2026+type@{block_type}+block@{block_id}"


def read_tiny(store):
    return {b.usage_key: b for b in read_modulestore(TINY, store=store).blocks()}


def test_a_block_that_fails_to_load_keeps_its_authored_key_and_its_parents_settings(caplog):
    store = tiny_store()
    store.fail_to_load(tiny_key("problem", "problem_1"))
    # The stand-in answers as split does: the child comes back as an ErrorBlock named after its contents,
    # while the unit's children field still holds the key the author wrote.
    unit = store.get_course(CourseKey.from_string(TINY)).get_children()[0].get_children()[0].get_children()[0]
    authored = unit.children[1]
    error = unit.get_child(authored)
    assert (authored.block_type, authored.block_id) == ("problem", "problem_1")
    assert error.location.block_type == "error" and error.category == "error"
    assert error.location.block_id == hashlib.sha1(error.contents.encode()).hexdigest()
    assert not error.has_children and error.display_name is None and not error.graded
    with pytest.raises(AttributeError):
        error.edited_on  # noqa: B018 - ErrorBlocks get no edit info

    with caplog.at_level(logging.WARNING, logger="event_sinks"):
        blocks = read_tiny(store)
    failed = blocks[tiny_key("problem", "problem_1")]
    assert (failed.block_type, failed.block_id, failed.display_name, failed.children) == (
        "problem", "problem_1", None, ())
    # what the platform knows of it: its place, and the settings its parent passes down
    assert (failed.parent, failed.depth, failed.position) == (tiny_key("vertical", "unit"), 4, 1)
    assert (failed.graded, failed.due, failed.visible_to_staff_only, failed.format, failed.edited_on) == (
        True, DUE, True, None, None)
    assert blocks[tiny_key("vertical", "unit")].children == tuple(
        tiny_key(kind, f"{kind}_1") for kind in ("html", "problem", "video"))
    assert not any("type@error" in key or b.block_type == "error" for key, b in blocks.items())
    assert tiny_key("problem", "problem_1") in caplog.text and "ErrorBlock" in caplog.text


def test_a_child_the_store_does_not_hold_is_skipped():
    store = tiny_store()
    unit = store.structure(TINY).blocks[BlockKey("vertical", "unit")]
    unit.fields["children"].insert(0, BlockKey("html", "deleted"))
    blocks = read_tiny(store)
    assert tiny_key("html", "deleted") not in blocks
    assert [blocks[k].position for k in blocks[tiny_key("vertical", "unit")].children] == [0, 1, 2]


def test_a_course_root_that_fails_to_load_is_a_read_error():
    store = tiny_store()
    store.fail_to_load(tiny_key("course", "course"), "bad policy")
    with pytest.raises(CourseReadError, match="root .* fails to load.*bad policy"):
        read_modulestore(TINY, store=store)


def test_unnamed_blocks_read_as_their_class_default_name():
    store = StandInModuleStore()
    store.add_course(CourseStructure(CourseKey.from_string(TINY), "v1"))
    root = store.add_block(TINY, "course", "course")
    chapter = store.add_block(TINY, "chapter", "ch", parent=root)
    seq = store.add_block(TINY, "sequential", "seq", parent=chapter)
    unit = store.add_block(TINY, "vertical", "unit", parent=seq)
    for kind in ("html", "problem", "video", "library_content"):
        store.add_block(TINY, kind, f"{kind}_1", parent=unit)
    store.add_block(TINY, "html", "named_none", parent=unit, fields={"display_name": None})
    names = {b.block_id: b.display_name for b in read_modulestore(TINY, store=store).blocks()}
    assert names == {
        "course": "Empty", "ch": None, "seq": None, "unit": None, "html_1": "Text", "problem_1": "Blank Problem",
        "video_1": "Video", "library_content_1": "Randomized Content Block",
        "named_none": None,  # set to None by its author: no default
    }
    assert read_modulestore(TINY, store=store).display_name == "Empty"


def test_children_of_library_content_use_their_library_defaults():
    store = tiny_store()
    unit = tiny_key("vertical", "unit")  # under a graded subsection due DUE, in a staff-only chapter
    library = store.add_block(TINY, "library_content", "lib", parent=unit)
    other = datetime(2026, 5, 1, tzinfo=UTC)
    copied = {"graded": False, "due": other, "visible_to_staff_only": False, "display_name": "From the library"}
    store.add_block(TINY, "problem", "copied", parent=library, defaults=copied)
    store.add_block(TINY, "problem", "plain", parent=library)
    store.add_block(TINY, "problem", "own", parent=library, fields={"due": DUE}, defaults=copied)
    store.add_block(TINY, "problem", "outside", parent=unit, defaults=copied)
    blocks = {b.block_id: b for b in read_modulestore(TINY, store=store).blocks()}

    def settings(block_id):
        b = blocks[block_id]
        return b.display_name, b.graded, b.due, b.visible_to_staff_only

    assert settings("lib") == ("Randomized Content Block", True, DUE, True)
    # under library_content the library's values win over the ancestors' ...
    assert settings("copied") == ("From the library", False, other, False)
    # ... a block without library values inherits as usual, and a value set on the block wins over both
    assert settings("plain") == ("Blank Problem", True, DUE, True)
    assert settings("own") == ("From the library", False, DUE, False)
    # elsewhere the ancestors' values win over library defaults; a default name applies anywhere
    assert settings("outside") == ("From the library", True, DUE, True)


DETACHED = [("static_tab", "syllabus", "Syllabus"), ("about", "overview", None),
            ("course_info", "updates", "Course Updates"), ("course_info", "handouts", "Handouts")]


def store_with_detached_blocks():
    store = tiny_store()
    for block_type, block_id, name in DETACHED:
        store.add_block(TINY, block_type, block_id, fields={} if name is None else {"display_name": name})
    store.add_block(TINY, "html", "orphan")  # neither in the tree nor detached: never read
    return store


def test_detached_blocks_come_after_the_tree_once_each():
    store = store_with_detached_blocks()
    blocks = list(read_modulestore(TINY, store=store).blocks())
    tree = [b for b in blocks if not b.detached]
    detached = blocks[len(tree):]
    assert blocks[: len(tree)] == tree and len(tree) == 7 and tree[0].block_type == "course"
    assert [(b.block_type, b.block_id, b.display_name) for b in detached] == [
        ("about", "overview", "overview"), ("course_info", "handouts", "Handouts"),
        ("course_info", "updates", "Course Updates"), ("static_tab", "syllabus", "Syllabus")]
    assert all(b.detached and (b.parent, b.depth, b.position, b.children) == (None, 0, 0, ()) for b in detached)
    assert {b.usage_key for b in detached}.isdisjoint(k for b in tree for k in b.children)
    assert len({b.usage_key for b in blocks}) == len(blocks)
    assert tiny_key("html", "orphan") not in {b.usage_key for b in blocks}
    assert list(read_modulestore(TINY, store=store).blocks()) == blocks  # every walk gives the same


def test_stand_in_get_items_as_split():
    store = store_with_detached_blocks()
    course_key = CourseKey.from_string(TINY)
    with store.branch_setting(ModuleStoreEnum.Branch.published_only, course_key):
        tabs = store.get_items(course_key, qualifiers={"category": "static_tab"})
        infos = store.get_items(course_key, qualifiers={"category": "course_info", "name": ["updates"]})
        graded = store.get_items(course_key, settings={"graded": True})
        everything = {b.location.block_id for b in store.get_items(course_key)}
        attached = {b.location.block_id for b in store.get_items(course_key, include_orphans=False)}
    assert [(t.location.block_type, t.display_name, t.parent) for t in tabs] == [("static_tab", "Syllabus", None)]
    assert [i.location.block_id for i in infos] == ["updates"]
    assert [b.location.block_id for b in graded] == ["seq"]
    assert everything - attached == {"orphan"} and {"syllabus", "overview", "unit"} <= attached
    # a block loaded alone still inherits from the tree it hangs in
    html = store.get_items(course_key, qualifiers={"category": "html", "name": "html_1"})[0]
    assert (html.graded, html.due, html.visible_to_staff_only) == (True, DUE, True)
    with pytest.raises(ItemNotFoundError):
        store.get_items(CourseKey.from_string("course-v1:No+Such+Course"))


def test_the_walk_lets_every_child_cache_go():
    handed_out = []

    class Recording(StandInModuleStore):
        def get_course(self, course_key, depth=0, **kwargs):
            root = super().get_course(course_key, depth=depth, **kwargs)
            handed_out.append(root)
            return root

    store = Recording([synthetic_course("Cache", "C", "R", 300)])
    course = read_modulestore("course-v1:Cache+C+R", store=store)
    (root,) = handed_out
    assert sum(1 for _ in course.blocks()) == 300
    assert root._child_cache == {}  # the Course keeps the root alive, but no longer its children

    # The stand-in keeps what a walk does not release, as XBlock does: a get_children() walk ends with
    # every block cached on its parent.
    cached, stack = 0, [store.get_course(CourseKey.from_string("course-v1:Cache+C+R"))]
    while stack:
        block = stack.pop()
        stack.extend(block.get_children())
        cached += len(block._child_cache)
    assert cached == 299


def test_read_cost_is_spent_on_every_loaded_block():
    assert StandInModuleStore().read_cost == 0
    store = StandInModuleStore([synthetic_course("Cost", "C", "R", 100)], read_cost=0.002)
    started = time.perf_counter()
    assert sum(1 for _ in read_modulestore("course-v1:Cost+C+R", store=store).blocks()) == 100
    assert time.perf_counter() - started >= 100 * 0.002
