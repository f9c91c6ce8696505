"""What Aspects' JSON columns carry beyond the outline: course settings, completion modes, video times, tags.

Read from real OLX exports (/work/shared/courses, or OLX_EXAMPLES) and from the stand-in modulestore holding
the same course: ``course_overviews.course_data_json`` from the course root's settings (where no
course_overviews sink runs), ``course_blocks.xblock_data_json``'s ``completion_mode``, ``tags`` and video
``video_start_time``/``video_end_time``.
"""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

import pytest

from event_sinks import dump, get_sink
from event_sinks.aspects import committed
from event_sinks.courses import read_olx
from event_sinks.courses.sources import ModulestoreSource, OlxSource, set_course_source
from event_sinks.testing.modulestore import store_from_course

from .contract import course_names, create_aspects_tables

COURSES = Path(os.environ.get("OLX_EXAMPLES", "/work/shared/courses"))
HARVARD, EXAMPLE, DARTMOUTH, DEMO_ZH = (COURSES / name for name in (
    "harvardx-studio-advanced", "olx-example-course", "dartmouthx-envx", "demo-course-zh-cn"))
ZH_KEY = "course-v1:edx+DemoX+course"
ZH_VIDEO = "block-v1:edx+DemoX+course+type@video+block@5c90cffecd9b48b188cbfea176bf7fe9"

pytestmark = pytest.mark.skipif(not DEMO_ZH.is_dir(), reason=f"the real OLX exports are not at {COURSES}")


def publish(*keys: str, **kwargs) -> None:
    summary = dump("course_outline", list(keys), **kwargs)
    assert summary.count("dumped" if not kwargs.get("delete") else "deleted") == len(keys), summary.results


def overviews(connection, database: str) -> dict[str, dict]:
    rows = connection.query(f"SELECT course_key, display_name, course_start, course_end, enrollment_start, "
                            f"enrollment_end, self_paced, course_data_json, created, modified, time_last_dumped "
                            f"FROM `{database}`.course_overviews ORDER BY course_key, time_last_dumped")
    names = ("display_name", "course_start", "course_end", "enrollment_start", "enrollment_end", "self_paced",
             "data", "created", "modified", "time_last_dumped")
    return {row[0]: dict(zip(names, row[1:], strict=True)) | {"data": json.loads(row[7])} for row in rows}


def block_data(connection, database: str) -> dict[str, dict]:
    """location -> xblock_data_json of its latest row."""
    return {loc: json.loads(data) for loc, data in connection.query(
        f"SELECT location, argMax(xblock_data_json, time_last_dumped) FROM `{database}`.course_blocks "
        "GROUP BY location")}


def test_course_overviews_rows_carry_the_settings_of_real_exports(aspects):
    """No course_overviews sink runs here: the outline's dump writes each course's row, from its own settings."""
    connection, database = aspects.connection, aspects.database
    create_aspects_tables(connection, database)
    source = OlxSource([HARVARD, EXAMPLE, DARTMOUTH])
    set_course_source(source)
    keys = sorted(source.keys())
    for key in keys:
        publish(key)
    rows = overviews(connection, database)
    assert sorted(rows) == keys
    harvard = rows["course-v1:HarvardX+StudioAdv1+2T2019"]
    assert harvard["self_paced"] is True  # policy.json "course/2T2019": self_paced, language
    assert harvard["data"] == {
        "advertised_start": None, "announcement": None, "lowest_passing_grade": 0.6, "invitation_only": False,
        "max_student_enrollments_allowed": None, "effort": None, "enable_proctored_exams": False,
        "entrance_exam_enabled": False, "external_id": None, "language": "en", "tags": []}
    assert list(harvard["data"]) == ["advertised_start", "announcement", "lowest_passing_grade", "invitation_only",
                                     "max_student_enrollments_allowed", "effort", "enable_proctored_exams",
                                     "entrance_exam_enabled", "external_id", "language", "tags"]
    example = rows["course-v1:OpenedX+OLXex+2025"]
    assert (example["course_start"], example["course_end"], example["enrollment_start"], example["enrollment_end"]) \
        == ("2025-06-01 00:00:00+00:00", "2027-06-01 00:00:00+00:00", "2025-05-01 00:00:00+00:00",
            "2026-01-31 00:00:00+00:00")  # str() of the dates, as Aspects writes them
    assert example["data"]["lowest_passing_grade"] == 0.41  # grading_policy.json: the lowest GRADE_CUTOFFS
    assert example["self_paced"] is False
    dartmouth = rows["course-v1:DartmouthX+DART.ENVS.02X+course"]
    assert dartmouth["data"]["advertised_start"] == "15 June 2015" and dartmouth["data"]["language"] is None
    assert dartmouth["display_name"] == "Introduction to Environmental Science"
    for row in rows.values():  # one dump's row: its stamp, and modified sorting as the dumps do (OLX: no edit time)
        assert row["created"] == "" and row["modified"] == row["time_last_dumped"]
    summary = dump("course_outline", [keys[0]])
    result = summary.results[0]
    before = overviews(connection, database)
    (dumped_at,) = connection.query(f"SELECT dumped_at FROM `{connection.database}`.event_sinks_dump_log "
                                    "WHERE dump_id = {d:UUID}", {"d": result.dump_id})[0]
    sink = get_sink("course_outline")
    with sink.job():  # the hook again, as in the dump's job (the course read held): the insert guards itself
        sink.course(keys[0])
        committed(connection, sink, [keys[0]], result.dump_id, dumped_at, deleted=False)
    assert connection.query(f"SELECT count() FROM `{database}`.course_overviews") == [(4,)]  # the hook again: no row
    assert overviews(connection, database) == before

    # a republish wrote a newer row; a deleted course's rows go
    assert [name for key, name in course_names(connection, database)] == [rows[k]["display_name"] for k in keys]
    set_course_source(OlxSource([EXAMPLE, DARTMOUTH]))
    publish("course-v1:HarvardX+StudioAdv1+2T2019", delete=True)
    assert "course-v1:HarvardX+StudioAdv1+2T2019" not in overviews(connection, database)
    assert len(overviews(connection, database)) == 2


