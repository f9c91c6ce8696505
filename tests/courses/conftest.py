"""Fixtures for the course reader tests: the real exports beside the repository, and tiny handmade ones."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest

from event_sinks.courses import read_olx

#: The real OLX exports (see ../shared/courses/SOURCES.md), beside the repository.
COURSES = Path(__file__).resolve().parents[2].parent / "shared" / "courses"
NEEDS_COURSES = pytest.mark.skipif(
    not COURSES.is_dir(),
    reason=f"real OLX exports not found at {COURSES} (../shared/courses beside the repository)",
)

_cache: dict[str, tuple] = {}


def read_real(name: str):
    """(Course, list of its blocks) for a real export, read once per test session."""
    if name not in _cache:
        logger = logging.getLogger("event_sinks.courses.olx")
        previous = logger.disabled
        logger.disabled = True  # the MITx export's known dangling pointer is tested on its own
        try:
            course = read_olx(COURSES / name)
            _cache[name] = (course, list(course.blocks()))
        finally:
            logger.disabled = previous
    return _cache[name]


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write ``{relative path: text}`` under ``root`` (text dedented) and return ``root``."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


#: A small course: pointers, inline blocks, a policy, a graded subsection with a due date.
TINY = {
    "course.xml": '<course url_name="T1" org="TinyX" course="Tiny"/>',
    "course/T1.xml": """
        <course display_name="Tiny course" start="2024-01-01T00:00:00Z">
          <chapter url_name="ch1"/>
          <chapter display_name="Inline chapter">
            <sequential display_name="Inline seq">
              <vertical>
                <html display_name="Hello"><p>text</p></html>
              </vertical>
            </sequential>
          </chapter>
          <wiki slug="TinyX.Tiny.T1"/>
        </course>
    """,
    "chapter/ch1.xml": """
        <chapter display_name="Chapter one">
          <sequential url_name="seq1"/>
        </chapter>
    """,
    "sequential/seq1.xml": """
        <sequential display_name="Graded seq" graded="true" format="Homework" due="2024-03-01T12:00">
          <vertical url_name="v1"/>
        </sequential>
    """,
    "vertical/v1.xml": """
        <vertical display_name="Unit one">
          <problem url_name="p1"/>
          <video url_name="vid1" display_name="Inline video"/>
        </vertical>
    """,
    "problem/p1.xml": '<problem display_name="Problem one" max_attempts="2"><p>What?</p></problem>',
    "policies/T1/policy.json": '{"course/T1": {"display_name": "Tiny course (policy)"}}',
}


@pytest.fixture
def tiny(tmp_path) -> Path:
    """The TINY course written to a fresh folder."""
    return write_tree(tmp_path / "tiny", TINY)


@pytest.fixture
def make_course(tmp_path):
    """Write a course from TINY plus overrides ({path: text}, or {path: None} to delete)."""
    def make(overrides: dict[str, str | None], name: str = "course") -> Path:
        files = {**TINY, **overrides}
        return write_tree(tmp_path / name, {rel: text for rel, text in files.items() if text is not None})
    return make
