"""A real Event Bus round trip: openedx-events over Redis Streams, producer and consumer in two processes.

    test process ── starts ──> redis-server (127.0.0.1, free port, nothing saved)
                 ── starts ──> consumer: django-admin consume_events --topic ... --group_id ... --extra ...
                 ── runs ────> producer: python tests/support/bus_producer.py  (COURSE_CATALOG_INFO_CHANGED.send_event)
    producer --XADD--> Redis stream --XREADGROUP--> consumer --signal, from_event_bus=True--> event_sinks
    receivers --dump (sync)--> ClickHouse HTTP endpoint (tests/support/chhttp.py) <--query-- test process

Both processes use ``tests.support.bus_settings``. The producer has the course sinks switched off, so the rows the
test reads were written by the consumer. The consumer's log shows the event arriving from Redis, a probe
receiver seeing ``from_event_bus=True`` with the producer's event id, openedx-events declining to send it
back to the bus, and event_sinks dumping both sinks.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from event_sinks.clickhouse import Connection
from event_sinks.conf import get_settings
from event_sinks.errors import EngineError

from .support.redis_server import RedisServer, redis_server_binary

pytest.importorskip("edx_event_bus_redis", reason="the Event Bus test needs edx-event-bus-redis (extra 'bus')")
NO_REDIS = "redis-server is not installed (apt-get install redis-server; .ci/run installs it)"
# Checked before any fixture runs, so a skipped test starts nothing.
pytestmark = pytest.mark.skipif(redis_server_binary() is None, reason=NO_REDIS)

REPO_ROOT = Path(__file__).resolve().parents[1]
COURSE_KEY = "course-v1:EventSinks+Demo101+2026"
COURSE_NAME = "Event Sinks Demo: Rivers of the World"
TOPIC = "course-catalog-info-changed"  # tests.support.bus_settings.TOPIC (not imported: it needs its env vars)
EVENT_TYPE = "org.openedx.content_authoring.course.catalog_info.changed.v1"

CONSUMER_READY_TIMEOUT = 30.0
PRODUCER_TIMEOUT = 60.0
ROWS_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


@pytest.fixture
def redis_server(tmp_path):
    """A redis-server of the test's own on a free loopback port; stopped at the end."""
    if redis_server_binary() is None:
        pytest.skip(NO_REDIS)
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _django_admin() -> list[str]:
    """This interpreter's django-admin (``python -m django`` when the script is missing)."""
    script = Path(sys.executable).with_name("django-admin")
    return [str(script)] if script.exists() else [sys.executable, "-m", "django"]


