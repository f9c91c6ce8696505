"""A stand-in for edx-platform's modulestore: just the calls the course readers make, same shapes.

Tests and benchmarks use it to run ``read_modulestore`` without Open edX: ``branch_setting`` (a
thread-local context manager), ``get_course(key, depth=None)`` (None when absent, like the mixed
store), ``get_course_summaries()``/``get_courses()``, and blocks with a real opaque-keys
``location``, ``category``, ``has_children``, ``children``, ``get_children()``, the settings fields
already inherited (as the runtime serves them) and the edit info. Like split, the course root's
location has no branch while its descendants' locations carry the published branch.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from opaque_keys.edx.keys import CourseKey
from opaque_keys.edx.locator import CourseLocator

from ..courses.course import DEFAULT_START_DATE, UTC, Course

_INHERITED = ("graded", "start", "due", "visible_to_staff_only", "hide_from_toc")
_ROOT_VALUES = (False, DEFAULT_START_DATE, None, False, False)


class ModuleStoreEnum:
    """The values of ``xmodule.modulestore.ModuleStoreEnum`` the readers use."""

    class Branch:
        draft_preferred = "draft-preferred"
        published_only = "published-only"

    class BranchName:
        draft = "draft-branch"
        published = "published-branch"


class StandInBlock:
    """An XBlock as the modulestore hands it out: location, settings (inherited), edit info, children."""

    __slots__ = ("location", "category", "display_name", "format", "graded", "start", "due",
                 "visible_to_staff_only", "hide_from_toc", "edited_on", "published_on", "subtree_edited_on",
                 "children", "has_children", "parent", "course_version", "_kids")

    def __init__(self, location: Any, parent: StandInBlock | None, own: Mapping[str, Any], has_children: bool):
        self.location = location
        self.category = location.block_type
        self.display_name = own.get("display_name")
        self.format = own.get("format")
        # Inheritance as the runtime resolves it: an explicit value wins, else the parent's value.
        inherited = _ROOT_VALUES if parent is None else tuple(getattr(parent, n) for n in _INHERITED)
        for name, value in zip(_INHERITED, inherited, strict=True):
            setattr(self, name, own[name] if name in own else value)
        self.edited_on = self.published_on = self.subtree_edited_on = own.get("edited_on")
        self.course_version: str | None = None if parent is None else parent.course_version
        self.has_children = has_children
        self.children: list = []
        self._kids: list[StandInBlock] = []
        self.parent = None if parent is None else parent.location
        if parent is not None:
            parent.children.append(location)
            parent._kids.append(self)

    def get_children(self) -> list[StandInBlock]:
        return list(self._kids)


class CourseSummary:
    """What ``get_course_summaries()`` returns per course: its id, root location and display name."""

    __slots__ = ("id", "location", "display_name")

    def __init__(self, root: StandInBlock):
        self.id = root.location.course_key
        self.location = root.location
        self.display_name = root.display_name


class StandInModuleStore:
    """Holds published courses (roots of StandInBlock trees) and answers like MixedModuleStore."""

    def __init__(self, courses: Iterable[StandInBlock] = ()):
        self._courses: dict[CourseKey, StandInBlock] = {}
        self._thread = threading.local()
        #: every get_course() call: (course key, depth, thread name)
        self.reads: list[tuple[str, int | None, str]] = []
        for root in courses:
            self.add_course(root)

    def add_course(self, root: StandInBlock) -> None:
        self._courses[root.location.course_key.for_branch(None)] = root

    @contextmanager
    def branch_setting(self, branch_setting: str, course_id: Any = None) -> Iterator[None]:
        previous = getattr(self._thread, "branch", None)
        self._thread.branch = branch_setting
        try:
            yield
        finally:
            self._thread.branch = previous

    def get_branch_setting(self, course_id: Any = None) -> str:
        return getattr(self._thread, "branch", None) or ModuleStoreEnum.Branch.published_only

    @contextmanager
    def bulk_operations(self, course_id: Any, emit_signals: bool = True, ignore_case: bool = False) -> Iterator[None]:
        yield

    def get_course(self, course_key: Any, depth: int | None = 0, **kwargs: Any) -> StandInBlock | None:
        """The course root; every call is recorded in :attr:`reads` with its depth and thread.

        In the real (split) store ``depth=None`` loads every block of the course -- the expensive read
        -- while ``depth=0`` loads the root only; tests count the expensive ones.
        """
        if self.get_branch_setting() != ModuleStoreEnum.Branch.published_only:
            raise ValueError("the stand-in store holds only the published branch")
        self.reads.append((str(course_key), depth, threading.current_thread().name))
        return self._courses.get(course_key.for_branch(None))

    def full_reads(self, course_key: str | None = None) -> int:
        """How many ``get_course(depth=None)`` calls were made (for ``course_key``, or any)."""
        return sum(1 for key, depth, _ in self.reads if depth is None and course_key in (None, key))

    def has_course(self, course_key: Any, ignore_case: bool = False, **kwargs: Any) -> Any:
        return course_key if course_key.for_branch(None) in self._courses else None

    def get_course_summaries(self, **kwargs: Any) -> list[CourseSummary]:
        return [CourseSummary(root) for root in self._courses.values()]

    def get_courses(self, **kwargs: Any) -> list[StandInBlock]:
        return list(self._courses.values())

    def make_course_usage_key(self, course_key: Any) -> Any:
        return course_key.make_usage_key("course", "course")


def _keys(course_key: Any) -> tuple[Any, Callable[[str, str], Any]]:
    """Course root location (no branch) and a factory for descendants' (published branch) locations."""
    published = course_key.for_branch(ModuleStoreEnum.BranchName.published)
    return course_key.make_usage_key("course", "course"), published.make_usage_key


