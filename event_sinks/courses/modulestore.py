"""Read a published course from edx-platform's modulestore (inside the LMS/CMS only).

edx-platform is imported lazily, inside the functions, so this module imports anywhere; the
functions take an optional ``store`` (tests pass :mod:`event_sinks.testing.modulestore`'s stand-in).

What is read, and why:

* The **published** branch: ``store.branch_setting(ModuleStoreEnum.Branch.published_only, key)``
  around ``store.get_course(key, depth=None)``, which loads the whole course in one go, and the
  detached blocks' ``get_items`` (below). The branch setting is thread-local in the store, so it is
  held only for those calls, never across the lazy walk (a suspended generator must not leave the
  thread reading published-only).
* Blocks in author order: one pre-order traversal; ``get_items`` order is not guaranteed. Each
  container's child keys are its ``children`` field (the usage keys the author wrote), each loaded
  with ``get_child()``; a key the store cannot find is skipped, as ``get_children()`` does.
* Memory: XBlock caches every child it hands out on its parent (``_child_cache``, xblock/core.py),
  and the course root lives as long as the Course, so a plain walk would end holding every block.
  The walk calls ``clear_child_cache()`` on each container once its children are taken: a visited
  block is freed when the walk moves on, and memory stays O(depth x siblings). (A walk made inside a
  bulk operation still holds everything: split then caches each loaded block on the bulk record.)
  Another ``blocks()`` walk loads the children again.
* A block that fails to load comes back as an ErrorBlock (xmodule/error_block.py), whose location
  is ``type@error+block@<sha1 of its contents>``. It is emitted under the key its parent holds --
  the key tracking events carry -- with the type and id of that key, no name, no children, no edit
  time and its parent's inherited settings (what the runtime gives a block that sets none); a
  warning names it. A course root that fails to load is a CourseReadError.
* Each block is read once. Corrupt structures exist in the field: a block listed by two parents (a
  DAG; split keeps one block that both ``children`` lists name, and the LMS's block structures visit
  it once) is placed under the first parent the walk reaches that lists it -- parents in author
  pre-order -- and left out of the other parents' children, with a warning naming the block and both
  parents; a child that is its parent or one of its ancestors (a cycle, which once made a walk insert
  forever) is a CourseReadError naming the course and the block. The walk also stops with a
  CourseReadError past the limits of :mod:`.limits`: blocks nested deeper than ``MAX_DEPTH``, more
  than ``MAX_BLOCKS`` blocks, more than ``MAX_CHILDREN`` children of one block. Memory: the blocks
  placed so far, a slot per block keyed by the ids the loaded structure holds already and one key
  string per container (about 75 bytes per block), on top of the walk's O(depth x siblings).
* Split computes the root's ``subtree_edited_on`` by recursion; in a structure with a cycle that
  raises RecursionError, and the root's own ``edited_on`` is used instead (with a warning).
* Text that cannot be stored (a ``display_name`` or ``format`` holding lone surrogates) has each
  surrogate replaced by U+FFFD, with a warning naming the block.
* Detached blocks (``DETACHED_XBLOCK_TYPES``: static tabs, about and course-info pages) are in the
  course but not in its tree: read with ``get_items(course_key, qualifiers={"category": type})``
  together with the course, emitted after the tree with ``detached=True``, no parent, depth 0 and
  position 0, by type and id (one also listed in the tree is read there, once).
* Keys: equal to ``str(block.location.for_branch(None))`` (no branch, no version), built as the
  course's ``block-v1:ORG+COURSE+RUN+type@`` prefix + the usage key's ``block_type`` + ``+block@`` +
  ``block_id``: one string concatenation per block instead of a locator copy (~15 us).
* Settings are read from the XBlocks as they are: the runtime has already applied inheritance
  (``graded``, ``start``, ``due``, ``visible_to_staff_only``, ``hide_from_toc``). ``display_name`` is
  the field's value (a block class's default name when the author set none, e.g. "Text" for html).
* ``edited_on`` is the block's edit time in the published structure. ``published_on`` is, by Open
  edX's definition, the edit time of the block at the head of the published branch -- the very block
  read here -- so it is the same value; asking the XBlock for it would look the published head up
  again once per block.
* Course settings (``Course.settings``): the course root's fields CourseOverview copies (``start``,
  ``end``, ``enrollment_start``/``_end``, ``advertised_start``, ``announcement``, ``self_paced``,
  ``invitation_only``, ``max_student_enrollments_allowed``, ``enable_proctored_exams``,
  ``entrance_exam_enabled``, ``language``, and the ``lowest_passing_grade`` property), and ``effort``:
  the ``data`` of the course's ``about`` block ``effort``, as ``CourseDetails.fetch_about_attribute``
  reads it. A field the root lacks keeps Open edX's default (:data:`COURSE_SETTINGS`).
* Walk extras (``Course.extras``): each block type's ``completion_mode``, read once per type from the
  first block of it (a class attribute: ``getattr(block, "completion_mode", "")``, as
  platform-plugin-aspects reads it), and each video's ``start_time``/``end_time`` (timedeltas) in seconds.
  Tags: where the platform has content tagging (openedx-learning's ``openedx_tagging``), the tags of
  the course's blocks in one query when the course is read -- the ``ObjectTag`` rows whose object id
  is the course key or starts with its ``block-v1:`` prefix, as content_tagging's
  ``get_all_object_tags`` selects them -- each block's tag ids with their ancestors' (a taxonomy is at
  most three levels deep), as platform-plugin-aspects' ``get_tags_for_block`` lists them. Without
  tagging, or when the query fails (logged), no block has tags.
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

from ..conf import get_settings
from ..errors import InvalidKeyError
from . import limits
from .course import (
    COURSE_SETTINGS,
    LONE_SURROGATE,
    UTC,
    Block,
    Course,
    WalkExtras,
    has_lone_surrogate,
    replace_lone_surrogates,
)
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

#: The block types Open edX tags "detached" (xmodule/html_block.py: AboutBlock, StaticTabBlock,
#: CourseInfoBlock), for when edx-platform's own list is not importable
#: (``DETACHED_XBLOCK_TYPES``, xmodule/modulestore/store_utilities.py).
DETACHED_BLOCK_TYPES = frozenset({"about", "course_info", "static_tab"})


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


def _detached_types() -> list[str]:
    try:
        from xmodule.modulestore.store_utilities import DETACHED_XBLOCK_TYPES
    except ImportError:
        return sorted(DETACHED_BLOCK_TYPES)
    return sorted(DETACHED_XBLOCK_TYPES)


def _detached_blocks(store: Any, key: CourseKey) -> list[Any]:
    """The course's detached blocks by type and id (none from a store without ``get_items``)."""
    get_items = getattr(store, "get_items", None)
    if get_items is None:
        return []
    found: list[Any] = []
    for category in _detached_types():
        found.extend(sorted(get_items(key, qualifiers={"category": category}), key=lambda b: b.location.block_id))
    return found


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


