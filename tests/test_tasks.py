"""The ``celery`` dispatch strategy: a real Celery worker thread (in-memory broker) and a real engine.

The worker is Celery's own embedded test worker (``celery.contrib.testing.worker.start_worker``),
consuming from kombu's ``memory://`` transport with a ``cache+memory://`` result backend, so tasks
go through real messages, routing, countdowns, retries and acknowledgements. Dumps go to the
embedded chDB engine, or to the HTTP endpoint over chDB where an outage has to be simulated.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

pytest.importorskip("celery")

from celery import Celery, signals  # noqa: E402
from celery.contrib.testing.worker import start_worker  # noqa: E402
from django.core.cache import cache, caches  # noqa: E402

from event_sinks import tasks  # noqa: E402
from event_sinks.clickhouse import close_connections, get_connection  # noqa: E402
from event_sinks.dispatch import dispatch  # noqa: E402
from event_sinks.dumping import Dumper  # noqa: E402
from event_sinks.registry import registry  # noqa: E402

from .support import sample_sink  # noqa: E402

QUEUE = "event_sinks_dumps"
DEFAULT_QUEUE = "celery"
WAIT = 15.0  # seconds; a healthy run needs well under one


# -- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def celery_app():
    """A Celery app on the in-memory broker, as a host project would configure one."""
    app = Celery("event_sinks_tests", set_as_current=False)
    app.conf.update(
        broker_url="memory://",
        result_backend="cache+memory://",
        broker_transport_options={"polling_interval": 0.01},
        task_default_queue=DEFAULT_QUEUE,
        worker_hijack_root_logger=False,  # keep pytest's log capture
    )
    import celery.contrib.testing.tasks  # noqa: F401  (registers the ping task start_worker checks with)

    return app


@pytest.fixture(scope="module")
def worker(celery_app):
    """One embedded worker thread for the module, consuming the default queue and ours."""
    with start_worker(celery_app, pool="solo", queues=[DEFAULT_QUEUE, QUEUE], shutdown_timeout=10) as worker:
        yield worker


class Recorder:
    """What Celery reports about ``event_sinks.dump_key`` messages, from its own signals."""

    def __init__(self):
        self.published: list[dict] = []  # what left the producer: id, routing key, eta
        self.started: list[dict] = []  # what the worker received: id, args, delivery info, time
        self.retried: list[dict] = []
        self.succeeded: list[dict] = []  # the task's return values
        self.failed: list[dict] = []
        self._cond = threading.Condition()
        self._handlers = [
            (signals.after_task_publish, self._on_publish),
            (signals.task_prerun, self._on_prerun),
            (signals.task_retry, self._on_retry),
            (signals.task_success, self._on_success),
            (signals.task_failure, self._on_failure),
        ]

    def _record(self, bucket: list, item: dict) -> None:
        with self._cond:
            bucket.append(item)
            self._cond.notify_all()

    def _on_publish(self, sender=None, headers=None, routing_key=None, **kwargs):
        if sender == tasks.TASK_NAME:
            self._record(self.published, {"id": headers["id"], "routing_key": routing_key, "eta": headers.get("eta")})

    def _on_prerun(self, sender=None, task_id=None, task=None, args=None, **kwargs):
        if task.name == tasks.TASK_NAME:
            info = dict(task.request.delivery_info or {})
            self._record(self.started, {"id": task_id, "args": list(args), "delivery_info": info, "at": time.time()})

    def _on_retry(self, sender=None, request=None, reason=None, **kwargs):
        if sender.name == tasks.TASK_NAME:
            self._record(self.retried, {"id": request.id, "retries": request.retries, "reason": reason})

    def _on_success(self, sender=None, result=None, **kwargs):
        if sender.name == tasks.TASK_NAME:
            self._record(self.succeeded, result)

    def _on_failure(self, sender=None, task_id=None, exception=None, **kwargs):
        if sender.name == tasks.TASK_NAME:
            self._record(self.failed, {"id": task_id, "exception": exception})

    def wait(self, predicate, what: str, timeout: float = WAIT) -> None:
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                pytest.fail(
                    f"timed out waiting for {what}: published={self.published} started={self.started} "
                    f"retried={len(self.retried)} succeeded={self.succeeded} failed={self.failed}"
                )

    def connect(self):
        for signal, handler in self._handlers:
            signal.connect(handler, weak=False)

    def disconnect(self):
        for signal, handler in self._handlers:
            signal.disconnect(handler)


@pytest.fixture
def recorder(worker):
    recorder = Recorder()
    recorder.connect()
    yield recorder
    recorder.disconnect()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Coalescing claims live in Django's cache; no test may inherit another's."""
    cache.clear()
    yield
    cache.clear()


