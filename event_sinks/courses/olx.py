"""Read a published course from an OLX export (a directory, or a ``.tar.gz`` of one).

This lets the sinks run with no Open edX instance at all: the command line, tests and other tools
read the same Course/Block model from an export that the modulestore reader produces inside the
platform. The walk follows Open edX's XML importer (``xmodule/modulestore/xml.py``,
``xmodule/xml_block.py``) where it matters for the outline:

* ``course.xml`` is a pointer ``<course url_name=RUN org=ORG course=COURSE/>`` to ``course/RUN.xml``
  (or the whole course inline). The course root's key is ``...+type@course+block@course``.
* A *pointer tag* has exactly one attribute, ``url_name`` (``url_name``, ``org`` and ``course`` for the
  course), no children and no text; its definition is ``TYPE/URL_NAME.xml`` (``:`` in the name maps to
  ``/``). Anything else is an inline definition.
* ``filename=`` on a non-pointer container or ``problem`` (hand-written courses) loads the definition
  from ``TYPE/FILENAME.xml``, the tag's own attributes winning over the file's; for ``problem`` Open
  edX's legacy fallbacks ``problems/...`` and the path without ``problem/`` are tried. On ``html`` it
  names the HTML body, which the outline never reads; other components do not use it.
* ``policies/RUN/policy.json`` (else ``policies/RUN.json``) overrides attributes by ``"TYPE/ID"``;
  the course itself is ``"course/RUN"``. Attribute values are JSON-decoded first as Open edX does, so
  ``"null"`` sets the field to nothing *explicitly*: that value is what the block and its descendants
  see, as in Open edX (with no ancestor value it is the same as leaving it unset).
* course, chapter, sequential, vertical, split_test, conditional and library_content have block
  children; every other tag is a leaf whose content is never parsed (only its own attributes count).
  ``<wiki>``/``<textbook>`` in the course, ``<show>`` in a conditional, namespaced field elements and
  asides are not blocks. ``drafts/`` is never read.

Block ids of inline blocks without ``url_name`` follow Open edX's importer: ``slug``, else ``name`` or
``display_name`` made key-safe with ``BlockUsageLocator.clean`` -- so they equal the ids Open edX gives
those blocks. When there is no such name, or it is already used by another block of the same type, or
it is not a valid key part, the id is ``TYPE[_NAME]_HASH`` with ``HASH`` the first 12 hex digits of
``sha1("PARENT_ID/TYPE/INDEX/NAME")`` (``INDEX``: the element's 0-based place among its parent's block
elements). That id is stable across reads as long as the parent and the element's place do not change.
(Open edX hashes the element's serialized XML instead, which a reader not using lxml cannot
reproduce byte for byte; ids are claimed in the order children are resolved, parent by parent.)

Source version: ``"sha256:"`` + SHA-256 over every ``.xml``, ``.json``, ``.html`` and ``.htm`` file
outside the top-level ``drafts/`` and ``static/`` folders, sorted by relative path: each file's path,
and for ``.xml``/``.json`` files also their bytes. It changes whenever anything the outline reads
changes (and whenever an HTML body is added or removed); it is the same for a folder and its tarball.

Problems (a dangling pointer, malformed XML, an unsafe path, a file over the size cap) are reported
with the file and line: by default logged as a WARNING on ``event_sinks.courses.olx`` and the broken
block skipped with its subtree; with ``strict=True`` raised as :class:`CourseReadError`. Problems
inside the course walk surface while iterating ``blocks()``. XML is parsed with the standard library's
expat: any DOCTYPE (and so any entity declaration) is refused, no external resource is ever loaded,
files are read only from inside the export (no ``..``, absolute paths or symlinks leading outside), and
file size and nesting depth are capped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import stat
import tarfile
import tempfile
import weakref
from collections.abc import Iterator
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from xml.parsers import expat

from opaque_keys import InvalidKeyError
from opaque_keys.edx.keys import CourseKey
from opaque_keys.edx.locator import CourseLocator

from .errors import CourseReadError
from .model import DEFAULT_START_DATE, UTC, Block, Course

log = logging.getLogger("event_sinks.courses.olx")

#: Tags whose XML children are blocks; every other tag is a leaf component.
CONTAINER_TAGS = frozenset(
    {"course", "chapter", "sequential", "vertical", "split_test", "conditional", "library_content"}
)
#: Children of these containers that Open edX does not turn into blocks.
_NOT_BLOCKS = {"course": frozenset({"wiki", "textbook"}), "conditional": frozenset({"show"})}
_NO_SKIP: frozenset[str] = frozenset()

DEFAULT_MAX_FILE_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_DEPTH = 32
#: XML element nesting allowed inside one file (a block's content can nest deeper than blocks do).
MAX_XML_NESTING = 256
#: Caps on a tarball: bytes of XML/JSON written out, and members listed.
MAX_ARCHIVE_BYTES = 1024 * 1024 * 1024
MAX_ARCHIVE_MEMBERS = 500_000
#: Cap on the sizes all members declare: skipping a member still decompresses it (gzip bombs).
MAX_ARCHIVE_DECLARED_BYTES = 8 * 1024 * 1024 * 1024

_VERSIONED_SUFFIXES = (".xml", ".json", ".html", ".htm")
_CONTENT_SUFFIXES = (".xml", ".json")
_SKIPPED_TOP_DIRS = frozenset({"drafts", "static"})

# opaque_keys' Locator.ALLOWED_ID_CHARS: what a block type or block id may contain.
_ID_RE = re.compile(r"[\w\-~.:]+", re.UNICODE)
# BlockUsageLocator.clean(): characters replaced by "_", then runs of "_" collapsed.
_CLEAN_RE = re.compile(r"[^\w.%-]", re.UNICODE)
_UNDERSCORES_RE = re.compile(r"_+")
_EMPTY: tuple[str, ...] = ()
_UNSET = object()
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
# O_NONBLOCK: opening a FIFO planted in an export must not hang the reader (fstat then refuses it).
_OPEN_FLAGS = os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC | getattr(os, "O_NONBLOCK", 0)


# ---------------------------------------------------------------------------------------------- values


def _json_or_raw(raw: str):
    """Open edX's ``deserialize_field``: JSON-decode an attribute value when it is JSON, else keep it."""
    first = raw[:1]
    if first == '"' or first in "-0123456789[{" or raw in ("null", "true", "false"):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _string_value(value):
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _xml_string(raw: str):
    value = _json_or_raw(raw)
    if value is None or isinstance(value, str):
        return value
    return raw  # a number or list where a string was expected: Open edX keeps the raw text


