"""One Studio publish, in the platform's order and transactions, with the plugin's platform defaults.

What edx-platform does when an author publishes (Ulmo), and how this test does the same:

* Every CMS request is one transaction: ``ATOMIC_REQUESTS`` (``cms/envs/common.py``), which Django's
  request handler applies around the view. Here: a real request through Django's test client to a
  view, with ``ATOMIC_REQUESTS`` on the database connection.
* The publish runs inside a modulestore bulk operation; split sends ``XBLOCK_PUBLISHED`` for the
  published block during it, and ``course_published`` when the outermost bulk operation ends
  (``BulkOperationsMixin._end_outermost_bulk_operation``), still inside the request transaction.
* The CMS's own receiver of ``course_published`` (``listen_for_course_publish`` in
  ``cms/djangoapps/contentstore/signals/handlers.py``) sends ``COURSE_CATALOG_INFO_CHANGED`` from a
  ``transaction.on_commit`` callback, i.e. outside any atomic block; the contentstore app is loaded
  before plugin apps, so its receiver comes first.
* The plugin's settings are the ones its platform settings produce (``tests/support/openedx_envs/``):
  dispatch ``celery``. The course lives in the modulestore stand-in (``event_sinks.testing``), which
  counts every ``get_course`` with its depth and thread.

The ClickHouse the web process is configured with accepts connections and never answers: if the
request thread touched it, the request would take at least the connect timeout.
"""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager

import pytest

pytest.importorskip("celery")

from celery import Celery, signals  # noqa: E402
from celery.contrib.testing.worker import start_worker  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.db import connections, transaction  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import path  # noqa: E402
from opaque_keys.edx.keys import CourseKey  # noqa: E402
from openedx_events.content_authoring.data import CourseCatalogData, CourseScheduleData, XBlockData  # noqa: E402
from openedx_events.content_authoring.signals import COURSE_CATALOG_INFO_CHANGED, XBLOCK_PUBLISHED  # noqa: E402

from event_sinks import receivers, tasks  # noqa: E402
from event_sinks.clickhouse import close_connections, get_connection  # noqa: E402
from event_sinks.courses.sources import ModulestoreSource, set_course_source  # noqa: E402
from event_sinks.testing.modulestore import StandInModuleStore, synthetic_course  # noqa: E402

from .support.openedx_envs import production_settings  # noqa: E402

KEY = "course-v1:Studio+Publish+2026"
COURSE_KEY = CourseKey.from_string(KEY)
BLOCKS = 2_000
QUEUE = "event_sinks_studio_publish"
STATE: dict = {}  # what the view needs: the store and the platform's signals


def studio_publish(request):
    """The view's part of a publish: a bulk operation that publishes one unit, then its end."""
    store, handler = STATE["store"], STATE["signal_handler"]
    with store.bulk_operations(COURSE_KEY):
        unit = COURSE_KEY.make_usage_key("vertical", "unit00000000")
        XBLOCK_PUBLISHED.send_event(xblock_info=XBlockData(usage_key=unit, block_type="vertical"))
        # the outermost bulk operation ends: split sends course_published (still in the request's transaction)
        handler.course_published.send_robust(sender=type(store), course_key=COURSE_KEY)
    return HttpResponse(f"published in a transaction: {transaction.get_connection().in_atomic_block}")


urlpatterns = [path("publish", studio_publish)]


def listen_for_course_publish(sender, course_key, **kwargs):
    """The CMS's receiver: the catalog event goes out once the request's transaction has committed."""

    def emit_catalog_info_changed():
        COURSE_CATALOG_INFO_CHANGED.send_event(catalog_info=CourseCatalogData(
            course_key=course_key.for_branch(None), name="Studio publish",
            schedule_data=CourseScheduleData(start=None, pacing="instructor"), hidden=False, invitation_only=False,
        ))

    transaction.on_commit(emit_catalog_info_changed)


@contextmanager
def silent_clickhouse():
    """A TCP server that accepts connections and never answers a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/studio"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


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
    STATE.update(store=store, signal_handler=signal_handler)
    signal_handler.course_published.connect(listen_for_course_publish)  # the contentstore app's, first
    receivers.disconnect_all()
    receivers.connect_all()  # as AppConfig.ready() connects them, after the platform's apps
    app = Celery("studio_publish_tests", set_as_current=False)
    app.conf.update(broker_url="memory://", result_backend="cache+memory://", task_default_queue=QUEUE,
                    broker_transport_options={"polling_interval": 0.01}, worker_hijack_root_logger=False)
    import celery.contrib.testing.tasks  # noqa: F401  (the ping task start_worker checks with)

    monkeypatch.setitem(connections["default"].settings_dict, "ATOMIC_REQUESTS", True)
    settings.ROOT_URLCONF = __name__
    published = Published()
    signals.after_task_publish.connect(published)
    cache.clear()
    with silent_clickhouse() as dsn:
        yaml = (f"EVENT_SINKS:\n  DSN: {dsn}\n  DATABASE: {database}\n  CONNECT_TIMEOUT: 1\n"
                f"  SEND_RECEIVE_TIMEOUT: 1\n  CELERY_QUEUE: {QUEUE}\n  COALESCE_SECONDS: 0.5\n")
        settings.EVENT_SINKS = production_settings(monkeypatch, tmp_path, yaml).EVENT_SINKS
        close_connections()
        app.set_current()
        yield {"store": store, "app": app, "published": published, "settings": settings, "database": database,
               "chdb": chdb_dir}
    signals.after_task_publish.disconnect(published)
    receivers.disconnect_all()
    receivers.connect_all()
    set_course_source(None)
    STATE.clear()
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
    done = threading.Event()
    results = []

    def on_success(sender=None, result=None, **kwargs):
        if sender.name == tasks.TASK_NAME:
            results.append(result)
            done.set()

    signals.task_success.connect(on_success)
    try:
        with start_worker(studio["app"], pool="solo", queues=[QUEUE], shutdown_timeout=10, perform_ping_check=False):
            assert done.wait(60), "the dump task did not finish"
    finally:
        signals.task_success.disconnect(on_success)

    worker_reads = [(key, depth) for key, depth, thread in store.reads]
    assert worker_reads.count((KEY, None)) == 1  # exactly one full read, for both course sinks
    assert [(r["sink"], r["status"]) for r in results[0]] == [("block_relationships", "dumped"),
                                                               ("course_outline", "dumped")]
    engine = get_connection()
    outline = engine.query(f"SELECT count() FROM `{engine.database}`.course_outline WHERE course_key = {{k:String}}",
                           {"k": KEY})[0][0]
    edges = engine.query(f"SELECT count() FROM `{engine.database}`.block_relationships "
                         "WHERE course_key = {k:String}", {"k": KEY})[0][0]
    assert outline == BLOCKS and edges == BLOCKS - 1  # every block, and one parent edge per non-root block