def use_celery(settings, **extra):
    """Switch the current test settings to the celery strategy (plus ``extra`` EVENT_SINKS keys)."""
    settings.EVENT_SINKS = {**settings.EVENT_SINKS, "DISPATCH": "celery", **extra}


def view_words(doc="doc"):
    engine = get_connection()
    rows = engine.query(
        f"SELECT word FROM `{engine.database}`.test_words WHERE doc = {{doc:String}} ORDER BY position",
        {"doc": doc},
    )
    return [r[0] for r in rows]


def logged_dumps(doc="doc"):
    """Complete dumps of ``doc`` in the ledger (what the view chooses from)."""
    engine = get_connection()
    return engine.query(
        f"SELECT count() FROM `{engine.database}`.event_sinks_dump_log "
        "WHERE sink = 'test_words' AND key = {doc:String}",
        {"doc": doc},
    )[0][0]


@pytest.fixture
def fast_backoff(monkeypatch):
    """Record Celery's backoff computations and shrink the countdowns they return.

    Celery's autoretry calls ``get_exponential_backoff_interval(factor, retries, maximum,
    full_jitter)`` for every retry; we keep its (jittered) answer but scale it to tenths of a second.
    """
    import celery.app.autoretry as autoretry

    real = autoretry.get_exponential_backoff_interval
    calls: list[dict] = []

    def recorded(factor, retries, maximum, full_jitter=False):
        calls.append({"factor": factor, "retries": retries, "maximum": maximum, "full_jitter": full_jitter})
        return min(0.2, real(factor, retries, maximum, full_jitter) / 20)

    monkeypatch.setattr(autoretry, "get_exponential_backoff_interval", recorded)
    return calls


@pytest.fixture
def http_settings(settings, http_server, database):
    """Settings pointing at the HTTP endpoint (which these tests stop and start) on a fresh database."""
    if not http_server.running:
        http_server.start()
    dsn = http_server.dsn.rsplit("/", 1)[0] + f"/{database}"
    settings.EVENT_SINKS = {"DSN": dsn, "DATABASE": database, "CONNECT_TIMEOUT": 1, "DISPATCH": "celery"}
    close_connections()
    yield settings
    if not http_server.running:
        http_server.start()
    close_connections()


# -- (1) a dirty key becomes one task, and rows in the view ---------------------------------------------


def test_a_dirty_key_becomes_one_task_and_its_rows_reach_the_view(embedded, settings, words, recorder):
    use_celery(settings, COALESCE_SECONDS=0.2)
    sample_sink.SOURCE["doc"] = ["alpha", "beta", "gamma"]

    dispatch(words, ["doc"])  # what a receiver does for a trigger

    recorder.wait(lambda: recorder.succeeded, "the dump task")
    assert len(recorder.published) == 1
    assert recorder.published[0]["eta"] is not None  # sent with the coalescing countdown
    assert recorder.started[0]["args"] == ["test_words", "doc", False]
    assert recorder.succeeded[0]["status"] == "dumped" and recorder.succeeded[0]["rows"] == 3
    assert view_words() == ["alpha", "beta", "gamma"]


# -- (2) routing ---------------------------------------------------------------------------------------


def test_tasks_go_to_the_configured_queue(embedded, settings, words, recorder):
    sample_sink.SOURCE.update(one=["a"], two=["b"])
    use_celery(settings, COALESCE_SECONDS=0, CELERY_QUEUE=QUEUE)
    assert tasks.enqueue(words, ["one"]) == 1
    use_celery(settings, COALESCE_SECONDS=0, CELERY_QUEUE=None)
    assert tasks.enqueue(words, ["two"]) == 1

    recorder.wait(lambda: len(recorder.succeeded) == 2, "both tasks")
    queue_of = {s["args"][1]: s["delivery_info"]["routing_key"] for s in recorder.started}
    assert queue_of == {"one": QUEUE, "two": DEFAULT_QUEUE}  # as the messages were delivered
    assert [p["routing_key"] for p in recorder.published] == [QUEUE, DEFAULT_QUEUE]  # as they were sent
    assert (view_words("one"), view_words("two")) == (["a"], ["b"])


