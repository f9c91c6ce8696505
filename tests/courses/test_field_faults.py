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
   resolved once, and files parsed and blocks per course are capped;
4. a small tarball with a huge GNU long-name or PAX header took gigabytes (tarfile reads such headers
   whole); header sizes are now checked before tarfile reads them, and a folder of tarballs is read
   once per tarball;
5. an OLX export changed while a dump read it was dumped as a mix of two versions labelled with one;
   the version is computed again after the walk, and a change is a CourseReadError;
6. out-of-range dates, deep JSON, lone surrogates in titles and more sections than the outline's
   UInt16 ordinals hold escaped as OverflowError, RecursionError or UnicodeEncodeError (and one such
   export stopped a whole backfill); each is now a problem naming the file, line and attribute (a
   warning when lenient), or, past a limit, a CourseReadError.

Walks that once never ended are read here through :func:`bounded`, so that a regression fails the
test instead of hanging it.
"""

from __future__ import annotations

import gc
import gzip
import json
import logging
import tarfile
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest
from opaque_keys.edx.keys import CourseKey

from event_sinks.courses import CourseReadError, limits, read_olx
from event_sinks.courses.modulestore import read_modulestore
from event_sinks.courses.sources import OlxSource, read_course, set_course_source, shared_reads
from event_sinks.testing.modulestore import CourseStructure, StandInModuleStore, synthetic_course

from . import conftest
from .conftest import write_tree
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


# -- 2 (OLX). a block reached twice is one block; 3. small exports that point twice ---------------------------

P = "block-v1:TinyX+Tiny+T1+type@"


def olx_blocks(path, *, strict=False, most=5000):
    return bounded(read_olx(path, strict=strict).blocks(), most)


def test_two_pointers_to_one_file_are_one_block_under_the_first(make_course, caplog):
    inline_seq = '<sequential display_name="Inline seq">'
    path = make_course({
        "vertical/v1.xml": '<vertical display_name="Unit one">\n  <problem url_name="p1"/>\n'
                           '  <problem url_name="p1"/>\n'
                           '  <video url_name="vid1" display_name="Inline video"/>\n</vertical>',
        # a second pointer to the graded subsection, from the inline chapter
        "course/T1.xml": conftest.TINY["course/T1.xml"].replace(inline_seq,
                                                                '<sequential url_name="seq1"/>\n' + inline_seq),
    })
    with caplog.at_level(logging.WARNING, logger="event_sinks.courses.olx"):
        blocks = olx_blocks(path)
    assert_tree(blocks)
    ids = [(b.block_type, b.block_id) for b in blocks]
    assert ids.count(("problem", "p1")) == 1 and ids.count(("sequential", "seq1")) == 1
    assert not any(i.startswith(("problem_p1_", "sequential_seq1_")) for _, i in ids)  # no made-up ids
    by_id = {b.block_id: b for b in blocks}
    assert by_id["v1"].children == (P + "problem+block@p1", P + "video+block@vid1")
    assert by_id["seq1"].parent == P + "chapter+block@ch1"
    assert "vertical/v1.xml:3" in caplog.text and "problem/p1.xml" in caplog.text
    # a strict read gives the same blocks: Open edX imports such a course (one block at that location)
    assert [b.usage_key for b in olx_blocks(path, strict=True)] == [b.usage_key for b in blocks]


def test_an_olx_block_belongs_to_the_first_parent_the_walk_reaches_that_lists_it(make_course):
    path = make_course({"sequential/seq1.xml": '<sequential display_name="S"><vertical url_name="v1"/>'
                                               '<problem url_name="p1"/></sequential>'})
    blocks = olx_blocks(path, strict=True)
    assert_tree(blocks)
    by_id = {b.block_id: b for b in blocks}
    assert by_id["p1"].parent == P + "sequential+block@seq1" and by_id["p1"].position == 1
    assert by_id["v1"].children == (P + "video+block@vid1",)


def test_a_nested_inline_course_is_not_the_course_root(make_course):
    path = make_course({"chapter/ch1.xml": '<chapter display_name="Chapter one"><sequential url_name="seq1"/>'
                                           '<course url_name="course" display_name="Nested"><html display_name="N"/>'
                                           '</course></chapter>'})
    blocks = olx_blocks(path, strict=True)
    assert_tree(blocks)
    nested = [b for b in blocks if b.display_name == "Nested"]
    assert len(nested) == 1 and nested[0].block_id.startswith("course_course_") and nested[0].depth == 2
    assert [b.block_id for b in blocks if b.block_type == "course"][0] == "course"


def pointing_twice(tmp_path, levels, attribute="url_name"):
    """An export whose unit chain points twice to the next file, ``levels`` times: 2 ** levels paths."""
    files = {
        "course.xml": '<course url_name="T1" org="TinyX" course="Tiny"/>',
        "course/T1.xml": '<course><chapter url_name="c"/></course>',
        "chapter/c.xml": '<chapter><sequential url_name="s"/></chapter>',
        "sequential/s.xml": '<sequential><vertical url_name="v0"/></sequential>',
    }
    for i in range(levels):
        if attribute == "url_name":
            pointer = f'<vertical url_name="v{i + 1}"/>'
        else:
            pointer = f'<vertical display_name="x" filename="v{i + 1}"/>'
        files[f"vertical/v{i}.xml"] = f"<vertical>{pointer}{pointer}</vertical>"
    files[f"vertical/v{levels}.xml"] = '<vertical><html display_name="end"/></vertical>'
    return write_tree(tmp_path / f"twice-{attribute}", files)


def test_files_that_point_twice_to_the_next_are_read_once_each(tmp_path, caplog):
    path = pointing_twice(tmp_path, 23)  # before: 2 ** 24 units (16.8 M blocks)
    with caplog.at_level(logging.WARNING, logger="event_sinks.courses.olx"):
        blocks = olx_blocks(path)
    assert_tree(blocks)
    assert len(blocks) == 3 + 24 + 1  # course, chapter, subsection, v0 ... v23, and the html
    assert caplog.text.count("points to a file read already") == 23


def test_filename_attributes_naming_one_file_at_every_level_are_capped_per_file(tmp_path, caplog):
    # filename= gives each use a block of its own (a definition read from a file), so each level
    # doubles; every file may be parsed MAX_PARSES_PER_FILE times in one walk, then it is a problem.
    path = pointing_twice(tmp_path, 20, attribute="filename")
    with caplog.at_level(logging.WARNING, logger="event_sinks.courses.olx"):
        blocks = olx_blocks(path, most=20 * 2 * limits.MAX_PARSES_PER_FILE)
    assert_tree(blocks)
    assert f"parsed more than {limits.MAX_PARSES_PER_FILE} times" in caplog.text
    with pytest.raises(CourseReadError, match=f"parsed more than {limits.MAX_PARSES_PER_FILE} times") as info:
        olx_blocks(path, strict=True, most=20 * 2 * limits.MAX_PARSES_PER_FILE)
    assert info.value.path == "vertical/v20.xml"  # in pre-order, the deepest file is parsed most often


def test_links_that_name_one_file_twice_at_every_level_read_in_linear_blocks(tmp_path):
    # Two symbolic links to each file, each pointing to the two links of the next: 2 ** 15 paths
    # before. Each pointer file (each name) is resolved once, so two blocks a level.
    files = {"course.xml": '<course url_name="T1" org="TinyX" course="Tiny"/>',
             "course/T1.xml": '<course><vertical url_name="a0"/></course>'}
    root = write_tree(tmp_path / "links", files)
    (root / "vertical").mkdir()
    levels = 14
    for i in range(levels):
        (root / "vertical" / f"real{i}.xml").write_text(f'<vertical><vertical url_name="a{i + 1}"/>'
                                                        f'<vertical url_name="b{i + 1}"/></vertical>')
        for alias in "ab":
            (root / "vertical" / f"{alias}{i}.xml").symlink_to(f"real{i}.xml")
    for alias in "ab":
        (root / "vertical" / f"{alias}{levels}.xml").write_text("<vertical/>")
    blocks = olx_blocks(root)
    assert_tree(blocks)
    assert len(blocks) == 1 + 1 + 2 * levels  # a0, then a and b of every level below


def test_links_that_name_one_file_many_ways_are_capped_per_file(tmp_path, caplog):
    n = limits.MAX_PARSES_PER_FILE + 6
    pointers = "".join(f'<vertical url_name="alias{i}"/>' for i in range(n))
    root = write_tree(tmp_path / "aliases", {
        "course.xml": '<course url_name="T1" org="TinyX" course="Tiny"/>',
        "course/T1.xml": f"<course><chapter>{pointers}</chapter></course>",
        "vertical/real.xml": '<vertical display_name="one file"/>',
    })
    for i in range(n):
        (root / "vertical" / f"alias{i}.xml").symlink_to("real.xml")
    with caplog.at_level(logging.WARNING, logger="event_sinks.courses.olx"):
        blocks = olx_blocks(root)
    assert sum(1 for b in blocks if b.display_name == "one file") == limits.MAX_PARSES_PER_FILE
    assert caplog.text.count(f"parsed more than {limits.MAX_PARSES_PER_FILE} times") == 6
    with pytest.raises(CourseReadError, match="parsed more than") as info:
        olx_blocks(root, strict=True)
    assert info.value.path == f"vertical/alias{limits.MAX_PARSES_PER_FILE}.xml"


def test_olx_courses_over_the_blocks_cap_are_a_read_error_in_both_modes(tiny, monkeypatch):
    assert len(olx_blocks(tiny)) == 10
    monkeypatch.setattr(limits, "MAX_BLOCKS", 6)
    for strict in (False, True):
        read = []
        with pytest.raises(CourseReadError, match="more than 6 blocks") as info:
            for block in read_olx(tiny, strict=strict).blocks():
                read.append(block)
        # where it stopped: the 7th block, the inline chapter of the course file
        assert len(read) == 6 and (info.value.path, info.value.line) == ("course/T1.xml", 3)
        assert "Inline_chapter" in str(info.value)


def test_the_olx_depth_cap_is_the_shared_one():
    from event_sinks.courses.olx import DEFAULT_MAX_DEPTH

    assert DEFAULT_MAX_DEPTH == limits.MAX_DEPTH


# -- 4. tarball header bombs, and each tarball read once ----------------------------------------------------

MiB = 1 << 20
#: One gzip member of 1 MiB of zeros (about 1 KiB): repeated, a stream of any size, written in no time.
ZEROS = gzip.compress(b"\0" * MiB, compresslevel=9, mtime=0)


def tar_member(name, data=b"", kind=tarfile.REGTYPE):
    """One member as tar bytes: its 512-byte header (GNU format), its data and the padding."""
    info = tarfile.TarInfo(name)
    info.size, info.type, info.mtime = len(data), kind, 0
    return info.tobuf(format=tarfile.GNU_FORMAT) + data + b"\0" * (-len(data) % 512)


def tiny_members(tmp_path, prefix="course/", files=None):
    root = write_tree(tmp_path / "tiny-src", files or conftest.TINY)
    return b"".join(tar_member(prefix + path.relative_to(root).as_posix(), path.read_bytes())
                    for path in sorted(root.rglob("*")) if path.is_file())


def bomb_tarball(tmp_path, kind, size):
    """A .tar.gz of the tiny course, then an extension header of ``kind`` whose data is ``size`` bytes of
    zeros (whole MiBs), then one more member: streamed as gzip members, about 1 KiB per MiB on disk."""
    header = tarfile.TarInfo("././@LongLink")
    header.size, header.type, header.mtime = size, kind, 0
    tgz = tmp_path / "bomb.tar.gz"
    with open(tgz, "wb") as out:
        out.write(gzip.compress(tiny_members(tmp_path) + header.tobuf(format=tarfile.GNU_FORMAT), mtime=0))
        for _ in range(size // MiB):
            out.write(ZEROS)
        out.write(gzip.compress(tar_member("course/static/after.txt", b"x") + b"\0" * 1024, mtime=0))
    return tgz


def peak_of(call):
    """(what ``call`` raised, the peak of Python memory while it ran)."""
    gc.collect()
    tracemalloc.start()
    try:
        with pytest.raises(CourseReadError) as info:
            call()
        return info.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


HEADER_KINDS = {"gnu-long-name": tarfile.GNUTYPE_LONGNAME, "gnu-long-link": tarfile.GNUTYPE_LONGLINK,
                "pax": tarfile.XHDTYPE, "pax-global": tarfile.XGLTYPE}


@pytest.mark.parametrize("mib", [64, 1024], ids=["64MiB", "1GiB"])
@pytest.mark.parametrize("kind", HEADER_KINDS.values(), ids=HEADER_KINDS.keys())
def test_tarball_header_bombs_are_refused_before_tarfile_reads_them(tmp_path, kind, mib):
    # Before: tarfile read such a header whole (a 1 GiB long name: 8.2 GB for the reader).
    tgz = bomb_tarball(tmp_path, kind, mib * MiB)
    assert tgz.stat().st_size < 2 * MiB
    error, peak = peak_of(lambda: read_olx(tgz))
    assert peak < 8 * MiB, f"peak {peak / MiB:.1f} MiB"
    assert error.path == str(tgz) and f"{mib * MiB} bytes" in error.message and "header" in error.message


def test_a_chain_of_extension_headers_is_refused(tmp_path):
    # tarfile reads the headers before a member by recursion: 20,000 of them were a RecursionError.
    link = tar_member("././@LongLink", b"course/" + b"n" * 90 + b".xml\0", tarfile.GNUTYPE_LONGNAME)
    tgz = tmp_path / "chain.tar.gz"
    tgz.write_bytes(gzip.compress(tiny_members(tmp_path) + link * 20_000 + tar_member("course/last.xml", b"<x/>")
                                  + b"\0" * 1024, mtime=0))
    with pytest.raises(CourseReadError, match="extension headers in a row") as info:
        read_olx(tgz)
    assert info.value.path == str(tgz)


def pax_headers(**records):
    """The data of a PAX header: ``LENGTH KEY=VALUE\\n`` records (LENGTH counts the whole record)."""
    out = b""
    for key, value in records.items():
        body = f" {key.replace('__', '.')}={value}\n".encode()
        length = len(body) + 1
        while len(str(length)) + len(body) != length:
            length += 1
        out += str(length).encode() + body
    return out


@pytest.mark.parametrize("members", [
    lambda: tar_member("course/chapter/sparse.xml", b"", tarfile.GNUTYPE_SPARSE),
    lambda: (tar_member("./PaxHeaders/s", pax_headers(GNU__sparse__major=1, GNU__sparse__minor=0,
                                                      GNU__sparse__name="course/chapter/sparse.xml",
                                                      GNU__sparse__realsize=4), tarfile.XHDTYPE)
             + tar_member("course/chapter/GNUSparseFile.0/sparse.xml", b"1\n0\n4\n".ljust(512, b"\0") + b"<x/>")),
    lambda: (tar_member("./PaxHeaders/s", pax_headers(GNU__sparse__map="0,4", GNU__sparse__size=4,
                                                      GNU__sparse__numblocks=1), tarfile.XHDTYPE)
             + tar_member("course/chapter/sparse.xml", b"<x/>")),
], ids=["gnu-sparse", "pax-sparse-1.0", "pax-sparse-0.1"])
def test_sparse_members_are_refused(tmp_path, members):
    # Sparse maps are read from the stream without a bound (GNU extension blocks, PAX 1.0 maps); no
    # export has sparse files.
    tgz = tmp_path / "sparse.tar.gz"
    tgz.write_bytes(gzip.compress(tiny_members(tmp_path) + members() + b"\0" * 1024, mtime=0))
    with pytest.raises(CourseReadError, match="sparse") as info:
        read_olx(tgz)
    assert info.value.path == str(tgz)


def tarball_of(tmp_path, name, number, title="Tiny course"):
    files = {**conftest.TINY, "course.xml": f'<course url_name="T1" org="TinyX" course="{number}"/>',
             "policies/T1/policy.json": json.dumps({"course/T1": {"display_name": title}})}
    folder = tmp_path / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    target.write_bytes(gzip.compress(tiny_members(tmp_path / f"src-{name}", files=files) + b"\0" * 1024, mtime=0))
    return target


def count_extractions(monkeypatch):
    from event_sinks.courses.olx import reader

    calls = []
    real = reader.extract

    def counting(tarball, *args, **kwargs):
        calls.append(Path(tarball).name)
        return real(tarball, *args, **kwargs)

    monkeypatch.setattr(reader, "extract", counting)
    return calls


def test_a_folder_of_tarballs_is_read_once_each(tmp_path, monkeypatch):
    a = tarball_of(tmp_path, "a.tar.gz", "A")
    tarball_of(tmp_path, "b.tar.gz", "B")
    calls = count_extractions(monkeypatch)
    source = OlxSource([a.parent])
    set_course_source(source)
    try:
        keys = list(source.keys())
        assert keys == ["course-v1:TinyX+A+T1", "course-v1:TinyX+B+T1"]
        for key in keys:
            with shared_reads():  # what a dump job does: the version, then the course, one read
                assert source.version(key).startswith("sha256:")
                assert len(list(read_course(key).blocks())) == 10
    finally:
        set_course_source(None)
    assert calls == ["a.tar.gz", "b.tar.gz"]  # before: each twice (the index, then the read)
    # what the index read is handed over once: a later read of the key reads the tarball again
    assert source.read(keys[0]).display_name == "Tiny course"
    assert calls == ["a.tar.gz", "b.tar.gz", "a.tar.gz"]


def test_a_tarball_replaced_after_the_index_is_read_again(tmp_path, monkeypatch):
    a = tarball_of(tmp_path, "a.tar.gz", "A")
    calls = count_extractions(monkeypatch)
    source = OlxSource([a.parent])
    (key,) = source.keys()
    new = tarball_of(tmp_path / "new", "a.tar.gz", "A", title="Replaced")  # a new export of the same course,
    new.replace(a)  # moved in place: another file (inode), whatever the clock's resolution
    assert source.read(key).display_name == "Replaced" and calls == ["a.tar.gz", "a.tar.gz"]


def test_what_the_index_keeps_of_tarballs_is_capped(tmp_path, monkeypatch):
    from event_sinks.courses import sources

    monkeypatch.setattr(sources, "MAX_KEPT_ARCHIVE_BYTES", 1)  # nothing kept: every read extracts again
    a = tarball_of(tmp_path, "a.tar.gz", "A")
    calls = count_extractions(monkeypatch)
    source = OlxSource([a.parent])
    (key,) = source.keys()
    assert len(list(source.read(key).blocks())) == 10 and calls == ["a.tar.gz", "a.tar.gz"]


# -- 5. an export that changes while it is read ---------------------------------------------------------------

PROBLEM_TWO = '<problem display_name="Problem one, second version"><p>What?</p></problem>'


def test_an_export_changed_during_the_walk_is_a_read_error(tiny):
    course = read_olx(tiny)
    blocks = course.blocks()
    read = [next(blocks), next(blocks)]  # the course and its first chapter
    (tiny / "problem" / "p1.xml").write_text(PROBLEM_TWO)  # read further on in this walk
    with pytest.raises(CourseReadError, match="changed while it was read") as info:
        read.extend(blocks)
    assert info.value.path == str(tiny) and course.source_version in info.value.message
    # the walk did read the new file: without the check, a mix of two versions labelled with the first
    assert "Problem one, second version" in [b.display_name for b in read]


def test_an_export_changed_between_the_read_and_the_walk_is_a_read_error(tiny):
    course = read_olx(tiny)
    (tiny / "problem" / "p1.xml").write_text(PROBLEM_TWO)
    with pytest.raises(CourseReadError, match="changed while it was read"):
        list(course.blocks())
    fresh = read_olx(tiny)  # read again: the new version, consistent
    assert fresh.source_version != course.source_version
    assert "Problem one, second version" in [b.display_name for b in fresh.blocks()]


def test_an_unchanged_export_walks_cleanly_and_a_walk_left_early_checks_nothing(tiny):
    course = read_olx(tiny)
    assert len(list(course.blocks())) == len(list(course.blocks())) == 10
    blocks = course.blocks()
    next(blocks)
    (tiny / "problem" / "p1.xml").write_text(PROBLEM_TWO)
    blocks.close()  # a consumer that stops early (a dry run's first rows): nothing to label


def test_a_file_that_vanishes_while_the_version_is_computed_is_a_read_error(tiny, monkeypatch):
    from event_sinks.courses.olx import export as olx_export

    real = olx_export.os.lstat

    def vanishing(path, *args, **kwargs):
        if str(path).endswith("p1.xml"):
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(olx_export.os, "lstat", vanishing)
    with pytest.raises(CourseReadError, match="changed while it was read") as info:
        read_olx(tiny)
    assert info.value.path == "problem/p1.xml"


# -- 6. values that once escaped as RecursionError, OverflowError, UnicodeEncodeError -------------------------

COURSE_START = datetime(2024, 1, 1, tzinfo=UTC)
#: Dates Python cannot hold (or not once in UTC), as Open edX reads them: JSON numbers are milliseconds.
BAD_DATES = {
    "1e400": "1e400",  # JSON decodes it to infinity
    "milliseconds-1e20": "1e20",
    "year-9999-west-of-utc": "9999-12-31T23:59:59-05:00",
    "year-1-east-of-utc": "0001-01-01T00:00:00+05:00",
    "year-99999": "99999-01-01T00:00:00Z",
}


def chapter_with_attribute(make_course, name, raw):
    title = "" if name == "display_name" else 'display_name="Chapter one" '
    return make_course({"chapter/ch1.xml": f"<chapter {title}{name}={quoteattr(raw)}>\n"
                                           '  <sequential url_name="seq1"/>\n</chapter>'})


def lenient_and_strict(path, caplog):
    """(the blocks of a lenient read by id, its warnings, the CourseReadError of a strict read)."""
    with caplog.at_level(logging.WARNING, logger="event_sinks.courses.olx"):
        blocks = {b.block_id: b for b in read_olx(path).blocks()}
    warnings = caplog.text
    caplog.clear()
    with pytest.raises(CourseReadError) as info:
        list(read_olx(path, strict=True).blocks())
    return blocks, warnings, info.value


@pytest.mark.parametrize("raw", BAD_DATES.values(), ids=BAD_DATES.keys())
@pytest.mark.parametrize("name", ["start", "due"])
def test_dates_out_of_range_name_the_file_line_and_attribute(make_course, caplog, name, raw):
    blocks, warnings, error = lenient_and_strict(chapter_with_attribute(make_course, name, raw), caplog)
    chapter = blocks["ch1"]
    assert (chapter.start, chapter.due) == (COURSE_START, None)  # treated as not set: inherited
    assert f"chapter/ch1.xml:1: <chapter> {name}:" in warnings
    assert (error.path, error.line) == ("chapter/ch1.xml", 1) and f"<chapter> {name}:" in error.message


@pytest.mark.parametrize("raw", ["1e400", "1e20", '"9999-12-31T23:59:59-05:00"'], ids=["inf", "1e20", "9999"])
def test_policy_dates_out_of_range_name_the_policy_file_and_key(make_course, caplog, raw):
    policy = '{"course/T1": {"display_name": "Tiny"}, "chapter/ch1": {"due": ' + raw + "}}"
    blocks, warnings, error = lenient_and_strict(make_course({"policies/T1/policy.json": policy}), caplog)
    assert blocks["ch1"].due is None and blocks["course"].display_name == "Tiny"
    assert 'policies/T1/policy.json: "chapter/ch1" due:' in warnings
    assert error.path == "policies/T1/policy.json" and '"chapter/ch1" due:' in error.message


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("policy", [DEEP, '{"chapter/ch1": {"display_name": ' + DEEP + "}}"], ids=["file", "value"])
def test_deep_json_in_the_policy_is_a_located_problem(make_course, caplog, policy):
    path = make_course({"policies/T1/policy.json": policy})
    with caplog.at_level(logging.WARNING, logger="event_sinks.courses.olx"):
        course = read_olx(path)  # before: RecursionError
    assert course.display_name == "Tiny course"  # the policy is ignored: the XML's name
    assert "policies/T1/policy.json: unreadable policy: JSON nested too deeply" in caplog.text
    with pytest.raises(CourseReadError, match="nested too deeply") as info:
        read_olx(path, strict=True)
    assert info.value.path == "policies/T1/policy.json"


def test_deep_json_in_an_attribute_is_a_located_problem(make_course, caplog):
    blocks, warnings, error = lenient_and_strict(chapter_with_attribute(make_course, "graded", DEEP), caplog)
    assert blocks["ch1"].graded is False
    assert "chapter/ch1.xml:1: <chapter> graded: JSON nested too deeply" in warnings
    assert (error.path, error.line) == ("chapter/ch1.xml", 1)


SURROGATE = "\ud800"


@pytest.mark.parametrize("where", ["policy", "attribute"])
@pytest.mark.parametrize("name", ["display_name", "format"])
def test_lone_surrogates_in_titles_are_replaced_and_named(make_course, caplog, where, name):
    # Only JSON can spell a lone surrogate (XML cannot hold one): "\ud800" in policy.json, or an
    # attribute whose value is a JSON string.
    if where == "policy":
        policy = json.dumps({"chapter/ch1": {name: "Ch" + SURROGATE + "apter"}})  # written as the escape \ud800
        path = make_course({"policies/T1/policy.json": policy})
        named = f'policies/T1/policy.json: "chapter/ch1" {name}:'
    else:
        path = chapter_with_attribute(make_course, name, '"Ch\\ud800apter"')
        named = f"chapter/ch1.xml:1: <chapter> {name}:"
    blocks, warnings, error = lenient_and_strict(path, caplog)
    assert getattr(blocks["ch1"], name) == "Ch\ufffdapter"
    assert named in warnings and "lone surrogate" in warnings and SURROGATE not in warnings
    assert "lone surrogate" in error.message and SURROGATE not in str(error)
    "Ch\ufffdapter".encode()  # what the engine is sent now encodes


def test_a_lone_surrogate_in_the_course_name_is_replaced(make_course):
    path = make_course({"policies/T1/policy.json": '{"course/T1": {"display_name": "\\udfffTiny"}}'})
    assert read_olx(path).display_name == "\ufffdTiny"
    with pytest.raises(CourseReadError, match="lone surrogate"):
        read_olx(path, strict=True)


def test_modulestore_titles_with_lone_surrogates_are_replaced(caplog):
    store = tiny_store()
    store.add_block(TINY, "html", "bad_name", parent=tiny_key("vertical", "unit"),
                    fields={"display_name": "bad" + SURROGATE, "format": SURROGATE})
    with caplog.at_level(logging.WARNING, logger="event_sinks"):
        blocks = {b.block_id: b for b in read_modulestore(TINY, store=store).blocks()}
    assert (blocks["bad_name"].display_name, blocks["bad_name"].format) == ("bad\ufffd", "\ufffd")
    assert tiny_key("html", "bad_name") in caplog.text and "lone surrogate" in caplog.text


def sections_course(make_course, n):
    chapters = "".join(f'<chapter url_name="c{i}" display_name="c"/>' for i in range(n))
    return make_course({"course/T1.xml": f"<course>{chapters}</course>"}, name=f"sections{n}")


def test_more_sections_than_the_outline_ordinals_hold_is_a_read_error_in_both_modes(make_course):
    assert limits.MAX_CHILDREN == 65_535 == 2 ** 16 - 1  # section_ordinal is UInt16: position + 1
    blocks = bounded(read_olx(sections_course(make_course, 65_535)).blocks(), most=70_000)
    assert len(blocks) == 65_536 and blocks[-1].position == 65_534
    path = sections_course(make_course, 65_536)
    for strict in (False, True):
        with pytest.raises(CourseReadError, match="more than 65535 children") as info:
            bounded(read_olx(path, strict=strict).blocks(), most=70_000)
        assert (info.value.path, info.value.line) == ("course/T1.xml", 1)
        assert P + "course+block@course" in info.value.message


def test_more_modulestore_sections_than_the_outline_ordinals_hold_is_a_read_error():
    store = tiny_store()
    for i in range(65_535):  # with the tiny course's own chapter: 65,536
        store.add_block(TINY, "chapter", f"c{i}", parent=tiny_key("course", "course"))
    cache_subtree_edited_on(store)
    with pytest.raises(CourseReadError, match="more than 65535 children") as info:
        bounded(read_modulestore(TINY, store=store).blocks(), most=70_000)
    assert tiny_key("course", "course") in str(info.value) and TINY in str(info.value)


def test_a_backfill_of_hostile_exports_dumps_the_others_and_names_each_fault(embedded, tmp_path, caplog):
    from event_sinks import dump

    def export(number, files):
        course_xml = {"course.xml": f'<course url_name="T1" org="TinyX" course="{number}"/>'}
        return write_tree(tmp_path / "exports" / number, {**conftest.TINY, **course_xml, **files})

    export("Good", {})
    export("Dates", {"chapter/ch1.xml": '<chapter start="1e400"><sequential url_name="seq1"/></chapter>'})
    export("DeepPolicy", {"policies/T1/policy.json": DEEP})
    export("Surrogate", {"policies/T1/policy.json": '{"course/T1": {"display_name": "\\ud800"}}'})
    chapters = "".join(f'<chapter url_name="c{i}" display_name="c"/>' for i in range(65_536))
    export("Sections", {"course/T1.xml": f"<course>{chapters}</course>"})
    set_course_source(OlxSource([tmp_path / "exports"]))
    try:
        with caplog.at_level(logging.WARNING):
            summary = dump("course_outline")  # before: the listing itself raised RecursionError
    finally:
        set_course_source(None)
    outcome = {r.key.split("+")[1]: r.status for r in summary.results}
    assert outcome == {"Dates": "dumped", "DeepPolicy": "dumped", "Good": "dumped", "Sections": "failed",
                       "Surrogate": "dumped"}
    (failed,) = [r for r in summary.results if r.status == "failed"]
    assert "course/T1.xml:1" in failed.error and "more than 65535 children" in failed.error
    assert "chapter/ch1.xml:1: <chapter> start:" in caplog.text and "lone surrogate" in caplog.text
