"""An export's files, read safely (relative paths only, nothing outside the root), and its source version."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import stat
from pathlib import Path
from typing import BinaryIO

from ..errors import CourseReadError
from .safexml import Node, parse_xml

log = logging.getLogger("event_sinks.courses.olx")

#: Tarball exports, by suffix (any case).
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")

DEFAULT_MAX_FILE_BYTES = 16 * 1024 * 1024


VERSIONED_SUFFIXES = (".xml", ".json", ".html", ".htm")


CONTENT_SUFFIXES = (".xml", ".json")


_SKIPPED_TOP_DIRS = frozenset({"drafts", "static"})


_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


# O_NONBLOCK: opening a FIFO planted in an export must not hang the reader (fstat then refuses it).
_OPEN_FLAGS = os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC | getattr(os, "O_NONBLOCK", 0)


def safe_rel(rel: str) -> bool:
    """A relative POSIX path that stays inside the export and out of ``drafts/``."""
    if not rel or rel[0] == "/" or "\\" in rel or "\x00" in rel:
        return False
    parts = rel.split("/")
    if parts[0] == "drafts":
        return False
    return all(part not in ("", ".", "..") for part in parts)


class Export:
    """An export's root folder, read safely: relative paths only, nothing outside the root."""

    def __init__(self, root: str, source: str, max_file_bytes: int, keep: object = None):
        self.root = root
        self.real_root = os.path.realpath(root)
        self.source = source
        self.max_file_bytes = max_file_bytes
        self.keep = keep  # the temporary folder's owner, alive as long as this export is
        self._dirs: dict[str, bool] = {}

    def _inside(self, real: str) -> bool:
        return real == self.real_root or real.startswith(self.real_root + os.sep)

    def exists(self, rel: str) -> bool:
        return safe_rel(rel) and os.path.isfile(os.path.join(self.root, rel))

    def open(self, rel: str) -> BinaryIO:
        """Open ``rel`` for reading; raises FileNotFoundError or CourseReadError (unsafe, too big)."""
        if not safe_rel(rel):
            raise CourseReadError("unsafe path: outside the export, absolute, or under drafts/", rel, None)
        full = os.path.join(self.root, rel)
        folder = os.path.dirname(full)
        ok = self._dirs.get(folder)
        if ok is None:
            ok = self._dirs[folder] = self._inside(os.path.realpath(folder))
        if not ok:
            raise CourseReadError("unsafe path: resolves outside the export", rel, None)
        try:
            fd = os.open(full, _OPEN_FLAGS)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError) or not os.path.islink(full):
                raise
            real = os.path.realpath(full)
            if not self._inside(real):
                raise CourseReadError("unsafe path: a symlink leading outside the export", rel,
                                      None) from None
            fd = os.open(real, _OPEN_FLAGS)
        if not _O_NOFOLLOW and not self._inside(os.path.realpath(full)):
            os.close(fd)
            raise CourseReadError("unsafe path: resolves outside the export", rel, None)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise CourseReadError("not a regular file", rel, None)
        if info.st_size > self.max_file_bytes:
            os.close(fd)
            raise CourseReadError(f"file is larger than the {self.max_file_bytes}-byte cap", rel, None)
        return os.fdopen(fd, "rb")

    def parse(self, rel: str, *, root_only: bool = False) -> Node:
        with self.open(rel) as fileobj:
            return parse_xml(fileobj, rel, root_only=root_only, max_bytes=self.max_file_bytes)

    def version(self) -> str:
        """The source version (see the reader's module docstring for the rule).

        A file that vanishes or cannot be read while it is hashed is a CourseReadError naming it: the
        export is changing under the reader.
        """
        try:
            return self._version()
        except OSError as exc:
            rel = os.path.relpath(exc.filename, self.root).replace(os.sep, "/") if exc.filename else None
            raise CourseReadError(f"the export changed while it was read: {exc.strerror or exc}", rel,
                                  None) from None

    def _version(self) -> str:
        names: list[str] = []
        for folder, dirnames, filenames in os.walk(self.root):
            rel_folder = os.path.relpath(folder, self.root)
            if rel_folder == ".":
                dirnames[:] = [name for name in dirnames if name not in _SKIPPED_TOP_DIRS]
                prefix = ""
            else:
                prefix = rel_folder.replace(os.sep, "/") + "/"
            names.extend(prefix + name for name in filenames if name.lower().endswith(VERSIONED_SUFFIXES))
        names.sort()
        digest = hashlib.sha256()
        for rel in names:
            digest.update(rel.encode("utf-8", "surrogateescape") + b"\x00")
            if not rel.lower().endswith(CONTENT_SUFFIXES):
                continue
            full = os.path.join(self.root, rel)
            mode = os.lstat(full).st_mode
            if stat.S_ISLNK(mode):
                digest.update(b"link:" + os.readlink(full).encode("utf-8", "surrogateescape") + b"\x00")
                continue
            if not stat.S_ISREG(mode):
                digest.update(b"special\x00")
                continue
            with open(full, "rb") as fileobj:
                size = 0
                for chunk in iter(functools.partial(fileobj.read, 1 << 20), b""):
                    size += len(chunk)
                    digest.update(chunk)
            digest.update(b"\x00" + str(size).encode() + b"\x00")
        return "sha256:" + digest.hexdigest()


def report(problem: CourseReadError, strict: bool, source: str) -> None:
    """Raise ``problem`` in strict mode; otherwise log it as a WARNING (the part is skipped)."""
    if strict:
        raise problem
    log.warning("OLX export %s: %s; skipped", source, problem)


def find_root(folder: str) -> str | None:
    """The folder holding course.xml: ``folder`` itself, or its single subfolder that has one."""
    if os.path.isfile(os.path.join(folder, "course.xml")):
        return folder
    found = [
        entry.path for entry in os.scandir(folder)
        if entry.is_dir(follow_symlinks=False) and os.path.isfile(os.path.join(entry.path, "course.xml"))
    ]
    return found[0] if len(found) == 1 else None


def is_archive(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a tarball export (by its suffix, in any case)."""
    return os.fspath(path).lower().endswith(ARCHIVE_SUFFIXES)


def is_export(path: str | os.PathLike) -> bool:
    """The one rule for what an OLX export is: a folder with ``course.xml`` at its top, or a tarball.

    Shared by the course sources (which tell exports from folders of exports with it) and
    :func:`read_olx` (which also accepts a folder whose single subfolder is an export).
    """
    path = Path(path)
    if path.is_dir():
        return (path / "course.xml").is_file()
    return path.is_file() and is_archive(path)
