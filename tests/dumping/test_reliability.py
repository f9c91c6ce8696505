"""Fault campaigns: an engine outage during a publish burst, dumps SIGKILLed mid-way, concurrent
dumps of one course, and a host that must not be held up by a dead or silent engine.

Every campaign checks what readers of the current views see, course by course: the rows of exactly
one dump, which is the dump the ledger names as current, with as many rows as the ledger says that
dump wrote (so never a partial or mixed course), holding the content of the version it claims.
The figures quoted in docs/reliability.md are the ones these tests print (``pytest -s``).
"""

from __future__ import annotations

import io
import logging
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import types
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import transaction
from opaque_keys.edx.keys import CourseKey
from openedx_events.content_authoring.data import CourseCatalogData, CourseScheduleData, XBlockData
from openedx_events.content_authoring.signals import COURSE_CATALOG_INFO_CHANGED, XBLOCK_PUBLISHED

from event_sinks import get_sink, receivers
from event_sinks.clickhouse import Connection, close_connections
from event_sinks.conf import get_settings
from event_sinks.courses.sources import ModulestoreSource, set_course_source
from event_sinks.dumping import Dumper, dump
from event_sinks.sinks.course_outline import CourseOutlineSink
from event_sinks.testing.modulestore import StandInModuleStore, synthetic_course

from ..support import reliability_worker as worker

WORKER = Path(__file__).resolve().parents[1] / "support" / "reliability_worker.py"
SHAPE = worker.SHAPE  # small courses: 2 sections, 2 units per subsection, 2 leaves per unit
SINK = "course_outline"


# -- helpers --------------------------------------------------------------------------------------------


def http_dsn(server, database: str) -> str:
    if not server.running:
        server.start()
    return server.dsn.rsplit("/", 1)[0] + f"/{database}"


def make_course(org: str, number: str, n_blocks: int, version: str):
    """A stand-in course root of ``n_blocks`` blocks published as ``version``."""
    root = synthetic_course(org, number, "R", n_blocks, **SHAPE)
    root.course_version = version
    return root


def current_state(engine: Connection, sink: str = SINK, key_column: str = "course_key") -> dict[str, tuple]:
    """{key: (dump_id, rows, source_version)} of what readers see in the sink's view, after checking it.

    For every key: the view's rows carry exactly one dump_id, and that dump is complete -- the view
    holds exactly the rows the dump wrote. It is the ledger's current dump of the key, or a newer one
    whose ledger insert was lost after it was copied into the current table (the ledger may lag what
    readers see, never lead it: docs/decisions/0007-current-tables.rst). A key the ledger names as
    current with rows is in the view, unless a newer tombstone was copied but not logged.
    """
    db = f"`{engine.database}`"
    ledger = {
        key: (dump_id, rows, published(version), dumped_at, deleted)
        for key, dump_id, rows, version, dumped_at, deleted in engine.query(
            f"SELECT key, dump_id, rows, source_version, dumped_at, deleted FROM {db}.event_sinks_current_dumps "
            "WHERE sink = {sink:String}",
            {"sink": sink},
        )
    }
    seen: dict[str, tuple] = {}
    for key, dump_id, count, dumped_at, version in engine.query(
        f"SELECT {key_column}, dump_id, count(), max(dumped_at), any(source_version) FROM {db}.{sink} "
        f"GROUP BY {key_column}, dump_id"
    ):
        assert key not in seen, f"{key}: the view mixes dumps {seen[key][0]} and {dump_id}"
        seen[key] = (dump_id, count, published(version), dumped_at)
    state = {}
    for key, (dump_id, count, version, dumped_at) in seen.items():
        logged = ledger.get(key)
        if logged is not None and logged[0] == dump_id:
            assert count == logged[1], f"{key}: view shows {count} rows of a dump that logged {logged[1]}"
        else:  # copied whole, then its ledger insert was lost: newer than what the ledger names
            assert logged is None or dumped_at > logged[3], (
                f"{key}: view shows dump {dump_id}, older than the ledger's current {logged[0]}")
            written = engine.query(f"SELECT count() FROM {db}.{sink}_dumps WHERE dump_id = {{d:UUID}} "
                                   f"AND {key_column} = {{k:String}}", {"d": dump_id, "k": key})[0][0]
            assert count == written, f"{key}: view shows {count} of the {written} rows unlogged dump {dump_id} wrote"
        state[key] = (dump_id, count, version)
    for key, (dump_id, rows, _, dumped_at, deleted) in ledger.items():
        if not deleted and rows and key not in seen:
            later_tombstone = engine.query(
                f"SELECT count() FROM {db}.{sink}_current WHERE {key_column} = {{k:String}} AND is_deleted "
                "AND dumped_at > {at:DateTime64(6, 'UTC')}", {"k": key, "at": dumped_at})[0][0]
            assert later_tombstone, f"{key}: the ledger's current dump {dump_id} ({rows} rows) is not in the view"
    return {key: value for key, value in state.items()}


