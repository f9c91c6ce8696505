"""A small, reader-independent model of a published course: the course and its blocks in author order.

Sinks read courses only through this model, so the same sink code serves a course read from the
modulestore inside Open edX and one read from an OLX export on disk. Blocks are produced lazily, in
author pre-order, so a sink can stream a course of any size in memory proportional to its depth.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

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


@attrs.define(slots=True)
class Course:
    """A published course: its identity, the version it was read from, and a way to walk its blocks.

    ``blocks()`` returns a fresh generator on every call, walking the course again in author
    pre-order (the course root first), then its detached blocks; it never builds the whole list.
    ``source_version`` changes whenever the published content changes, so a sink can skip a course
    that has not changed.
    """

    course_key: str
    org: str
    display_name: str | None
    source_version: str
    edited_on: datetime | None
    blocks: Callable[[], Iterator[Block]] = attrs.field(repr=False, eq=False)
