"""CourseOverviewSink: one row per course run, from edx-platform's CourseOverview model.

edx-platform refreshes ``CourseOverview`` after every publish (and deletes it with the course), so
its ``post_save``/``post_delete`` keep this table current. Outside Open edX the model does not exist
and the sink is disabled with one log line; ``EVENT_SINKS["SINKS"]["course_overviews"]["MODEL"]``
points it at another model with the same field names.
"""

from __future__ import annotations

import logging

from ..modelsinks import ModelSink


class CourseOverviewSink(ModelSink):
    """Course runs: org, course key, name, start/end, enrollment dates, pacing, last change."""

    name = "course_overviews"
    model = "course_overviews.CourseOverview"
    unavailable_hint = "it is edx-platform's model: the sink works inside the LMS or CMS"
    missing_model_log_level = logging.INFO  # expected outside Open edX
    fields = ("org", "id", "display_name", "start", "end", "enrollment_start", "enrollment_end",
              "self_paced", "modified")
    rename = {"id": "course_key", "self_paced": "pacing"}
    types = {"org": "LowCardinality(String)", "pacing": "LowCardinality(String)"}
    version_field = "modified"
    keys_per_dump = 1000

    def convert_pacing(self, self_paced: bool) -> str:
        return "self" if self_paced else "instructor"