def published(version: str) -> str:
    """The version the source published: what the ledger holds, less the course sinks' ``+rN`` revision."""
    return re.sub(r"\+r\d+$", "", version)


def orphan_rows(engine: Connection, sink: str = SINK) -> int:
    """Rows in the sink's table whose dump never reached the ledger (a dump killed mid-way)."""
    db = f"`{engine.database}`"
    return engine.query(
        f"SELECT count() FROM {db}.{sink}_dumps WHERE dump_id NOT IN "
        f"(SELECT dump_id FROM {db}.event_sinks_dump_log)"
    )[0][0]


def eventually(read, expected, timeout: float = 30.0):
    """``read()`` until it returns ``expected`` or ``timeout`` seconds pass; returns the last value."""
    deadline = time.monotonic() + timeout
    while (value := read()) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


def figures(title: str, **values) -> None:
    """Print a campaign's figures (``pytest -s`` shows them; docs/reliability.md quotes them)."""
    print(f"\n[reliability] {title}: " + ", ".join(f"{k}={v}" for k, v in values.items()))


@pytest.fixture
def signal_handler(signal_handler):
    """The platform's signals (conftest), with the receivers connected to them."""
    receivers.disconnect_all()
    receivers.connect_all()
    yield signal_handler
    receivers.disconnect_all()
    receivers.connect_all()


@pytest.fixture
def store():
    """A stand-in modulestore installed as the course source for the test."""
    store = StandInModuleStore()
    set_course_source(ModulestoreSource(store))
    yield store
    set_course_source(None)


@pytest.fixture
def fresh_engines():
    close_connections()
    yield
    close_connections()


def publish(signal_handler, course_key: CourseKey) -> None:
    """What Studio sends for one publish: the platform signal, the catalog event, an XBLOCK_PUBLISHED."""
    signal_handler.course_published.send(sender=None, course_key=course_key)
    COURSE_CATALOG_INFO_CHANGED.send_event(catalog_info=CourseCatalogData(
        course_key=course_key, name="c", schedule_data=CourseScheduleData(start=datetime.now(UTC), pacing="self"),
    ))
    XBLOCK_PUBLISHED.send_event(xblock_info=XBlockData(
        usage_key=course_key.make_usage_key("vertical", "unit00000000"), block_type="vertical",
    ))


# -- 1. engine outage during a burst of publishes ------------------------------------------------------

OUTAGE_COURSES = 100
OUTAGE_FROM, OUTAGE_TO = 30, 70  # publishes [30, 70) happen while the engine is stopped


