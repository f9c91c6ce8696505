"""read_olx on small handmade exports: settings, inheritance, policy, ids, tarballs, errors."""

from __future__ import annotations

import gc
import logging
import shutil
import tarfile
import tempfile
from datetime import UTC, datetime

import pytest

from event_sinks.courses import Course, CourseReadError, read_olx
from event_sinks.courses.course import DEFAULT_START_DATE

from .conftest import COURSES, NEEDS_COURSES, write_tree

P = "block-v1:TinyX+Tiny+T1+type@"


def by_id(course: Course):
    return {b.block_id: b for b in course.blocks()}


def test_tiny_course_outline(tiny):
    course = read_olx(tiny)
    assert (course.course_key, course.org, course.display_name) == ("course-v1:TinyX+Tiny+T1", "TinyX",
                                                                     "Tiny course (policy)")
    blocks = list(course.blocks())
    assert [(b.block_type, b.block_id, b.display_name, b.depth, b.position) for b in blocks] == [
        ("course", "course", "Tiny course (policy)", 0, 0),
        ("chapter", "ch1", "Chapter one", 1, 0),
        ("sequential", "seq1", "Graded seq", 2, 0),
        ("vertical", "v1", "Unit one", 3, 0),
        ("problem", "p1", "Problem one", 4, 0),
        ("video", "vid1", "Inline video", 4, 1),
        ("chapter", "Inline_chapter", "Inline chapter", 1, 1),
        ("sequential", "Inline_seq", "Inline seq", 2, 0),
        ("vertical", blocks[8].block_id, None, 3, 0),
        ("html", "Hello", "Hello", 4, 0),
    ]
    assert blocks[0].children == (P + "chapter+block@ch1", P + "chapter+block@Inline_chapter")  # no <wiki>
    assert blocks[3].children == (P + "problem+block@p1", P + "video+block@vid1")
    assert blocks[4].children == () and blocks[4].parent == P + "vertical+block@v1"


def test_inheritance_and_format(tiny):
    blocks = by_id(read_olx(tiny))
    due = datetime(2024, 3, 1, 12, tzinfo=UTC)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    seq = blocks["seq1"]
    assert (seq.graded, seq.format, seq.due, seq.start) == (True, "Homework", due, start)
    for name in ("v1", "p1", "vid1"):  # graded and due flow down; format does not
        assert (blocks[name].graded, blocks[name].format, blocks[name].due, blocks[name].start) == (
            True, None, due, start)
    assert (blocks["ch1"].graded, blocks["ch1"].due) == (False, None)
    assert (blocks["Hello"].graded, blocks["Hello"].due, blocks["Hello"].start) == (False, None, start)


def test_start_defaults_to_open_edx_default_when_set_nowhere(make_course):
    bare = '<course display_name="x"><chapter url_name="ch1"/></course>'
    course = read_olx(make_course({"course/T1.xml": bare}))
    assert {b.start for b in course.blocks()} == {DEFAULT_START_DATE}
    assert DEFAULT_START_DATE == datetime(2030, 1, 1, tzinfo=UTC)


def test_explicit_values_win_and_null_is_an_explicit_nothing(make_course):
    course = read_olx(make_course({
        "vertical/v1.xml": """
            <vertical display_name="Unit one" due="null" visible_to_staff_only="True" graded="false">
              <problem url_name="p1"/>
              <video url_name="vid1" hide_from_toc="true" start="&quot;2025-05-05T05:05:00+02:00&quot;"/>
            </vertical>
        """,
    }))
    blocks = by_id(course)
    unit = blocks["v1"]
    # due="null" sets "no due date" on the unit and its subtree (Open edX stores an explicit None)
    assert (unit.due, unit.graded, unit.visible_to_staff_only) == (None, False, True)
    assert (blocks["p1"].due, blocks["p1"].graded, blocks["p1"].visible_to_staff_only) == (None, False, True)
    video = blocks["vid1"]
    assert (video.hide_from_toc, video.start) == (True, datetime(2025, 5, 5, 3, 5, tzinfo=UTC))
    assert blocks["seq1"].due == datetime(2024, 3, 1, 12, tzinfo=UTC)
    assert video.display_name is None


