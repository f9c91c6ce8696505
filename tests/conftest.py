"""Fixtures: a real ClickHouse engine (embedded chDB, or chDB behind the HTTP endpoint) per test."""

from __future__ import annotations

import itertools
import logging
import os
import sys
import types
import uuid
from pathlib import Path

import pytest
from django.dispatch import Signal

from event_sinks.clickhouse import Connection, close_connections
from event_sinks.conf import get_settings
from event_sinks.registry import registry

from .support import sample_sink
from .support.chhttp import ClickHouseHTTPServer

SHARED_COURSES = Path(__file__).resolve().parents[1].parent / "shared" / "courses"
_counter = itertools.count()


@pytest.fixture(autouse=True)
def _root_log_level():
    """Celery's test worker (``start_worker``) sets the root logger to its loglevel, ERROR, and never back:
    restore it after each test, so a later test's caplog still sees warnings."""
    root = logging.getLogger()
    level = root.level
    yield
    root.setLevel(level)


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory):
    """The one embedded data directory of this test process (chDB allows one per process)."""
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(scope="session")
def http_server(tmp_path_factory):
    """A ClickHouse HTTP endpoint over chDB in its own process, for the whole session."""
    server = ClickHouseHTTPServer(tmp_path_factory.mktemp("chhttp"), user="tester", password="s3cret-pw")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def database():
    """A database name unique to the test, so tests never see each other's rows."""
    return f"t_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"


def _configure(settings, dsn, database, **extra):
    settings.EVENT_SINKS = {"DSN": dsn, "DATABASE": database, "DISPATCH": "sync", **extra}
    close_connections()


@pytest.fixture(params=["embedded", "http"])
def engine(request, settings, chdb_dir, database):
    """An Engine on a fresh database: embedded chDB, then the same tests over HTTP."""
    if request.param == "embedded":
        dsn = f"chdb://{chdb_dir}"
    else:
        server = request.getfixturevalue("http_server")
        if not server.running:
            server.start()
        dsn = server.dsn.rsplit("/", 1)[0] + f"/{database}"
    _configure(settings, dsn, database)
    engine = Connection(get_settings())
    yield engine
    if request.param == "http":
        engine.close()


@pytest.fixture
def embedded(settings, chdb_dir, database):
    """Settings pointing at the embedded engine on a fresh database."""
    _configure(settings, f"chdb://{chdb_dir}", database)
    return get_settings()


@pytest.fixture
def words():
    """The sample words sink, registered for the test and its source reset."""
    sample_sink.SOURCE.clear()
    sample_sink.FAIL_AFTER.clear()
    registry.register(sample_sink.WordsSink, "tests")
    yield registry.get("test_words")
    registry.unregister("test_words")


@pytest.fixture
def signal_handler(monkeypatch):
    """edx-platform's ``xmodule.modulestore.django.SignalHandler`` signals (which need the platform).

    Only the two Django signals the sinks connect to, with the same names and kwargs.
    """
    module = types.ModuleType("xmodule.modulestore.django")

    class SignalHandler:
        course_published = Signal()
        course_deleted = Signal()

    module.SignalHandler = SignalHandler
    for name in ("xmodule", "xmodule.modulestore"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "xmodule.modulestore.django", module)
    return SignalHandler


@pytest.fixture
def shared_courses():
    """The real OLX exports beside the repository; tests skip when they are absent."""
    if not SHARED_COURSES.is_dir():
        pytest.skip(f"real course exports not found at {SHARED_COURSES} (../shared/courses)")
    return SHARED_COURSES
