"""Hostile exports: XML bombs, paths out of the export, symlinks, bad tarballs, huge or deep files.

Each case must be refused with a CourseReadError naming the file (strict) or skipped with a warning
(default), and nothing outside the export may ever be read or written.
"""

from __future__ import annotations

import io
import logging
import os
import tarfile

import pytest

from event_sinks.courses import CourseReadError, read_olx

from .conftest import TINY, write_tree

BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<chapter display_name="&lol9;"><sequential url_name="seq1"/></chapter>
"""
EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE chapter SYSTEM "http://127.0.0.1:9/evil.dtd">
<chapter display_name="x"><sequential url_name="seq1"/></chapter>
"""


def outcome(path, caplog, **kwargs):
    """(blocks read by default, warnings text, the error raised when strict)."""
    with caplog.at_level(logging.WARNING, logger="event_sinks.courses.olx"):
        blocks = {b.block_id: b for b in read_olx(path, **kwargs).blocks()}
    text = caplog.text
    caplog.clear()
    with pytest.raises(CourseReadError) as info:
        list(read_olx(path, strict=True, **kwargs).blocks())
    return blocks, text, info.value


@pytest.mark.parametrize("xml", [BOMB, EXTERNAL], ids=["entity-bomb", "external-dtd"])
def test_dtds_and_entities_are_refused(make_course, caplog, xml):
    path = make_course({"chapter/ch1.xml": xml})
    blocks, warnings, error = outcome(path, caplog)
    assert "ch1" not in blocks and "seq1" not in blocks and "Inline_chapter" in blocks
    assert "chapter/ch1.xml:2" in warnings and "DOCTYPE" in warnings
    assert (error.path, error.line) == ("chapter/ch1.xml", 2)


def test_bomb_in_course_xml_stops_the_read(make_course):
    path = make_course({"course.xml": BOMB.replace("chapter", "course")})
    with pytest.raises(CourseReadError, match="DOCTYPE"):
        read_olx(path)


@pytest.mark.parametrize("url_name", ["../../etc/passwd", "..:..:..:etc:passwd", "/etc/passwd", "a b"])
def test_url_name_cannot_leave_the_export(make_course, caplog, tmp_path, url_name):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd.xml").write_text('<sequential display_name="LEAKED"/>')
    path = make_course({"chapter/ch1.xml": f'<chapter><sequential url_name="{url_name}"/></chapter>'})
    blocks, warnings, error = outcome(path, caplog)
    assert "LEAKED" not in {b.display_name for b in blocks.values()}
    assert set(blocks) >= {"ch1", "course"} and len(blocks["ch1"].children) == 0
    assert "chapter/ch1.xml" in warnings or "sequential/" in warnings
    assert error.path in ("chapter/ch1.xml", f"sequential/{url_name.replace(':', '/')}.xml")


@pytest.mark.parametrize("filename", ["../../../outside", "/etc/passwd", "drafts/../../x"])
def test_filename_cannot_leave_the_export(make_course, caplog, tmp_path, filename):
    (tmp_path / "outside.xml").write_text('<sequential display_name="LEAKED"/>')
    chapter = f'<chapter><sequential display_name="S" filename="{filename}"/></chapter>'
    path = make_course({"chapter/ch1.xml": chapter})
    blocks, warnings, error = outcome(path, caplog)
    assert "S" not in blocks and "LEAKED" not in {b.display_name for b in blocks.values()}
    assert "unsafe path" in warnings and "unsafe path" in str(error)


def test_drafts_cannot_be_reached_by_a_pointer(make_course, caplog):
    path = make_course({
        "chapter/ch1.xml": '<chapter><drafts url_name="x"/></chapter>',
        "drafts/x.xml": '<drafts display_name="DRAFT"/>',
    })
    blocks, warnings, error = outcome(path, caplog)
    assert "x" not in blocks and "unsafe path" in str(error)


def test_symlinks_out_of_the_export_are_refused(make_course, caplog, tmp_path):
    outside = tmp_path / "outside"
    (outside / "vertical").mkdir(parents=True)
    secret = '<sequential display_name="LEAKED"><vertical url_name="v1"/></sequential>'
    (outside / "secret.xml").write_text(secret)
    (outside / "vertical" / "v1.xml").write_text('<vertical display_name="LEAKED TOO"/>')
    linked_file = make_course({"sequential/seq1.xml": None}, "file")
    (linked_file / "sequential").mkdir()
    os.symlink(outside / "secret.xml", linked_file / "sequential" / "seq1.xml")
    linked_dir = make_course({"vertical/v1.xml": None}, "dir")
    os.symlink(outside / "vertical", linked_dir / "vertical")

    blocks, warnings, error = outcome(linked_file, caplog)
    assert "LEAKED" not in {b.display_name for b in blocks.values()}
    assert "seq1" not in blocks and "sequential/seq1.xml" in warnings
    assert error.path == "sequential/seq1.xml" and "outside the export" in str(error)

    blocks, warnings, error = outcome(linked_dir, caplog)
    assert "LEAKED TOO" not in {b.display_name for b in blocks.values()}
    assert "seq1" in blocks and "v1" not in blocks and "vertical/v1.xml" in warnings
    assert error.path == "vertical/v1.xml" and "outside the export" in str(error)


def test_symlink_inside_the_export_is_fine(make_course):
    path = make_course({})
    os.rename(path / "problem" / "p1.xml", path / "problem" / "real.xml")
    os.symlink("real.xml", path / "problem" / "p1.xml")
    assert {b.block_id: b for b in read_olx(path, strict=True).blocks()}["p1"].display_name == "Problem one"