def test_policy_overrides_attributes(make_course):
    course = read_olx(make_course({
        "policies/T1/policy.json": """
            {"course/T1": {"display_name": "From policy", "start": "2020-02-02T00:00:00Z"},
             "chapter/ch1": {"display_name": "Renamed chapter", "visible_to_staff_only": true},
             "sequential/seq1": {"due": null, "format": "Exam", "graded": "True"},
             "problem/p1": {"display_name": null}}
        """,
    }))
    assert course.display_name == "From policy"
    blocks = by_id(course)
    assert blocks["course"].start == datetime(2020, 2, 2, tzinfo=UTC)
    assert (blocks["ch1"].display_name, blocks["ch1"].visible_to_staff_only) == ("Renamed chapter", True)
    assert blocks["p1"].visible_to_staff_only is True  # inherited from the chapter the policy changed
    seq = blocks["seq1"]
    assert (seq.due, seq.format, seq.graded) == (None, "Exam", True)
    assert blocks["p1"].display_name is None


def test_legacy_policy_file_and_no_policy(make_course):
    legacy = make_course({"policies/T1/policy.json": None,
                          "policies/T1.json": '{"course/T1": {"display_name": "Legacy policy"}}'}, "legacy")
    assert read_olx(legacy).display_name == "Legacy policy"
    bare = make_course({"policies/T1/policy.json": None}, "bare")
    assert read_olx(bare).display_name == "Tiny course"


def test_malformed_policy_is_reported(make_course, caplog):
    path = make_course({"policies/T1/policy.json": '{"course/T1": {'})
    with caplog.at_level(logging.WARNING, logger="event_sinks.courses.olx"):
        assert read_olx(path).display_name == "Tiny course"
    assert "policies/T1/policy.json" in caplog.text
    with pytest.raises(CourseReadError, match="policies/T1/policy.json"):
        read_olx(path, strict=True)


@pytest.mark.parametrize(("text", "expected"), [
    ("2013-02-05T05:00:00Z", datetime(2013, 2, 5, 5, tzinfo=UTC)),
    ("2013-02-05T05:00", datetime(2013, 2, 5, 5, tzinfo=UTC)),
    ("&quot;2013-02-05T05:00:00+00:00&quot;", datetime(2013, 2, 5, 5, tzinfo=UTC)),
    ("2013-02-05T00:00:00-05:00", datetime(2013, 2, 5, 5, tzinfo=UTC)),
    ("2013-02-05", datetime(2013, 2, 5, tzinfo=UTC)),
    ("1360040400000", datetime(2013, 2, 5, 5, tzinfo=UTC)),  # milliseconds, as Date.from_json reads numbers
    ("", None),
])
def test_date_formats(make_course, text, expected):
    chapter = f'<chapter start="{text}"><sequential url_name="seq1"/></chapter>'
    course = read_olx(make_course({"chapter/ch1.xml": chapter}))
    assert by_id(course)["ch1"].start == expected


def test_unreadable_date_is_reported_and_left_unset(make_course, caplog):
    chapter = '<chapter due="next tuesday"><sequential url_name="seq1"/></chapter>'
    path = make_course({"chapter/ch1.xml": chapter})
    with caplog.at_level(logging.WARNING, logger="event_sinks.courses.olx"):
        assert by_id(read_olx(path))["ch1"].due is None
    assert "chapter/ch1.xml" in caplog.text and "next tuesday" in caplog.text
    with pytest.raises(CourseReadError, match="next tuesday"):
        list(read_olx(path, strict=True).blocks())


def test_inline_ids_follow_open_edx_names_then_a_stable_hash(make_course):
    path = make_course({"vertical/v1.xml": """
        <vertical display_name="Unit one">
          <html display_name="Same name"/>
          <html display_name="Same name"/>
          <html/>
          <html slug="my-slug"/>
          <discussion name="Name: with spaces"/>
          <problem url_name="p1"/>
        </vertical>
    """})
    ids = [b.block_id for b in read_olx(path).blocks() if b.parent == P + "vertical+block@v1"]
    assert ids[0] == "Same_name"
    assert ids[1].startswith("html_Same_name_") and len(ids[1]) == len("html_Same_name_") + 12
    assert ids[2].startswith("html_") and len(ids[2]) == len("html_") + 12
    assert ids[3:] == ["my-slug", "Name_with_spaces", "p1"]
    assert [b.block_id for b in read_olx(path).blocks() if b.parent == P + "vertical+block@v1"] == ids


def test_a_reused_pointer_is_one_block(make_course, caplog):
    # As Open edX imports it: one block at problem/p1 (the file is its one definition), in the unit once.
    unit = '<vertical><problem url_name="p1"/><problem url_name="p1"/></vertical>'
    path = make_course({"vertical/v1.xml": unit})
    with caplog.at_level(logging.WARNING, logger="event_sinks.courses.olx"):
        blocks = by_id(read_olx(path))
    assert [i for i, b in blocks.items() if b.block_type == "problem"] == ["p1"]
    assert blocks["v1"].children == (P + "problem+block@p1",)
    assert "points to a file read already" in caplog.text and "vertical/v1.xml:1" in caplog.text


