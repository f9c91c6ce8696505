"""Field faults: inputs found in the field that once hung a host, filled it, or stopped a backfill.

Each class of input has its tests here; every one failed on the readers before the change that made
the input harmless (GitHub issue "Field faults"):

1. a modulestore course whose structure has a cycle walked forever; now the walk has a visited set, a
   depth cap and a blocks-per-course cap (:mod:`event_sinks.courses.limits`, shared with the OLX
   walk), and stops with a CourseReadError naming the course and the block;
2. a block reached twice -- listed by two parents in the modulestore, or two pointers to one OLX
   file -- was emitted twice (or read twice); it is now one block, placed under the first parent the
   walk reaches that lists it, in both readers;
3. small OLX exports that point twice to the next file grew exponentially; each pointer file is now
   resolved once, and files parsed and blocks per course are capped.

Walks that once never ended are read here through :func:`bounded`, so that a regression fails the
test instead of hanging it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from opaque_keys.edx.keys import CourseKey

from event_sinks.courses import CourseReadError, limits
from event_sinks.courses.modulestore import read_modulestore
from event_sinks.testing.modulestore import CourseStructure, StandInModuleStore, synthetic_course

from .test_modulestore import TINY, tiny_key, tiny_store

EDITED = datetime(2026, 2, 1, tzinfo=UTC)


def bounded(blocks, most=5000):
    """The blocks of a walk as a list; fails (instead of hanging) when more than ``most`` come out."""
    out = []
    for block in blocks:
        out.append(block)
        assert len(out) <= most, f"the walk goes on past {most} blocks"
    return out


def assert_tree(blocks):
    """One block per key, parents first, each block at ``parent.children[position]``, and the
    pre-order walk of the children lists giving back the tree's blocks in order."""
    by_key = {}
    for block in blocks:
        assert block.usage_key not in by_key, f"{block.usage_key} comes out twice"
        if block.parent is not None:
            parent = by_key[block.parent]
            assert parent.children[block.position] == block.usage_key
            assert block.depth == parent.depth + 1
        by_key[block.usage_key] = block
    tree = [b for b in blocks if not b.detached]
    order, stack = [], [tree[0].usage_key]
    while stack:
        key = stack.pop()
        order.append(key)
        stack.extend(reversed(by_key[key].children))
    assert order == [b.usage_key for b in tree]


def cache_subtree_edited_on(store, course_key=TINY):
    """Give the root a subtree edit time, as split does once it has computed it (no recursion needed)."""
    structure = store.structure(course_key)
    structure.blocks[structure.root].subtree_edited_on = EDITED


# -- 1. cycles, depth and size in the modulestore walk ------------------------------------------------------


def test_a_cycle_in_a_modulestore_course_is_a_read_error_naming_the_course_and_the_block():
    store = tiny_store()
    store.add_child(TINY, tiny_key("vertical", "unit"), tiny_key("sequential", "seq"))  # the unit lists its parent
    cache_subtree_edited_on(store)
    course = read_modulestore(TINY, store=store)
    with pytest.raises(CourseReadError) as info:
        bounded(course.blocks())
    message = str(info.value)
    assert "cycle" in message and TINY in message
    assert tiny_key("vertical", "unit") in message and tiny_key("sequential", "seq") in message


def test_a_cycle_through_the_course_root_is_a_read_error_not_a_recursion_error(caplog):
    # Without a cached subtree edit time, split computes it by recursion: a cycle raises RecursionError
    # there (the stand-in does the same), before the walk even starts.
    store = tiny_store()
    store.add_child(TINY, tiny_key("html", "html_1"), tiny_key("course", "course"))
    with pytest.raises(RecursionError):
        store.get_course(CourseKey.from_string(TINY)).subtree_edited_on  # noqa: B018 - what split does
    with caplog.at_level(logging.WARNING, logger="event_sinks"):
        course = read_modulestore(TINY, store=store)
        with pytest.raises(CourseReadError, match="cycle") as info:
            bounded(course.blocks())
    assert tiny_key("course", "course") in str(info.value) and tiny_key("html", "html_1") in str(info.value)
    assert "subtree edit time" in caplog.text
    assert course.edited_on is None  # the root's own edit time: none in this structure


def chain_store(levels):
    """The tiny course with ``levels`` verticals nested one in the other under its unit (depth 4 and down)."""
    store = tiny_store()
    parent = tiny_key("vertical", "unit")
    for i in range(levels):
        parent = store.add_block(TINY, "vertical", f"nested{i:02d}", parent=parent)
    return store


def test_modulestore_blocks_nested_deeper_than_the_cap_are_a_read_error():
    assert limits.MAX_DEPTH == 32
    ok = bounded(read_modulestore(TINY, store=chain_store(limits.MAX_DEPTH - 3)).blocks())
    assert max(b.depth for b in ok) == limits.MAX_DEPTH
    course = read_modulestore(TINY, store=chain_store(limits.MAX_DEPTH - 2))
    with pytest.raises(CourseReadError, match=f"deeper than {limits.MAX_DEPTH} levels") as info:
        bounded(course.blocks())
    # the block at the deepest level allowed, whose children would go past it
    assert TINY in str(info.value) and tiny_key("vertical", f"nested{limits.MAX_DEPTH - 4:02d}") in str(info.value)


