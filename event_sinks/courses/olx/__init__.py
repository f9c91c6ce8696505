"""OLX exports: read a published course from an export folder or tarball (see :mod:`.reader`)."""

from .archive import MAX_ARCHIVE_BYTES, MAX_ARCHIVE_DECLARED_BYTES, MAX_ARCHIVE_MEMBERS, MAX_TAR_HEADER_BYTES
from .export import ARCHIVE_SUFFIXES, DEFAULT_MAX_FILE_BYTES, is_archive, is_export
from .reader import read_olx
from .walk import DEFAULT_MAX_DEPTH

__all__ = ["ARCHIVE_SUFFIXES", "DEFAULT_MAX_DEPTH", "DEFAULT_MAX_FILE_BYTES", "MAX_ARCHIVE_BYTES",
           "MAX_ARCHIVE_DECLARED_BYTES", "MAX_ARCHIVE_MEMBERS", "MAX_TAR_HEADER_BYTES", "is_archive", "is_export",
           "read_olx"]