def _bus_env(role: str, *, redis_url: str, dsn: str, prefix: str, sqlite: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("EVENT_SINKS_DSN", None)  # it would override EVENT_SINKS["DSN"] of tests.support.bus_settings
    env.update(
        DJANGO_SETTINGS_MODULE="tests.support.bus_settings",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
        EVENT_SINKS_BUS_ROLE=role,
        EVENT_SINKS_BUS_REDIS_URL=redis_url,
        EVENT_SINKS_BUS_DSN=dsn,
        EVENT_SINKS_BUS_PREFIX=prefix,
        EVENT_SINKS_BUS_SQLITE=str(sqlite),
    )
    return env


def _stop(process: subprocess.Popen) -> None:
    """Terminate ``process`` (our own child, by its pid) and reap it; SIGKILL if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)


def _wait_for(predicate, timeout: float, what: str, diagnostics=lambda: ""):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{diagnostics()}")
        time.sleep(0.1)


def _outline(engine: Connection) -> tuple | None:
    """(course display name, blocks, videos, relationships) once both sinks' dumps are visible."""
    try:
        course = engine.query(
            "SELECT display_name FROM course_outline WHERE course_key = {key:String} AND block_type = 'course'",
            {"key": COURSE_KEY},
        )
        counts = engine.query(
            "SELECT count(), countIf(block_type = 'video') FROM course_outline WHERE course_key = {key:String}",
            {"key": COURSE_KEY},
        )
        edges = engine.query(
            "SELECT count() FROM block_relationships WHERE course_key = {key:String}", {"key": COURSE_KEY}
        )
    except EngineError:  # the consumer has not created the tables and views yet
        return None
    if not course or not edges[0][0]:
        return None
    return course[0][0], counts[0][0], counts[0][1], edges[0][0]


def test_course_catalog_info_changed_over_redis_reaches_the_sinks(http_server, database, redis_server, tmp_path):
    started = time.monotonic()
    timings: dict[str, float] = {}
    if not http_server.running:  # an outage test may have stopped the shared endpoint
        http_server.start()
    dsn = http_server.dsn.rsplit("/", 1)[0] + f"/{database}"
    run_id = uuid.uuid4().hex[:8]
    prefix, group, consumer_name = f"es-{run_id}", f"event-sinks-{run_id}", f"consumer-{run_id}"
    common = dict(redis_url=redis_server.url, dsn=dsn, prefix=prefix, sqlite=tmp_path / "django.sqlite3")

    consumer_log = tmp_path / "consumer.log"
    command = _django_admin() + [
        "consume_events",
        "--topic", TOPIC,
        "--group_id", group,
        "--extra", json.dumps({"consumer_name": consumer_name}),
    ]
    with open(consumer_log, "wb") as log_file:
        consumer = subprocess.Popen(
            command, cwd=REPO_ROOT, env=_bus_env("consumer", **common),
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
        )

    def consumer_output() -> str:
        return consumer_log.read_text(errors="replace")

    def diagnostics() -> str:
        state = "running" if consumer.poll() is None else f"exited with {consumer.returncode}"
        return f"--- consumer ({state}) ---\n{consumer_output()[-6000:]}\n--- redis ---\n{redis_server.log()[-1500:]}"

    def consumer_ready() -> bool:
        if consumer.poll() is not None:  # consume_events logs any error and exits
            pytest.fail(f"the consumer exited early\n{diagnostics()}")
        # Logged once the group exists and reads from "$": a message sent now is delivered.
        return "Running consumer for" in consumer_output()

    engine = Connection(get_settings({"DSN": dsn, "DATABASE": database}))
    try:
        _wait_for(consumer_ready, CONSUMER_READY_TIMEOUT, "the consumer to start reading", diagnostics)
        timings["consumer ready"] = time.monotonic() - started

        sent_at = time.monotonic()
        producer = subprocess.run(
            [sys.executable, str(REPO_ROOT / "tests" / "support" / "bus_producer.py"), COURSE_KEY],
            cwd=REPO_ROOT, env=_bus_env("producer", **common), stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=PRODUCER_TIMEOUT,
        )
        timings["producer run"] = time.monotonic() - sent_at
        assert producer.returncode == 0, f"producer failed\n{producer.stdout}\n{producer.stderr}\n{diagnostics()}"
        sent = re.search(r"^SENT (\S+) (\S+)$", producer.stdout, re.M)
        assert sent, f"producer did not report the event\n{producer.stdout}\n{producer.stderr}"
        event_id, redis_message_id = sent.groups()
        # The producer process did not dump anything itself: its sinks are off.
        assert "event_sinks: dumped" not in producer.stderr, producer.stderr
        assert "Message delivered to Redis event bus" in producer.stderr, producer.stderr

        outline = _wait_for(lambda: _outline(engine), ROWS_TIMEOUT, "the course's rows in ClickHouse", diagnostics)
        timings["event to rows"] = time.monotonic() - sent_at

        assert outline == (COURSE_NAME, 21, 3, 20), outline
        videos = engine.query(
            "SELECT display_name FROM course_outline WHERE course_key = {key:String} AND block_type = 'video' "
            "ORDER BY order_in_course",
            {"key": COURSE_KEY},
        )
        assert len(videos) == 3, videos

        # What happened in the consumer process, from its own log:
        _wait_for(lambda: "BUS_PROBE" in consumer_output(), 10, "the probe's log line", diagnostics)
        output = consumer_output()
        # ... the message came from the Redis stream the producer wrote to,
        assert f"Message received from Redis: topic={prefix}-{TOPIC}, message_id={event_id}" in output, diagnostics()
        assert redis_message_id in output, diagnostics()
        # ... its receivers were called with from_event_bus=True and the producer's event id,
        probe = re.findall(r"BUS_PROBE event_type=(\S+) event_id=(\S+) course_key=(\S+) from_event_bus=(\S+)", output)
        assert probe == [(EVENT_TYPE, event_id, COURSE_KEY, "True")], diagnostics()
        # ... openedx-events' own bus handler saw the flag and did not send the event back to Redis,
        assert f"Declining to send signal to the Event Bus since that's where it was sent from: {EVENT_TYPE}" in output
        # ... and the event_sinks receivers dumped both sinks in this process, once each.
        for sink in ("course_outline", "block_relationships"):
            assert len(re.findall(rf"event_sinks: dumped {sink} '{re.escape(COURSE_KEY)}'", output)) == 1, (
                diagnostics()
            )
        assert "Error consuming event" not in output, diagnostics()
        assert consumer.poll() is None, diagnostics()
    finally:
        engine.close()
        _stop(consumer)
    timings["total"] = time.monotonic() - started
    print("event bus round trip: " + ", ".join(f"{name} {seconds:.2f}s" for name, seconds in timings.items()))