def _edited(course: Any) -> datetime | None:
    """The course root's ``subtree_edited_on``, else its ``edited_on``.

    Split computes ``subtree_edited_on`` by recursion over the structure, so a structure with a cycle
    raises RecursionError there: the root's own edit time is taken instead, with a warning.
    """
    try:
        value = getattr(course, "subtree_edited_on", None)
    except RecursionError:
        log.warning("event_sinks: course %s: the store cannot compute its subtree edit time (RecursionError: "
                    "its structure holds a cycle); using the course root's own edit time",
                    course.location.course_key)
        value = None
    return value or getattr(course, "edited_on", None)


def _version(course: Any) -> str:
    version = getattr(course, "course_version", None)
    if version:
        return str(version)
    value = _utc(_edited(course))
    if value is not None:
        return value.isoformat()
    log.warning("event_sinks: course %s has no structure version or edit time; it will always be dumped",
                course.location)
    return "unversioned:" + uuid.uuid4().hex


def _course_root(course_key: Any, store: Any) -> Any:
    """The published course root alone (``get_course(depth=0)``); raises CourseReadError when absent."""
    key = _course_key(course_key)
    if store is None:
        store = _platform_store()
    with store.branch_setting(_published_only(), key):
        course = store.get_course(key, depth=0)
    if course is None:
        raise CourseReadError(f"course {key} is not in the modulestore (published branch)")
    return course


def read_version(course_key: Any, *, store: Any = None) -> str:
    """The published version of ``course_key`` without loading the course: ``get_course(depth=0)``.

    Split loads only the course root at depth 0 (one structure lookup, no block loading), and sets
    ``course_version`` on it: the published structure id, which changes on every publish. Read
    *before* the course itself, so a dump is never labelled with a version newer than its rows.
    """
    return _version(_course_root(course_key, store))


def read_edited_on(course_key: Any, *, store: Any = None) -> datetime | None:
    """When the published course was last edited (its root's ``subtree_edited_on``), from the root alone."""
    return _utc(_edited(_course_root(course_key, store)))


