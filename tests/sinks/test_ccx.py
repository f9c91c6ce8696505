"""CCX runs: dumped with their master course on publish, under their own keys, listed by --all.

The platform side is stood in for: the ``ccx.CustomCourseForEdX`` model (``tests/support/ccx``, the
platform's app label and fields) and the CCX modulestore wrapper's reads (the stand-in store serves a
run's ``get_course`` from its master's structure under ``ccx-block-v1:`` keys, as
``lms/djangoapps/ccx/modulestore.py`` does). ``FEATURES["CUSTOM_COURSES_EDX"]`` switches CCX on, as
in the platform.
"""

from __future__ import annotations

import pytest

from event_sinks import receivers
from event_sinks.clickhouse import get_connection
from event_sinks.courses.sources import ModulestoreSource, set_course_source
from event_sinks.testing.modulestore import StandInModuleStore, synthetic_course
from tests.support.ccx.models import CustomCourseForEdX

MASTER = "course-v1:Ccx+Master+R"
OTHER = "course-v1:Ccx+Other+R"
N = 120


def outline_counts():
    engine = get_connection()
    return dict(engine.query(f"SELECT course_key, count() FROM `{engine.database}`.course_outline GROUP BY course_key"))


def edge_counts():
    engine = get_connection()
    return dict(engine.query(
        f"SELECT course_key, count() FROM `{engine.database}`.block_relationships GROUP BY course_key"))


@pytest.fixture
def platform(embedded, settings, signal_handler, transactional_db):
    """Two courses in the stand-in store, two CCX runs of the first and one of the second; receivers wired.

    A transactional database: the signals are sent outside a transaction, so the dumps happen at once.
    """
    settings.FEATURES = {"CUSTOM_COURSES_EDX": True}
    store = StandInModuleStore([synthetic_course("Ccx", "Master", "R", N), synthetic_course("Ccx", "Other", "R", N)])
    set_course_source(ModulestoreSource(store))
    runs = [CustomCourseForEdX.objects.create(course_id=key, display_name=f"run of {key}")
            for key in (MASTER, OTHER, MASTER)]
    receivers.disconnect_all()
    receivers.connect_all()
    yield {"store": store, "runs": [f"ccx-v1:Ccx+{'Master' if r.course_id == MASTER else 'Other'}+R+ccx@{r.id}"
                                    for r in runs], "signals": signal_handler}
    receivers.disconnect_all()
    receivers.connect_all()
    set_course_source(None)


def test_a_published_course_dumps_its_ccx_runs_under_their_own_keys(platform):
    master_runs = [platform["runs"][0], platform["runs"][2]]
    platform["signals"].course_published.send(sender=None, course_key=MASTER)
    assert outline_counts() == {MASTER: N, master_runs[0]: N, master_runs[1]: N}  # not the other course's run
    assert edge_counts() == {MASTER: N - 1, master_runs[0]: N - 1, master_runs[1]: N - 1}
    engine = get_connection()
    locations = [r[0] for r in engine.query(
        f"SELECT location FROM `{engine.database}`.course_outline WHERE course_key = {{k:String}} "
        "ORDER BY order_in_course LIMIT 2", {"k": master_runs[0]})]
    run = master_runs[0].removeprefix("ccx-v1:")
    assert locations == [f"ccx-block-v1:{run}+type@course+block@course",
                         f"ccx-block-v1:{run}+type@chapter+block@chapter0000"]  # what its tracking events carry
    # one full read per course: the master, and each run through the CCX wrapper
    assert platform["store"].full_reads(MASTER) == 1 and all(platform["store"].full_reads(k) == 1 for k in master_runs)


def test_without_the_ccx_feature_only_the_course_is_dumped(platform, settings):
    settings.FEATURES = {"CUSTOM_COURSES_EDX": False}
    platform["signals"].course_published.send(sender=None, course_key=MASTER)
    assert outline_counts() == {MASTER: N}


def test_a_deleted_course_takes_its_ccx_runs_out_of_the_current_views(platform):
    platform["signals"].course_published.send(sender=None, course_key=MASTER)
    assert len(outline_counts()) == 3  # the course and its two runs
    platform["signals"].course_deleted.send(sender=None, course_key=MASTER)
    assert outline_counts() == {}


def test_the_modulestore_source_lists_each_course_then_its_runs(platform):
    assert list(ModulestoreSource(platform["store"]).keys()) == [MASTER, platform["runs"][0], platform["runs"][2],
                                                                 OTHER, platform["runs"][1]]