def _bool_value(value) -> bool:
    """xblock's ``Boolean.from_json``: strings are true only when "true" (any case)."""
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


def _xml_bool(raw: str) -> bool:
    return _bool_value(_json_or_raw(raw))


@lru_cache(maxsize=4096)
def _parse_date_text(text: str) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = None
        for fmt in ("%Y-%m-%dT%H:%M:%S.%f%z", "%B %d, %Y", "%b %d, %Y", "%Y/%m/%d", "%m/%d/%Y"):
            try:
                value = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        if value is None:
            raise ValueError(f"unreadable date {text!r}") from None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _date_value(value) -> datetime | None:
    """Open edX's ``Date.from_json``: ISO text (naive means UTC), or milliseconds since the epoch."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"unreadable date {value!r}")
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1000, UTC)
    if isinstance(value, str):
        return _parse_date_text(value)
    raise ValueError(f"unreadable date {value!r}")


def _clean(value: str) -> str:
    """``BlockUsageLocator.clean``: make a display name usable as a block id, as Open edX does."""
    return _UNDERSCORES_RE.sub("_", _CLEAN_RE.sub("_", value))


def _safe_rel(rel: str) -> bool:
    """A relative POSIX path that stays inside the export and out of ``drafts/``."""
    if not rel or rel[0] == "/" or "\\" in rel or "\x00" in rel:
        return False
    parts = rel.split("/")
    if parts[0] == "drafts":
        return False
    return all(part not in ("", ".", "..") for part in parts)


# --------------------------------------------------------------------------------------------- parsing


class _Node:
    """An element of an OLX file: only what the outline needs (tag, attributes, block children)."""

    __slots__ = ("tag", "attrs", "children", "line", "content")

    def __init__(self, tag: str, attrs: dict, line: int):
        self.tag = tag
        self.attrs = attrs
        self.children: list[_Node] = []
        self.line = line
        self.content = False  # has child elements or non-blank text (decides "pointer tag")


class _Stop(Exception):
    """Raised from an expat handler to stop parsing once the root element has been seen."""


class _Refused(Exception):
    """Raised from an expat handler for input that is refused (DTD, entities, too deep)."""


def _parse_xml(fileobj, rel: str, *, root_only: bool, max_bytes: int) -> _Node:
    """Parse an OLX file safely with expat; with ``root_only`` stop after the root's start tag.

    Container elements keep their element children as nodes; the content of leaf elements is
    scanned (to find where it ends) but not kept.
    """
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[_Node | None] = []
    found: list[_Node] = []
    containers = CONTAINER_TAGS

    def refuse_doctype(*_args):
        raise _Refused("DOCTYPE declarations are refused (no DTDs or entities in OLX)")

    def refuse_entity(*_args):
        raise _Refused("entity declarations are refused")

    def start(tag, attrs):
        if not stack:
            if found:
                raise _Refused("more than one root element")
            node = _Node(tag, attrs, parser.CurrentLineNumber)
            found.append(node)
            if root_only:
                raise _Stop
            stack.append(node)
            return
        if len(stack) >= MAX_XML_NESTING:
            raise _Refused(f"XML nested deeper than {MAX_XML_NESTING} elements")
        parent = stack[-1]
        if parent is None:
            stack.append(None)
        elif parent.tag in containers:
            node = _Node(tag, attrs, parser.CurrentLineNumber)
            parent.children.append(node)
            parent.content = True
            stack.append(node)
        else:
            parent.content = True
            stack.append(None)

    def end(_tag):
        stack.pop()

    def text(data):
        if stack:
            top = stack[-1]
            if top is not None and not top.content and not data.isspace():
                top.content = True

    parser.StartDoctypeDeclHandler = refuse_doctype
    parser.EntityDeclHandler = refuse_entity
    parser.UnparsedEntityDeclHandler = refuse_entity
    parser.ExternalEntityRefHandler = refuse_entity
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text

    total = 0
    try:
        while True:
            chunk = fileobj.read(65536)
            total += len(chunk)
            if total > max_bytes:
                raise CourseReadError(f"file is larger than the {max_bytes}-byte cap", rel, None)
            parser.Parse(chunk, not chunk)
            if not chunk:
                break
    except _Stop:
        pass
    except _Refused as exc:
        raise CourseReadError(f"unsafe XML: {exc}", rel, parser.CurrentLineNumber) from None
    except expat.ExpatError as exc:
        raise CourseReadError(f"malformed XML: {expat.ErrorString(exc.code)}", rel, exc.lineno) from None
    except (LookupError, ValueError) as exc:  # an encoding declaration Python cannot decode
        raise CourseReadError(f"unreadable XML: {exc}", rel, parser.CurrentLineNumber) from None
    if not found:
        raise CourseReadError("no root element", rel, None)
    return found[0]


# ---------------------------------------------------------------------------------------- export files


class _Export:
    """An export's root folder, read safely: relative paths only, nothing outside the root."""

    def __init__(self, root: str, source: str, max_file_bytes: int, keep=None):
        self.root = root
        self.real_root = os.path.realpath(root)
        self.source = source
        self.max_file_bytes = max_file_bytes
        self.keep = keep  # the temporary folder's owner, alive as long as this export is
        self._dirs: dict[str, bool] = {}

    def _inside(self, real: str) -> bool:
        return real == self.real_root or real.startswith(self.real_root + os.sep)

    def exists(self, rel: str) -> bool:
        return _safe_rel(rel) and os.path.isfile(os.path.join(self.root, rel))

    def open(self, rel: str):
        """Open ``rel`` for reading; raises FileNotFoundError or CourseReadError (unsafe, too big)."""
        if not _safe_rel(rel):
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

    def parse(self, rel: str, *, root_only: bool = False) -> _Node:
        with self.open(rel) as fileobj:
            return _parse_xml(fileobj, rel, root_only=root_only, max_bytes=self.max_file_bytes)

    def version(self) -> str:
        """The source version (see the module docstring for the rule)."""
        names: list[str] = []
        for folder, dirnames, filenames in os.walk(self.root):
            rel_folder = os.path.relpath(folder, self.root)
            if rel_folder == ".":
                dirnames[:] = [name for name in dirnames if name not in _SKIPPED_TOP_DIRS]
                prefix = ""
            else:
                prefix = rel_folder.replace(os.sep, "/") + "/"
            names.extend(prefix + name for name in filenames if name.lower().endswith(_VERSIONED_SUFFIXES))
        names.sort()
        digest = hashlib.sha256()
        for rel in names:
            digest.update(rel.encode("utf-8", "surrogateescape") + b"\x00")
            if not rel.lower().endswith(_CONTENT_SUFFIXES):
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
                for chunk in iter(lambda f=fileobj: f.read(1 << 20), b""):
                    size += len(chunk)
                    digest.update(chunk)
            digest.update(b"\x00" + str(size).encode() + b"\x00")
        return "sha256:" + digest.hexdigest()


