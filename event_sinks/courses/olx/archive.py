"""Tarball exports: the members the reader needs extracted safely into a temporary folder."""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import weakref
from pathlib import Path

from ..errors import CourseReadError
from .export import CONTENT_SUFFIXES, VERSIONED_SUFFIXES, report

#: Caps on a tarball: bytes of XML/JSON written out, and members listed.
MAX_ARCHIVE_BYTES = 1024 * 1024 * 1024


MAX_ARCHIVE_MEMBERS = 500_000


#: Cap on the sizes all members declare: skipping a member still decompresses it (gzip bombs).
MAX_ARCHIVE_DECLARED_BYTES = 8 * 1024 * 1024 * 1024


class TempTree:
    """Owns a temporary folder (an extracted tarball) and removes it when nothing uses it any more."""

    def __init__(self, path: str):
        self.path = path
        self._finalizer = weakref.finalize(self, shutil.rmtree, path, True)

    def cleanup(self) -> None:
        self._finalizer()


def _member_problem(member: tarfile.TarInfo) -> str | None:
    name = member.name
    if name.startswith("/") or "\\" in name or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if any(part == ".." for part in name.split("/")):
        return "path with '..'"
    if member.issym() or member.islnk():
        return "link member"
    if not (member.isreg() or member.isdir()):
        return "special file (device, FIFO...)"
    return None


def extract(tarball: Path, strict: bool, max_file_bytes: int) -> TempTree:
    """Extract the files the reader needs from ``tarball`` into a new temporary folder, safely.

    Only regular files and folders are accepted; members with absolute paths, ``..``, links or
    devices are refused (``strict``) or skipped with a warning. Only ``.xml``/``.json`` bytes are
    written; ``.html``/``.htm`` files are created empty (their presence counts, not their bytes).
    """
    tree = TempTree(tempfile.mkdtemp(prefix="event-sinks-olx-"))
    source = str(tarball)
    data_filter = getattr(tarfile, "data_filter", None)
    written = declared = 0
    try:
        with tarfile.open(tarball, "r:*") as archive:
            for count, member in enumerate(archive, 1):
                if count > MAX_ARCHIVE_MEMBERS:
                    raise CourseReadError(f"more than {MAX_ARCHIVE_MEMBERS} members", source, None)
                declared += max(member.size, 0)
                if declared > MAX_ARCHIVE_DECLARED_BYTES:
                    raise CourseReadError(f"members add up to more than {MAX_ARCHIVE_DECLARED_BYTES} bytes",
                                          source, None)
                problem = _member_problem(member)
                if problem is None and data_filter is not None:
                    try:
                        data_filter(member, tree.path)
                    except tarfile.FilterError as exc:
                        problem = f"refused by tarfile's data filter ({exc})"
                if problem is not None:
                    report(CourseReadError(f"unsafe tar member {member.name!r}: {problem}", source, None),
                            strict, source)
                    continue
                rel = member.name.rstrip("/")
                while rel.startswith("./"):
                    rel = rel[2:]
                if member.isdir() or not rel.lower().endswith(VERSIONED_SUFFIXES):
                    continue
                parts = rel.split("/")
                if any(part in ("", ".") for part in parts):
                    continue
                target = os.path.join(tree.path, *parts)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                if not rel.lower().endswith(CONTENT_SUFFIXES):
                    open(target, "wb").close()
                    continue
                if member.size > max_file_bytes:
                    too_big = f"tar member {rel!r} is larger than the {max_file_bytes}-byte cap"
                    report(CourseReadError(too_big, source, None), strict, source)
                    continue
                written += member.size
                if written > MAX_ARCHIVE_BYTES:
                    raise CourseReadError(f"more than {MAX_ARCHIVE_BYTES} bytes of XML/JSON", source, None)
                src = archive.extractfile(member)
                if src is None:
                    continue
                with src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    except (tarfile.TarError, OSError, EOFError) as exc:
        tree.cleanup()
        raise CourseReadError(f"unreadable tarball: {exc}", source, None) from None
    except BaseException:
        tree.cleanup()
        raise
    return tree
