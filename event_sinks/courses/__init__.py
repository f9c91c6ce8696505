"""Reading courses: a small Course/Block model and readers for the modulestore and OLX exports.

``read_olx`` is importable everywhere; ``event_sinks.courses.modulestore.read_modulestore`` imports
edx-platform lazily and so only works inside the LMS/CMS (or with a stand-in store in tests).
"""

from .errors import CourseReadError
from .model import Block, Course
from .olx import read_olx

__all__ = ["Block", "Course", "CourseReadError", "read_olx"]