class _TempTree:
    """Owns a temporary folder (an extracted tarball) and removes it when nothing uses it any more."""

    def __init__(self, path: str):
        self.path = path
        self._finalizer = weakref.finalize(self, shutil.rmtree, path, True)

    def cleanup(self) -> None:
        self._finalizer()


def _report(problem: CourseReadError, strict: bool, source: str) -> None:
    if strict:
        raise problem
    log.warning("OLX export %s: %s; skipped", source, problem)


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


def _extract(tarball: Path, strict: bool, max_file_bytes: int) -> _TempTree:
    """Extract the files the reader needs from ``tarball`` into a new temporary folder, safely.

    Only regular files and folders are accepted; members with absolute paths, ``..``, links or
    devices are refused (``strict``) or skipped with a warning. Only ``.xml``/``.json`` bytes are
    written; ``.html``/``.htm`` files are created empty (their presence counts, not their bytes).
    """
    tree = _TempTree(tempfile.mkdtemp(prefix="event-sinks-olx-"))
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
                    _report(CourseReadError(f"unsafe tar member {member.name!r}: {problem}", source, None),
                            strict, source)
                    continue
                rel = member.name.rstrip("/")
                while rel.startswith("./"):
                    rel = rel[2:]
                if member.isdir() or not rel.lower().endswith(_VERSIONED_SUFFIXES):
                    continue
                parts = rel.split("/")
                if any(part in ("", ".") for part in parts):
                    continue
                target = os.path.join(tree.path, *parts)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                if not rel.lower().endswith(_CONTENT_SUFFIXES):
                    open(target, "wb").close()
                    continue
                if member.size > max_file_bytes:
                    too_big = f"tar member {rel!r} is larger than the {max_file_bytes}-byte cap"
                    _report(CourseReadError(too_big, source, None), strict, source)
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