def outage_blocks(index: int, version: int) -> int:
    return 12 + (index * 3 + version * 5) % 17


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_engine_outage_during_a_burst_loses_nothing_after_reconcile(
    settings, http_server, database, signal_handler, store, fresh_engines, caplog
):
    dsn = http_dsn(http_server, database)
    settings.EVENT_SINKS = {
        "DSN": dsn, "DISPATCH": "on_commit", "CONNECT_TIMEOUT": 1, "SEND_RECEIVE_TIMEOUT": 30,
        "SINKS": {"block_relationships": {"ENABLED": False}},
    }
    keys = [CourseKey.from_string(f"course-v1:Outage+C{i:03d}+R") for i in range(OUTAGE_COURSES)]
    for i in range(OUTAGE_COURSES):
        store.add_course(make_course("Outage", f"C{i:03d}", outage_blocks(i, 1), f"v1-{i}"))
    call_command("dump_sink", SINK, "--all", stdout=io.StringIO(), stderr=io.StringIO())
    reader = Connection(get_settings())
    assert {v[2] for v in current_state(reader).values()} == {f"v1-{i}" for i in range(OUTAGE_COURSES)}

    caplog.set_level(logging.WARNING, logger="event_sinks")
    slowest_down = slowest_up = 0.0
    try:
        for i, key in enumerate(keys):
            if i == OUTAGE_FROM:
                http_server.stop()
            elif i == OUTAGE_TO:
                http_server.start()
            store.add_course(make_course("Outage", f"C{i:03d}", outage_blocks(i, 2), f"v2-{i}"))
            started = time.monotonic()
            with transaction.atomic():  # one publish, one transaction; on_commit dumps after it
                publish(signal_handler, key)
            took = time.monotonic() - started
            if OUTAGE_FROM <= i < OUTAGE_TO:
                slowest_down = max(slowest_down, took)
            else:
                slowest_up = max(slowest_up, took)
    finally:
        if not http_server.running:
            http_server.start()

    failures = [r for r in caplog.records if r.name == "event_sinks.dispatch" and r.levelno >= logging.ERROR]
    after_burst = current_state(reader)
    dumped_in_burst = sum(1 for v in after_burst.values() if v[2].startswith("v2-"))
    stale = sorted(k for k, v in after_burst.items() if v[2].startswith("v1-"))
    assert dumped_in_burst + len(stale) == OUTAGE_COURSES
    assert stale == [str(keys[i]) for i in range(OUTAGE_FROM, OUTAGE_TO)]  # exactly the publishes of the outage
    # Each failed publish was logged once, naming the sink and the course.
    assert len(failures) == len(stale)
    assert sorted(k for r in failures for k in stale if SINK in r.getMessage() and k in r.getMessage()) == stale

    out = io.StringIO()
    call_command("dump_sink", SINK, "--all", stdout=out, stderr=io.StringIO())  # the reconcile run
    line = out.getvalue().strip().splitlines()[-1]
    found = re.search(r"(\d+) dumped, (\d+) deleted, (\d+) skipped, (\d+) failed", line)
    reconciled, _, skipped, failed = map(int, found.groups())
    assert (reconciled, skipped, failed) == (len(stale), dumped_in_burst, 0), line

    final = current_state(reader)  # one complete dump per course, as many rows as its blocks
    assert len(final) == OUTAGE_COURSES
    for i, key in enumerate(keys):
        _, rows, version = final[str(key)]
        assert (version, rows) == (f"v2-{i}", outage_blocks(i, 2))
    db = f"`{database}`"
    in_view = reader.query(f"SELECT count(), uniqExact(location) FROM {db}.course_outline")[0]
    expected_rows = sum(outage_blocks(i, 2) for i in range(OUTAGE_COURSES))
    assert in_view == (expected_rows, expected_rows)  # nothing duplicated
    # Superseded dumps are pruned, those of the outage's courses too (the engine may apply DELETEs later).
    stored = eventually(lambda: reader.query(f"SELECT count() FROM {db}.course_outline_dumps")[0][0],
                        expected_rows)
    assert stored == expected_rows
    reader.close()
    figures("outage", publishes=OUTAGE_COURSES, dumped_during_burst=dumped_in_burst, failed=len(failures),
            reconciled=reconciled, skipped_by_reconcile=skipped, rows=expected_rows,
            slowest_publish_engine_down=f"{slowest_down:.3f}s", slowest_publish_engine_up=f"{slowest_up:.3f}s")


# -- 2. dumps SIGKILLed at random points -----------------------------------------------------------------

KILL_ROUNDS = 20
KILL_COURSES = 6
KILL_BATCH = 6
KILL_SEED = 20261125