def read_modulestore(course_key: Any, *, store: Any = None) -> Course:
    """Read the published course ``course_key`` from the modulestore (see the module docstring).

    The course is loaded now (published branch, whole tree, detached blocks); ``blocks()`` walks
    that loaded course lazily and can be called again. Raises CourseReadError when the course does
    not exist or its root fails to load, or when no store is given outside edx-platform.
    """
    key = _course_key(course_key)
    if store is None:
        store = _platform_store()
    with store.branch_setting(_published_only(), key):
        course = store.get_course(key, depth=None)
        detached = _detached_blocks(store, key) if course is not None else []
    if course is None:
        raise CourseReadError(f"course {key} is not in the modulestore (published branch)")
    location = course.location
    if location.block_type == "error":
        raise CourseReadError(f"the root of course {key} fails to load in the modulestore: "
                              f"{getattr(course, 'error_msg', None) or 'no error message'}")
    course_locator = location.course_key.for_branch(None)
    prefix = _key_prefix(course_locator)
    display_name = getattr(course, "display_name", None)
    if isinstance(display_name, str) and has_lone_surrogate(display_name):
        display_name = _text(display_name, "display_name", str(course_locator))
    edited = _edited(course)
    extras = WalkExtras(tags=read_tags(str(course_locator)) if _tags_wanted() else {})

    def blocks() -> Iterator[Block]:
        return _walk(course, prefix, detached, str(course_locator), extras)

    return Course(
        course_key=str(course_locator),
        org=course_locator.org,
        display_name=display_name,
        source_version=_version(course),
        edited_on=_utc(edited),
        blocks=blocks,
        settings=_course_settings(course, detached),
        extras=extras,
    )


_DATE_SETTINGS = ("start", "end", "enrollment_start", "enrollment_end", "announcement")


def _course_settings(course: Any, detached: list[Any]) -> dict[str, Any]:
    """The course root's settings CourseOverview copies, and its ``about/effort`` page (see the module docstring)."""
    settings = dict(COURSE_SETTINGS)
    for name in settings:
        if name == "effort":
            continue
        try:
            value = getattr(course, name)
        except AttributeError:
            continue
        except Exception as exc:  # a property of the platform's (lowest_passing_grade) failing on bad data
            log.warning("event_sinks: course %s: its %s cannot be read (%s: %s); Open edX's default is used",
                        course.location.course_key, name, type(exc).__name__, exc)
            continue
        if name in _DATE_SETTINGS:
            value = _utc(value) if isinstance(value, datetime) else None
        elif name == "lowest_passing_grade":
            try:
                value = None if value is None else float(value)
            except (TypeError, ValueError):
                log.warning("event_sinks: course %s: its lowest_passing_grade %r is not a number; left out",
                            course.location.course_key, value)
                value = None
        settings[name] = value
    for block in detached:
        location = block.location
        if location.block_type == "about" and location.block_id == "effort":
            data = getattr(block, "data", None)
            settings["effort"] = data.strip() or None if isinstance(data, str) else None
    return settings


def _tags_wanted() -> bool:
    """Whether a read fetches the course's tags: only for the Aspects compatibility (a query per course read)."""
    try:
        return bool(get_settings().aspects["ENABLED"])
    except Exception:  # settings that do not load are reported where they are used, not by a course read
        return False


def read_tags(course_key: str) -> dict[str, list[int]]:
    """Tag ids by object id (usage keys, and the course key) of the course's tagged content; {} without tagging."""
    prefix = course_key.replace("course-v1:", "block-v1:", 1)
    return _tags(course_key, lambda q: q(object_id__startswith=prefix) | q(object_id=course_key))


def read_course_tags(course_keys: list[str]) -> dict[str, list[int]]:
    """Tag ids of the courses themselves (CourseOverview's ``tags`` in Aspects), by course key; {} without tagging."""
    return _tags(", ".join(course_keys[:3]), lambda q: q(object_id__in=course_keys)) if course_keys else {}


def _tags(what: str, where: Any) -> dict[str, list[int]]:
    try:
        from django.db.models import Q
        from openedx_tagging.core.tagging.models import ObjectTag  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return {}
    found: dict[str, set[int]] = {}
    course_key = what
    try:
        rows = ObjectTag.objects.filter(where(Q), tag__isnull=False).values_list(
            "object_id", "tag_id", "tag__parent_id", "tag__parent__parent_id")
        for object_id, *ids in rows:
            found.setdefault(str(object_id), set()).update(int(i) for i in ids if i is not None)
    except Exception as exc:  # the tags are an extra: the course is read without them
        log.warning("event_sinks: course %s: its content tags cannot be read (%s: %s); its blocks are dumped "
                    "without tags", course_key, type(exc).__name__, exc)
        return {}
    return {object_id: sorted(ids) for object_id, ids in found.items()}


