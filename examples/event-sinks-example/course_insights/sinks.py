"""The sinks of the example plugin, registered in setup.cfg under ``event_sinks.sinks``."""

import logging
from collections import Counter

import attrs

from event_sinks import CourseSink, ModelSink, Trigger, column


@attrs.define
class BlockCountRow:
    """One row of ``course_block_counts``: a block type of a course and how many blocks it has."""

    course_key: str = column("LowCardinality(String)")
    block_type: str = column("LowCardinality(String)")
    blocks: int = column("UInt32")
    graded: int = column("UInt32")


def course_of_xblock(kwargs):
    """The course of the block that XBLOCK_PUBLISHED announces (its kwargs hold an XBlockData)."""
    return kwargs["xblock_info"].usage_key.course_key


class CourseBlockCountsSink(CourseSink):
    """Blocks of each type in every course: videos, problems, units, ..."""

    name = "course_block_counts"
    row_type = BlockCountRow
    order_by = ("block_type",)
    # The signals that make a course's rows stale. The receiver gets the signal's kwargs and returns
    # the key to dump; a signal that does not exist in this process (Studio's, outside Studio) is skipped.
    triggers = (
        Trigger("xmodule.modulestore.django:SignalHandler.course_published", key=lambda kwargs: kwargs["course_key"]),
        Trigger("openedx_events.content_authoring.signals.XBLOCK_PUBLISHED", key=course_of_xblock),
        Trigger("xmodule.modulestore.django:SignalHandler.course_deleted", key=lambda kwargs: kwargs["course_key"],
                delete=True),
    )

    def rows(self, course):
        blocks, graded = Counter(), Counter()
        for block in course.blocks():
            blocks[block.block_type] += 1
            graded[block.block_type] += block.graded
        for block_type in sorted(blocks):
            yield (course.course_key, block_type, blocks[block_type], graded[block_type])


class ContentFlagSink(ModelSink):
    """Blocks that course staff flagged for review."""

    name = "content_flags"
    model = "course_insights.ContentFlag"
    exclude = ("note",)  # free text: it stays in the LMS database
    types = {"reason": "LowCardinality(String)"}
    # The event-sinks command runs without a Django project, so without this model: say so quietly there.
    missing_model_log_level = logging.INFO
