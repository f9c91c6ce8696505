"""``CourseOverview`` with the fields the anchors' ``CourseOverviewSerializer`` reads.

Modelled on edx-platform's openedx/core/djangoapps/content/course_overviews/models.py
``CourseOverview`` (a ``TimeStampedModel``: ``created`` and ``modified`` come from django-model-utils):
the primary key is the course key (``CourseKeyField``, from edx-opaque-keys as in the platform), and
only the columns their serializer names or reads with ``getattr`` are kept, with the platform's
field types. The platform fills the row from the course when it is published; the benchmark fills
it from the synthetic course's root (:func:`overview_for`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import connection, models
from opaque_keys.edx.django.models import CourseKeyField


class CourseOverview(models.Model):
    class Meta:
        app_label = "anchor_overviews"
        db_table = "course_overviews_courseoverview"  # the platform's table name

    id = CourseKeyField(db_index=True, primary_key=True, max_length=255)
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)
    org = models.TextField(max_length=255, default="outdated_entry")
    display_name = models.TextField(null=True)
    start = models.DateTimeField(null=True)
    end = models.DateTimeField(null=True)
    enrollment_start = models.DateTimeField(null=True)
    enrollment_end = models.DateTimeField(null=True)
    self_paced = models.BooleanField(default=False)
    # read with getattr(...) into course_data_json
    advertised_start = models.TextField(null=True)
    announcement = models.DateTimeField(null=True)
    lowest_passing_grade = models.DecimalField(max_digits=5, decimal_places=2, null=True)
    invitation_only = models.BooleanField(default=False)
    max_student_enrollments_allowed = models.IntegerField(null=True)
    effort = models.TextField(null=True)
    enable_proctored_exams = models.BooleanField(default=False)
    entrance_exam_enabled = models.BooleanField(default=False)
    external_id = models.CharField(max_length=128, null=True, blank=True)
    language = models.TextField(null=True)


def create_table() -> None:
    """Create the table in the (in-memory) database: the app has no migrations."""
    with connection.schema_editor() as editor:
        editor.create_model(CourseOverview)


def overview_for(root: Any) -> CourseOverview:
    """The overview row of a stand-in course, from its root block, as the platform derives it on publish.

    ``lowest_passing_grade`` is the platform's default grading cutoff (0.5, xmodule/course_block.py
    ``grade_cutoffs``); the serializer calls ``float()`` on it, so the platform never leaves it unset
    for a course it has loaded.
    """
    key = root.location.course_key.for_branch(None)
    return CourseOverview.objects.create(
        id=key, org=key.org, display_name=root.display_name, start=root.start, end=None,
        lowest_passing_grade=Decimal("0.50"), language="en",
    )
