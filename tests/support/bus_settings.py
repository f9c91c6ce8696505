"""Django settings for the Event Bus round trip (tests/test_event_bus.py): producer and consumer processes.

Both processes use this module (``DJANGO_SETTINGS_MODULE=tests.support.bus_settings``, the repository root on
``PYTHONPATH``); the test passes everything that changes per run through the environment:

``EVENT_SINKS_BUS_REDIS_URL``  the Redis server the test started (required)
``EVENT_SINKS_BUS_DSN``        the ClickHouse HTTP endpoint the course sinks write to (required)
``EVENT_SINKS_BUS_ROLE``       ``consumer`` (default) or ``producer``
``EVENT_SINKS_BUS_PREFIX``     the topic prefix, unique per run (default ``event-sinks-test``)
``EVENT_SINKS_BUS_SQLITE``     a SQLite file for Django's database (default in memory)

The producer process has the course sinks switched off, so every row in ClickHouse was written by the
consumer, after the event crossed Redis. The consumer process also installs a probe app whose receiver
logs the ``from_event_bus`` flag and event id each COURSE_CATALOG_INFO_CHANGED arrives with.
"""

import logging
import os
from pathlib import Path

from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_COURSE = REPO_ROOT / "event_sinks" / "demo" / "course"


def _required(name):
    value = os.environ.get(name)
    if not value:
        raise ImproperlyConfigured(f"tests.support.bus_settings needs the environment variable {name}")
    return value


ROLE = os.environ.get("EVENT_SINKS_BUS_ROLE", "consumer")
if ROLE not in ("consumer", "producer"):
    raise ImproperlyConfigured(f"EVENT_SINKS_BUS_ROLE must be 'consumer' or 'producer', found {ROLE!r}")

SECRET_KEY = "event-sinks-bus-tests"
USE_TZ = True
TIME_ZONE = "UTC"
DEBUG = False  # openedx-events sends with send_robust only when DEBUG is off, as in production
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "openedx_events",
    "event_sinks",
]
if ROLE == "consumer":
    INSTALLED_APPS.append("tests.support.bus_settings.BusProbeConfig")
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EVENT_SINKS_BUS_SQLITE") or ":memory:",
    }
}

# --- Event Bus (OEP-52), Redis Streams implementation --------------------------------------------
EVENT_BUS_PRODUCER = "edx_event_bus_redis.create_producer"
EVENT_BUS_CONSUMER = "edx_event_bus_redis.RedisEventConsumer"
EVENT_BUS_REDIS_CONNECTION_URL = _required("EVENT_SINKS_BUS_REDIS_URL")
EVENT_BUS_TOPIC_PREFIX = os.environ.get("EVENT_SINKS_BUS_PREFIX") or "event-sinks-test"
# A short blocking read, so an idle consumer loops (and would notice trouble) every second.
EVENT_BUS_REDIS_CONSUMER_POLL_TIMEOUT = 1
EVENT_BUS_REDIS_CONSUMER_POLL_FAILURE_SLEEP = 0.2
CATALOG_INFO_CHANGED = "org.openedx.content_authoring.course.catalog_info.changed.v1"
TOPIC = "course-catalog-info-changed"
# openedx-events connects its bus handler to every event type listed here (OpenedxEventsConfig.ready):
# send_event() then also hands the event to EVENT_BUS_PRODUCER, on topic TOPIC, keyed by the course key.
EVENT_BUS_PRODUCER_CONFIG = {
    CATALOG_INFO_CHANGED: {
        TOPIC: {"event_key_field": "catalog_info.course_key", "enabled": True},
    },
}

# --- event-sinks ------------------------------------------------------------------------------------
EVENT_SINKS = {
    "DSN": _required("EVENT_SINKS_BUS_DSN"),
    "DISPATCH": "sync",
    "OLX_PATHS": [str(DEMO_COURSE)],
    # Only the consumer writes: rows in ClickHouse prove the event came over the bus.
    "SINKS": {
        "course_outline": {"ENABLED": ROLE == "consumer"},
        "block_relationships": {"ENABLED": ROLE == "consumer"},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    "loggers": {
        "event_sinks": {"level": "DEBUG"},
        "event_sinks_bus_probe": {"level": "INFO"},
        "edx_event_bus_redis": {"level": "INFO"},
        # DEBUG shows openedx-events declining to re-send a signal that came from the bus.
        "openedx_events": {"level": "DEBUG"},
    },
}

probe_log = logging.getLogger("event_sinks_bus_probe")


def probe_receiver(signal, sender=None, catalog_info=None, metadata=None, from_event_bus=None, **kwargs):
    """Log what a COURSE_CATALOG_INFO_CHANGED receiver is called with in this process."""
    probe_log.info(
        "BUS_PROBE event_type=%s event_id=%s course_key=%s from_event_bus=%r",
        getattr(metadata, "event_type", None), getattr(metadata, "id", None),
        getattr(catalog_info, "course_key", None), from_event_bus,
    )


class BusProbeConfig(AppConfig):
    """Consumer-only app: connects :func:`probe_receiver` beside the event_sinks receivers."""

    name = "tests"
    label = "event_sinks_bus_probe"
    verbose_name = "Event Bus round-trip probe (tests)"

    def ready(self):
        from openedx_events.content_authoring.signals import COURSE_CATALOG_INFO_CHANGED

        COURSE_CATALOG_INFO_CHANGED.connect(probe_receiver, dispatch_uid="event_sinks_bus_probe")
