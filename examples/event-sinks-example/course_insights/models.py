"""ContentFlag: a block that course staff flagged for review."""

from django.db import models
from opaque_keys.edx.django.models import CourseKeyField, UsageKeyField


class ContentFlag(models.Model):
    """A block of a course flagged by course staff: a broken video, an outdated reading, ..."""

    REASONS = [
        ("broken", "Broken"),
        ("outdated", "Outdated"),
        ("unclear", "Unclear"),
    ]

    course_key = CourseKeyField(max_length=255, db_index=True)
    usage_key = UsageKeyField(max_length=255)
    reason = models.CharField(max_length=16, choices=REASONS)
    note = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"{self.usage_key} ({self.reason})"
