"""read_modulestore / list_course_keys over the stand-in store, and the stand-in's synthetic courses."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from opaque_keys.edx.keys import CourseKey

from event_sinks.courses import CourseReadError
from event_sinks.courses.modulestore import list_course_keys, read_modulestore
from event_sinks.errors import InvalidKeyError
from event_sinks.testing.modulestore import (
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
    assert None in names
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