# -- (3) retries with backoff on engine errors -----------------------------------------------------------


def test_an_engine_outage_is_retried_with_backoff_until_the_dump_succeeds(
    http_settings, http_server, words, recorder, fast_backoff
):
    use_celery(http_settings, COALESCE_SECONDS=0, CELERY_MAX_RETRIES=100)
    sample_sink.SOURCE["doc"] = ["during", "an", "outage"]
    http_server.kill()
    try:
        assert tasks.enqueue(words, ["doc"]) == 1
        recorder.wait(lambda: len(recorder.retried) >= 3, "three retries while ClickHouse is down")
    finally:
        http_server.start()
    recorder.wait(lambda: recorder.succeeded, "success once ClickHouse is back")

    retries = len(recorder.retried)
    assert recorder.succeeded[0]["retries"] == retries and recorder.succeeded[0]["status"] == "dumped"
    assert not recorder.failed
    # Each retry asked Celery for an exponential, jittered, capped backoff at the next attempt number.
    assert [c["retries"] for c in fast_backoff] == list(range(retries))
    assert all(c["full_jitter"] and c["maximum"] == tasks.RETRY_BACKOFF_MAX and c["factor"] == 1 for c in fast_backoff)
    assert "unreachable" in str(recorder.retried[0]["reason"])
    assert view_words() == ["during", "an", "outage"]


def test_retries_stop_at_the_configured_limit(http_settings, http_server, words, recorder, fast_backoff, caplog):
    use_celery(http_settings, COALESCE_SECONDS=0, CELERY_MAX_RETRIES=2)  # read when the task runs
    sample_sink.SOURCE["doc"] = ["never", "written"]
    http_server.kill()
    with caplog.at_level(logging.WARNING, logger="event_sinks.tasks"):
        assert tasks.enqueue(words, ["doc"]) == 1
        recorder.wait(lambda: recorder.failed, "the final failure")
    assert len(recorder.retried) == 2 and not recorder.succeeded
    assert "giving up" in caplog.text and "test_words 'doc'" in caplog.text


def test_other_errors_are_logged_and_not_retried(embedded, settings, words, recorder, fast_backoff, caplog):
    use_celery(settings, COALESCE_SECONDS=0)
    sample_sink.SOURCE["doc"] = ["a", "b", "c"]
    sample_sink.FAIL_AFTER["doc"] = 1  # a bug in the sink
    with caplog.at_level(logging.ERROR, logger="event_sinks.tasks"):
        tasks.enqueue(words, ["doc", "not a key!"])
        recorder.wait(lambda: len(recorder.failed) == 2, "two failures")
    assert not recorder.retried and not fast_backoff
    messages = [r.getMessage() for r in caplog.records if r.name == "event_sinks.tasks"]
    assert any("test_words 'doc'" in m and "not be retried" in m and "broke at word 1" in m for m in messages)
    assert any("test_words 'not a key!'" in m and "InvalidKeyError" in m for m in messages)


# -- (4) idempotency --------------------------------------------------------------------------------------


def test_a_duplicate_delivery_leaves_one_complete_dump_visible(embedded, settings, words, recorder):
    use_celery(settings)
    sample_sink.SOURCE["doc"] = ["one", "two", "three"]
    for _ in range(2):  # the same message twice, as a broker redelivers it
        tasks.dump_key.apply_async(args=("test_words", "doc", False), task_id="same-task-id")
    recorder.wait(lambda: len(recorder.succeeded) == 2, "both deliveries")
    assert [r["status"] for r in recorder.succeeded] == ["dumped", "skipped"]  # same source version
    assert view_words() == ["one", "two", "three"] and logged_dumps() == 1

    # Without a source version to compare, both deliveries dump; readers still see one dump's rows.
    words.version = lambda key: None
    try:
        for _ in range(2):
            tasks.dump_key.apply_async(args=("test_words", "doc", False), task_id="another-task-id")
        recorder.wait(lambda: len(recorder.succeeded) == 4, "two more deliveries")
    finally:
        del words.version
    assert [r["status"] for r in recorder.succeeded[2:]] == ["dumped", "dumped"]
    assert view_words() == ["one", "two", "three"] and logged_dumps() == 3