class Worker:
    """``tests/support/reliability_worker.py`` for one generation, started ahead and held at READY until run."""

    def __init__(self, generation: int, env: dict):
        command = [sys.executable, "-P", str(WORKER), str(generation), "--courses", str(KILL_COURSES),
                   "--batch-size", str(KILL_BATCH)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, env=env)

    def run(self, kill_at: int | None = None, delay: float = 0.0) -> tuple[int, bool]:
        """Let it dump; SIGKILL it once it announces engine call ``kill_at``. Returns (calls seen, completed?)."""
        process = self.process
        calls, done = 0, False
        try:
            ready = process.stdout.readline()
            assert ready == b"READY\n", f"worker did not start: {ready!r} {process.stderr.read().decode()}"
            process.stdin.write(b"GO\n")
            process.stdin.flush()
            for raw in process.stdout:
                if raw.startswith(b"CALL "):
                    calls = int(raw.split()[1])
                    if kill_at is not None and calls >= kill_at:
                        time.sleep(delay)  # let the call get under way: into the request, or past it
                        os.kill(process.pid, signal.SIGKILL)
                        break
                elif raw.startswith(b"DONE "):
                    done = True
            process.wait(30)
        finally:
            self.close()
        if kill_at is None:
            assert done and process.returncode == 0, f"worker failed (exit {process.returncode})"
        return calls, done

    def close(self) -> None:
        process = self.process
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            stream.close()


def logged_versions(engine: Connection, sink: str = SINK) -> dict[str, str]:
    """{key: version} of the ledger's current dumps (which may lag what readers see, never lead)."""
    return dict(engine.query(f"SELECT key, source_version FROM `{engine.database}`.event_sinks_current_dumps "
                             "WHERE sink = {sink:String} AND NOT deleted", {"sink": sink}))


def check_generations(state: dict, allowed: dict[int, set[int]]) -> dict[int, int]:
    """Every course shows a complete dump of an allowed generation; returns {course index: generation}."""
    assert len(state) == KILL_COURSES
    found = {}
    for index in range(KILL_COURSES):
        _, rows, version = state[worker.course_key(index)]
        generation = int(version.split("-")[0][3:])
        assert generation in allowed[index], f"course {index} shows generation {generation}"
        assert rows == worker.blocks_of(generation, index)  # the complete content of that generation
        found[index] = generation
    return found


@pytest.mark.slow
def test_sigkill_at_random_points_never_shows_a_partial_course(settings, http_server, database, store, fresh_engines):
    dsn = http_dsn(http_server, database)
    settings.EVENT_SINKS = {"DSN": dsn}
    # The password travels in the environment, not on the command line; the worker imports this checkout.
    env = {**os.environ, "EVENT_SINKS_DSN": dsn, "PYTHONPATH": str(WORKER.parents[2])}
    reader = Connection(get_settings())
    sink = CourseOutlineSink()
    rng = random.Random(KILL_SEED)

    calls_per_run, _ = Worker(0, env).run()  # generation 0, complete: how many engine calls a run makes
    check_generations(current_state(reader), dict.fromkeys(range(KILL_COURSES), {0}))

    kills = mid_dump = finished_by_victim = completed_by_next = generation = 0
    upcoming = Worker(1, env)
    try:
        while kills < KILL_ROUNDS:
            generation += 1
            assert generation <= 3 * KILL_ROUNDS, "the worker keeps finishing before its kill point"
            victim, kill_at = upcoming, rng.randint(1, calls_per_run - 1)
            before = orphan_rows(reader)
            _, done = victim.run(kill_at, rng.uniform(0, 0.004))
            kills += not done  # a generation with fewer blocks can finish first: then it is one more check
            upcoming = Worker(generation + 1, env)  # starts up while this round is checked
            # After the kill: every course shows its previous complete dump or the new complete one.
            allowed = dict.fromkeys(range(KILL_COURSES), {generation - 1, generation})
            seen = check_generations(current_state(reader), allowed)
            finished_by_victim += sum(1 for g in seen.values() if g == generation)
            mid_dump += orphan_rows(reader) > before  # the kill left rows of an unlogged dump behind
            # The next run completes it: courses the victim finished and logged are skipped, the rest are
            # dumped (one killed between its copy into the current table and its ledger insert is dumped again).
            logged = logged_versions(reader)
            finished_and_logged = sum(1 for i in range(KILL_COURSES)
                                      if logged.get(worker.course_key(i), "").startswith(f"gen{generation}-"))
            for root in worker.build_courses(generation, KILL_COURSES):
                store.add_course(root)  # publish this generation here too
            summary = dump(sink, connection=reader, batch_size=KILL_BATCH, skip_unchanged=True)
            assert not summary.failed
            assert summary.count("skipped") == finished_and_logged
            completed_by_next += summary.count("dumped")
            check_generations(current_state(reader), dict.fromkeys(range(KILL_COURSES), {generation}))
    finally:
        upcoming.close()
    assert mid_dump >= KILL_ROUNDS // 4, "too few kills landed inside a dump to prove anything"
    reader.close()
    figures("kill", kills=kills, rounds=generation, engine_calls_per_run=calls_per_run, kills_mid_dump=mid_dump,
            courses_finished_before_kill=finished_by_victim, courses_completed_by_next_run=completed_by_next)