def _find_root(folder: str) -> str | None:
    """The folder holding course.xml: ``folder`` itself, or its single subfolder that has one."""
    if os.path.isfile(os.path.join(folder, "course.xml")):
        return folder
    found = [
        entry.path for entry in os.scandir(folder)
        if entry.is_dir(follow_symlinks=False) and os.path.isfile(os.path.join(entry.path, "course.xml"))
    ]
    return found[0] if len(found) == 1 else None


# ------------------------------------------------------------------------------------------- the walk


class _Item:
    """A block whose definition has been located, waiting in the walk to be emitted."""

    __slots__ = ("tag", "block_id", "key", "attrs", "nodes", "file", "chain")

    def __init__(self, tag, block_id, key, attrs, nodes, file, chain):
        self.tag = tag
        self.block_id = block_id
        self.key = key
        self.attrs = attrs
        self.nodes = nodes
        self.file = file
        self.chain = chain  # definition files from the course down to this block (cycle detection)


def _is_pointer(node: _Node) -> bool:
    """Open edX's ``is_pointer_tag``: only ``url_name`` (plus org/course on the course), no content."""
    if node.content:
        return False
    attrs = node.attrs
    if node.tag == "course":
        return len(attrs) == 3 and "url_name" in attrs and "org" in attrs and "course" in attrs
    return len(attrs) == 1 and "url_name" in attrs


