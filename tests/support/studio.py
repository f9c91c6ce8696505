"""A Studio publish as edx-platform (Ulmo) performs it, for tests and benchmarks.

* Every CMS request is one transaction: ``ATOMIC_REQUESTS`` (``cms/envs/common.py``), applied by
  Django's request handler around the view; :data:`urlpatterns` serves the publish view.
* The publish runs in a modulestore bulk operation: split sends ``XBLOCK_PUBLISHED`` for the
  published block during it, and ``course_published`` when the outermost bulk operation ends
  (``BulkOperationsMixin._end_outermost_bulk_operation``), still inside the request transaction.
* The CMS's own receiver of ``course_published`` (``listen_for_course_publish`` in
  ``cms/djangoapps/contentstore/signals/handlers.py``) sends ``COURSE_CATALOG_INFO_CHANGED`` from a
  ``transaction.on_commit`` callback, so outside any atomic block; the contentstore app is loaded
  before plugin apps, so its receiver is connected first (:func:`connect_cms_receivers`).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import transaction
from django.http import HttpResponse
from django.urls import path
from opaque_keys.edx.keys import CourseKey
from openedx_events.content_authoring.data import CourseCatalogData, CourseScheduleData, XBlockData
from openedx_events.content_authoring.signals import COURSE_CATALOG_INFO_CHANGED, XBLOCK_PUBLISHED

#: What the view publishes with: {"store": the modulestore, "signal_handler": SignalHandler, "course_key": key}
STUDIO: dict[str, Any] = {}


def publish(store: Any, signal_handler: Any, course_key: CourseKey, unit_id: str = "unit00000000") -> None:
    """Publish one unit of ``course_key`` the way Studio's publish does, signals included."""
    with store.bulk_operations(course_key):
        unit = course_key.make_usage_key("vertical", unit_id)
        XBLOCK_PUBLISHED.send_event(xblock_info=XBlockData(usage_key=unit, block_type="vertical"))
        # the outermost bulk operation ends: split sends course_published (SignalHandler.send is send_robust)
        signal_handler.course_published.send_robust(sender=type(store), course_key=course_key)


def publish_view(request: Any) -> HttpResponse:
    """The view's part of a Studio publish (the request handler wraps it in the transaction)."""
    publish(STUDIO["store"], STUDIO["signal_handler"], STUDIO["course_key"])
    return HttpResponse(f"published in a transaction: {transaction.get_connection().in_atomic_block}")


urlpatterns = [path("publish", publish_view)]


def listen_for_course_publish(sender: Any, course_key: CourseKey, **kwargs: Any) -> None:
    """The CMS's receiver: the catalog event goes out once the request's transaction has committed."""

    def emit_catalog_info_changed() -> None:
        COURSE_CATALOG_INFO_CHANGED.send_event(catalog_info=CourseCatalogData(
            course_key=course_key.for_branch(None), name="Studio publish",
            schedule_data=CourseScheduleData(start=None, pacing="instructor"), hidden=False, invitation_only=False,
        ))

    transaction.on_commit(emit_catalog_info_changed)


def connect_cms_receivers(signal_handler: Any) -> None:
    """Connect the CMS's course_published receiver (before the plugin's, as the platform's app order does)."""
    signal_handler.course_published.connect(listen_for_course_publish)


@contextmanager
def silent_clickhouse() -> Iterator[str]:
    """A TCP server that accepts connections and never answers a byte; yields its ClickHouse DSN."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
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