def test_a_pointer_whose_id_an_inline_definition_took_gets_its_own_id(make_course, caplog):
    unit = '<vertical><problem url_name="p1" display_name="Inline one"/><problem url_name="p1"/></vertical>'
    path = make_course({"vertical/v1.xml": unit})
    with caplog.at_level(logging.WARNING, logger="event_sinks.courses.olx"):
        ids = [b.block_id for b in read_olx(path).blocks() if b.block_type == "problem"]
    assert ids[0] == "p1" and ids[1].startswith("problem_p1_") and len(set(ids)) == 2
    assert "used by another definition" in caplog.text


def test_filename_pointers_and_problem_backcompat(make_course):
    path = make_course({
        "vertical/v1.xml": """
            <vertical>
              <problem display_name="Direct" filename="direct"/>
              <problem filename="bank/old"/>
              <html display_name="Body elsewhere" filename="never/read"/>
            </vertical>
        """,
        "sequential/seq1.xml": """
            <sequential><vertical display_name="Via file" filename="unit_file"/></sequential>
        """,
        "vertical/unit_file.xml": """
            <vertical display_name="Name in file" graded="true"><vertical url_name="v1"/></vertical>
        """,
        "problem/direct.xml": '<problem display_name="Overridden" weight="2"/>',
        "problems/bank/old.xml": '<problem display_name="Found in problems/"><p/></problem>',
    })
    blocks = list(read_olx(path).blocks())
    via = blocks[3]
    # the tag's attributes win over the file's; children come from the file
    assert (via.block_id, via.display_name, via.graded) == ("Via_file", "Via file", True)
    leaves = [(b.block_type, b.display_name) for b in blocks if b.depth == 5]
    assert leaves == [("problem", "Direct"), ("problem", "Found in problems/"), ("html", "Body elsewhere")]


def test_components_directly_under_a_sequential_and_containers(make_course):
    path = make_course({"sequential/seq1.xml": """
        <sequential>
          <problem url_name="p1"/>
          <split_test display_name="AB"><vertical display_name="A"/><vertical display_name="B"/></split_test>
          <library_content display_name="Lib"><problem display_name="L1"/></library_content>
          <conditional display_name="C"><show sources="x"/><html display_name="Shown"/></conditional>
        </sequential>
    """})
    blocks = list(read_olx(path).blocks())[3:-4]  # after course, ch1, seq1; before the inline chapter
    assert [(b.block_type, b.display_name, b.depth) for b in blocks] == [
        ("problem", "Problem one", 3), ("split_test", "AB", 3), ("vertical", "A", 4), ("vertical", "B", 4),
        ("library_content", "Lib", 3), ("problem", "L1", 4), ("conditional", "C", 3), ("html", "Shown", 4),
    ]


def test_drafts_are_never_read(make_course):
    path = make_course({
        "drafts/vertical/v1.xml": """
            <vertical display_name="DRAFT"><html display_name="draft only"/></vertical>
        """,
        "vertical/v2.xml": '<vertical display_name="v2"/>',
    })
    names = {b.display_name for b in read_olx(path).blocks()}
    assert "DRAFT" not in names and "draft only" not in names


def test_inline_whole_course_in_course_xml(tmp_path):
    root = write_tree(tmp_path / "inline", {"course.xml": """
        <course url_name="R" org="O" course="C" display_name="All inline">
          <chapter display_name="Only chapter"/>
        </course>
    """})
    blocks = list(read_olx(root).blocks())
    assert [(b.usage_key, b.display_name) for b in blocks] == [
        ("block-v1:O+C+R+type@course+block@course", "All inline"),
        ("block-v1:O+C+R+type@chapter+block@Only_chapter", "Only chapter"),
    ]


def test_dangling_pointer_in_default_and_strict_mode(make_course, caplog):
    chapter = '<chapter><sequential url_name="gone"/><sequential url_name="seq1"/></chapter>'
    path = make_course({"chapter/ch1.xml": chapter})
    with caplog.at_level(logging.WARNING, logger="event_sinks.courses.olx"):
        blocks = by_id(read_olx(path))
    assert "gone" not in blocks and blocks["seq1"].position == 0
    assert blocks["ch1"].children == (P + "sequential+block@seq1",)
    assert "sequential/gone.xml" in caplog.text and "chapter/ch1.xml:1" in caplog.text
    with pytest.raises(CourseReadError) as info:
        list(read_olx(path, strict=True).blocks())
    assert (info.value.path, info.value.line) == ("sequential/gone.xml", None)