class _Walk:
    """One walk of a course (each ``blocks()`` call makes a new one, so ids are claimed afresh)."""

    def __init__(self, reader: _Reader):
        self.reader = reader
        self.export = reader.export
        self.strict = reader.strict
        self.prefix = reader.prefix
        self.used: set[str] = set()

    def problem(self, message: str, path: str | None, line: int | None) -> None:
        _report(CourseReadError(message, path, line), self.strict, self.export.source)

    def load(self, rel: str, *, root_only: bool, ref: str, chain: tuple[str, ...]) -> _Node | None:
        if rel in chain:
            self.problem(f"pointer cycle: {ref} leads back to a file already on the path", rel, None)
            return None
        try:
            return self.export.parse(rel, root_only=root_only)
        except FileNotFoundError:
            self.problem(f"file not found (dangling pointer at {ref})", rel, None)
        except CourseReadError as exc:
            self.problem(f"{exc.message} (pointer at {ref})", exc.path, exc.line)
        except OSError as exc:
            self.problem(f"unreadable file: {exc.strerror or exc} (pointer at {ref})", rel, None)
        return None

    def claim(self, tag: str, block_id: str) -> bool:
        name = tag + "/" + block_id
        if name in self.used:
            return False
        self.used.add(name)
        return True

    def fallback_id(self, tag: str, parent_id: str, index: int, name: str | None) -> str:
        seed = f"{parent_id}/{tag}/{index}/{name or ''}"
        stem = f"{tag}_{name}_" if name else f"{tag}_"
        attempt = 0
        while True:
            digest = hashlib.sha1(seed.encode("utf-8"), usedforsecurity=False).hexdigest()[:12]
            block_id = stem + digest
            if _ID_RE.fullmatch(block_id) and self.claim(tag, block_id):
                return block_id
            if not _ID_RE.fullmatch(block_id):
                stem = f"{tag}_"
            attempt += 1
            seed = f"{parent_id}/{tag}/{index}/{name or ''}/{attempt}"

    def resolve(self, node: _Node, parent: _Item, index: int) -> _Item | None:
        """Locate a child block's definition and id; None (after reporting) when it cannot be read."""
        tag = node.tag
        attrs = node.attrs
        ref = f"{parent.file}:{node.line}"
        if not _ID_RE.fullmatch(tag):
            self.problem(f"<{tag}> is not a valid block type", parent.file, node.line)
            return None
        container = tag in CONTAINER_TAGS
        if _is_pointer(node):
            url_name = attrs["url_name"]
            if not _ID_RE.fullmatch(url_name):
                self.problem(f"<{tag} url_name={url_name!r}> is not a valid block id", parent.file, node.line)
                return None
            rel = f"{tag}/{url_name.replace(':', '/')}.xml"
            root = self.load(rel, root_only=not container, ref=ref, chain=parent.chain)
            if root is None:
                return None
            block_id = url_name
            if not self.claim(tag, block_id):
                log.warning("OLX export %s: %s: <%s url_name=%r> is used more than once; giving this use "
                            "its own id", self.export.source, ref, tag, url_name)
                block_id = self.fallback_id(tag, parent.block_id, index, url_name)
            merged = dict(root.attrs)
            merged.update(attrs)
            nodes = root.children if container else ()
            return _Item(tag, block_id, self.prefix + tag + "+block@" + block_id, merged, nodes, rel,
                         parent.chain + (rel,))

        block_id = self.inline_id(node, parent, index)
        if block_id is None:
            return None
        filename = attrs.get("filename") if container or tag == "problem" else None
        if filename is not None:
            rel = f"{tag}/{filename}.xml"
            if tag == "problem" and not self.export.exists(rel):
                for candidate in ("problems/" + rel[8:], rel[8:]):
                    if self.export.exists(candidate):
                        rel = candidate
                        break
            root = self.load(rel, root_only=not container, ref=ref, chain=parent.chain)
            if root is None:
                return None
            merged = dict(root.attrs)
            merged.update(attrs)
            nodes = root.children if container else ()
            return _Item(tag, block_id, self.prefix + tag + "+block@" + block_id, merged, nodes, rel,
                         parent.chain + (rel,))
        return _Item(tag, block_id, self.prefix + tag + "+block@" + block_id, attrs,
                     node.children if container else (), parent.file, parent.chain)

    def inline_id(self, node: _Node, parent: _Item, index: int) -> str | None:
        """Open edX's ``make_name_unique`` lookups, with the stable fallback described above."""
        attrs = node.attrs
        tag = node.tag
        name = None
        for key, clean in (("url_name", False), ("slug", False), ("name", True), ("display_name", True)):
            if key in attrs:
                name = _clean(attrs[key]) if clean else attrs[key]
                if not clean and name and not _ID_RE.fullmatch(name):
                    self.problem(f"<{tag} {key}={name!r}> is not a valid block id", parent.file, node.line)
                    return None
                break
        if name and _ID_RE.fullmatch(name) and self.claim(tag, name):
            return name
        if name and not _ID_RE.fullmatch(name):
            name = None
        return self.fallback_id(tag, parent.block_id, index, name)

    def children(self, item: _Item, depth: int) -> list[_Item]:
        resolved = []
        if not item.nodes:
            return resolved
        if depth >= self.reader.max_depth:
            self.problem(f"blocks nested deeper than {self.reader.max_depth} levels", item.file, None)
            return resolved
        skip = _NOT_BLOCKS.get(item.tag, _NO_SKIP)
        index = 0
        for node in item.nodes:
            tag = node.tag
            if tag in skip or ":" in tag or node.attrs.get("xblock-family") == "xblock_asides.v1":
                continue
            child = self.resolve(node, item, index)
            index += 1
            if child is not None:
                resolved.append(child)
        return resolved

    def run(self, root: _Item) -> Iterator[Block]:
        reader = self.reader
        settings = reader.settings
        # (item, parent key, depth, position, inherited (graded, start, due, staff_only, hide_from_toc))
        stack = [(root, None, 0, 0, (False, DEFAULT_START_DATE, None, False, False))]
        pop = stack.pop
        push = stack.append
        while stack:
            item, parent_key, depth, position, inherited = pop()
            own = settings(item)
            display_name, fmt, graded, start, due, staff_only, hide = own
            if graded is _UNSET:
                graded = inherited[0]
            if start is _UNSET:
                start = inherited[1]
            if due is _UNSET:
                due = inherited[2]
            if staff_only is _UNSET:
                staff_only = inherited[3]
            if hide is _UNSET:
                hide = inherited[4]
            kids = self.children(item, depth) if item.nodes else ()
            yield Block(
                item.key, item.tag, item.block_id, display_name, parent_key,
                tuple(kid.key for kid in kids) if kids else _EMPTY,
                depth, position, graded, fmt, start, due, staff_only, hide, None, None,
            )
            if kids:
                passed = (graded, start, due, staff_only, hide)
                key = item.key
                for i in range(len(kids) - 1, -1, -1):
                    push((kids[i], key, depth + 1, i, passed))


