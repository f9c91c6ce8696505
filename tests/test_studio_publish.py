"""One Studio publish, in the platform's order and transactions, with the plugin's platform defaults.

The publish is :mod:`tests.support.studio`'s (a real request with ``ATOMIC_REQUESTS``, the signals in
split's and the CMS's order: see there). The plugin's settings are the ones its platform settings
produce (``tests/support/openedx_envs/``): dispatch ``celery``. The course lives in the modulestore
stand-in (``event_sinks.testing``), which counts every ``get_course`` with its depth and thread.

The ClickHouse the web process is configured with accepts connections and never answers: if the
request thread touched it, the request would take at least the connect timeout.
"""

from __future__ import annotations

import time

import pytest

pytest.importorskip("celery")

from celery import Celery, signals  # noqa: E402
from celery import _state as celery_state  # noqa: E402
from celery.contrib.testing.worker import start_worker  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.db import connections  # noqa: E402
from django.test import Client  # noqa: E402
from opaque_keys.edx.keys import CourseKey  # noqa: E402

from event_sinks import receivers, tasks  # noqa: E402
from event_sinks.clickhouse import close_connections, get_connection  # noqa: E402
from event_sinks.courses.sources import ModulestoreSource, set_course_source  # noqa: E402
from event_sinks.testing.modulestore import StandInModuleStore, synthetic_course  # noqa: E402

from .support import studio as cms  # noqa: E402
from .support.openedx_envs import production_settings  # noqa: E402

KEY = "course-v1:Studio+Publish+2026"
COURSE_KEY = CourseKey.from_string(KEY)
BLOCKS = 2_000
QUEUE = "event_sinks_studio_publish"
class Published:
    """The dump tasks that left the web process, from Celery's own after_task_publish signal."""

    def __init__(self):
        self.messages: list[dict] = []

    def __call__(self, sender=None, headers=None, body=None, routing_key=None, **kwargs):
        if sender == tasks.TASK_NAME:
            self.messages.append({"args": list(body[0]), "routing_key": routing_key})


@pytest.fixture
def studio(settings, monkeypatch, tmp_path, signal_handler, chdb_dir, database):
    """The CMS: platform settings with a silent ClickHouse, the stand-in store, ATOMIC_REQUESTS, Celery."""
    store = StandInModuleStore([synthetic_course("Studio", "Publish", "2026", BLOCKS)])
    set_course_source(ModulestoreSource(store))
    cms.STUDIO.update(store=store, signal_handler=signal_handler, course_key=COURSE_KEY)
    cms.connect_cms_receivers(signal_handler)  # the contentstore app's, first
    receivers.disconnect_all()
    receivers.connect_all()  # as AppConfig.ready() connects them, after the platform's apps
    app = Celery("studio_publish_tests", set_as_current=False)
    app.conf.update(broker_url="memory://", result_backend="cache+memory://", task_default_queue=QUEUE,
                    broker_transport_options={"polling_interval": 0.01}, worker_hijack_root_logger=False)
    import celery.contrib.testing.tasks  # noqa: F401  (the ping task start_worker checks with)

    monkeypatch.setitem(connections["default"].settings_dict, "ATOMIC_REQUESTS", True)
    settings.ROOT_URLCONF = cms.__name__
    published = Published()
    signals.after_task_publish.connect(published)
    cache.clear()
    with cms.silent_clickhouse() as dsn:
        yaml = (f"EVENT_SINKS:\n  DSN: {dsn}\n  DATABASE: {database}\n  CONNECT_TIMEOUT: 1\n"
                f"  SEND_RECEIVE_TIMEOUT: 1\n  CELERY_QUEUE: {QUEUE}\n  COALESCE_SECONDS: 0.5\n")
        settings.EVENT_SINKS = production_settings(monkeypatch, tmp_path, yaml).EVENT_SINKS
        close_connections()
        # the apps other tests' workers run with (start_worker makes its app current and default): set back after
        previous, previous_default = celery_state.get_current_app(), celery_state.default_app
        app.set_current()
        try:
            yield {"store": store, "app": app, "published": published, "settings": settings,
                   "database": database, "chdb": chdb_dir}
        finally:
            previous.set_current()
            celery_state.set_default_app(previous_default)
    signals.after_task_publish.disconnect(published)
    receivers.disconnect_all()
    receivers.connect_all()
    set_course_source(None)
    cms.STUDIO.clear()
    cache.clear()
    close_connections()


@pytest.mark.django_db(transaction=True)
def test_a_studio_publish_reads_nothing_in_the_request_and_once_in_the_worker(studio):
    assert studio["settings"].EVENT_SINKS["DISPATCH"] == "celery"  # the plugin's platform default
    store, published = studio["store"], studio["published"]

    started = time.perf_counter()
    response = Client().get("/publish")
    request_seconds = time.perf_counter() - started
    assert response.status_code == 200 and response.content == b"published in a transaction: True"

    # The request thread read nothing (not even a version) and never waited for the silent ClickHouse.
    assert store.reads == []
    assert request_seconds < 0.5, f"the request took {request_seconds:.3f} s"
    # Three signals (XBLOCK_PUBLISHED, course_published, the catalog event after commit): one task for both sinks.
    assert published.messages == [{"args": [["block_relationships", "course_outline"], KEY, False],
                                   "routing_key": QUEUE}]

    # The worker: now with a ClickHouse that answers (the embedded engine).
    studio["settings"].EVENT_SINKS = {**studio["settings"].EVENT_SINKS, "DSN": f"chdb://{studio['chdb']}",
                                      "EMBEDDED_ALLOWED": True}
    close_connections()

    def dumped_sinks():
        engine = get_connection()
        try:
            return sorted(r[0] for r in engine.query(
                f"SELECT sink FROM `{engine.database}`.event_sinks_dump_log WHERE key = {{k:String}}", {"k": KEY}))
        except Exception:  # the ledger is made by the first dump
            return []

    # Completion is read from the ledger, not from Celery's signals: a worker's tracer keeps the
    # signal receivers it saw, and other tests' workers must not inherit ours.
    with start_worker(studio["app"], pool="solo", queues=[QUEUE], shutdown_timeout=10, perform_ping_check=False):
        deadline = time.monotonic() + 60
        while dumped_sinks() != ["block_relationships", "course_outline"] and time.monotonic() < deadline:
            time.sleep(0.1)
    assert dumped_sinks() == ["block_relationships", "course_outline"], "the dump task did not finish"

    worker_reads = [(key, depth) for key, depth, thread in store.reads]
    assert worker_reads.count((KEY, None)) == 1  # exactly one full read, for both course sinks
    engine = get_connection()
    outline = engine.query(f"SELECT count() FROM `{engine.database}`.course_outline WHERE course_key = {{k:String}}",
                           {"k": KEY})[0][0]
    edges = engine.query(f"SELECT count() FROM `{engine.database}`.block_relationships "
                         "WHERE course_key = {k:String}", {"k": KEY})[0][0]
    assert outline == BLOCKS and edges == BLOCKS - 1  # every block, and one parent edge per non-root block
