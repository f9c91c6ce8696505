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
* Each block is read once. A pointer file is the one definition of its block, as in Open edX's import,
  where every pointer to ``TYPE/URL_NAME.xml`` names the one location ``TYPE/URL_NAME``: a second
  pointer to a file read already (one not on its own path: that is a cycle) is left out of its
  parent's children, with a warning naming the block and both parents, in both modes. The block is
  placed under the first parent the walk reaches that lists it, parents in author pre-order -- the
  rule the modulestore reader applies to a block with two parents. Two inline definitions with one
  url_name, or a ``<course>`` nested in the tree, are two blocks: the later one gets the fallback id
  below (Open edX renames it too).

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
It is computed before anything else is read, and -- for a folder, which can change while it is read
-- again at the end of every complete walk of ``blocks()``: when it differs, the walk ends with a
CourseReadError instead of finishing, since its blocks may mix two versions labelled with one (a dump
then fails and the previous one stays visible; the next dump reads the new version). A walk left
before its end checks nothing. An extracted tarball is the reader's own copy and is not checked.

Problems (a dangling pointer, malformed XML, an unsafe path, a file over the size cap, a value that
cannot be read: a date out of Python's range, JSON nested too deeply, text holding lone surrogates)
are reported with the file and line -- and the attribute, or the policy file and ``"TYPE/ID" NAME``:
by default logged as a WARNING on ``event_sinks.courses.olx`` and the broken block skipped with its
subtree (a value that cannot be read is treated as not set; lone surrogates become U+FFFD); with
``strict=True`` raised as :class:`CourseReadError`. Problems
inside the course walk surface while iterating ``blocks()``. XML is parsed with the standard library's
expat: any DOCTYPE (and so any entity declaration) is refused, no external resource is ever loaded,
files are read only from inside the export (no ``..``, absolute paths or symlinks leading outside), and
file size and nesting depth are capped.

Limits (:mod:`event_sinks.courses.limits`, shared with the modulestore reader): blocks nested deeper
than ``max_depth`` (``MAX_DEPTH`` by default) are a problem; a file parsed more than
``MAX_PARSES_PER_FILE`` times in one walk (``filename=`` attributes or links naming it) is a problem at
each further reference; more than ``MAX_CHILDREN`` children of one block or more than ``MAX_BLOCKS``
blocks stop the walk with a CourseReadError in both modes, naming the file and line where it stopped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from opaque_keys import InvalidKeyError
from opaque_keys.edx.keys import CourseKey
from opaque_keys.edx.locator import CourseLocator

from ..course import COURSE_SETTINGS, Block, Course, WalkExtras
from ..errors import CourseReadError
from .archive import extract
from .export import DEFAULT_MAX_FILE_BYTES, Export, find_root, is_archive
from .pointers import course_item, is_pointer
from .policy import COURSE_FIELDS, CourseReader
from .safexml import Node
from .tags import COMPLETION_MODES
from .values import ID_RE
from .walk import DEFAULT_MAX_DEPTH, Walk

log = logging.getLogger("event_sinks.courses.olx")

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
    return read_olx_kept(path, course_key=course_key, strict=strict, max_file_bytes=max_file_bytes,
                         max_depth=max_depth)[0]


def read_olx_kept(
    path: str | os.PathLike,
    *,
    course_key: str | None = None,
    strict: bool = False,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> tuple[Course, int]:
    """:func:`read_olx`, and the bytes the Course keeps on disk while it lives (its extracted tarball;
    0 for a folder): what a caller holding on to the Course holds on to."""
    source = os.fspath(path)
    fs_path = Path(source)
    keep = None
    if fs_path.is_dir():
        root = find_root(source)
    elif fs_path.is_file() and is_archive(fs_path):
        keep = extract(fs_path, strict, max_file_bytes)
        root = find_root(keep.path)
    else:
        raise CourseReadError("not an OLX export: expected a folder with course.xml, or a .tar.gz, .tgz or .tar "
                              "of one", source, None)
    if root is None:
        if keep is not None:
            keep.cleanup()
        raise CourseReadError("no course.xml at the top of the export (or in its single subfolder)", source,
                              None)
    export = Export(root, source, max_file_bytes, keep)
    try:
        # The version first: whatever is read after it and changes is caught by the check after a walk.
        version = export.version()
        reader, course_node, course_rel = _open_course(export, course_key, strict, max_depth)
        root_item = course_item(reader, course_node, course_rel)
        display_name = reader.settings(root_item)[0]
        settings = _course_settings(reader, root_item)
    except BaseException:
        if keep is not None:
            keep.cleanup()
        raise

    extras = WalkExtras(completion_modes=dict(COMPLETION_MODES))

    def blocks() -> Iterator[Block]:
        walk = Walk(reader)
        walk.extras = extras
        try:
            node = export.parse(course_rel)
        except (CourseReadError, OSError) as exc:
            raise CourseReadError(f"the course file changed or vanished: {exc}", course_rel, None) from None
        yield from walk.run(course_item(reader, node, course_rel))
        if keep is None:  # a folder can change under the reader (an extracted tarball is the reader's own)
            after = export.version()
            if after != version:
                raise CourseReadError(
                    f"the export changed while it was read (version {version} when the read began, {after} "
                    "after this walk): its blocks may mix two versions, so none is given; read it again",
                    source, None)

    course = Course(
        course_key=reader.course_key,
        org=reader.org,
        display_name=display_name,
        source_version=version,
        edited_on=None,
        blocks=blocks,
        settings=settings,
        extras=extras,
    )
    return course, 0 if keep is None else keep.size


def _course_settings(reader: CourseReader, root: Any) -> dict[str, Any]:
    """The course root's settings (attributes, then the policy's ``course/RUN``), the grading policy's
    lowest cutoff and the ``about/effort`` page; Open edX's defaults for what the export does not set."""
    settings = dict(COURSE_SETTINGS)
    settings.update(reader.own_values(root, COURSE_FIELDS))
    lowest = reader.lowest_passing_grade()
    if lowest is not None:
        settings["lowest_passing_grade"] = lowest
    settings["effort"] = reader.about_text("effort")
    return settings


def _open_course(export: Export, course_key: str | None, strict: bool,
                 max_depth: int) -> tuple[CourseReader, Node, str]:
    """Read course.xml (and the course file it points to); work out the course key and block prefix."""
    try:
        top = export.parse("course.xml")
    except FileNotFoundError:
        raise CourseReadError("course.xml is missing", "course.xml", None) from None
    if top.tag != "course":
        raise CourseReadError(f"the root element is <{top.tag}>, not <course>", "course.xml", top.line)
    attrs = top.attrs
    run: str = attrs.get("url_name") or attrs.get("slug") or ""
    if not run:
        raise CourseReadError("<course> has no url_name (the course run)", "course.xml", top.line)
    org = attrs.get("org")
    if org is None:
        log.warning("OLX export %s: course.xml has no org; using 'edx' as Open edX does", export.source)
        org = "edx"
    number = attrs.get("course") or os.path.basename(export.root.rstrip(os.sep))
    locator: Any
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
    reader = CourseReader(export, strict, max_depth)
    reader.prefix = f"block-v1:{locator.org}+{locator.course}+{locator.run}+type@"
    reader.course_key = str(locator)
    reader.org = locator.org
    reader.run_name = run
    if is_pointer(top):
        if not ID_RE.fullmatch(run):
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
