"""Courses: a small Course/Block model, its readers (OLX exports, the modulestore) and course sources.

``read_olx`` works everywhere; ``event_sinks.courses.modulestore.read_modulestore`` imports
edx-platform lazily and so only works inside the LMS/CMS (or with a stand-in store in tests);
:mod:`.sources` decides which of them a course sink reads from.
"""

from .course import Block, Course
from .errors import CourseReadError
from .olx import is_export, read_olx

__all__ = ["Block", "Course", "CourseReadError", "is_export", "read_olx"]
