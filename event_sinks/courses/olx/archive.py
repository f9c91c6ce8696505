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


#: Cap on the data of one extension header -- a GNU long name or long link name ('L', 'K'), a PAX
#: header ('x', 'g', or Solaris 'X') -- which tarfile reads whole into memory (several copies of it:
#: a 1 GiB long name took 8.2 GB). A long name is at most PATH_MAX (4 KiB) and a PAX header of a file
#: a few hundred bytes; the cap leaves room for extended attributes (macOS tar stores them there).
MAX_TAR_HEADER_BYTES = 1024 * 1024


#: Extension headers in a row before a member: tarfile reads each one's successor by recursion.
MAX_TAR_HEADER_CHAIN = 8


_EXTENSION_HEADERS = {
    tarfile.GNUTYPE_LONGNAME: "GNU long name", tarfile.GNUTYPE_LONGLINK: "GNU long link name",
    tarfile.XHDTYPE: "PAX", tarfile.XGLTYPE: "PAX global", tarfile.SOLARIS_XHDTYPE: "Solaris extended",
}


class _HeaderRefused(Exception):
    """A tar header refused before tarfile reads what follows it.

    Not a tarfile error on purpose: ``TarFile.next()`` takes a header error in the middle of an archive
    for its end, and would hide the refusal.
    """


class _BoundedTarInfo(tarfile.TarInfo):
    """tarfile's member header, with its extension headers checked before tarfile reads their data.

    tarfile calls ``_proc_member`` on every header it has read (512 bytes), before it reads the data of
    a long name or PAX header; here the declared size is checked first. Sparse members are refused:
    their maps are read from the stream without a bound (GNU extension blocks, PAX 1.0 maps), and no
    course export has sparse files.
    """

    def _proc_member(self, archive: tarfile.TarFile) -> tarfile.TarInfo:
        kind = _EXTENSION_HEADERS.get(self.type)
        if kind is None:
            if self.type == tarfile.GNUTYPE_SPARSE:
                raise _HeaderRefused(f"a sparse member at offset {self.offset}: sparse members are refused")
            return super()._proc_member(archive)  # type: ignore[misc]
        if self.size > MAX_TAR_HEADER_BYTES:
            raise _HeaderRefused(f"a {kind} header of {self.size} bytes at offset {self.offset}, over the "
                                 f"{MAX_TAR_HEADER_BYTES}-byte cap on tar extension headers")
        chain = getattr(archive, "_event_sinks_chain", 0)
        if chain >= MAX_TAR_HEADER_CHAIN:
            raise _HeaderRefused(f"more than {MAX_TAR_HEADER_CHAIN} extension headers in a row, at offset "
                                 f"{self.offset}")
        setattr(archive, "_event_sinks_chain", chain + 1)  # noqa: B010 - an attribute tarfile does not declare
        try:
            return super()._proc_member(archive)  # type: ignore[misc]
        finally:
            setattr(archive, "_event_sinks_chain", chain)  # noqa: B010

    def _refuse_sparse(self, *_args: object) -> None:
        raise _HeaderRefused(f"a PAX sparse member at offset {self.offset}: sparse members are refused")

    _proc_gnusparse_00 = _proc_gnusparse_01 = _proc_gnusparse_10 = _refuse_sparse


class TempTree:
    """Owns a temporary folder (an extracted tarball) and removes it when nothing uses it any more.

    ``size``: the bytes extracted into it (what keeping it costs on disk).
    """

    def __init__(self, path: str):
        self.path = path
        self.size = 0
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
    Extension headers over ``MAX_TAR_HEADER_BYTES`` (or more than ``MAX_TAR_HEADER_CHAIN`` in a row)
    and sparse members refuse the whole tarball, before tarfile reads them.
    """
    tree = TempTree(tempfile.mkdtemp(prefix="event-sinks-olx-"))
    source = str(tarball)
    data_filter = getattr(tarfile, "data_filter", None)
    written = declared = 0
    try:
        with tarfile.open(tarball, "r:*", tarinfo=_BoundedTarInfo) as archive:
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
        tree.size = written
    except _HeaderRefused as exc:
        tree.cleanup()
        raise CourseReadError(f"unsafe tarball: {exc}", source, None) from None
    except (tarfile.TarError, OSError, EOFError) as exc:
        tree.cleanup()
        raise CourseReadError(f"unreadable tarball: {exc}", source, None) from None
    except BaseException:
        tree.cleanup()
        raise
    return tree