def test_a_delete_task_writes_a_tombstone(embedded, settings, words, recorder):
    use_celery(settings, COALESCE_SECONDS=0)
    sample_sink.SOURCE["doc"] = ["gone", "soon"]
    tasks.enqueue(words, ["doc"])
    recorder.wait(lambda: recorder.succeeded, "the dump")
    tasks.enqueue(words, ["doc"], delete=True)
    recorder.wait(lambda: len(recorder.succeeded) == 2, "the tombstone")
    assert recorder.succeeded[1]["status"] == "deleted"
    assert view_words() == [] and Dumper(words).current_versions() == {}


# -- (5) coalescing ----------------------------------------------------------------------------------------


def test_repeated_triggers_within_the_window_coalesce_into_one_task_reading_the_latest(
    embedded, settings, words, recorder
):
    window = 0.5
    use_celery(settings, COALESCE_SECONDS=window)
    first = time.time()
    sent = []
    for i in range(5):  # one publish fires several signals; authors publish in bursts
        sample_sink.SOURCE["doc"] = [f"edit{i}", "text"]
        sent.append(tasks.enqueue(words, ["doc"]))
    assert sent == [1, 0, 0, 0, 0]

    recorder.wait(lambda: recorder.succeeded, "the coalesced task")
    assert len(recorder.published) == 1
    assert recorder.started[0]["at"] - first >= window  # it ran after the window...
    assert view_words() == ["edit4", "text"]  # ...so it read the last edit

    time.sleep(max(0.0, first + window - time.time()))  # the window is over: a new trigger sends again
    assert tasks.enqueue(words, ["doc"]) == 1
    recorder.wait(lambda: len(recorder.succeeded) == 2, "the next window's task")
    assert recorder.succeeded[1]["status"] == "skipped"  # nothing changed since: cheap


def test_without_a_usable_cache_every_trigger_is_sent(embedded, settings, words, recorder, monkeypatch, caplog):
    use_celery(settings, COALESCE_SECONDS=0.2)
    sample_sink.SOURCE["doc"] = ["x"]

    def broken(*args, **kwargs):
        raise ConnectionError("cache server down")

    monkeypatch.setattr(type(caches["default"]), "add", broken)
    with caplog.at_level(logging.WARNING, logger="event_sinks.tasks"):
        assert [tasks.enqueue(words, ["doc"]) for _ in range(2)] == [1, 1]
    assert "cache unavailable" in caplog.text
    recorder.wait(lambda: len(recorder.succeeded) == 2, "both tasks")
    assert view_words() == ["x"]


def test_eager_celery_dumps_every_trigger_at_once(embedded, settings, words, celery_app, worker):
    eager = Celery("event_sinks_eager", set_as_current=False)
    eager.conf.update(task_always_eager=True, task_eager_propagates=True)
    use_celery(settings, COALESCE_SECONDS=60)
    eager.set_current()
    try:
        for word in ("first", "second"):
            sample_sink.SOURCE["doc"] = [word]
            assert tasks.enqueue(words, ["doc"]) == 1  # no coalescing: the task runs now
            assert view_words() == [word]
    finally:
        celery_app.set_current()


# -- (6) the broker is unreachable -------------------------------------------------------------------------


def test_enqueue_with_the_broker_unreachable_logs_and_does_not_raise(
    embedded, settings, words, celery_app, worker, caplog
):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = Celery("event_sinks_no_broker", set_as_current=False)
    unreachable.conf.update(
        broker_url=f"amqp://guest:guest@127.0.0.1:{port}//",
        task_publish_retry=False,
        broker_connection_timeout=1,
        broker_transport_options={"max_retries": 0, "interval_start": 0, "interval_step": 0, "interval_max": 0},
    )
    use_celery(settings, COALESCE_SECONDS=30)
    unreachable.set_current()
    try:
        with caplog.at_level(logging.ERROR, logger="event_sinks.tasks"):
            assert tasks.enqueue(words, ["doc", "other"]) == 0
            # The failed send released its coalescing claim, so the next trigger tries again.
            assert tasks.enqueue(words, ["doc"]) == 0
            dispatch(words, ["doc"])  # and the dispatch path does not raise either
    finally:
        celery_app.set_current()
    messages = [r.getMessage() for r in caplog.records if r.name == "event_sinks.tasks"]
    assert len(messages) == 4
    assert sum("test_words 'doc'" in m for m in messages) == 3 and "test_words 'other'" in messages[1]
    assert all("could not enqueue" in m and "Connection refused" in m for m in messages)


# -- (7) a dump that kills its worker ----------------------------------------------------------------------