def _extras(block: Any, block_type: str, key: str, modes: dict[str, str], videos: dict[str, tuple[float, float]]
            ) -> None:
    """Record the type's completion mode (once) and a video's play window; a value that cannot be read is
    left out with a warning (they are extras: the block is dumped whatever they hold)."""
    try:
        if block_type not in modes:
            modes[block_type] = str(getattr(block, "completion_mode", "") or "")
        if block_type == "video":
            window = (_seconds(getattr(block, "start_time", None)), _seconds(getattr(block, "end_time", None)))
            if window != (0.0, 0.0):  # kept only when set: the memory of a walk stays the course's shape
                videos[key] = window
    except Exception as exc:
        modes.setdefault(block_type, "")
        log.warning("event_sinks: block %s: its completion mode or play window cannot be read (%s: %s); left out",
                    key, type(exc).__name__, exc)


def _seconds(value: Any) -> float:
    """A video's ``RelativeTime`` value (a timedelta) in seconds; 0.0 when unset or unreadable."""
    seconds = getattr(value, "total_seconds", None)
    return float(seconds()) if seconds is not None else 0.0


def _text(value: str, field: str, key: str) -> str:
    """A text field holding lone surrogates, which cannot be stored: each replaced by U+FFFD, with a warning."""
    log.warning("event_sinks: the %s of block %s holds lone surrogates (not text, not encodable as UTF-8); "
                "each is replaced by U+FFFD", field, key)
    return replace_lone_surrogates(value)


def _reached_again(course_key: str, parent: str, child: str, first: str | None, path: list[str]) -> None:
    """A child already placed in the walk (under ``first``): a cycle (it is ``parent`` or an ancestor)
    is a CourseReadError; a block with a second parent (a DAG) stays where it was placed, with a warning."""
    if child in path:
        raise CourseReadError(
            f"course {course_key}: block {parent} lists {child}, "
            f"{'itself' if child == parent else 'one of its ancestors'}, as a child: the course structure "
            f"holds a cycle; the walk stopped at {parent}")
    if first == parent:
        log.warning("event_sinks: course %s: block %s lists %s more than once; it is read once, at its first "
                    "place", course_key, parent, child)
    else:
        log.warning("event_sinks: course %s: block %s lists %s, which %s lists too (a block with two parents); "
                    "it is read once, under %s", course_key, parent, child, first, first)