class _Reader:
    """What one ``read_olx`` call learned: where the export is, its keys, policy and settings rules."""

    def __init__(self, export: _Export, strict: bool, max_depth: int):
        self.export = export
        self.strict = strict
        self.max_depth = max_depth
        self.prefix = ""
        self.course_key = ""
        self.org = ""
        self.run_name = ""
        self.policy: dict = {}

    def load_policy(self) -> None:
        for rel in (f"policies/{self.run_name}/policy.json", f"policies/{self.run_name}.json"):
            try:
                with self.export.open(rel) as fileobj:
                    data = json.loads(fileobj.read().decode("utf-8"))
            except FileNotFoundError:
                continue
            except (CourseReadError, OSError, ValueError) as exc:
                problem = exc if isinstance(exc, CourseReadError) else CourseReadError(
                    f"unreadable policy: {exc}", rel, getattr(exc, "lineno", None))
                _report(problem, self.strict, self.export.source)
                continue
            if not isinstance(data, dict):
                _report(CourseReadError("policy is not a JSON object", rel, None), self.strict,
                        self.export.source)
                continue
            if data:
                self.policy = data
                return

    def settings(self, item: _Item) -> tuple:
        """The block's own settings: attributes, then policy.json over them; _UNSET where not set."""
        attrs = item.attrs
        source = self.export.source
        policy_id = self.run_name if item.tag == "course" else item.block_id
        policy = self.policy.get(item.tag + "/" + policy_id) if self.policy else None
        if not isinstance(policy, dict):
            policy = None
        values = []
        for name, from_xml, from_json in _FIELDS:
            if policy is not None and name in policy:
                raw, convert = policy[name], from_json
            elif name in attrs:
                raw, convert = attrs[name], from_xml
            else:
                values.append(None if from_json is _string_value else _UNSET)
                continue
            try:
                values.append(convert(raw))
            except ValueError as exc:
                _report(CourseReadError(f"<{item.tag}> {name}: {exc}; treated as not set", item.file, None),
                        self.strict, source)
                values.append(_UNSET)
        return tuple(values)

    def course_item(self, node: _Node, rel: str) -> _Item:
        return _Item("course", "course", self.prefix + "course+block@course", node.attrs, node.children, rel,
                     (rel,))


