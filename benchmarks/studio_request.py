"""What the plugin adds to a Studio publish request: time in the request thread, course reads, tasks sent.

    python benchmarks/studio_request.py              # 200 requests with the plugin, 200 without
    python benchmarks/studio_request.py --requests 50

The request is :mod:`tests.support.studio`'s publish (a real Django request with ``ATOMIC_REQUESTS``,
the signals in split's and the CMS's order, the catalog event from ``on_commit``), on a 2,000-block
course of the modulestore stand-in, with the plugin's platform defaults (``DISPATCH = celery``) and
a ClickHouse that accepts connections and never answers. Celery sends to kombu's in-memory broker,
so the time of a real broker's round trip (Redis: a fraction of a millisecond on a LAN) is not in
the figure. Requests with and without the plugin's receivers alternate; the coalescing cache is
cleared before each, so every publish sends its task. Figures are from this stand-in, not a real CMS.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _platform_signals() -> type:
    """``xmodule.modulestore.django.SignalHandler``'s two signals (edx-platform is not installed here)."""
    from django.dispatch import Signal

    module = types.ModuleType("xmodule.modulestore.django")

    class SignalHandler:
        course_published = Signal()
        course_deleted = Signal()

    module.SignalHandler = SignalHandler  # type: ignore[attr-defined]
    for name in ("xmodule", "xmodule.modulestore"):
        sys.modules[name] = types.ModuleType(name)
    sys.modules["xmodule.modulestore.django"] = module
    return SignalHandler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="requests with the plugin (and as many without)")
    args = parser.parse_args()

    import django
    from django.conf import settings

    from tests.support import studio

    with studio.silent_clickhouse() as dsn:
        from event_sinks.settings.common import PLATFORM_DEFAULTS

        signal_handler = _platform_signals()
        settings.configure(
            INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "openedx_events", "event_sinks"],
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:",
                                   "ATOMIC_REQUESTS": True}},
            ROOT_URLCONF=studio.__name__, ALLOWED_HOSTS=["testserver"], USE_TZ=True, TIME_ZONE="UTC",
            SECRET_KEY="benchmark", LOGGING_CONFIG=None,
            EVENT_SINKS={**PLATFORM_DEFAULTS, "DSN": dsn, "CONNECT_TIMEOUT": 1, "SEND_RECEIVE_TIMEOUT": 1,
                         "COALESCE_SECONDS": 5},
        )
        studio.connect_cms_receivers(signal_handler)  # before django.setup(): ready() connects ours after
        django.setup()

        from celery import Celery, signals
        from django.core.cache import cache
        from django.test import Client
        from opaque_keys.edx.keys import CourseKey

        from event_sinks import receivers, tasks
        from event_sinks.courses.sources import ModulestoreSource, set_course_source
        from event_sinks.testing.modulestore import StandInModuleStore, synthetic_course

        app = Celery("studio_request_benchmark", set_as_current=True)
        app.conf.update(broker_url="memory://", task_default_queue="benchmark")
        store = StandInModuleStore([synthetic_course("Studio", "Bench", "2026", 2_000)])
        set_course_source(ModulestoreSource(store))
        studio.STUDIO.update(store=store, signal_handler=signal_handler,
                             course_key=CourseKey.from_string("course-v1:Studio+Bench+2026"))
        sent: list[object] = []
        signals.after_task_publish.connect(
            lambda sender=None, **kwargs: sent.append(sender) if sender == tasks.TASK_NAME else None, weak=False)
        client = Client()
        timings: dict[bool, list[float]] = {True: [], False: []}
        for i in range(2 * args.requests + 20):  # the first 20 warm up (imports, first connections)
            plugin = i % 2 == 0
            if plugin:
                receivers.connect_all()
            else:
                receivers.disconnect_all()
            cache.clear()
            start = time.perf_counter()
            response = client.get("/publish")
            elapsed = time.perf_counter() - start
            assert response.status_code == 200, response.content
            if i >= 20:
                timings[plugin].append(elapsed * 1000)
        receivers.connect_all()

    with_plugin, without = sorted(timings[True]), sorted(timings[False])
    p95 = int(len(with_plugin) * 0.95) - 1
    full_reads = store.full_reads()
    print(f"Studio publish request, {args.requests} with the plugin and {args.requests} without "
          f"(stand-in store, 2,000 blocks, in-memory Celery broker, silent ClickHouse):")
    print(f"  without the plugin: p50 {statistics.median(without):.2f} ms, p95 {without[p95]:.2f} ms")
    print(f"  with the plugin:    p50 {statistics.median(with_plugin):.2f} ms, p95 {with_plugin[p95]:.2f} ms")
    print(f"  added by the plugin: p50 {statistics.median(with_plugin) - statistics.median(without):.2f} ms, "
          f"p95 {with_plugin[p95] - without[p95]:.2f} ms")
    print(f"  course reads in the request thread: {len(store.reads)} ({full_reads} full); "
          f"tasks sent: {len(sent)} for {args.requests + 10} publishes with the plugin")


if __name__ == "__main__":
    main()
