"""Course sources: what counts as an export in a folder of exports (one rule, shared with read_olx)."""

from __future__ import annotations

import tarfile

import pytest

from event_sinks.courses import CourseReadError, is_export, read_olx
from event_sinks.courses.sources import OlxSource

from .conftest import TINY, write_tree


def _tar(folder, target, mode):
    with tarfile.open(target, mode) as archive:
        archive.add(folder, arcname=".")
    return target


@pytest.mark.parametrize("name,mode", [("a.tar.gz", "w:gz"), ("b.TGZ", "w:gz"), ("c.tar", "w")])
def test_every_archive_read_olx_reads_is_an_export_in_a_folder_of_exports(tmp_path, name, mode):
    course = write_tree(tmp_path / "course", TINY)
    exports = tmp_path / "exports"
    exports.mkdir()
    archive = _tar(course, exports / name, mode)
    assert is_export(archive) and read_olx(archive).course_key == "course-v1:TinyX+Tiny+T1"
    assert list(OlxSource([exports]).keys()) == ["course-v1:TinyX+Tiny+T1"]


def test_a_folder_of_exports_is_not_an_export_and_a_plain_file_is_neither(tmp_path):
    write_tree(tmp_path / "exports" / "one", TINY)
    (tmp_path / "notes.txt").write_text("hello")
    assert not is_export(tmp_path / "exports") and is_export(tmp_path / "exports" / "one")
    assert list(OlxSource([tmp_path / "exports"]).keys()) == ["course-v1:TinyX+Tiny+T1"]
    with pytest.raises(CourseReadError, match="notes.txt is neither an OLX export"):
        OlxSource([tmp_path / "notes.txt"])