# -- 3. concurrent dumps of the same course ----------------------------------------------------------------


class Turnstile:
    """Lets the engine inserts of several threads through one at a time, in the order the test picks."""

    def __init__(self):
        self._cond = threading.Condition()
        self.waiting: dict[str, str] = {}  # thread name -> table it is about to insert into
        self.finished: set[str] = set()
        self._token: str | None = None

    def gate(self, name: str, what: str) -> None:
        with self._cond:
            self.waiting[name] = what
            self._cond.notify_all()
            if not self._cond.wait_for(lambda: self._token == name, timeout=30):
                raise TimeoutError(f"{name} was never let through")
            self._token = None
            del self.waiting[name]
            self._cond.notify_all()

    def finish(self, name: str) -> None:
        with self._cond:
            self.finished.add(name)
            self._cond.notify_all()

    def parked(self, names) -> dict[str, str]:
        """Wait until every thread of ``names`` waits at the gate or has finished; returns the waiting."""
        with self._cond:
            assert self._cond.wait_for(lambda: all(n in self.waiting or n in self.finished for n in names), 30)
            return dict(self.waiting)

    def let_through(self, name: str) -> None:
        with self._cond:
            self._token = name
            self._cond.notify_all()
            assert self._cond.wait_for(lambda: self._token is None, 30)


def gated_engine(settings, turnstile: Turnstile, name: str) -> Connection:
    engine = Connection(settings)
    insert = engine.insert_columns

    def insert_columns(table, *args, **kwargs):
        turnstile.gate(name, table)
        return insert(table, *args, **kwargs)

    engine.insert_columns = insert_columns
    return engine


def run_in_thread(name: str, turnstile: Turnstile, results: dict, fn) -> threading.Thread:
    def target():
        try:
            results[name] = fn()
        except BaseException as exc:  # reported by the test
            results[name] = exc
        finally:
            turnstile.finish(name)

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("repeat", range(6))
def test_concurrent_dumps_of_one_course_show_the_later_started_one(
    settings, http_server, database, store, fresh_engines, repeat
):
    """Two dumps of one course, each with its own Connection and Dumper over HTTP, their inserts interleaved
    at random (seeded); the earlier-started one commits first in even repeats and last in odd ones."""
    settings.EVENT_SINKS = {"DSN": http_dsn(http_server, database)}
    key = "course-v1:Race+C1+R"
    rng = random.Random(1000 + repeat)
    n_a, n_b = 20 + rng.randrange(15), 20 + rng.randrange(15)
    store.add_course(make_course("Race", "C1", n_a, f"a{repeat}"))
    turnstile, results = Turnstile(), {}
    engines = {name: gated_engine(get_settings(), turnstile, name) for name in "AB"}

    def dumper(name):
        return lambda: dump(CourseOutlineSink(), [key], connection=engines[name], batch_size=4)

    threads = [run_in_thread("A", turnstile, results, dumper("A"))]
    turnstile.parked("A")  # A has read version a and taken its dumped_at
    store.add_course(make_course("Race", "C1", n_b, f"b{repeat}"))  # a new publish
    threads.append(run_in_thread("B", turnstile, results, dumper("B")))
    first_to_commit = "A" if repeat % 2 == 0 else "B"
    commits = []
    while True:
        waiting = turnstile.parked("AB")
        if not waiting:
            break
        choice = rng.choice(sorted(waiting))
        other = "B" if choice == "A" else "A"
        if waiting[choice] == "event_sinks_dump_log" and not commits and choice != first_to_commit:
            if other in waiting:
                choice = other
            else:
                assert other in turnstile.finished
        if waiting[choice] == "event_sinks_dump_log":
            commits.append(choice)
        turnstile.let_through(choice)
    for thread in threads:
        thread.join(30)
    assert commits == [first_to_commit, "B" if first_to_commit == "A" else "A"]
    assert not any(isinstance(r, BaseException) for r in results.values()), results
    a, b = results["A"].results[0], results["B"].results[0]
    assert (a.status, b.status) == ("dumped", "dumped")

    reader = Connection(get_settings())
    dump_id, rows, version = current_state(reader)[key]
    assert (dump_id, rows, version) == (b.dump_id, n_b, f"b{repeat}")  # B, complete; never A, never a mix
    reader.close()
    for engine in engines.values():
        engine.close()