def _xml_date(raw: str):
    return _date_value(_json_or_raw(raw))


# name, converter for XML attribute text, converter for policy.json values
_FIELDS = (
    ("display_name", _xml_string, _string_value),
    ("format", _xml_string, _string_value),
    ("graded", _xml_bool, _bool_value),
    ("start", _xml_date, _date_value),
    ("due", _xml_date, _date_value),
    ("visible_to_staff_only", _xml_bool, _bool_value),
    ("hide_from_toc", _xml_bool, _bool_value),
)


def read_olx(
    path: str | os.PathLike,
    *,
    course_key: str | None = None,
    strict: bool = False,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Course:
    """Read the published course in an OLX export folder or ``.tar.gz`` (see the module docstring).

    ``course_key`` ('course-v1:ORG+COURSE+RUN') gives the course another key (an export imported
    into another run): block ids stay, org/course/run change. ``course.xml``, the course file and the
    policy are read now; the rest of the course is read lazily, file by file, each time ``blocks()``
    is iterated. A tarball is extracted (safely) into a temporary folder that lives as long as the
    returned Course or any walk of it.
    """
    source = os.fspath(path)
    fs_path = Path(source)
    keep = None
    if fs_path.is_dir():
        root = _find_root(source)
    elif fs_path.is_file() and fs_path.name.lower().endswith((".tar.gz", ".tgz", ".tar")):
        keep = _extract(fs_path, strict, max_file_bytes)
        root = _find_root(keep.path)
    else:
        raise CourseReadError("not an OLX export: expected a folder with course.xml or a .tar.gz", source,
                              None)
    if root is None:
        if keep is not None:
            keep.cleanup()
        raise CourseReadError("no course.xml at the top of the export (or in its single subfolder)", source,
                              None)
    export = _Export(root, source, max_file_bytes, keep)
    try:
        reader, course_node, course_rel = _open_course(export, course_key, strict, max_depth)
        version = export.version()
    except BaseException:
        if keep is not None:
            keep.cleanup()
        raise
    display_name = reader.settings(reader.course_item(course_node, course_rel))[0]

    def blocks() -> Iterator[Block]:
        walk = _Walk(reader)
        try:
            node = export.parse(course_rel)
        except (CourseReadError, OSError) as exc:
            raise CourseReadError(f"the course file changed or vanished: {exc}", course_rel, None) from None
        yield from walk.run(reader.course_item(node, course_rel))

    return Course(
        course_key=reader.course_key,
        org=reader.org,
        display_name=display_name,
        source_version=version,
        edited_on=None,
        blocks=blocks,
    )


def _open_course(export: _Export, course_key: str | None, strict: bool, max_depth: int):
    """Read course.xml (and the course file it points to); work out the course key and block prefix."""
    try:
        top = export.parse("course.xml")
    except FileNotFoundError:
        raise CourseReadError("course.xml is missing", "course.xml", None) from None
    if top.tag != "course":
        raise CourseReadError(f"the root element is <{top.tag}>, not <course>", "course.xml", top.line)
    attrs = top.attrs
    run = attrs.get("url_name") or attrs.get("slug")
    if not run:
        raise CourseReadError("<course> has no url_name (the course run)", "course.xml", top.line)
    org = attrs.get("org")
    if org is None:
        log.warning("OLX export %s: course.xml has no org; using 'edx' as Open edX does", export.source)
        org = "edx"
    number = attrs.get("course") or os.path.basename(export.root.rstrip(os.sep))
    try:
        locator = CourseLocator(org, number, run)
    except (InvalidKeyError, ValueError, TypeError) as exc:
        raise CourseReadError(f"course.xml does not give a valid course key: {exc}", "course.xml",
                              top.line) from None
    if course_key is not None:
        try:
            locator = CourseKey.from_string(course_key)
        except InvalidKeyError:
            locator = None
        if not isinstance(locator, CourseLocator) or locator.deprecated or locator.branch \
                or locator.version_guid:
            raise CourseReadError(f"invalid course key override {course_key!r}: expected "
                                  "'course-v1:ORG+COURSE+RUN'", export.source, None)
    reader = _Reader(export, strict, max_depth)
    reader.prefix = f"block-v1:{locator.org}+{locator.course}+{locator.run}+type@"
    reader.course_key = str(locator)
    reader.org = locator.org
    reader.run_name = run
    if _is_pointer(top):
        if not _ID_RE.fullmatch(run):
            raise CourseReadError(f"course url_name {run!r} is not a valid run", "course.xml", top.line)
        rel = f"course/{run.replace(':', '/')}.xml"
        try:
            node = export.parse(rel)
        except FileNotFoundError:
            raise CourseReadError("the course file course.xml points to is missing", rel, None) from None
        except OSError as exc:
            raise CourseReadError(f"unreadable course file: {exc}", rel, None) from None
    else:
        rel, node = "course.xml", top
    reader.load_policy()
    return reader, node, rel
