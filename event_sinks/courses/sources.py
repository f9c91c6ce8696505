"""Where course sinks read courses from: the modulestore inside Open edX, OLX exports elsewhere.

Inside edx-platform every course comes from the modulestore (published branch). Outside it (the
command line, tests, other tools) courses come from OLX exports given by path: an export directory,
a ``.tar.gz``, or a folder holding several of them. One source is in force per process; the
command line's ``--olx`` installs an :class:`OlxSource`.
"""

from __future__ import annotations

import functools
import logging
import tarfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from ..conf import get_settings
from ..errors import InvalidKeyError
from .course import Course
from .errors import CourseReadError
from .olx import is_archive, is_export, read_olx
from .olx.reader import read_olx_kept

log = logging.getLogger(__name__)

#: Bytes of extracted tarballs an :class:`OlxSource` index may keep on disk for the reads that follow
#: it, so that each tarball of a folder of exports is extracted once: the index reads a tarball to
#: learn its course key, and hands that read to the first ``read()`` of the key. Past the cap (and for
#: a tarball changed since), ``read()`` extracts the tarball again.
MAX_KEPT_ARCHIVE_BYTES = 256 * 1024 * 1024


def _stamp(path: Path) -> tuple[int, ...]:
    """What tells a file replaced or rewritten since: device, inode, size, modification time."""
    info = path.stat()
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


class CourseSource:
    """Reads courses by key and lists the keys it knows."""

    def keys(self) -> Iterator[str]:
        """Every course key this source can read."""
        raise NotImplementedError

    def read(self, course_key: str) -> Course:
        """The published course ``course_key``; raises CourseReadError or InvalidKeyError."""
        raise NotImplementedError

    def version(self, course_key: str) -> str:
        """The published version of ``course_key``: as cheap as the source allows (default: a read)."""
        return read_course(course_key).source_version

    def keys_since(self, since: datetime) -> Iterator[str]:
        """Keys of courses edited at or after ``since`` (reads each course's edit time)."""
        for key in self.keys():
            edited = self.read(key).edited_on
            if edited is None or edited >= since:
                yield key


class ModulestoreSource(CourseSource):
    """edx-platform's modulestore, published branch (inside the LMS/CMS; ``store`` for stand-ins)."""

    def __init__(self, store: Any = None, *, course_index: bool | None = None) -> None:
        """``store``: the platform's modulestore when None. ``course_index``: whether the platform's
        course index table answers for this store (:mod:`.course_index`); by default only for the
        platform's own store, which keeps it -- a stand-in store passed in opts in."""
        self.store = store
        self.course_index = store is None if course_index is None else course_index

    def keys(self) -> Iterator[str]:
        """Every course of the store, each followed by its CCX runs (where the platform has CCX on)."""
        from .ccx import all_ccx_keys
        from .modulestore import list_course_keys

        runs = all_ccx_keys()
        for key in list_course_keys(store=self.store):
            yield key
            yield from runs.get(key, ())

    def read(self, course_key: str) -> Course:
        from .modulestore import read_modulestore

        return read_modulestore(course_key, store=self.store)

    def version(self, course_key: str) -> str:
        """The published structure id: from the course index (one query), else the course root (``depth=0``)."""
        from .course_index import published_version
        from .modulestore import read_version

        indexed = published_version(course_key) if self.course_index else None
        return indexed or read_version(course_key, store=self.store)

    def keys_since(self, since: datetime) -> Iterator[str]:
        """Courses whose index was edited at or after ``since`` (one query), and their CCX runs.

        Without the index (an older platform), each course's root is read for its edit time.
        """
        from .ccx import all_ccx_keys
        from .course_index import keys_edited_since
        from .modulestore import read_edited_on

        edited = keys_edited_since(since) if self.course_index else None
        if edited is None:
            edited = (key for key in self._courses() if (read_edited_on(key, store=self.store) or since) >= since)
        runs = all_ccx_keys()
        for key in edited:
            yield key
            yield from runs.get(key, ())

    def _courses(self) -> Iterator[str]:
        from .modulestore import list_course_keys

        return iter(list_course_keys(store=self.store))