def test_a_dump_delayed_after_reading_does_not_hide_a_newer_publish(
    settings, http_server, database, store, fresh_engines
):
    settings.EVENT_SINKS = {"DSN": http_dsn(http_server, database)}
    key = "course-v1:Race+C2+R"
    store.add_course(make_course("Race", "C2", 21, "old"))
    read, go_on = threading.Event(), threading.Event()
    slow = CourseOutlineSink()
    version = slow.version

    def version_then_stall(k):
        value = version(k)  # the course is read here (the modulestore loads it in one go)
        read.set()
        go_on.wait(30)  # preempted, or waiting on the ledger lookup as the celery task does
        return value

    slow.version = version_then_stall
    results: dict = {}
    thread = threading.Thread(target=lambda: results.update(a=dump(slow, [key], connection=Connection(get_settings()))))
    thread.start()
    assert read.wait(30)
    store.add_course(make_course("Race", "C2", 27, "new"))  # the author publishes again
    newer = dump(CourseOutlineSink(), [key], connection=Connection(get_settings()))  # triggered by that publish
    assert newer.results[0].status == "dumped"
    go_on.set()
    thread.join(30)
    reader = Connection(get_settings())
    _, rows, source_version = current_state(reader)[key]
    reader.close()
    assert (source_version, rows) == ("new", 27), "the view shows the older publish after the newer was dumped"


def test_a_shared_sink_instance_labels_each_dump_with_the_version_of_its_rows(
    settings, http_server, database, store, fresh_engines
):
    settings.EVENT_SINKS = {"DSN": http_dsn(http_server, database)}
    key = "course-v1:Race+C3+R"
    store.add_course(make_course("Race", "C3", 21, "old"))
    shared = get_sink(SINK)  # what dispatch uses in every thread of the process
    engine = Connection(get_settings())
    Dumper(shared, engine).ensure_schema()
    read_a, go_a, read_b, go_b = (threading.Event() for _ in range(4))
    version = type(shared).version
    stall = {"A": (read_a, go_a), "B": (read_b, go_b)}

    def version_then_stall(self, k):
        value = version(self, k)
        done, go = stall[threading.current_thread().name]
        done.set()
        go.wait(30)
        return value

    shared.version = types.MethodType(version_then_stall, shared)
    try:
        results: dict = {}
        threads = {n: threading.Thread(name=n, target=lambda n=n: results.update(
            {n: Dumper(shared, engine).dump_key(key)})) for n in "AB"}
        threads["A"].start()
        assert read_a.wait(30)  # A read "old"
        store.add_course(make_course("Race", "C3", 27, "new"))
        threads["B"].start()
        assert read_b.wait(30)  # B read "new"
        go_a.set()
        threads["A"].join(30)  # A writes its rows...
        go_b.set()
        threads["B"].join(30)
    finally:
        del shared.version
    # A checked the version while the course was "old" but read the rows after "new" was published:
    # each dump is labelled with the version of the rows it wrote (the read's, not the earlier check's).
    labels = {n: (published(r.source_version), r.rows) for n, r in results.items()}
    assert labels == {"A": ("new", 27), "B": ("new", 27)}, f"dumps are labelled {labels}"
    engine.close()


# -- 6. secrets: the engine password never shows, whatever fails ----------------------------------------------