def store_from_course(course: Course, store: StandInModuleStore | None = None) -> StandInModuleStore:
    """A stand-in store holding ``course`` (e.g. read from OLX) with the same blocks and settings.

    Settings are taken as already inherited, so reading the store back gives the same blocks.
    """
    store = store if store is not None else StandInModuleStore()
    course_key = CourseKey.from_string(course.course_key)
    root_location, make_location = _keys(course_key)
    made: dict[str, StandInBlock] = {}
    root = None
    for block in course.blocks():
        own = {name: getattr(block, name) for name in ("display_name", "format", "edited_on", *_INHERITED)}
        if block.parent is None:
            node = root = StandInBlock(root_location, None, own, bool(block.children))
            node.course_version = course.source_version
            node.subtree_edited_on = course.edited_on
        else:
            location = make_location(block.block_type, block.block_id)
            node = StandInBlock(location, made[block.parent], own, bool(block.children))
        made[block.usage_key] = node
    if root is None:
        raise ValueError(f"course {course.course_key} has no blocks")
    store.add_course(root)
    return store


def synthetic_course(org: str, course: str, run: str, n_blocks: int, *, sections: int = 10,
                     units_per_subsection: int = 4, leaves_per_unit: int = 3) -> StandInBlock:
    """A course of exactly ``n_blocks`` blocks for tests and benchmarks (returns its root).

    Shape: course -> ``sections`` sections -> subsections (spread round-robin over the sections) ->
    ``units_per_subsection`` units -> html/problem/video leaves (the remainder goes to the last
    unit). Every third subsection is graded (format "Homework", a due date); the last section is
    staff-only; every seventh leaf has no display name; every fifth has quotes, a comma and
    non-ASCII characters in its name.
    """
    per_subsection = 1 + units_per_subsection * (1 + leaves_per_unit)
    n_subsections = (n_blocks - 1 - sections) // per_subsection
    if n_subsections < 1:
        smallest = 1 + sections + per_subsection
        raise ValueError(f"n_blocks={n_blocks} is too small: the shape needs at least {smallest}")
    extra = n_blocks - 1 - sections - n_subsections * per_subsection
    course_key = CourseLocator(org, course, run)
    root_location, make_location = _keys(course_key)
    start = datetime(2025, 1, 6, tzinfo=UTC)
    times = [datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=7 * i) for i in range(97)]
    root = StandInBlock(root_location, None, {
        "display_name": f"Synthetic course {course} ({n_blocks} blocks)",
        "start": start,
        "edited_on": times[0],
    }, True)
    root.course_version = hashlib.sha1(f"{course_key}/{n_blocks}".encode()).hexdigest()[:24]
    root.subtree_edited_on = times[-1]
    chapters = [
        StandInBlock(make_location("chapter", f"chapter{i:04d}"), root, {
            "display_name": f"Section {i + 1}" if i < sections - 1 else 'Staff notes, "internal"',
            "edited_on": times[i % 97], **({"visible_to_staff_only": True} if i == sections - 1 else {}),
        }, True)
        for i in range(sections)
    ]
    kinds = ("html", "problem", "video")
    leaf = 0
    for s in range(n_subsections):
        own = {"display_name": f"Subsection {s + 1}", "edited_on": times[s % 97]}
        if s % 3 == 2:
            own.update(graded=True, format="Homework", due=start + timedelta(days=7 * (s % 52 + 1)))
        chapter = chapters[s % sections]
        sequential = StandInBlock(make_location("sequential", f"seq{s:06d}"), chapter, own, True)
        for u in range(units_per_subsection):
            unit = StandInBlock(make_location("vertical", f"unit{s:06d}{u:02d}"), sequential,
                                {"display_name": f"Unit {u + 1}", "edited_on": times[u]}, True)
            last = s == n_subsections - 1 and u == units_per_subsection - 1
            count = leaves_per_unit + (extra if last else 0)
            for _ in range(count):
                kind = kinds[leaf % 3]
                if leaf % 7 == 3:
                    name = None
                elif leaf % 5 == 1:
                    name = f'Problème "{leaf}", partie 2 — 数学'
                else:
                    name = f"{kind.title()} {leaf}"
                StandInBlock(make_location(kind, f"{kind}{leaf:08d}"), unit,
                             {"display_name": name, "edited_on": times[leaf % 97]}, False)
                leaf += 1
    return root
