"""Read a published course from edx-platform's modulestore (inside the LMS/CMS only).

edx-platform is imported lazily, inside the functions, so this module imports anywhere; the
functions take an optional ``store`` (tests pass :mod:`event_sinks.testing.modulestore`'s stand-in).

What is read, and why:

* The **published** branch: ``store.branch_setting(ModuleStoreEnum.Branch.published_only, key)``
  around ``store.get_course(key, depth=None)``, which loads the whole course in one go. The branch
  setting is thread-local in the store, so it is held only for that call, never across the lazy walk
  (a suspended generator must not leave the thread reading published-only).
* Blocks in author order: one pre-order traversal of ``get_children()`` (which skips children that
  fail to load); ``get_items`` order is not guaranteed.
* Keys: equal to ``str(block.location.for_branch(None))`` (no branch, no version), built as the
  course's ``block-v1:ORG+COURSE+RUN+type@`` prefix + ``location.block_type`` + ``+block@`` +
  ``location.block_id``: one string concatenation per block instead of a locator copy (~15 us).
* Settings are read from the XBlocks as they are: the runtime has already applied inheritance
  (``graded``, ``start``, ``due``, ``visible_to_staff_only``, ``hide_from_toc``). ``display_name`` is
  the field's value (a block type's default name when the author set none).
* ``edited_on`` is the block's edit time in the published structure. ``published_on`` is, by Open
  edX's definition, the edit time of the block at the head of the published branch -- the very block
  read here -- so it is the same value; asking the XBlock for it would look the published head up
  again once per block.
* Source version: ``course.course_version``, the id of the published structure the course was read
  from (split sets it on every block it loads); it changes on every publish. Without it:
  ``course.subtree_edited_on`` (else ``edited_on``) in ISO format.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from opaque_keys import InvalidKeyError as OpaqueInvalidKeyError
from opaque_keys.edx.keys import CourseKey

from ..errors import InvalidKeyError
from .course import UTC, Block, Course
from .errors import CourseReadError

log = logging.getLogger(__name__)

#: ``xmodule.modulestore.ModuleStoreEnum.Branch.published_only``, for stores passed in when
#: edx-platform itself is not importable (the stand-in uses the same value).
PUBLISHED_ONLY = "published-only"

_OUTSIDE_PLATFORM = (
    "reading the modulestore only works inside edx-platform (the LMS or CMS): xmodule is not importable "
    "here. Outside Open edX read OLX exports instead (event_sinks.courses.read_olx), or pass store=..."
)
_EMPTY: tuple[str, ...] = ()


def _platform_store() -> Any:
    try:
        from xmodule.modulestore.django import modulestore
    except ImportError as exc:
        raise CourseReadError(_OUTSIDE_PLATFORM) from exc
    return modulestore()


def _published_only() -> str:
    try:
        from xmodule.modulestore import ModuleStoreEnum
    except ImportError:
        return PUBLISHED_ONLY
    return ModuleStoreEnum.Branch.published_only


def _course_key(course_key: Any) -> CourseKey:
    if isinstance(course_key, CourseKey):
        return course_key
    try:
        return CourseKey.from_string(str(course_key))
    except OpaqueInvalidKeyError:
        raise InvalidKeyError(
            f"not a course key: {course_key!r} (expected 'course-v1:ORG+COURSE+RUN')"
        ) from None


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is UTC:
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _key_prefix(key: CourseKey) -> str | None:
    """'block-v1:ORG+COURSE+RUN+type@' for the course, or None when keys do not have that shape."""
    usage: Any = key.make_usage_key("t", "b")
    sample = str(usage.for_branch(None))
    if sample.startswith("block-v1:") and sample.endswith("+type@t+block@b"):
        return sample[: -len("t+block@b")]
    return None


def _version(course: Any) -> str:
    version = getattr(course, "course_version", None)
    if version:
        return str(version)
    for name in ("subtree_edited_on", "edited_on"):
        value = _utc(getattr(course, name, None))
        if value is not None:
            return value.isoformat()
    log.warning("event_sinks: course %s has no structure version or edit time; it will always be dumped",
                course.location)
    return "unversioned:" + uuid.uuid4().hex


def read_version(course_key: Any, *, store: Any = None) -> str:
    """The published version of ``course_key`` without loading the course: ``get_course(depth=0)``.

    Split loads only the course root at depth 0 (one structure lookup, no block loading), and sets
    ``course_version`` on it: the published structure id, which changes on every publish. Read
    *before* the course itself, so a dump is never labelled with a version newer than its rows.
    """
    key = _course_key(course_key)
    if store is None:
        store = _platform_store()
    with store.branch_setting(_published_only(), key):
        course = store.get_course(key, depth=0)
    if course is None:
        raise CourseReadError(f"course {key} is not in the modulestore (published branch)")
    return _version(course)


def read_modulestore(course_key: Any, *, store: Any = None) -> Course:
    """Read the published course ``course_key`` from the modulestore (see the module docstring).

    The course is loaded now (published branch, whole tree); ``blocks()`` walks that loaded course
    lazily and can be called again. Raises CourseReadError when the course does not exist or when
    no store is given outside edx-platform.
    """
    key = _course_key(course_key)
    if store is None:
        store = _platform_store()
    with store.branch_setting(_published_only(), key):
        course = store.get_course(key, depth=None)
    if course is None:
        raise CourseReadError(f"course {key} is not in the modulestore (published branch)")
    location = course.location
    course_locator = location.course_key.for_branch(None)
    prefix = _key_prefix(course_locator)
    display_name = getattr(course, "display_name", None)
    edited = getattr(course, "subtree_edited_on", None) or getattr(course, "edited_on", None)

    def blocks() -> Iterator[Block]:
        return _walk(course, prefix)

    return Course(
        course_key=str(course_locator),
        org=course_locator.org,
        display_name=display_name,
        source_version=_version(course),
        edited_on=_utc(edited),
        blocks=blocks,
    )


def _walk(course: Any, prefix: str | None) -> Iterator[Block]:
    """Pre-order walk of a loaded course; each key is made once, when its parent is visited.

    The hot loop of a dump: the settings are read as plain attributes (what every XBlock has), with
    ``getattr`` defaults only for a block that lacks one.
    """
    if prefix is None:
        def key_of(block: Any) -> str:
            return str(block.location.for_branch(None))
    else:
        def key_of(block: Any) -> str:
            location = block.location
            return f"{prefix}{location.block_type}+block@{location.block_id}"

    # (block, its key, parent key, depth, position)
    stack: list[tuple[Any, str, str | None, int, int]] = [(course, key_of(course), None, 0, 0)]
    pop = stack.pop
    push = stack.append
    utc = UTC
    empty = _EMPTY
    make = Block
    while stack:
        block, key, parent, depth, position = pop()
        location = block.location
        kids = block.get_children() if block.has_children else empty
        kid_keys = tuple([key_of(kid) for kid in kids]) if kids else empty
        try:
            display_name = block.display_name
            graded = block.graded
            fmt = block.format
            start = block.start
            due = block.due
            staff_only = block.visible_to_staff_only
            hide = block.hide_from_toc
            edited_on = block.edited_on
        except AttributeError:
            display_name = getattr(block, "display_name", None)
            graded = getattr(block, "graded", False)
            fmt = getattr(block, "format", None)
            start = getattr(block, "start", None)
            due = getattr(block, "due", None)
            staff_only = getattr(block, "visible_to_staff_only", False)
            hide = getattr(block, "hide_from_toc", False)
            edited_on = getattr(block, "edited_on", None)
        if start is not None and start.tzinfo is not utc:
            start = _utc(start)
        if due is not None and due.tzinfo is not utc:
            due = _utc(due)
        if edited_on is not None and edited_on.tzinfo is not utc:
            edited_on = _utc(edited_on)
        yield make(
            key, location.block_type, location.block_id, display_name, parent, kid_keys, depth, position,
            True if graded else False, fmt, start, due, True if staff_only else False, True if hide else False,
            edited_on, edited_on,
        )
        if kids:
            depth += 1
            for i in range(len(kids) - 1, -1, -1):
                push((kids[i], kid_keys[i], key, depth, i))


def list_course_keys(store: Any = None) -> Iterator[str]:
    """Every course key in the modulestore, from the light ``get_course_summaries()`` when available.

    (``get_courses()``, the fallback, loads every course root.) Libraries are not courses and are
    not listed.
    """
    if store is None:
        store = _platform_store()
    summaries = getattr(store, "get_course_summaries", None)
    items = summaries() if summaries is not None else store.get_courses()
    return (_key_text(item) for item in items)


def _key_text(item: Any) -> str:
    key = getattr(item, "id", None)
    if key is None:
        key = item.location.course_key
    return str(key.for_branch(None)) if getattr(key, "branch", None) else str(key)