PASSWORD_PARTS = ("Qx7Lk", "Jw4Tz")  # the password is the two parts joined by one character


def password(separator: str = "-") -> str:
    return separator.join(PASSWORD_PARTS)


MALFORMED = "malformed DSN"
SECRET_CASES = [
    pytest.param("server down", lambda port, db: f"http://admin:{password()}@127.0.0.1:{port}/{db}", id="down"),
    pytest.param("wrong password", lambda port, db: f"http://tester:{password()}@127.0.0.1:{port}/{db}", id="wrong-pw"),
    pytest.param("failing dump", None, id="failing-dump"),
    pytest.param(MALFORMED, lambda port, db: f"http://admin:{password()}@127.0.0.1:99999/{db}", id="port-range"),
    pytest.param(MALFORMED, lambda port, db: f"http://admin:{password()}@127.0.0.1:{port}x/{db}", id="port-text"),
    pytest.param(MALFORMED, lambda port, db: f"clickhouse://admin:{password()}@127.0.0.1:{port}/{db}", id="scheme"),
    pytest.param(MALFORMED, lambda port, db: f"http://admin:{password()}@/{db}", id="no-host"),
    pytest.param(MALFORMED, lambda port, db: f"http:/admin:{password()}@127.0.0.1:{port}/{db}", id="one-slash"),
    pytest.param(MALFORMED, lambda port, db: f"http://admin:{password('#')}@127.0.0.1:{port}/{db}", id="raw-hash"),
    pytest.param(MALFORMED, lambda port, db: f"http://admin:{password('/')}@127.0.0.1:{port}/{db}", id="raw-slash"),
]


def run_everything(signal_handler, key) -> str:
    """Every path an operator sees: a publish (receivers log), the commands' output and errors, the engine."""
    import traceback

    seen = []

    def attempt(fn):
        out, err = io.StringIO(), io.StringIO()
        try:
            fn(out, err)
        except BaseException as exc:  # noqa: BLE001 - the text of any failure is what we inspect
            seen.append("".join(traceback.format_exception(exc)))
        seen.extend((out.getvalue(), err.getvalue()))

    attempt(lambda out, err: signal_handler.course_published.send(sender=None, course_key=key))
    attempt(lambda out, err: call_command("list_sinks", stdout=out, stderr=err))
    attempt(lambda out, err: call_command("dump_sink", SINK, str(key), stdout=out, stderr=err))
    attempt(lambda out, err: call_command("dump_sink", SINK, "--all", "--force", stdout=out, stderr=err))
    attempt(lambda out, err: call_command("sink_query", "SELECT 1", stdout=out, stderr=err))
    attempt(lambda out, err: call_command("show_course", str(key), stdout=out, stderr=err))

    def engine_directly(out, err):
        engine = Connection(get_settings())
        out.write(repr(engine))
        try:
            engine.query("SELECT 1")
        finally:
            engine.close()

    attempt(engine_directly)
    return "\n".join(seen)


@pytest.mark.parametrize("case, make_dsn", SECRET_CASES)
def test_the_password_never_appears_in_logs_errors_or_listings(
    settings, http_server, database, signal_handler, store, fresh_engines, caplog, case, make_dsn
):
    from event_sinks.courses import Course
    from event_sinks.courses.modulestore import read_modulestore
    from event_sinks.courses.sources import CourseSource

    key = CourseKey.from_string("course-v1:Secret+C1+R")
    store.add_course(make_course("Secret", "C1", 21, "v1"))
    secrets = PASSWORD_PARTS
    if case in ("wrong password", "failing dump"):
        port = http_server.start().port
    else:
        port = closed_port()
    if case == "failing dump":
        dsn = http_dsn(http_server, database)
        secrets = (http_server.password,)

        class BreaksMidRead(CourseSource):
            def keys(self):
                return iter([str(key)])

            def read(self, course_key):
                course = read_modulestore(course_key, store=store)

                def blocks():
                    for i, block in enumerate(course.blocks()):
                        if i == 7:
                            raise RuntimeError(f"the modulestore went away while reading {course_key}")
                        yield block

                return Course(course.course_key, course.org, course.display_name, course.source_version,
                              course.edited_on, blocks)

        set_course_source(BreaksMidRead())
    else:
        dsn = make_dsn(port, database)
    settings.EVENT_SINKS = {"DSN": dsn, "DISPATCH": "sync", "CONNECT_TIMEOUT": 1, "SEND_RECEIVE_TIMEOUT": 5}
    caplog.set_level(logging.DEBUG)  # every logger of the process, the driver's and urllib3's included

    text = run_everything(signal_handler, key) + "\n" + caplog.text
    assert "Traceback" in text or "FAILED" in text or "failed" in text  # something did fail, and was seen
    for secret in secrets:
        assert secret not in text, f"the password ({case}) leaked:\n" + "\n".join(
            line for line in text.splitlines() if secret in line)


