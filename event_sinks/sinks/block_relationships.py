"""BlockRelationshipSink: one row per parent -> child edge, with the child's place among siblings.

The outline gives each block its parent; this table gives the edges in order, so the exact tree
(including the order of children) can be rebuilt from the table alone, and graph queries (all
blocks under a section) need no string parsing of keys.
"""

from __future__ import annotations

import attrs

from ..sink import column
from .course_base import CourseSink


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

    def rows(self, course):
        org, course_key = course.org, course.course_key
        types: dict[str, str] = {}  # parent location -> type; O(containers), not O(blocks)
        for block in course.blocks():
            if block.children:
                types[block.usage_key] = block.block_type
            parent = block.parent
            if parent is not None:
                yield (org, course_key, parent, types[parent], block.usage_key, block.block_type, block.position)