def test_oversized_file_is_refused(make_course, caplog):
    path = make_course({"problem/p1.xml": '<problem display_name="big">' + "x" * 5000 + "</problem>"})
    blocks, warnings, error = outcome(path, caplog, max_file_bytes=2000)
    assert "p1" not in blocks and "vid1" in blocks
    assert error.path == "problem/p1.xml" and "2000-byte cap" in str(error)


def test_deep_xml_nesting_is_refused(make_course, caplog):
    deep = "<div>" * 300 + "</div>" * 300
    path = make_course({"vertical/v1.xml": f'<vertical><html display_name="deep">{deep}</html></vertical>'})
    blocks, warnings, error = outcome(path, caplog)
    assert "v1" not in blocks and "nested deeper" in str(error) and error.path == "vertical/v1.xml"


def test_pointer_cycle_is_refused(make_course, caplog):
    path = make_course({"vertical/v1.xml": '<vertical><vertical url_name="v2"/></vertical>',
                        "vertical/v2.xml": '<vertical><vertical url_name="v1"/></vertical>'})
    blocks, warnings, error = outcome(path, caplog)
    assert "v1" in blocks and "v2" in blocks and "cycle" in str(error) and error.path == "vertical/v1.xml"


def test_block_depth_is_capped(make_course, caplog):
    blocks, warnings, error = outcome(make_course({}), caplog, max_depth=3)
    assert "v1" in blocks and "p1" not in blocks and "deeper than 3" in str(error)


def _add(archive: tarfile.TarFile, name: str, data: bytes = b"", **fields) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in fields.items():
        setattr(info, key, value)
    archive.addfile(info, io.BytesIO(data) if data else None)


def _hostile_tarball(tmp_path, *extra):
    tgz = tmp_path / "hostile.tar.gz"
    with tarfile.open(tgz, "w:gz") as archive:
        for rel, text in TINY.items():
            _add(archive, f"course/{rel}", text.encode())
        for args, fields in extra:
            _add(archive, *args, **fields)
    return tgz


@pytest.mark.parametrize("member", [
    (("../escaped.xml", b"<x/>"), {}),
    (("course/../../escaped.xml", b"<x/>"), {}),
    (("/tmp/escaped-absolute.xml", b"<x/>"), {}),
    (("course/chapter/link.xml",), {"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}),
    (("course/chapter/hard.xml",), {"type": tarfile.LNKTYPE, "linkname": "course/course.xml"}),
    (("course/dev.xml",), {"type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3}),
], ids=["dotdot", "nested-dotdot", "absolute", "symlink", "hardlink", "device"])
def test_hostile_tar_members(tmp_path, caplog, member):
    tgz = _hostile_tarball(tmp_path, member)
    with caplog.at_level(logging.WARNING, logger="event_sinks.courses.olx"):
        course = read_olx(tgz)
    assert "unsafe tar member" in caplog.text and member[0][0] in caplog.text
    assert len(list(course.blocks())) == 10  # the rest of the course is read
    with pytest.raises(CourseReadError, match="unsafe tar member"):
        read_olx(tgz, strict=True)
    assert not (tmp_path / "escaped.xml").exists() and not os.path.exists("/tmp/escaped-absolute.xml")


def test_tar_symlink_used_by_a_pointer_is_a_dangling_pointer(tmp_path, caplog):
    tgz = tmp_path / "sym.tar.gz"
    with tarfile.open(tgz, "w:gz") as archive:
        for rel, text in TINY.items():
            if rel != "problem/p1.xml":
                _add(archive, rel, text.encode())
        _add(archive, "problem/p1.xml", type=tarfile.SYMTYPE, linkname="/etc/passwd")
    with caplog.at_level(logging.WARNING, logger="event_sinks.courses.olx"):
        blocks = {b.block_id for b in read_olx(tgz).blocks()}
    assert "p1" not in blocks and "vid1" in blocks and "problem/p1.xml" in caplog.text


def test_two_course_roots_in_a_tarball_are_ambiguous(tmp_path):
    files = {f"{top}/{rel}": text for top in ("a", "b") for rel, text in TINY.items()}
    root = write_tree(tmp_path / "two", files)
    tgz = tmp_path / "two.tar.gz"
    with tarfile.open(tgz, "w:gz") as archive:
        archive.add(root, arcname=".")
    with pytest.raises(CourseReadError, match="no course.xml"):
        read_olx(tgz)


def test_fifo_in_an_export_is_refused_without_hanging(make_course, caplog):
    path = make_course({"problem/p1.xml": None})
    (path / "problem").mkdir()
    os.mkfifo(path / "problem" / "p1.xml")
    blocks, warnings, error = outcome(path, caplog)
    assert "p1" not in blocks and "vid1" in blocks
    assert error.path == "problem/p1.xml" and "not a regular file" in str(error)


def test_tarball_declaring_too_many_bytes_is_refused(tiny, tmp_path, monkeypatch):
    from event_sinks.courses.olx import archive as olx_archive

    tgz = tmp_path / "big.tar.gz"
    with tarfile.open(tgz, "w:gz") as archive:
        archive.add(tiny, arcname=".")
        _add(archive, "static/huge.bin", b"\0" * 5000)
    monkeypatch.setattr(olx_archive, "MAX_ARCHIVE_DECLARED_BYTES", 4000)
    with pytest.raises(CourseReadError, match="more than 4000 bytes"):
        read_olx(tgz)
