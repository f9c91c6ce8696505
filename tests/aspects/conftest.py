"""Fixtures of the Aspects compatibility tests: the compatibility switched on, a demo course to publish."""

from __future__ import annotations

import shutil
from pathlib import Path

import attrs
import pytest

from event_sinks.clickhouse import Connection, close_connections, get_connection
from event_sinks.courses.sources import OlxSource, set_course_source

DEMO = Path(__file__).resolve().parents[2] / "event_sinks" / "demo" / "course"
DEMO_KEY = "course-v1:EventSinks+Demo101+2026"


@attrs.define
class Aspects:
    """Where the library and Aspects' tables are, for one test."""

    database: str  # Aspects' database
    course: Path  # a copy of the demo course the test may edit (republish)

    @property
    def connection(self) -> Connection:
        return get_connection()


def switch_on(settings, aspects_database: str, **options) -> None:
    settings.EVENT_SINKS = {**settings.EVENT_SINKS,
                            "ASPECTS": {"ENABLED": True, "DATABASE": aspects_database, **options}}
    close_connections()


@pytest.fixture
def demo(tmp_path):
    """A copy of the demo course installed as the course source."""
    course = tmp_path / "course"
    shutil.copytree(DEMO, course)
    set_course_source(OlxSource([course]))
    yield course
    set_course_source(None)


@pytest.fixture
def aspects(embedded, settings, database, demo):
    """The compatibility on, Aspects' tables in a database of the test's own, the demo course as the source."""
    switch_on(settings, f"{database}_aspects")
    yield Aspects(f"{database}_aspects", demo)
    close_connections()


@pytest.fixture
def aspects_any_engine(engine, settings, database, demo):
    """The same on each engine (embedded, then over HTTP)."""
    switch_on(settings, f"{database}_aspects")
    yield Aspects(f"{database}_aspects", demo)
    close_connections()