def _finished(recorder_like: list, task_id: str):
    """A task_postrun handler recording ``task_id``'s end (whatever its outcome)."""

    def on_postrun(sender=None, task_id=None, state=None, **kwargs):
        if task_id == wanted:
            recorder_like.append(state)

    wanted = task_id
    return on_postrun


@pytest.mark.parametrize("deaths, dumped", [(1, True), (2, False)])
def test_a_message_that_killed_its_worker_twice_is_given_up_naming_the_key(
    embedded, settings, words, recorder, caplog, deaths, dumped
):
    use_celery(settings, COALESCE_SECONDS=0)
    sample_sink.SOURCE["doc"] = ["too", "big"]
    Dumper(words).ensure_schema()
    # A worker killed during a dump (out of memory) leaves its start counted and never ended; with
    # reject_on_worker_lost the broker hands the same message (same id) to the next worker.
    for _ in range(deaths):
        tasks._deliveries("poison-task-id")
    ended: list = []
    handler = _finished(ended, "poison-task-id")
    signals.task_postrun.connect(handler)
    try:
        with caplog.at_level(logging.ERROR, logger="event_sinks.tasks"):
            tasks.dump_key.apply_async(args=("test_words", "doc", False), task_id="poison-task-id")
            recorder.wait(lambda: ended, "the redelivered message")
    finally:
        signals.task_postrun.disconnect(handler)
    assert (view_words() == ["too", "big"]) is dumped  # one redelivery still runs; the third start does not
    gave_up = [r.getMessage() for r in caplog.records if "never finished" in r.getMessage()]
    assert len(gave_up) == (0 if dumped else 1)
    if not dumped:
        assert "test_words 'doc' was started 2 times" in gave_up[0]
        assert "manage.py dump_sink test_words 'doc'" in gave_up[0]  # how to dump it once the cause is fixed
    assert tasks._deliveries("poison-task-id") == 1  # the count ends with the message: a new delivery starts at 1


def test_several_sinks_of_one_key_travel_in_one_task(embedded, settings, words, recorder):
    class MoreWords(sample_sink.WordsSink):
        """The same documents, a second sink."""

        name = "test_more_words"

    use_celery(settings, COALESCE_SECONDS=1)
    sample_sink.SOURCE["doc"] = ["both"]
    registry.register(MoreWords, "tests")
    try:
        assert tasks.enqueue([words, words.name, "test_more_words"], ["doc"]) == 1  # a sink named twice is one
        assert tasks.enqueue(["test_more_words"], ["doc"]) == 0  # each sink's key is coalesced on its own
        recorder.wait(lambda: recorder.succeeded, "the task", timeout=60)
    finally:
        registry.unregister("test_more_words")
    assert recorder.started[0]["args"] == [["test_words", "test_more_words"], "doc", False]
    assert [(r["sink"], r["status"], r["rows"]) for r in recorder.succeeded[0]] == [
        ("test_words", "dumped", 1), ("test_more_words", "dumped", 1)]


def test_the_task_reports_its_code_owner_to_monitoring(embedded, settings, words, recorder, monkeypatch):
    from edx_django_utils.monitoring.internal.code_owner import utils

    attributes = []
    monkeypatch.setattr(utils, "set_custom_attribute", lambda name, value: attributes.append((name, value)))
    utils.clear_cached_mappings()
    settings.CODE_OWNER_MAPPINGS = {"team-analytics": ["event_sinks"]}
    use_celery(settings, COALESCE_SECONDS=0)
    sample_sink.SOURCE["doc"] = ["owned"]
    try:
        tasks.enqueue(words, ["doc"])
        recorder.wait(lambda: recorder.succeeded, "the task")
    finally:
        utils.clear_cached_mappings()
    assert ("code_owner_module", "event_sinks.tasks") in attributes and ("code_owner", "team-analytics") in attributes


# -- the task's declaration ---------------------------------------------------------------------------------


def test_the_task_acks_late_and_reads_its_retry_limit_from_the_settings(settings, celery_app):
    task = celery_app.tasks[tasks.TASK_NAME]
    assert task.acks_late and task.reject_on_worker_lost
    assert task.autoretry_for == (tasks.EngineError,) and task.retry_jitter and task.retry_backoff
    assert task.retry_backoff_max == tasks.RETRY_BACKOFF_MAX
    settings.EVENT_SINKS = {"CELERY_MAX_RETRIES": 3}
    assert task.max_retries == 3
    settings.EVENT_SINKS = {"CELERY_MAX_RETRIES": 11}
    assert task.max_retries == 11