def test_malformed_xml_names_file_and_line(make_course, caplog):
    path = make_course({"vertical/v1.xml": '<vertical>\n  <problem url_name="p1"/>\n  <html>\n</vertical>\n'})
    with caplog.at_level(logging.WARNING, logger="event_sinks.courses.olx"):
        blocks = by_id(read_olx(path))
    assert "v1" not in blocks and "seq1" in blocks
    assert "vertical/v1.xml:4" in caplog.text
    with pytest.raises(CourseReadError) as info:
        list(read_olx(path, strict=True).blocks())
    assert (info.value.path, info.value.line) == ("vertical/v1.xml", 4)
    assert "vertical/v1.xml:4" in str(info.value) and "malformed XML" in str(info.value)


def test_unusable_exports_raise(tmp_path, make_course):
    with pytest.raises(CourseReadError, match="not an OLX export"):
        read_olx(tmp_path / "nothing-here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CourseReadError, match="no course.xml"):
        read_olx(tmp_path / "empty")
    with pytest.raises(CourseReadError, match="course/T1.xml"):
        read_olx(make_course({"course/T1.xml": None}, "nocoursefile"))
    with pytest.raises(CourseReadError, match="not <course>"):
        read_olx(make_course({"course.xml": "<chapter/>"}, "notcourse"))
    with pytest.raises(CourseReadError, match="course.xml:1"):
        read_olx(make_course({"course.xml": "<course url_name='T1' org='TinyX' course='Tiny'>"}, "broken"))
    with pytest.raises(CourseReadError, match="valid course key"):
        read_olx(make_course({"course.xml": '<course url_name="T1" org="Tiny X" course="Tiny"/>'}, "badkey"))


@pytest.mark.parametrize("bad", ["not-a-key", "TinyX/Tiny/T1", "library-v1:TinyX+Lib", "course-v1:A+B"])
def test_invalid_course_key_override(tiny, bad):
    with pytest.raises(CourseReadError, match="course key override"):
        read_olx(tiny, course_key=bad)


def _tarball(src, dest, arcroot: str):
    with tarfile.open(dest, "w:gz") as archive:
        archive.add(src, arcname=arcroot)
    return dest


@pytest.mark.parametrize("arcroot", [".", "course"])
def test_tarball_reads_like_the_folder(tiny, tmp_path, arcroot):
    tgz = _tarball(tiny, tmp_path / "tiny.tar.gz", arcroot)
    folder, packed = read_olx(tiny), read_olx(tgz)
    assert list(packed.blocks()) == list(folder.blocks())
    assert packed.source_version == folder.source_version
    assert (packed.course_key, packed.display_name) == (folder.course_key, folder.display_name)


@NEEDS_COURSES
def test_real_course_tarball(tmp_path):
    tgz = _tarball(COURSES / "openedx-test-course", tmp_path / "test-course.tar.gz", "course")
    folder, packed = read_olx(COURSES / "openedx-test-course"), read_olx(tgz)
    assert list(packed.blocks()) == list(folder.blocks())
    assert packed.source_version == folder.source_version


def test_tarball_temp_folder_lives_while_used_and_is_removed_after(tiny, tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    tgz = _tarball(tiny, tmp_path / "tiny.tgz", "course")
    walk = read_olx(tgz).blocks()  # the Course itself is dropped at once
    gc.collect()
    assert len(list(scratch.iterdir())) == 1
    assert len(list(walk)) == 10
    del walk
    gc.collect()
    assert list(scratch.iterdir()) == []
    course = read_olx(tgz)
    assert len(list(scratch.iterdir())) == 1
    del course
    gc.collect()
    assert list(scratch.iterdir()) == []


def test_unreadable_tarball(tmp_path):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"this is not gzip")
    with pytest.raises(CourseReadError, match="unreadable tarball"):
        read_olx(bad)


def test_source_version_follows_content(tiny, tmp_path):
    before = read_olx(tiny).source_version
    assert read_olx(tiny).source_version == before
    copy = tmp_path / "copy"
    shutil.copytree(tiny, copy)
    assert read_olx(copy).source_version == before  # the folder's own path does not count
    (copy / "drafts").mkdir()
    (copy / "drafts" / "x.xml").write_text("<vertical/>")
    assert read_olx(copy).source_version == before  # drafts are not published content
    (copy / "problem" / "p1.xml").write_text('<problem display_name="Problem 1!"/>')
    assert read_olx(copy).source_version != before