def test_modulestore_courses_over_the_blocks_cap_are_a_read_error(monkeypatch):
    store = StandInModuleStore([synthetic_course("Big", "B", "R", 100)])
    assert len(bounded(read_modulestore("course-v1:Big+B+R", store=store).blocks())) == 100
    monkeypatch.setattr(limits, "MAX_BLOCKS", 60)
    read = []
    with pytest.raises(CourseReadError, match="more than 60 blocks") as info:
        for block in read_modulestore("course-v1:Big+B+R", store=store).blocks():
            read.append(block)
    assert len(read) == 60 and "course-v1:Big+B+R" in str(info.value)
    assert "block-v1:Big+B+R+type@" in str(info.value)  # the block where it stopped


def diamond_store(levels):
    """A course whose every level holds two blocks that both list the two blocks of the next level:
    2 x ``levels`` blocks, 2 ** ``levels`` paths from the root to the last level."""
    key = CourseKey.from_string(TINY)
    structure = CourseStructure(key, "v1")
    root = structure.add("course", "course", None, {"display_name": "Diamonds"})
    above = [root]
    for level in range(levels):
        pair = [structure.add("vertical", f"d{level:02d}{side}", above[0], {}) for side in "ab"]
        for parent in above[1:]:
            for block in pair:
                structure.link(parent, block)
        above = pair
    structure.blocks[root].subtree_edited_on = EDITED
    return StandInModuleStore([structure])


def test_a_dag_that_doubles_at_every_level_reads_each_block_once():
    blocks = bounded(read_modulestore(TINY, store=diamond_store(30)).blocks())
    assert len(blocks) == 1 + 2 * 30  # before: 2 ** 31 - 1 blocks
    assert_tree(blocks)


# -- 2. a block reached twice is one block ----------------------------------------------------------------


def test_a_modulestore_block_listed_by_two_parents_is_one_block_under_the_first(caplog):
    store = tiny_store()
    other = store.add_block(TINY, "vertical", "unit2", parent=tiny_key("sequential", "seq"))
    store.add_child(TINY, other, tiny_key("html", "html_1"))
    cache_subtree_edited_on(store)
    with caplog.at_level(logging.WARNING, logger="event_sinks"):
        blocks = bounded(read_modulestore(TINY, store=store).blocks())
    assert_tree(blocks)
    by_key = {b.usage_key: b for b in blocks}
    html = by_key[tiny_key("html", "html_1")]
    assert (html.parent, html.position) == (tiny_key("vertical", "unit"), 0)
    assert by_key[str(other)].children == ()
    assert len(blocks) == 8
    warning = caplog.text
    assert tiny_key("html", "html_1") in warning and str(other) in warning and tiny_key("vertical", "unit") in warning


def test_a_block_belongs_to_the_first_parent_the_walk_reaches_that_lists_it():
    # The subsection lists the unit and, after it, the unit's own html: the walk reaches the subsection
    # first, so the html is placed there (after the unit's subtree), and the unit no longer lists it.
    store = tiny_store()
    store.add_child(TINY, tiny_key("sequential", "seq"), tiny_key("html", "html_1"))
    cache_subtree_edited_on(store)
    blocks = bounded(read_modulestore(TINY, store=store).blocks())
    assert_tree(blocks)
    by_key = {b.usage_key: b for b in blocks}
    assert by_key[tiny_key("sequential", "seq")].children == (tiny_key("vertical", "unit"), tiny_key("html", "html_1"))
    assert by_key[tiny_key("vertical", "unit")].children == (tiny_key("problem", "problem_1"),
                                                             tiny_key("video", "video_1"))
    html = by_key[tiny_key("html", "html_1")]
    assert (html.depth, html.position, blocks[-1].usage_key) == (3, 1, html.usage_key)
    # its inherited settings are those of the parent it is placed under
    assert (html.graded, html.visible_to_staff_only) == (True, True)


def test_a_child_listed_twice_by_one_parent_and_a_detached_block_in_the_tree_come_out_once():
    store = tiny_store()
    store.add_child(TINY, tiny_key("vertical", "unit"), tiny_key("problem", "problem_1"))
    tab = store.add_block(TINY, "static_tab", "syllabus", fields={"display_name": "Syllabus"})
    store.add_child(TINY, tiny_key("chapter", "ch"), tab)  # a detached type listed in the tree too
    cache_subtree_edited_on(store)
    blocks = bounded(read_modulestore(TINY, store=store).blocks())
    assert_tree(blocks)
    keys = [b.usage_key for b in blocks]
    assert keys.count(tiny_key("problem", "problem_1")) == 1 and keys.count(str(tab)) == 1
    placed = blocks[keys.index(str(tab))]
    assert (placed.parent, placed.detached) == (tiny_key("chapter", "ch"), False)
