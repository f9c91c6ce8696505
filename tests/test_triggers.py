"""Publish signals -> dumps: the real openedx-events signals, coalescing, on_commit, host safety."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.db import transaction
from opaque_keys.edx.keys import CourseKey, UsageKey
from openedx_events.content_authoring.data import CourseCatalogData, CourseData, CourseScheduleData, XBlockData
from openedx_events.content_authoring.signals import (
    COURSE_CATALOG_INFO_CHANGED,
    COURSE_IMPORT_COMPLETED,
    COURSE_RERUN_COMPLETED,
    XBLOCK_DELETED,
    XBLOCK_PUBLISHED,
)

from event_sinks import get_sink, receivers
from event_sinks.clickhouse import get_connection
from event_sinks.courses.sources import OlxSource, set_course_source
from event_sinks.dumping import Dumper

DEMO = Path(__file__).resolve().parents[1] / "event_sinks" / "demo" / "course"
KEY = "course-v1:EventSinks+Demo101+2026"
COURSE_KEY = CourseKey.from_string(KEY)


@pytest.fixture
def wired(embedded, signal_handler, settings):
    """Receivers connected as at AppConfig.ready(), courses read from the demo export."""
    set_course_source(OlxSource([DEMO]))
    for name in ("course_outline", "block_relationships"):
        Dumper(get_sink(name)).ensure_schema()
    receivers.disconnect_all()
    assert receivers.connect_all() == 2 * 7  # both course sinks x 7 triggers
    yield signal_handler
    receivers.disconnect_all()
    receivers.connect_all()
    set_course_source(None)


def dumps_of(sink):
    engine = get_connection()
    return engine.query(
        f"SELECT count() FROM `{engine.database}`.event_sinks_dump_log "
        "WHERE sink = {s:String} AND key = {k:String}",
        {"s": sink, "k": KEY},
    )[0][0]


def outline_rows():
    engine = get_connection()
    return engine.query(f"SELECT count() FROM `{engine.database}`.course_outline WHERE course_key = {{k:String}}",
                        {"k": KEY})[0][0]


def catalog_info():
    return CourseCatalogData(
        course_key=COURSE_KEY, name="Rivers", schedule_data=CourseScheduleData(start=datetime.now(UTC), pacing="self")
    )


def xblock(block_type="html", block_id="welcome_text"):
    return XBlockData(usage_key=COURSE_KEY.make_usage_key(block_type, block_id), block_type=block_type)


SIGNALS = {
    "COURSE_CATALOG_INFO_CHANGED": lambda: COURSE_CATALOG_INFO_CHANGED.send_event(catalog_info=catalog_info()),
    "XBLOCK_PUBLISHED": lambda: XBLOCK_PUBLISHED.send_event(xblock_info=xblock()),
    "XBLOCK_DELETED": lambda: XBLOCK_DELETED.send_event(xblock_info=xblock()),
    "COURSE_IMPORT_COMPLETED": lambda: COURSE_IMPORT_COMPLETED.send_event(course=CourseData(course_key=COURSE_KEY)),
    "COURSE_RERUN_COMPLETED": lambda: COURSE_RERUN_COMPLETED.send_event(course=CourseData(course_key=COURSE_KEY)),
}


@pytest.mark.parametrize("signal", sorted(SIGNALS))
def test_each_openedx_event_dumps_the_course(wired, signal):
    SIGNALS[signal]()
    assert dumps_of("course_outline") == 1 and dumps_of("block_relationships") == 1
    assert outline_rows() == 21


def test_course_published_signal_of_the_platform(wired):
    wired.course_published.send(sender=None, course_key=COURSE_KEY)
    assert outline_rows() == 21


def test_publish_burst_is_one_dump_per_sink(wired):
    # What one Studio publish sends: course_published, the catalog event, one XBLOCK_PUBLISHED per block.
    wired.course_published.send(sender=None, course_key=COURSE_KEY)
    COURSE_CATALOG_INFO_CHANGED.send_event(catalog_info=catalog_info())
    for block_type, block_id in [("vertical", "intro_unit"), ("html", "welcome_text"), ("video", "welcome_video")]:
        XBLOCK_PUBLISHED.send_event(xblock_info=xblock(block_type, block_id))
    assert dumps_of("course_outline") == 1 and dumps_of("block_relationships") == 1


def test_course_deleted_removes_rows(wired):
    wired.course_published.send(sender=None, course_key=COURSE_KEY)
    assert outline_rows() == 21
    wired.course_deleted.send(sender=None, course_key=COURSE_KEY)
    assert outline_rows() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("strategy", ["on_commit", "sync"])
def test_inside_a_transaction_dumps_once_after_commit_and_nothing_on_rollback(wired, settings, strategy):
    # A Studio request is one transaction (ATOMIC_REQUESTS): even "sync" must not read uncommitted state.
    settings.EVENT_SINKS = {**settings.EVENT_SINKS, "DISPATCH": strategy}

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        wired.course_published.send(sender=None, course_key=COURSE_KEY)
        raise Rollback
    assert dumps_of("course_outline") == 0

    with transaction.atomic():
        wired.course_published.send(sender=None, course_key=COURSE_KEY)
        COURSE_CATALOG_INFO_CHANGED.send_event(catalog_info=catalog_info())
        assert dumps_of("course_outline") == 0  # not before the commit
    assert dumps_of("course_outline") == 1 and outline_rows() == 21


def test_receiver_failure_never_reaches_the_sender(wired, settings, caplog):
    settings.EVENT_SINKS = {**settings.EVENT_SINKS, "DSN": "http://u:topsecret@127.0.0.1:9/db", "CONNECT_TIMEOUT": 1}
    caplog.set_level(logging.WARNING)
    responses = COURSE_CATALOG_INFO_CHANGED.send_event(catalog_info=catalog_info())
    assert all(not isinstance(r[1], Exception) for r in responses)
    wired.course_published.send(sender=None, course_key=COURSE_KEY)  # plain Django send: would raise
    text = caplog.text
    assert "course_outline" in text and KEY in text and "unreachable" in text
    assert "topsecret" not in text


def test_disabled_sink_is_not_dumped(wired, settings):
    settings.EVENT_SINKS = {**settings.EVENT_SINKS, "SINKS": {"block_relationships": {"ENABLED": False}}}
    wired.course_published.send(sender=None, course_key=COURSE_KEY)
    assert dumps_of("course_outline") == 1 and dumps_of("block_relationships") == 0


def test_usage_key_of_xblock_maps_to_its_course():
    from event_sinks.sinks.course_sink import COURSE_TRIGGERS

    trigger = next(t for t in COURSE_TRIGGERS if t.signal.endswith("XBLOCK_PUBLISHED"))
    usage = UsageKey.from_string(f"block-v1:{KEY[10:]}+type@video+block@abc")
    assert str(trigger.key({"xblock_info": XBlockData(usage_key=usage, block_type="video")})) == KEY


# -- keys as the platform sends them ----------------------------------------------------------------------


def test_branch_and_version_are_stripped_from_keys(wired):
    draft = CourseKey.from_string(f"{KEY}+branch@draft-branch+version@5d1b3c2f8e7a6b5c4d3e2f1a")
    # XBLOCK_DELETED carries the location as its caller gave it, branch and version included.
    XBLOCK_DELETED.send_event(xblock_info=XBlockData(usage_key=draft.make_usage_key("html", "welcome_text"),
                                                     block_type="html"))
    wired.course_published.send(sender=None, course_key=draft)
    assert dumps_of("course_outline") == 1 and outline_rows() == 21  # under the plain key, once
    sink = get_sink("course_outline")
    assert sink.normalize_key(str(draft)) == KEY
    assert sink.normalize_key(f"{KEY}+branch@published-branch") == KEY


def test_content_library_keys_are_ignored_quietly(wired, caplog):
    library = CourseKey.from_string("library-v1:EventSinks+Lib")
    with caplog.at_level(logging.DEBUG, logger="event_sinks"):
        wired.course_published.send(sender=None, course_key=library)
        XBLOCK_PUBLISHED.send_event(xblock_info=XBlockData(usage_key=library.make_usage_key("html", "h1"),
                                                           block_type="html"))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "is a content library, not a course" in caplog.text
    engine = get_connection()
    assert engine.query(f"SELECT count() FROM `{engine.database}`.event_sinks_dump_log")[0][0] == 0
