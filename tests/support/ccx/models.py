"""``CustomCourseForEdX`` as the platform declares it (``lms/djangoapps/ccx/models.py``), as far as read here.

The platform's ``course_id`` is a ``CourseKeyField`` (a CharField storing the key's text): a
CharField here, queried with a CourseKey the same way. ``coach`` is left out: nothing reads it.
"""

from django.db import models


class CustomCourseForEdX(models.Model):
    """A CCX run of a master course."""

    course_id = models.CharField(max_length=255, db_index=True)
    display_name = models.CharField(max_length=255)
    structure_json = models.TextField(blank=True, null=True)

    class Meta:
        app_label = "ccx"