def test_video_windows_and_completion_modes_of_a_real_export_and_the_same_from_the_modulestore(aspects_any_engine):
    connection, database = aspects_any_engine.connection, aspects_any_engine.database
    create_aspects_tables(connection, database)
    set_course_source(OlxSource([DEMO_ZH]))
    publish(ZH_KEY)
    from_olx = block_data(connection, database)
    video = from_olx[ZH_VIDEO]
    assert (video["video_start_time"], video["video_end_time"]) == (310, 444)  # start_time="00:05:10" end 07:24
    assert video["completion_mode"] == "completable" and video["tags"] == []
    others = [data for loc, data in from_olx.items() if data["block_type"] == "video" and loc != ZH_VIDEO]
    assert others and all((d["video_start_time"], d["video_end_time"]) == (0, 0) for d in others)
    modes = {data["block_type"]: data["completion_mode"] for data in from_olx.values()}
    assert modes["vertical"] == modes["sequential"] == modes["chapter"] == modes["course"] == "aggregator"
    assert modes["html"] == modes["problem"] == ""  # classes without the attribute (Aspects: getattr(..., ""))
    assert all("video_start_time" not in d for d in from_olx.values() if d["block_type"] != "video")

    course = read_olx(DEMO_ZH)
    store = store_from_course(course)  # the same course in the stand-in modulestore: the platform's API
    set_course_source(ModulestoreSource(store))
    publish(ZH_KEY)
    assert block_data(connection, database) == from_olx


class _ObjectTags:
    """openedx-learning's ``ObjectTag.objects`` as the reader queries it: (object id, tag, parent, grandparent)."""

    def __init__(self, rows):
        self.rows = rows
        self.queries = 0

    def filter(self, *args, **kwargs):
        self.queries += 1
        return self

    def values_list(self, *fields):
        assert fields == ("object_id", "tag_id", "tag__parent_id", "tag__parent__parent_id")
        return self.rows


@pytest.fixture
def tagging(monkeypatch):
    """The platform's content tagging (openedx_tagging), holding tags of the demo course's video and course."""
    objects = _ObjectTags([(ZH_VIDEO, 31, 7, 2), (ZH_VIDEO, 40, None, None), (ZH_KEY, 5, None, None)])
    models = types.ModuleType("openedx_tagging.core.tagging.models")
    models.ObjectTag = types.SimpleNamespace(objects=objects)
    for name in ("openedx_tagging", "openedx_tagging.core", "openedx_tagging.core.tagging"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "openedx_tagging.core.tagging.models", models)
    return objects


