"""Aspects' course_overviews fed from the course_overviews sink (edx-platform's CourseOverview, a stand-in here)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from event_sinks import dump
from event_sinks.clickhouse import close_connections, get_connection
from event_sinks.registry import registry
from event_sinks.sinks.course_overviews import CourseOverviewSink

from ..testapp.models import CourseOverview
from .conftest import switch_on
from .contract import TIME_LAST_DUMPED, course_names, create_aspects_tables

RIVERS = "course-v1:EventSinks+Demo101+2026"
OTHER = "course-v1:Other+X+Y"
AT = datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=UTC)


@pytest.fixture
def overviews(embedded, settings, database):
    """The course_overviews sink on the stand-in model, the compatibility on."""
    added = "course_overviews" not in registry.names()  # an editable install made before the entry point
    if added:
        registry.register(CourseOverviewSink, "tests")
    settings.EVENT_SINKS = {**settings.EVENT_SINKS, "SINKS": {"course_overviews": {"MODEL": "testapp.CourseOverview"}}}
    switch_on(settings, f"{database}_aspects")
    yield f"{database}_aspects"
    close_connections()
    if added:
        registry.unregister("course_overviews")


def rows_of(database: str) -> list[tuple]:
    return get_connection().query(
        "SELECT org, course_key, display_name, course_start, course_end, enrollment_start, enrollment_end, "
        "self_paced, course_data_json, created, modified, dump_id, time_last_dumped "
        f"FROM `{database}`.course_overviews ORDER BY course_key, time_last_dumped")


@pytest.mark.django_db
def test_overviews_reach_aspects_and_a_rename_and_a_deletion_show(overviews):
    database = overviews
    create_aspects_tables(get_connection(), database)
    rivers = CourseOverview.objects.create(id=RIVERS, org="EventSinks", display_name="Rivers", start=AT,
                                           enrollment_start=AT - timedelta(days=30), self_paced=True,
                                           lowest_passing_grade=Decimal("0.65"))
    CourseOverview.objects.create(id=OTHER, org="Other", display_name=None, end=AT.replace(microsecond=0))
    summary = dump("course_overviews", [RIVERS, OTHER])
    assert summary.count("dumped") == 2

    first, other = rows_of(database)
    rivers.refresh_from_db()
    assert first[:8] == ("EventSinks", RIVERS, "Rivers", "2026-03-01 12:30:45.123456+00:00", "",
                         "2026-01-30 12:30:45.123456+00:00", "", True)
    assert other[2:5] == ("", "", "2026-03-01 12:30:45+00:00")  # None as '', str() without microseconds
    data = json.loads(first[8])
    assert list(data) == ["advertised_start", "announcement", "lowest_passing_grade", "invitation_only",
                          "max_student_enrollments_allowed", "effort", "enable_proctored_exams",
                          "entrance_exam_enabled", "external_id", "language", "tags"]
    # read from the model at commit where it has the field (this stand-in has created and lowest_passing_grade)
    assert data["lowest_passing_grade"] == 0.65 and json.loads(other[8])["lowest_passing_grade"] is None
    assert data["tags"] == [] and data["language"] is None  # no tagging here; a field the model lacks is null
    assert first[9] == str(rivers.created) and first[10] == str(rivers.modified)  # str(), as Aspects writes them
    assert first[11] == other[11] and first[12] == other[12]  # one dump of both keys: one id, one stamp
    assert TIME_LAST_DUMPED.match(first[12])
    assert course_names(get_connection(), database) == [(RIVERS, "Rivers"), (OTHER, "")]

    rivers.display_name = "Rivers of the World"
    rivers.save()  # modified moves on, as the platform's does after a publish
    assert dump("course_overviews", [RIVERS], skip_unchanged=True).count("dumped") == 1
    assert course_names(get_connection(), database) == [(RIVERS, "Rivers of the World"), (OTHER, "")]

    CourseOverview.objects.filter(id=OTHER).delete()
    assert dump("course_overviews", [OTHER], delete=True).count("deleted") == 1
    assert course_names(get_connection(), database) == [(RIVERS, "Rivers of the World")]
    assert [r[1] for r in rows_of(database)] == [RIVERS, RIVERS]  # the deleted course's row is gone


@pytest.mark.django_db
def test_a_model_that_cannot_be_read_at_commit_leaves_course_data_empty_not_the_row_missing(overviews, monkeypatch,
                                                                                          caplog):
    database = overviews
    create_aspects_tables(get_connection(), database)
    CourseOverview.objects.create(id=RIVERS, org="EventSinks", display_name="Rivers")

    def broken(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr("event_sinks.aspects.feed.read_course_tags", broken)
    assert dump("course_overviews", [RIVERS]).count("dumped") == 1
    (row,) = rows_of(database)
    assert row[2] == "Rivers" and row[9] == "" and json.loads(row[8])["lowest_passing_grade"] is None
    assert "the course_overviews objects of ['course-v1:EventSinks+Demo101+2026'] cannot be read (RuntimeError: " \
           "database gone)" in caplog.text
