"""``dump_sink --olx PATH``: every path that holds no readable course is refused, naming the path.

An export given on its own (a folder with course.xml, a tarball) that cannot be read, and a folder of
exports none of which can be read, used to end with "0 dumped" and exit status 0.
"""

from __future__ import annotations

import shutil
import tarfile
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from event_sinks.courses.sources import set_course_source

DEMO = Path(__file__).resolve().parents[2] / "event_sinks" / "demo" / "course"
DEMO_KEY = "course-v1:EventSinks+Demo101+2026"


@pytest.fixture(autouse=True)
def _reset_source():
    yield
    set_course_source(None)


def refused(*args: str) -> str:
    with pytest.raises(CommandError) as caught:
        call_command("dump_sink", "course_outline", *args, stdout=StringIO(), stderr=StringIO())
    return str(caught.value)


def dumped(*args: str) -> str:
    out = StringIO()
    call_command("dump_sink", "course_outline", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def tarball(path: Path, source: Path = DEMO) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        archive.add(source, arcname="course")
    return path


def test_a_plain_file(embedded, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    assert refused("--all", "--olx", str(path)) == (
        f"--olx: {path} is neither an OLX export (a folder with course.xml, or a .tar.gz, .tgz or .tar) "
        "nor a folder of exports")


def test_a_zip(embedded, tmp_path):
    path = tmp_path / "course.zip"
    shutil.make_archive(str(path.with_suffix("")), "zip", DEMO)
    message = refused("--all", "--olx", str(path))
    assert message.startswith(f"--olx {path}: a .zip is not read") and ".tar.gz" in message


def test_dev_null(embedded):
    assert refused("--all", "--olx", "/dev/null").startswith("--olx: /dev/null is neither an OLX export")


def test_an_upper_case_tarball_is_read(embedded, tmp_path):
    path = tarball(tmp_path / "COURSE.TAR.GZ")
    assert "1 dumped, 0 deleted, 0 skipped, 0 failed; 21 rows" in dumped("--all", "--olx", str(path))


@pytest.mark.parametrize("content", ["empty", "files only", "folders without course.xml"])
def test_a_folder_without_exports(embedded, tmp_path, content):
    folder = tmp_path / "exports"
    folder.mkdir()
    if content == "files only":
        (folder / "README").write_text("exports go here")
    elif content == "folders without course.xml":
        (folder / "course1" / "chapter").mkdir(parents=True)
    assert refused("--all", "--olx", str(folder)) == (
        f"--olx: {folder} is neither an OLX export (a folder with course.xml, or a .tar.gz, .tgz or .tar) "
        "nor a folder of exports")


@pytest.mark.parametrize("broken", ["junk.tar.gz", "JUNK.TGZ", "no-course.tar.gz", "bad-course-xml"])
@pytest.mark.parametrize("selection", [["--all"], [DEMO_KEY]], ids=["all", "key"])
def test_an_export_that_cannot_be_read(embedded, tmp_path, broken, selection):
    path = tmp_path / broken
    if broken.lower().startswith("junk"):
        path.write_bytes(b"not a tarball at all")
    elif broken == "no-course.tar.gz":
        (tmp_path / "src").mkdir()
        (tmp_path / "src" / "about.html").write_text("<p>no course here</p>")
        tarball(path, tmp_path / "src")
    else:
        shutil.copytree(DEMO, path)
        (path / "course.xml").write_text("<course url_name='2026' org='EventSinks' course=")
    message = refused(*selection, "--olx", str(path))
    assert message.startswith(f"--olx {path}: this export cannot be read: "), message


def test_a_folder_none_of_whose_exports_can_be_read(embedded, tmp_path):
    folder = tmp_path / "exports"
    (folder / "course1").mkdir(parents=True)
    (folder / "course1" / "course.xml").write_text("<not a course")
    (folder / "course2.tar.gz").write_bytes(b"junk")
    assert refused("--all", "--olx", str(folder)) == (
        f"--olx {folder}: no course could be read (2 exports, each skipped: see the warnings above)")


def test_a_folder_with_some_readable_exports_dumps_those(embedded, tmp_path):
    folder = tmp_path / "exports"
    shutil.copytree(DEMO, folder / "demo")
    (folder / "broken.tar.gz").write_bytes(b"junk")
    assert "1 dumped, 0 deleted, 0 skipped, 0 failed" in dumped("--all", "--olx", str(folder))


def test_the_same_export_twice_is_not_an_unreadable_one(embedded, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(DEMO, copy)
    assert "1 dumped" in dumped("--all", "--olx", str(DEMO), "--olx", str(copy))
