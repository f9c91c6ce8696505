"""The course index: versions and changed courses from one table, without reading the modulestore.

The index is the platform's ``SplitModulestoreCourseIndex`` (``tests/support/split_modulestore_django``:
its app label and fields); split writes a course's row on every edit and publish, which
:func:`index_rows` does here for the stand-in store's courses.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from event_sinks.courses.sources import ModulestoreSource
from event_sinks.testing.modulestore import StandInModuleStore, synthetic_course
from tests.support.split_modulestore_django.models import SplitModulestoreCourseIndex

NOW = datetime(2026, 6, 1, tzinfo=UTC)
RECENT, OLD, UNINDEXED = "course-v1:Idx+Recent+R", "course-v1:Idx+Old+R", "course-v1:Idx+Unindexed+R"


def index_rows(store, edited):
    """An index row per course of ``store`` in ``edited`` ({key: edited_on}), as split keeps them."""
    for i, (key, when) in enumerate(edited.items()):
        SplitModulestoreCourseIndex.objects.create(
            objectid=f"{i:024x}", course_id=key, org="Idx", draft_version=f"d{i:023x}",
            published_version=store.structure(key).version, edited_on=when, last_update=when)
    # a legacy library: no published branch
    SplitModulestoreCourseIndex.objects.create(objectid="f" * 24, course_id="library-v1:Idx+Lib", org="Idx",
                                               library_version="a" * 24, edited_on=NOW, last_update=NOW)


@pytest.fixture
def store(db):
    store = StandInModuleStore([synthetic_course("Idx", name, "R", 100) for name in ("Recent", "Old", "Unindexed")])
    index_rows(store, {RECENT: NOW, OLD: NOW - timedelta(days=30)})
    return store


def test_versions_come_from_the_index_without_reading_the_store(store):
    source = ModulestoreSource(store, course_index=True)
    assert source.version(RECENT) == store.structure(RECENT).version
    assert store.reads == []
    # a course the index does not hold is asked of the store (its root only)
    assert source.version(UNINDEXED) == store.structure(UNINDEXED).version
    assert [(key, depth) for key, depth, _ in store.reads] == [(UNINDEXED, 0)]


def test_since_lists_the_courses_edited_since_from_the_index(store):
    source = ModulestoreSource(store, course_index=True)
    assert list(source.keys_since(NOW - timedelta(days=1))) == [RECENT]  # not the library, not the old course
    assert store.reads == []
    assert list(source.keys_since(NOW - timedelta(days=60))) == [OLD, RECENT]


def test_without_the_index_since_reads_each_course_root(store):
    source = ModulestoreSource(store)  # a stand-in store does not answer from the platform's index by default
    since = datetime(2025, 1, 1, 8, tzinfo=UTC)  # synthetic courses were last edited 2025-01-01 11:12
    assert sorted(source.keys_since(since)) == [OLD, RECENT, UNINDEXED]
    assert {depth for _, depth, _ in store.reads} == {0}  # roots only, never a full read
    assert list(source.keys_since(datetime(2025, 1, 2, tzinfo=UTC))) == []
