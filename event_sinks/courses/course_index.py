"""The split modulestore's course index: each course's published version and last edit, from one table.

Since the index moved to MySQL (``common/djangoapps/split_modulestore_django/models.py``), every
course has a ``SplitModulestoreCourseIndex`` row: ``course_id``, ``published_version`` (the id of the
published structure: what a course read reports as ``course_version``), ``edited_on`` (the last
edit, draft or published) and ``library_version`` for legacy libraries. One indexed query tells a
course's published version without touching the modulestore (even ``get_course(depth=0)`` fetches
the whole structure document), and which courses changed since a date without reading any.

Where the model is not installed (outside the platform, or an older one), every function answers
None, and the callers fall back to the modulestore.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

#: The platform's model of the course index, by app label and name.
INDEX_MODEL = ("split_modulestore_django", "SplitModulestoreCourseIndex")


def _model() -> Any:
    from django.apps import apps

    try:
        return apps.get_model(*INDEX_MODEL)
    except LookupError:
        return None


def published_version(course_key: str) -> str | None:
    """The published structure id of ``course_key`` from the index; None when the index cannot tell."""
    model = _model()
    if model is None or not course_key.startswith("course-v1:"):
        return None  # CCX runs (ccx-v1:) are not in the index: their master course is
    from opaque_keys.edx.keys import CourseKey

    rows = model.objects.filter(course_id=CourseKey.from_string(course_key)).values_list("published_version", flat=True)
    version = next(iter(rows[:1]), None)
    return version or None


def keys_edited_since(since: datetime) -> Iterator[str] | None:
    """Keys of the published courses whose index was edited at or after ``since``; None without an index."""
    model = _model()
    if model is None:
        return None
    rows = (model.objects.filter(edited_on__gte=since).exclude(published_version="")
            .order_by("course_id").values_list("course_id", flat=True))
    return (str(key) for key in rows.iterator())
