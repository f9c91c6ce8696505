"""BlockRelationshipSink: one row per parent -> child edge, with the child's place among siblings.

The outline gives each block its parent; this table gives the edges in order, so the exact tree
(including the order of children) can be rebuilt from the table alone, and graph queries (all
blocks under a section) need no string parsing of keys.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from ..core.columns import ColumnBatch, Constant, column
from ..courses import Course
from .course_sink import CourseSink


@attrs.define
class RelationshipRow:
    """One edge of the course tree."""

    org: str = column("LowCardinality(String)")
    course_key: str = column("LowCardinality(String)")
    parent_location: str = column("String")
    parent_type: str = column("LowCardinality(String)")
    child_location: str = column("String")
    child_type: str = column("LowCardinality(String)")
    position: int = column("UInt32")


class BlockRelationshipSink(CourseSink):
    """Parent/child edges of every published course, children in author order."""

    name = "block_relationships"
    row_type = RelationshipRow
    order_by = ("parent_location", "position")

    def batches(self, course: Course, batch_size: int) -> Iterator[ColumnBatch]:
        """The edges in column batches: one list per field, org and course key as constants."""
        org, course_key = Constant(course.org), Constant(course.course_key)
        types: dict[str, str] = {}  # parent location -> type; O(containers), not O(blocks)
        blocks = iter(course.blocks())
        while True:
            parents, parent_types, children, child_types, positions = [], [], [], [], []
            n = 0
            for block in blocks:
                if block.children:
                    types[block.usage_key] = block.block_type
                parent = block.parent
                if parent is not None:
                    parents.append(parent)
                    parent_types.append(types[parent])
                    children.append(block.usage_key)
                    child_types.append(block.block_type)
                    positions.append(block.position)
                    n += 1
                    if n == batch_size:
                        break
            if not n:
                return
            yield ColumnBatch(n, [org, course_key, parents, parent_types, children, child_types, positions])