class OlxSource(CourseSource):
    """OLX exports on disk, found under the given paths and indexed by their course key.

    ``course_key`` overrides the key of a single export (an export imported into another run). The
    index reads every export once; what it read of a tarball (its extraction) is kept, within
    ``MAX_KEPT_ARCHIVE_BYTES``, for the first ``read()`` of its key: each tarball is extracted once.
    An export the index cannot read is skipped with a warning naming it, whatever the error.
    """

    def __init__(self, paths: Iterable[str | Path], *, course_key: str | None = None, strict: bool = False):
        self.strict = strict
        self._override = course_key
        self._exports: list[Path] = []
        for raw in paths:
            path = Path(raw)
            if not path.exists():
                raise CourseReadError(f"OLX path {path} does not exist", path=str(path), line=None)
            if is_export(path):
                self._exports.append(path)
            else:
                try:
                    found = sorted(p for p in path.iterdir() if is_export(p)) if path.is_dir() else []
                except OSError as exc:
                    raise CourseReadError(f"OLX path {path} cannot be listed: {exc.strerror or exc}",
                                          path=str(path), line=None) from None
                if not found:
                    raise CourseReadError(
                        f"{path} is neither an OLX export (a folder with course.xml, or a .tar.gz, .tgz or .tar) "
                        "nor a folder of exports", path=str(path), line=None,
                    )
                self._exports.extend(found)
        if course_key and len(self._exports) != 1:
            raise InvalidKeyError("a course key override needs exactly one OLX export")
        self._index: dict[str, Path] | None = None
        #: course key -> (the tarball's stamp, the Course the index read from it, its bytes on disk)
        self._kept: dict[str, tuple[tuple[int, ...], Course, int]] = {}
        self._kept_bytes = 0
        self._lock = threading.Lock()

    def _read_key(self, path: Path, index: dict[str, Path]) -> str:
        """The course key of the export at ``path``; a tarball's read is kept for ``read()`` (see above)."""
        if self._override:
            return self._override
        if not (path.is_file() and is_archive(path)):
            return read_olx(path, strict=self.strict).course_key
        stamp = _stamp(path)
        course, size = read_olx_kept(path, strict=self.strict)
        key = course.course_key
        if key not in index and key not in self._kept and self._kept_bytes + size <= MAX_KEPT_ARCHIVE_BYTES:
            self._kept[key] = (stamp, course, size)
            self._kept_bytes += size
        return key

    def index(self) -> dict[str, Path]:
        """course key -> export path (reads each export once)."""
        with self._lock:
            if self._index is None:
                index: dict[str, Path] = {}
                for path in self._exports:
                    try:
                        key = self._read_key(path, index)
                    except (CourseReadError, tarfile.TarError, OSError) as exc:
                        log.warning("event_sinks: skipping OLX export %s: %s", path, exc)
                        continue
                    except Exception as exc:  # one export must never stop the listing of all the others
                        log.warning("event_sinks: skipping OLX export %s: unexpected %s: %s", path,
                                    type(exc).__name__, exc)
                        continue
                    if key in index:
                        log.warning("event_sinks: %s and %s hold the same course %s; using the first",
                                    index[key], path, key)
                        continue
                    index[key] = path
                self._index = index
            return self._index

    def _take_kept(self, course_key: str, path: Path) -> Course | None:
        """The Course the index read for ``course_key``, once, if its tarball has not changed since."""
        with self._lock:
            kept = self._kept.pop(course_key, None)
            if kept is None:
                return None
            self._kept_bytes -= kept[2]
        try:
            unchanged = _stamp(path) == kept[0]
        except OSError:
            unchanged = False
        return kept[1] if unchanged else None

    def keys(self) -> Iterator[str]:
        return iter(self.index())

    def keys_since(self, since: datetime) -> Iterator[str]:
        """Exports with a file modified at or after ``since`` (OLX has no edit times of its own)."""
        cutoff = since.timestamp()
        for key, path in self.index().items():
            files = [path] if path.is_file() else path.rglob("*")
            if any(f.stat().st_mtime >= cutoff for f in files if f.is_file()):
                yield key

    def read(self, course_key: str) -> Course:
        path = self.index().get(course_key)
        if path is None:
            known = ", ".join(sorted(self.index())) or "none"
            raise CourseReadError(f"course {course_key} is not among the OLX exports (found: {known})",
                                  path=None, line=None)
        kept = self._take_kept(course_key, path)
        if kept is not None:
            return kept
        return read_olx(path, course_key=self._override, strict=self.strict)


_source: CourseSource | None = None


class _SharedReads(threading.local):
    """This thread's open :func:`shared_reads` block: how deep, and the course read last in it."""

    def __init__(self) -> None:
        self.depth = 0
        self.last: tuple[str, Course] | None = None


_shared = _SharedReads()


@contextmanager
def shared_reads() -> Iterator[None]:
    """Within the block, :func:`read_course` reads each course once for every sink that needs it.

    A dump job opens one (:meth:`CourseSink.job`), so a version check and the dump that follows it,
    and several course sinks dumping one publish, share a single read. Only the course read last is
    kept, and nothing once the outermost block ends: memory stays one course, not a backfill.
    """
    _shared.depth += 1
    try:
        yield
    finally:
        _shared.depth -= 1
        if not _shared.depth:
            _shared.last = None


def shared_course(course_key: str) -> Course | None:
    """The course already read for ``course_key`` in this thread's :func:`shared_reads` block, if any."""
    last = _shared.last if _shared.depth else None
    return last[1] if last is not None and last[0] == course_key else None


def read_course(course_key: str) -> Course:
    """The course from the source in force; inside :func:`shared_reads`, read once per key."""
    if not _shared.depth:
        return get_course_source().read(course_key)
    last = _shared.last
    if last is not None and last[0] == course_key:
        return last[1]
    _shared.last = None  # let the previous course go before reading the next
    course = get_course_source().read(course_key)
    _shared.last = (course_key, course)
    return course


@functools.lru_cache(maxsize=4)
def _olx_source_for(paths: tuple[str, ...]) -> OlxSource:
    return OlxSource(paths)


def set_course_source(source: CourseSource | None) -> None:
    """Install the process's course source (None: back to the default)."""
    global _source
    _source = source


def get_course_source() -> CourseSource:
    """The source in force: the one installed, else OLX_PATHS, else the modulestore inside Open edX."""
    if _source is not None:
        return _source
    paths = get_settings().olx_paths
    if paths:
        return _olx_source_for(paths)
    try:
        import xmodule.modulestore.django  # noqa: F401
    except ImportError:
        raise CourseReadError(
            "no course source: outside Open edX give OLX exports (--olx PATH, EVENT_SINKS['OLX_PATHS'], or "
            "event_sinks.courses.sources.set_course_source(OlxSource([...])))", path=None, line=None,
        ) from None
    return ModulestoreSource()
