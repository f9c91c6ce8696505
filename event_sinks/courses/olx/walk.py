"""The walk: a course's blocks in author pre-order, with inherited settings, streamed one by one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .. import limits
from ..course import DEFAULT_START_DATE, Block, WalkExtras
from ..errors import CourseReadError
from .pointers import Item, Resolver
from .policy import VIDEO_FIELDS
from .tags import NO_SKIP, NOT_BLOCKS
from .values import UNSET

_EMPTY: tuple[str, ...] = ()


#: ``read_olx``'s ``max_depth`` default: the depth cap both readers share.
DEFAULT_MAX_DEPTH = limits.MAX_DEPTH


class Walk(Resolver):
    """One walk of a course (each ``blocks()`` call makes a new one): children resolved, blocks emitted.

    Past ``max_depth`` a block's children are a problem (skipped when lenient); more than
    ``MAX_CHILDREN`` children of one block, or more than ``MAX_BLOCKS`` blocks, stop the walk with a
    CourseReadError in both modes: a partial outline would pass for the course.
    """

    #: where the walk records what it learns besides the outline (None: nowhere)
    extras: WalkExtras | None = None

    def children(self, item: Item, depth: int) -> list[Item]:
        resolved: list[Item] = []
        if not item.nodes:
            return resolved
        if depth >= self.reader.max_depth:
            self.problem(f"blocks nested deeper than {self.reader.max_depth} levels", item.file, None)
            return resolved
        skip = NOT_BLOCKS.get(item.tag, NO_SKIP)
        max_children = limits.MAX_CHILDREN
        index = 0
        for node in item.nodes:
            tag = node.tag
            if tag in skip or ":" in tag or node.attrs.get("xblock-family") == "xblock_asides.v1":
                continue
            child = self.resolve(node, item, index)
            index += 1
            if child is not None:
                if len(resolved) == max_children:
                    raise CourseReadError(f"<{item.tag}> {item.key} has more than {max_children} children (the "
                                          "outline numbers them in UInt16 ordinals); the walk stopped there",
                                          item.file, item.line)
                resolved.append(child)
        return resolved

    def run(self, root: Item) -> Iterator[Block]:
        reader = self.reader
        settings = reader.settings
        max_blocks = limits.MAX_BLOCKS
        count = 0
        videos = self.extras.videos if self.extras is not None else None
        # (item, parent key, depth, position, inherited (graded, start, due, staff_only, hide_from_toc))
        stack: list[tuple[Item, str | None, int, int, tuple[Any, ...]]] = [
            (root, None, 0, 0, (False, DEFAULT_START_DATE, None, False, False))]
        pop = stack.pop
        push = stack.append
        while stack:
            item, parent_key, depth, position, inherited = pop()
            count += 1
            if count > max_blocks:
                raise CourseReadError(f"more than {max_blocks} blocks in the course; the walk stopped at {item.key}",
                                      item.file, item.line)
            own = settings(item)
            display_name, fmt, graded, start, due, staff_only, hide = own
            if graded is UNSET:
                graded = inherited[0]
            if start is UNSET:
                start = inherited[1]
            if due is UNSET:
                due = inherited[2]
            if staff_only is UNSET:
                staff_only = inherited[3]
            if hide is UNSET:
                hide = inherited[4]
            kids = self.children(item, depth) if item.nodes else ()
            if videos is not None and item.tag == "video":
                times = reader.own_values(item, VIDEO_FIELDS)
                if times:
                    window = (times.get("start_time", 0.0), times.get("end_time", 0.0))
                    if window != (0.0, 0.0):
                        videos[item.key] = window
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
