"""Producer side of the Event Bus round trip: send one COURSE_CATALOG_INFO_CHANGED and make sure it is on Redis.

Run by tests/test_event_bus.py as its own process::

    EVENT_SINKS_BUS_ROLE=producer DJANGO_SETTINGS_MODULE=tests.support.bus_settings \
        python tests/support/bus_producer.py COURSE_KEY

``send_event`` calls the receivers of this process; openedx-events' bus handler among them hands the event
to the configured producer (edx-event-bus-redis: an XADD on the prefixed topic's stream). This script
then flushes the producer, reads the stream back and prints ``SENT <event id> <redis message id>``;
it exits 1 when the event is not on the stream.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, for tests.support.bus_settings


def main(argv: list[str]) -> int:
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.support.bus_settings")
    os.environ.setdefault("EVENT_SINKS_BUS_ROLE", "producer")
    import django

    django.setup()

    from django.conf import settings
    from opaque_keys.edx.keys import CourseKey
    from openedx_events.content_authoring.data import CourseCatalogData, CourseScheduleData
    from openedx_events.content_authoring.signals import COURSE_CATALOG_INFO_CHANGED
    from openedx_events.event_bus import get_producer

    course_key = argv[1] if len(argv) > 1 else "course-v1:EventSinks+Demo101+2026"
    catalog_info = CourseCatalogData(
        course_key=CourseKey.from_string(course_key),
        name="Event Sinks Demo: Rivers of the World",
        schedule_data=CourseScheduleData(start=datetime(2026, 1, 5, tzinfo=UTC), pacing="instructor"),
    )
    sent = []  # the metadata openedx-events generates for our event, caught by a receiver of our own

    def remember(signal, sender=None, metadata=None, **kwargs):
        sent.append(metadata)

    COURSE_CATALOG_INFO_CHANGED.connect(remember, dispatch_uid="bus_producer_remember")
    responses = COURSE_CATALOG_INFO_CHANGED.send_event(catalog_info=catalog_info)
    errors = [(receiver, response) for receiver, response in responses if isinstance(response, BaseException)]
    if errors or not sent:
        print(f"send_event failed: receivers {responses!r}", file=sys.stderr)
        return 1
    event_id = str(sent[0].id)

    producer = get_producer()
    # Kafka's producer buffers and needs prepare_for_shutdown(); Redis' XADD is synchronous, but a
    # producer that offers a flush gets it before this process exits.
    for name in ("prepare_for_shutdown", "flush"):
        method = getattr(producer, name, None)
        if callable(method):
            method()
    print(f"producer {type(producer).__module__}.{type(producer).__name__}", file=sys.stderr)

    # The bus handler swallows producing errors (it only logs them): check the stream itself.
    import redis

    stream = f"{settings.EVENT_BUS_TOPIC_PREFIX}-{settings.TOPIC}"
    client = redis.Redis.from_url(settings.EVENT_BUS_REDIS_CONNECTION_URL, socket_timeout=5)
    try:
        for message_id, fields in client.xrevrange(stream, count=100):
            if fields.get(b"id", b"").decode() == event_id:
                print(f"SENT {event_id} {message_id.decode()}", flush=True)
                return 0
    finally:
        client.close()
    print(f"event {event_id} is not on the Redis stream {stream}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
