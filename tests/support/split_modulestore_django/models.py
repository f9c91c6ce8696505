"""The platform's course index model, ``SplitModulestoreCourseIndex``, as far as read here.

As declared in ``common/djangoapps/split_modulestore_django/models.py``.
The fields read here, with the platform's types: ``course_id`` is a ``LearningContextKeyField`` (a
CharField holding the key's text: a CharField here, queried with a CourseKey the same way), the
versions are 24-character structure ids ("" when the branch does not exist), ``edited_on`` is the
last edit of any branch. The history and the other fields are left out.
"""

from django.db import models


class SplitModulestoreCourseIndex(models.Model):
    """The course index row of one course (or legacy library)."""

    objectid = models.CharField(max_length=24, unique=True)
    course_id = models.CharField(max_length=255, db_index=True, unique=True)
    org = models.CharField(max_length=255, db_index=True)
    draft_version = models.CharField(max_length=24, blank=True)
    published_version = models.CharField(max_length=24, blank=True)
    library_version = models.CharField(max_length=24, blank=True)
    edited_on = models.DateTimeField()
    last_update = models.DateTimeField()

    class Meta:
        app_label = "split_modulestore_django"
        ordering = ["course_id"]
