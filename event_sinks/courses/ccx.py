"""CCX runs of a course: the keys of the custom courses (``ccx-v1:``) built on a master course.

A CCX has no publish of its own: its content is its master course's, served under its own keys by
the LMS's CCX modulestore wrapper (``lms/djangoapps/ccx/modulestore.py``), and its tracking events
carry ``ccx-block-v1:`` usage keys. So when a master course is published, its CCX runs are dumped
again (as Aspects does, when ``FEATURES["CUSTOM_COURSES_EDX"]`` is on). The runs are rows of the
platform's ``ccx.CustomCourseForEdX`` model (``course_id``: the master course; ``id``: the run), and
a run's key is ``CCXLocator.from_course_locator(master, str(id))`` from edx-ccx-keys.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

#: The platform's model of CCX runs (``lms.djangoapps.ccx.models``), by app label and name.
CCX_MODEL = ("ccx", "CustomCourseForEdX")


def _model() -> Any:
    from django.apps import apps

    try:
        return apps.get_model(*CCX_MODEL)
    except LookupError:
        return None


def ccx_keys(course_key: str) -> list[str]:
    """Keys of the CCX runs of the master course ``course_key``, oldest first; [] where CCX is off."""
    features = _features()
    if not features.get("CUSTOM_COURSES_EDX") or course_key.startswith("ccx-v1:"):
        return []
    model = _model()
    if model is None:
        return []
    from ccx_keys.locator import CCXLocator
    from opaque_keys.edx.keys import CourseKey

    master = CourseKey.from_string(course_key)
    ids = model.objects.filter(course_id=master).order_by("id").values_list("id", flat=True)
    return [str(CCXLocator.from_course_locator(master, str(run))) for run in ids]


def all_ccx_keys() -> dict[str, list[str]]:
    """Every CCX run's key by its master course's key, in one query; {} where CCX is off."""
    model = _model() if _features().get("CUSTOM_COURSES_EDX") else None
    if model is None:
        return {}
    from ccx_keys.locator import CCXLocator
    from opaque_keys.edx.keys import CourseKey

    runs: dict[str, list[str]] = {}
    for run, master in model.objects.order_by("id").values_list("id", "course_id"):
        course = master if isinstance(master, CourseKey) else CourseKey.from_string(str(master))
        runs.setdefault(str(course), []).append(str(CCXLocator.from_course_locator(course, str(run))))
    return runs


def _features() -> dict:
    from django.conf import settings

    return getattr(settings, "FEATURES", None) or {}
