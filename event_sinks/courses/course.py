"""A small, reader-independent model of a published course: the course and its blocks in author order.

Sinks read courses only through this model, so the same sink code serves a course read from the
modulestore inside Open edX and one read from an OLX export on disk. Blocks are produced lazily, in
author pre-order, so a sink can stream a course of any size in memory proportional to its depth.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import attrs

#: Open edX's start date for blocks whose start is set nowhere up the tree
#: (``xmodule.course_metadata_utils.DEFAULT_START_DATE``): "not yet scheduled".
DEFAULT_START_DATE = datetime(2030, 1, 1, tzinfo=UTC)

#: A UTF-16 surrogate on its own: not a character, so not encodable as UTF-8 (JSON's ``"\ud800"``
#: escapes decode to one). Text holding one cannot be stored; the readers replace each by U+FFFD.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def has_lone_surrogate(text: str) -> bool:
    """Whether ``text`` holds a lone surrogate (cheap for ASCII text, the usual case)."""
    return not text.isascii() and LONE_SURROGATE.search(text) is not None


def replace_lone_surrogates(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD, the replacement character."""
    return LONE_SURROGATE.sub("\ufffd", text)


@attrs.define(slots=True)
class Block:
    """One block of a published course, with the settings Open edX resolves for it.

    ``graded``, ``start``, ``due``, ``visible_to_staff_only`` and ``hide_from_toc`` are the
    inherited values (as the runtime resolves them); ``format`` is the block's own. ``detached``
    marks a block of the course outside its tree (a static tab, an about or course-info page): it
    comes after the tree, with no parent, depth 0 and position 0. Treat instances as immutable: they
    are not frozen only because construction is on the hot path.
    """

    usage_key: str
    block_type: str
    block_id: str
    display_name: str | None
    parent: str | None
    children: tuple[str, ...]
    depth: int
    position: int
    graded: bool
    format: str | None
    start: datetime | None
    due: datetime | None
    visible_to_staff_only: bool
    hide_from_toc: bool
    edited_on: datetime | None
    published_on: datetime | None
    detached: bool = False


#: The course-level settings a reader gives in ``Course.settings`` (edx-platform's CourseOverview copies
#: them from the course root, ``openedx/core/djangoapps/content/course_overviews/models.py``), with the
#: value each has in Open edX when the course sets none (``xmodule/course_block.py`` CourseFields;
#: ``lowest_passing_grade`` is the lowest of the grading policy's ``GRADE_CUTOFFS``, whose default is
#: ``{"Pass": 0.5}``; ``effort`` is the course's ``about/effort`` page).
COURSE_SETTINGS: dict[str, Any] = {
    "start": DEFAULT_START_DATE,
    "end": None,
    "enrollment_start": None,
    "enrollment_end": None,
    "advertised_start": None,
    "announcement": None,
    "self_paced": False,
    "invitation_only": False,
    "max_student_enrollments_allowed": None,
    "enable_proctored_exams": False,
    "entrance_exam_enabled": False,
    "language": None,
    "lowest_passing_grade": 0.5,
    "effort": None,
}


@attrs.define(slots=True)
class WalkExtras:
    """What a walk of ``blocks()`` learns besides the outline's fields, for the readers that want it.

    Filled while ``blocks()`` is walked (complete once a walk has ended), so it costs nothing to sinks
    that do not read it: ``completion_modes`` maps a block type to its XBlock class's
    ``completion_mode`` ('' when the class has none), ``videos`` the usage key of a video with a play
    window to its ``(start_time, end_time)`` in seconds (a video not listed has 0.0 and 0.0, the
    default of edx-platform's ``RelativeTime`` fields: listing only the others keeps a walk's memory
    the course's shape), and ``tags`` a usage key to the ids of the tags applied to it, their ancestors included
    (only where the platform has content tagging).
    """

    completion_modes: dict[str, str] = attrs.field(factory=dict)
    videos: dict[str, tuple[float, float]] = attrs.field(factory=dict)
    tags: dict[str, list[int]] = attrs.field(factory=dict)


@attrs.define(slots=True)
class Course:
    """A published course: its identity, the version it was read from, and a way to walk its blocks.

    ``blocks()`` returns a fresh generator on every call, walking the course again in author
    pre-order (the course root first), then its detached blocks; it never builds the whole list.
    ``source_version`` changes whenever the published content changes, so a sink can skip a course
    that has not changed. ``settings`` holds the course-level settings of :data:`COURSE_SETTINGS` the
    reader found (their Open edX defaults where the course sets none); ``extras`` what the walks learn
    (:class:`WalkExtras`).
    """

    course_key: str
    org: str
    display_name: str | None
    source_version: str
    edited_on: datetime | None
    blocks: Callable[[], Iterator[Block]] = attrs.field(repr=False, eq=False)
    settings: dict[str, Any] = attrs.field(factory=lambda: dict(COURSE_SETTINGS), repr=False, eq=False)
    extras: WalkExtras = attrs.field(factory=WalkExtras, repr=False, eq=False)