def _walk(course: Any, prefix: str | None, detached: list[Any], course_key: str,
          extras: WalkExtras | None = None) -> Iterator[Block]:
    """Pre-order walk of a loaded course, then its detached blocks; each key is made once, from the
    usage key its parent holds, when the parent is visited.

    Each block is read once: a child is placed under the first parent the walk reaches that lists it
    (parents in author pre-order), and the other parents' lists leave it out (see :func:`_reached_again`).
    The walk stops with a CourseReadError at a cycle and past :mod:`.limits` (depth, blocks, children).

    The hot loop of a dump: the settings are read as plain attributes (what every XBlock has), with
    ``getattr`` defaults only for a block that lacks one.
    """
    if prefix is None:
        def key_of(usage: Any) -> str:
            return str(usage.for_branch(None))
    else:
        def key_of(usage: Any) -> str:
            return f"{prefix}{usage.block_type}+block@{usage.block_id}"

    max_depth, max_blocks, max_children = limits.MAX_DEPTH, limits.MAX_BLOCKS, limits.MAX_CHILDREN
    root = course.location
    root_key = key_of(root)
    # Every block placed so far, by type and id -> the key of the parent it is placed under (None: the
    # root, detached blocks). By id, not key: the ids are the strings the loaded structure holds already,
    # so the set costs its slots (and one key per container), not a key string per block.
    placed: dict[str, dict[str, str | None]] = {root.block_type: {root.block_id: None}}
    path: list[str] = []  # the keys from the root down to the block being visited, by depth
    # (block, the usage key its parent holds, its key, parent Block, depth, position)
    stack: list[tuple[Any, Any, str, Block | None, int, int]] = [(course, root, root_key, None, 0, 0)]
    pop = stack.pop
    push = stack.append
    utc = UTC
    empty = _EMPTY
    make = Block
    surrogate = LONE_SURROGATE.search
    modes = extras.completion_modes if extras is not None else {}
    videos = extras.videos if extras is not None else {}
    count = 0
    while stack:
        block, usage, key, parent, depth, position = pop()
        count += 1
        if count > max_blocks:
            raise CourseReadError(f"course {course_key} has more than {max_blocks} blocks; the walk stopped at {key}")
        del path[depth:]
        path.append(key)
        if block.has_children:
            children = block.children
            if children and depth >= max_depth:
                raise CourseReadError(f"course {course_key}: blocks nested deeper than {max_depth} levels below the "
                                      f"course root; the walk stopped at {key}, at depth {depth}")
            get_child = block.get_child
            kids: list[Any] = []
            usages: list[Any] = []
            keys: list[str] = []
            for child in children:
                kid_key = key_of(child)
                child_id = child.block_id
                ids = placed.get(child.block_type)
                if ids is None:
                    ids = placed[child.block_type] = {}
                elif child_id in ids:
                    _reached_again(course_key, key, kid_key, ids[child_id], path)
                    continue
                kid = get_child(child)
                if kid is None:
                    continue
                if len(kids) == max_children:
                    raise CourseReadError(f"course {course_key}: block {key} has more than {max_children} children "
                                          "(the outline numbers them in UInt16 ordinals); the walk stopped there")
                ids[child_id] = key
                kids.append(kid)
                usages.append(child)
                keys.append(kid_key)
            kid_keys = tuple(keys)
            release = getattr(block, "clear_child_cache", None)
            if release is not None:
                release()  # the children are on the stack now: let the cache go
        else:
            kids = usages = []
            kid_keys = empty
        if parent is not None and block.location.block_type == "error" and usage.block_type != "error":
            log.warning("event_sinks: block %s failed to load in the modulestore (an ErrorBlock); dumped under "
                        "its key with its parent's inherited settings: %s", key, getattr(block, "error_msg", None))
            yield make(
                key, usage.block_type, usage.block_id, None, parent.usage_key, kid_keys, depth, position,
                parent.graded, None, parent.start, parent.due, parent.visible_to_staff_only, parent.hide_from_toc,
                None, None,
            )
            continue
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
        if display_name.__class__ is str and not display_name.isascii() and surrogate(display_name):
            display_name = _text(display_name, "display_name", key)
        if fmt.__class__ is str and not fmt.isascii() and surrogate(fmt):
            fmt = _text(fmt, "format", key)
        if start is not None and start.tzinfo is not utc:
            start = _utc(start)
        if due is not None and due.tzinfo is not utc:
            due = _utc(due)
        if edited_on is not None and edited_on.tzinfo is not utc:
            edited_on = _utc(edited_on)
        block_type = usage.block_type
        if block_type not in modes or block_type == "video":
            _extras(block, block_type, key, modes, videos)
        made = make(
            key, block_type, usage.block_id, display_name, None if parent is None else parent.usage_key,
            kid_keys, depth, position, True if graded else False, fmt, start, due, True if staff_only else False,
            True if hide else False, edited_on, edited_on,
        )
        yield made
        if kids:
            depth += 1
            for i in range(len(kids) - 1, -1, -1):
                push((kids[i], usages[i], kid_keys[i], made, depth, i))
    for block in detached:
        location = block.location
        if location.block_type == "error":
            log.warning("event_sinks: a detached block of course %s failed to load in the modulestore; "
                        "it is left out: %s", course.location.course_key, getattr(block, "error_msg", None))
            continue
        key = key_of(location)
        ids = placed.setdefault(location.block_type, {})
        if location.block_id in ids:
            log.warning("event_sinks: course %s: detached block %s is in the course tree too (under %s); it is "
                        "read once, there", course_key, key, ids[location.block_id])
            continue
        count += 1
        if count > max_blocks:
            raise CourseReadError(f"course {course_key} has more than {max_blocks} blocks; the walk stopped at {key}")
        ids[location.block_id] = None
        edited_on = _utc(getattr(block, "edited_on", None))
        name = getattr(block, "display_name", None)
        if isinstance(name, str) and has_lone_surrogate(name):
            name = _text(name, "display_name", key)
        yield make(
            key, location.block_type, location.block_id, name, None,
            empty, 0, 0, bool(getattr(block, "graded", False)), getattr(block, "format", None),
            _utc(getattr(block, "start", None)), _utc(getattr(block, "due", None)),
            bool(getattr(block, "visible_to_staff_only", False)), bool(getattr(block, "hide_from_toc", False)),
            edited_on, edited_on, True,
        )


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