def test_tags_come_from_the_platforms_content_tagging_in_one_query(aspects_any_engine, tagging):
    connection, database = aspects_any_engine.connection, aspects_any_engine.database
    create_aspects_tables(connection, database)
    set_course_source(ModulestoreSource(store_from_course(read_olx(DEMO_ZH))))
    publish(ZH_KEY)
    data = block_data(connection, database)
    assert data[ZH_VIDEO]["tags"] == [2, 7, 31, 40]  # the tags and their ancestors, as Aspects lists tag ids
    assert all(d["tags"] == [] for loc, d in data.items() if loc != ZH_VIDEO)
    assert overviews(connection, database)[ZH_KEY]["data"]["tags"] == [5]  # the course's own tags
    assert tagging.queries == 1  # one query for the whole course, not one per block


def test_an_unreadable_video_time_or_course_setting_is_a_warning_even_when_strict(tmp_path, caplog):
    """They are extras beyond the outline: a course that read before reads still, strict or not."""
    import shutil

    from .conftest import DEMO

    course = tmp_path / "course"
    shutil.copytree(DEMO, course)
    video = course / "video" / "welcome_video.xml"
    video.write_text(video.read_text().replace("<video ", '<video start_time="soon" end_time="00:01:30" '))
    policy = course / "policies" / "2026" / "policy.json"
    data = json.loads(policy.read_text())
    data["course/2026"]["max_student_enrollments_allowed"] = "many"
    policy.write_text(json.dumps(data))
    read = read_olx(course, strict=True)
    list(read.blocks())
    assert read.extras.videos["block-v1:EventSinks+Demo101+2026+type@video+block@welcome_video"] == (0.0, 90.0)
    assert read.settings["max_student_enrollments_allowed"] is None
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "<video> start_time: not a time 'HH:MM:SS': 'soon'" in messages
    assert '"course/2026" max_student_enrollments_allowed' in messages


def test_tags_are_read_only_for_the_aspects_compatibility(tagging, settings):
    from event_sinks.courses.modulestore import read_modulestore

    store = store_from_course(read_olx(DEMO_ZH))
    settings.EVENT_SINKS = {**settings.EVENT_SINKS, "ASPECTS": {"ENABLED": False}}
    assert read_modulestore(ZH_KEY, store=store).extras.tags == {} and tagging.queries == 0  # no query per read
    settings.EVENT_SINKS = {**settings.EVENT_SINKS, "ASPECTS": {"ENABLED": True, "DATABASE": "event_sink"}}
    assert read_modulestore(ZH_KEY, store=store).extras.tags[ZH_VIDEO] == [2, 7, 31, 40] and tagging.queries == 1


def test_a_play_window_that_cannot_be_read_in_the_modulestore_is_left_out_with_a_warning(caplog):
    from event_sinks.courses.modulestore import read_modulestore

    class Broken:
        def total_seconds(self):
            raise OverflowError("date value out of range")

    store = store_from_course(read_olx(DEMO_ZH))
    store.structure(ZH_KEY).blocks[next(k for k in store.structure(ZH_KEY).blocks
                                        if k.type == "video" and k.id in ZH_VIDEO)].fields["start_time"] = Broken()
    course = read_modulestore(ZH_KEY, store=store)
    blocks = list(course.blocks())
    assert ZH_VIDEO in {b.usage_key for b in blocks} and ZH_VIDEO not in course.extras.videos
    assert f"block {ZH_VIDEO}: its completion mode or play window cannot be read (OverflowError: " in caplog.text
    assert course.extras.completion_modes["video"] == "completable"


def test_course_rows_come_from_the_outline_only_where_no_course_overviews_sink_runs(aspects, settings):
    """With the course_overviews sink running here (the model installed and the sink on), only it writes them."""
    from event_sinks.registry import registry
    from event_sinks.sinks.course_overviews import CourseOverviewSink

    from .conftest import DEMO_KEY

    connection, database = aspects.connection, aspects.database
    create_aspects_tables(connection, database)
    added = "course_overviews" not in registry.names()  # an editable install made before the entry point
    if added:
        registry.register(CourseOverviewSink, "tests")
    try:
        settings.EVENT_SINKS = {**settings.EVENT_SINKS,
                                "SINKS": {"course_overviews": {"MODEL": "testapp.CourseOverview"}}}
        publish(DEMO_KEY)
        assert overviews(connection, database) == {}  # the model sink runs: the outline writes no course row
        settings.EVENT_SINKS = {**settings.EVENT_SINKS, "SINKS": {
            "course_overviews": {"MODEL": "testapp.CourseOverview", "ENABLED": False}}}
        publish(DEMO_KEY)
        assert list(overviews(connection, database)) == [DEMO_KEY]  # switched off: the outline's dump writes it
    finally:
        if added:
            registry.unregister("course_overviews")