# -- 7. host safety: a dead or silent engine never holds a publish for long -----------------------------------


class BlackHole:
    """A local TCP server that accepts connections and never answers (a hung server, a dropped route)."""

    def __init__(self):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(64)
        self.port = self.socket.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.socket.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.socket.close()
        for conn in self.accepted:
            conn.close()


def closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now: connections are refused
    return port


CONNECT_TIMEOUT, SEND_RECEIVE_TIMEOUT = 1, 1


def publish_sinks() -> list[str]:
    """The enabled sinks a course publish dumps (course_outline and block_relationships today)."""
    from event_sinks.registry import is_enabled, registry

    return sorted(sink.name for sink in registry.all() if is_enabled(sink)
                  and any(t.signal.endswith("SignalHandler.course_published") for t in sink.triggers))


@pytest.mark.parametrize("engine_state, strategy", [
    ("closed port", "sync"), ("closed port", "on_commit"), ("black hole", "sync"), ("black hole", "on_commit"),
])
@pytest.mark.django_db(transaction=True)
def test_a_publish_returns_promptly_when_the_engine_is_down(
    settings, signal_handler, store, fresh_engines, caplog, engine_state, strategy
):
    hole = BlackHole() if engine_state == "black hole" else None
    port = hole.port if hole else closed_port()
    settings.EVENT_SINKS = {
        "DSN": f"http://default:pw@127.0.0.1:{port}/db", "DISPATCH": strategy,
        "CONNECT_TIMEOUT": CONNECT_TIMEOUT, "SEND_RECEIVE_TIMEOUT": SEND_RECEIVE_TIMEOUT,
    }
    key = CourseKey.from_string("course-v1:Host+Safe+R")
    store.add_course(make_course("Host", "Safe", 21, "v1"))
    caplog.set_level(logging.WARNING, logger="event_sinks")
    started = time.monotonic()
    try:
        if strategy == "sync":
            # Django's plain send(): an exception in a receiver would reach the caller.
            signal_handler.course_published.send(sender=None, course_key=key)
        else:
            with transaction.atomic():  # a whole Studio publish in one transaction, dumped after commit
                publish(signal_handler, key)
    finally:
        elapsed = time.monotonic() - started
        if hole:
            hole.close()
    # One dispatch dumps every sink of the publish; it stops at the first sink that cannot reach the
    # engine, after one attempt. A refused connection fails at once (bound: CONNECT_TIMEOUT per sink);
    # a silent server accepts the connection and holds the request for SEND_RECEIVE_TIMEOUT (at most
    # DUMP_TIMEOUT), per sink attempted.
    sinks = publish_sinks()
    assert "course_outline" in sinks and "block_relationships" in sinks
    if hole:
        bound = len(sinks) * (CONNECT_TIMEOUT + SEND_RECEIVE_TIMEOUT) + 1.0
        assert 1 <= len(hole.accepted) <= len(sinks)  # at most one connection per sink, no retries
        assert len(hole.accepted) * SEND_RECEIVE_TIMEOUT * 0.9 <= elapsed < bound
    else:
        bound = len(sinks) * CONNECT_TIMEOUT
        assert elapsed < bound
    text = caplog.text
    assert "unreachable" in text and all(name in text for name in sinks)
    figures("host safety", engine=engine_state, dispatch=strategy, publish_seconds=f"{elapsed:.3f}",
            bound=f"{bound:.1f}", connections=len(hole.accepted) if hole else "refused")
