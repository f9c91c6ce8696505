"""Field faults on the write path, reproduced with the fault proxy and a clock-skewed writer process.

1. an insert replayed by the driver after a connection reset (the server had run it), or one that a
   gateway acknowledged without the server, never makes a complete dump hold other rows than it sent;
2. a ledger insert acknowledged but not applied never leads to pruning: the dump fails, the previous
   one stays visible;
3. dumps are ordered by ClickHouse's clock, so a writer host whose clock is fast or slow (or stepped)
   neither hides later dumps nor is hidden by them;
5. a slow-but-alive server (slow answers, or an answer trickled byte by byte) holds a dump no longer
   than DUMP_TIMEOUT, and a publish no longer than DUMP_TIMEOUT per sink.

(4, a full disk, is ``tests/clickhouse/test_full_disk.py``.) Each check ends with what readers of the
current views see (``test_reliability.current_state``): one complete dump per key, the one the ledger names.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import transaction
from opaque_keys.edx.keys import CourseKey

from event_sinks import receivers
from event_sinks.clickhouse import Connection, close_connections
from event_sinks.conf import get_settings
from event_sinks.courses.sources import ModulestoreSource, set_course_source
from event_sinks.dumping import Dumper, dump
from event_sinks.dumping.retention import Retention
from event_sinks.sinks.course_outline import CourseOutlineSink
from event_sinks.testing.modulestore import StandInModuleStore

from ..support import clock_writer, sample_sink
from ..support.fault_proxy import Fault, FaultProxy, every, insert_into, statement
from .test_reliability import current_state, make_course, orphan_rows, publish

WORDS = "test_words"
CLOCK_WRITER = Path(__file__).resolve().parents[1] / "support" / "clock_writer.py"


@pytest.fixture
def proxy(http_server):
    if not http_server.running:
        http_server.start()
    with FaultProxy(http_server.port) as proxy:
        yield proxy


@pytest.fixture
def fresh_engines():
    close_connections()
    yield
    close_connections()


@pytest.fixture
def store():
    store = StandInModuleStore()
    set_course_source(ModulestoreSource(store))
    yield store
    set_course_source(None)


def through(settings, proxy, http_server, database, **extra) -> Connection:
    """Settings whose engine is the endpoint behind ``proxy``; returns a connection with them."""
    settings.EVENT_SINKS = {"DSN": proxy.dsn(http_server, database), **extra}
    return Connection(get_settings())


def direct(http_server, database) -> Connection:
    """A connection that bypasses the proxy, to look at what the server holds."""
    dsn = http_server.dsn.rsplit("/", 1)[0] + f"/{database}"
    return Connection(get_settings({"DSN": dsn}))


def text(n: int, tag: str) -> list[str]:
    return [f"{tag}-{i}" for i in range(n)]


def stored_rows(engine: Connection, dump_id) -> int:
    return engine.query(f"SELECT count() FROM `{engine.database}`.test_words_dumps WHERE dump_id = {{d:UUID}}",
                        {"d": dump_id})[0][0]


# -- 1. replayed and lost inserts -------------------------------------------------------------------


def test_a_batch_insert_replayed_after_a_reset_lands_once(settings, http_server, database, words, proxy):
    engine = through(settings, proxy, http_server, database)
    sample_sink.SOURCE["doc"] = text(30, "v1")
    proxy.inject(Fault("reset", match=insert_into("test_words_dumps"), nth=2))  # the 2nd of 3 batches
    summary = dump(WORDS, ["doc"], connection=engine, batch_size=10)
    assert len(proxy.actions("reset")) == 1  # the fault fired: the server ran the batch, the client saw a reset
    assert summary.count("dumped") == 1, summary.failed
    reader = direct(http_server, database)
    dump_id, rows, _ = current_state(reader, WORDS, "doc")["doc"]
    assert rows == 30 and stored_rows(reader, dump_id) == 30  # the replayed batch counted once
    reader.close()
    engine.close()


def test_a_replay_the_table_does_not_deduplicate_fails_the_dump_and_shows_nothing_of_it(
    settings, http_server, database, words, proxy
):
    engine = through(settings, proxy, http_server, database)
    sample_sink.SOURCE["doc"] = text(30, "v1")
    first = dump(WORDS, ["doc"], connection=engine, batch_size=10).results[0]
    # A table made without (or stripped of) the deduplication window, or a server told not to deduplicate.
    engine.command(f"ALTER TABLE `{database}`.test_words_dumps MODIFY SETTING non_replicated_deduplication_window = 0")
    sample_sink.SOURCE["doc"] = text(30, "v2")
    proxy.inject(Fault("reset", match=insert_into("test_words_dumps"), nth=1))
    summary = dump(WORDS, ["doc"], connection=engine, batch_size=10)
    assert len(proxy.actions("reset")) == 1
    assert summary.count("failed") == 1
    error = summary.failed[0].error
    assert "40 rows" in error and "30" in error and "test_words_dumps" in error, error
    reader = direct(http_server, database)
    assert current_state(reader, WORDS, "doc")["doc"][0] == first.dump_id  # the previous dump, complete
    assert orphan_rows(reader, WORDS) == 40  # the failed dump's rows, invisible until pruned
    reader.close()
    engine.close()


def test_a_batch_a_gateway_acknowledged_without_the_server_fails_the_dump(
    settings, http_server, database, words, proxy
):
    engine = through(settings, proxy, http_server, database)
    sample_sink.SOURCE["doc"] = text(30, "v1")
    first = dump(WORDS, ["doc"], connection=engine, batch_size=10).results[0]
    sample_sink.SOURCE["doc"] = text(30, "v2")
    proxy.inject(Fault("ack", match=insert_into("test_words_dumps"), nth=3))  # the last batch never arrives
    summary = dump(WORDS, ["doc"], connection=engine, batch_size=10)
    assert summary.count("failed") == 1
    assert "20 rows" in summary.failed[0].error, summary.failed[0].error
    reader = direct(http_server, database)
    assert current_state(reader, WORDS, "doc")["doc"][0] == first.dump_id
    reader.close()
    engine.close()


# -- 2. a commit acknowledged but not applied ----------------------------------------------------------


def test_a_ledger_insert_acknowledged_but_not_applied_prunes_nothing(settings, http_server, database, words, proxy):
    engine = through(settings, proxy, http_server, database)
    sample_sink.SOURCE["doc"] = text(30, "v1")
    first = dump(WORDS, ["doc"], connection=engine, batch_size=10).results[0]
    sample_sink.SOURCE["doc"] = text(25, "v2")
    proxy.inject(Fault("ack", match=insert_into("event_sinks_dump_log")))
    summary = dump(WORDS, ["doc"], connection=engine, batch_size=10)
    assert len(proxy.actions("ack")) == 1
    assert summary.count("failed") == 1
    error = summary.failed[0].error
    assert "event_sinks_dump_log" in error and "nothing was pruned" in error and "dumps the key again" in error
    reader = direct(http_server, database)
    retention = Retention(sample_sink.WordsSink(), reader)
    assert retention.wait(120)  # a DELETE, had one been sent, is applied by now
    # The new dump was copied whole before its ledger insert: readers see it, the ledger lags (never leads).
    dump_id, rows, _ = current_state(reader, WORDS, "doc")["doc"]
    assert rows == 25 and dump_id != first.dump_id
    assert reader.query(f"SELECT dump_id FROM `{database}`.event_sinks_current_dumps")[0][0] == first.dump_id
    assert stored_rows(reader, first.dump_id) == 30  # nothing pruned
    again = dump(WORDS, ["doc"], connection=engine, batch_size=10, skip_unchanged=True).results[0]
    assert again.status == "dumped"  # the ledger's version is v1's: the key is dumped again, and logged
    assert current_state(reader, WORDS, "doc")["doc"][:2] == (again.dump_id, 25)
    reader.close()
    engine.close()


def test_a_replayed_commit_leaves_one_ledger_row(settings, http_server, database, words, proxy):
    engine = through(settings, proxy, http_server, database)
    sample_sink.SOURCE["doc"] = text(12, "v1")
    proxy.inject(Fault("reset", match=insert_into("event_sinks_dump_log")))
    result = dump(WORDS, ["doc"], connection=engine, batch_size=10).results[0]
    assert len(proxy.actions("reset")) == 1 and result.status == "dumped", result.error
    reader = direct(http_server, database)
    logged = reader.query(f"SELECT count() FROM `{database}`.event_sinks_dump_log WHERE dump_id = {{d:UUID}}",
                          {"d": result.dump_id})[0][0]
    assert logged == 1  # the replay was dropped
    assert current_state(reader, WORDS, "doc")["doc"][:2] == (result.dump_id, 12)
    reader.close()
    engine.close()


def test_a_tombstone_acknowledged_but_not_applied_is_reported(settings, http_server, database, words, proxy):
    engine = through(settings, proxy, http_server, database)
    sample_sink.SOURCE["doc"] = text(12, "v1")
    dump(WORDS, ["doc"], connection=engine)
    proxy.inject(Fault("ack", match=insert_into("event_sinks_dump_log")))
    summary = dump(WORDS, ["doc"], connection=engine, delete=True)
    assert summary.count("failed") == 1 and "does not hold it" in summary.failed[0].error, summary.failed
    reader = direct(http_server, database)
    # The key left the current table before the ledger insert: gone for readers, the ledger lags.
    assert "doc" not in current_state(reader, WORDS, "doc")
    again = dump(WORDS, ["doc"], connection=engine, delete=True).results[0]
    assert again.status == "deleted"
    assert "doc" not in current_state(reader, WORDS, "doc")
    reader.close()
    engine.close()


def test_a_tombstone_whose_check_is_lost_is_reported_in_plain_words_and_recorded_by_the_next(
    settings, http_server, database, words, proxy
):
    # Found by the hostile campaign (seed 7, a --reconcile with its count() answers trickled away): the
    # delete was applied, the check after it failed, and the FAILED line showed the driver's raw error.
    engine = through(settings, proxy, http_server, database)
    sample_sink.SOURCE["doc"] = text(12, "v1")
    dump(WORDS, ["doc"], connection=engine)
    proxy.inject(Fault("reset", match=statement(r"count\(\) FROM \S*test_words_current` FINAL"), times=2))
    summary = dump(WORDS, ["doc"], connection=engine, delete=True)
    assert len(proxy.actions("reset")) == 2  # the driver asks a SELECT twice
    error = summary.failed[0].error
    assert error.startswith("ClickHouse at") and "test_words_current" in error, error
    reader = direct(http_server, database)
    assert "doc" not in current_state(reader, WORDS, "doc")  # applied, not logged: the ledger lags readers
    assert dump(WORDS, ["doc"], connection=engine, delete=True).results[0].status == "deleted"
    assert reader.query(f"SELECT deleted FROM `{database}`.event_sinks_current_dumps WHERE key = 'doc'") == [(1,)]
    reader.close()
    engine.close()


@pytest.mark.parametrize("tombstone", [False, True], ids=["dump", "tombstone"])
def test_a_copy_into_the_current_table_acknowledged_but_not_applied_changes_nothing(
    settings, http_server, database, words, proxy, tombstone
):
    engine = through(settings, proxy, http_server, database)
    sample_sink.SOURCE["doc"] = text(30, "v1")
    first = dump(WORDS, ["doc"], connection=engine, batch_size=10).results[0]
    sample_sink.SOURCE["doc"] = text(25, "v2")
    proxy.inject(Fault("ack", match=insert_into("test_words_current")))
    summary = dump(WORDS, ["doc"], connection=engine, batch_size=10, delete=tombstone)
    assert len(proxy.actions("ack")) == 1
    assert summary.count("failed") == 1 and "test_words_current" in summary.failed[0].error, summary.failed
    reader = direct(http_server, database)
    assert current_state(reader, WORDS, "doc")["doc"][:2] == (first.dump_id, 30)  # as before, as the ledger says
    reader.close()
    engine.close()


def test_a_replayed_copy_into_the_current_table_is_harmless(settings, http_server, database, words, proxy):
    engine = through(settings, proxy, http_server, database)
    sample_sink.SOURCE["doc"] = text(30, "v1")
    dump(WORDS, ["doc"], connection=engine, batch_size=10)
    sample_sink.SOURCE["doc"] = text(25, "v2")
    proxy.inject(Fault("reset", match=insert_into("test_words_current")))
    result = dump(WORDS, ["doc"], connection=engine, batch_size=10).results[0]
    assert len(proxy.actions("reset")) == 1 and result.status == "dumped", result.error
    reader = direct(http_server, database)
    assert current_state(reader, WORDS, "doc")["doc"][:2] == (result.dump_id, 25)
    reader.close()
    engine.close()


# -- 3. writers whose clocks are wrong ------------------------------------------------------------------

FAKETIME_LIBRARIES = (
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/faketime/libfaketimeMT.so.1",
    "/usr/local/lib/faketime/libfaketimeMT.so.1",
)


def faketime_library() -> str:
    found = next((path for path in FAKETIME_LIBRARIES if os.path.exists(path)), None)
    if found is None:
        pytest.skip("libfaketime is not installed (apt-get install faketime): it skews the writer's clock")
    return found


class SkewedWriter:
    """``tests/support/clock_writer.py`` under libfaketime: a host whose wall clock is ``offset`` off."""

    def __init__(self, dsn: str, offset: str):
        env = {**os.environ, "EVENT_SINKS_DSN": dsn, "PYTHONPATH": str(CLOCK_WRITER.parents[2]),
               "LD_PRELOAD": faketime_library(), "FAKETIME": offset,
               "FAKETIME_DONT_FAKE_MONOTONIC": "1"}  # NTP moves the wall clock, never the monotonic one
        self.process = subprocess.Popen([sys.executable, "-P", str(CLOCK_WRITER)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        ready = self.process.stdout.readline()
        if not ready.startswith("READY "):
            self.close()
            raise AssertionError(f"the writer did not start: {ready!r} {self.process.stderr.read()}")
        self.skew = float(ready.split()[1]) - time.time()

    def run(self, command: str) -> str:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        assert answer.startswith("DONE "), f"{answer!r} {self.process.stderr.read()}"
        return answer.split(maxsplit=1)[1].strip()

    def close(self) -> str:
        """Stop the writer; returns what it wrote on its standard error (its warnings)."""
        if self.process.poll() is None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.flush()
                self.process.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        errors = self.process.stderr.read()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            stream.close()
        return errors


def shown(reader: Connection) -> tuple[str, int] | None:
    """(source version, rows) of the course the views show, or None."""
    state = current_state(reader)
    if clock_writer.KEY not in state:
        return None
    _, rows, version = state[clock_writer.KEY]
    return version.split("+")[0], rows  # the course sinks add the run to the course version


@pytest.mark.parametrize("offset", ["+5m", "-5m"], ids=["5-minutes-fast", "5-minutes-slow"])
def test_a_writer_with_a_skewed_clock_neither_hides_nor_is_hidden_by_other_writers(
    settings, http_server, database, store, fresh_engines, offset
):
    dsn = http_server.dsn.rsplit("/", 1)[0] + f"/{database}"
    settings.EVENT_SINKS = {"DSN": dsn}
    here = Connection(get_settings())  # a writer with the right time
    skewed = SkewedWriter(dsn, offset)
    try:
        assert abs(abs(skewed.skew) - 300) < 60, f"faketime did not skew the writer (skew {skewed.skew:.1f} s)"
        sink = CourseOutlineSink()

        def dump_here(generation: int, **kwargs):
            store.add_course(clock_writer.course(generation))
            result = dump(sink, [clock_writer.KEY], connection=here, **kwargs).results[0]
            assert result.ok, result.error

        assert skewed.run("dump 1") == "dumped"
        dump_here(2)
        assert shown(here) == ("gen2", 12)  # the later dump is shown, whichever host's clock is ahead
        assert skewed.run("dump 3") == "dumped"
        assert shown(here) == ("gen3", 13)
        dump_here(4)
        assert shown(here) == ("gen4", 14)
        assert skewed.run("delete") == "deleted"
        assert shown(here) is None  # the skewed host's tombstone is the latest word
        dump_here(5)
        assert shown(here) == ("gen5", 15)
        dump_here(0, delete=True)
        assert shown(here) is None  # and so is the right host's
    finally:
        warnings = skewed.close()
        here.close()
    assert "this host's clock is" in warnings and ("ahead of" if offset[0] == "+" else "behind") in warnings, warnings


# -- 5. a slow-but-alive server -------------------------------------------------------------------------

DUMP_TIMEOUT = 3
#: What may pass beyond DUMP_TIMEOUT before a dump gives up: Python's own work between requests (the
#: deadline counts the time spent waiting for the engine). Generous: a loaded machine is slow too.
SLACK = 10.0
#: How long the test waits for a dump that ignores the deadline (the code before DUMP_TIMEOUT).
GIVE_UP = 90.0


def timed(fn) -> tuple[float, object]:
    """Run ``fn`` in a thread; (seconds it took, its result or exception). Fails after GIVE_UP seconds."""
    out: dict = {}

    def target():
        try:
            out["result"] = fn()
        except BaseException as exc:  # reported by the caller
            out["result"] = exc

    started = time.monotonic()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(GIVE_UP)
    took = time.monotonic() - started
    assert not thread.is_alive(), f"still waiting for the engine after {took:.0f} s"
    return took, out["result"]


@pytest.mark.parametrize("fault", [
    Fault("delay", seconds=0.9, times=None),  # every answer 0.9 s late: under SEND_RECEIVE_TIMEOUT each time
    Fault("trickle", seconds=0.4, chunk=1, times=None),  # every answer one byte at a time
], ids=["slow-answers", "trickle"])
def test_a_slow_server_holds_a_dump_no_longer_than_dump_timeout(
    settings, http_server, database, words, proxy, fault
):
    sample_sink.SOURCE["doc"] = text(30, "v1")
    direct_engine = direct(http_server, database)
    first = dump(WORDS, ["doc"], connection=direct_engine, batch_size=10).results[0]  # schema and a dump
    engine = through(settings, proxy, http_server, database, DUMP_TIMEOUT=DUMP_TIMEOUT, SEND_RECEIVE_TIMEOUT=5,
                     CONNECT_TIMEOUT=2)
    Dumper(sample_sink.WordsSink(), engine).ensure_schema()  # connected, schema checked: what is left is the dump
    sample_sink.SOURCE["doc"] = text(30, "v2")
    proxy.inject(fault)
    took, summary = timed(lambda: dump(WORDS, ["doc"], connection=engine, batch_size=10))
    proxy.stop()
    assert not isinstance(summary, BaseException), summary
    assert summary.count("failed") == 1
    assert "DUMP_TIMEOUT" in summary.failed[0].error, summary.failed[0].error
    assert took < DUMP_TIMEOUT + SLACK, f"the dump gave up after {took:.1f} s"
    print(f"\n[field faults] {fault.action}: the dump gave up after {took:.2f} s (DUMP_TIMEOUT {DUMP_TIMEOUT} s)")
    assert current_state(direct_engine, WORDS, "doc")["doc"][0] == first.dump_id
    engine.close()
    direct_engine.close()


@pytest.fixture
def signal_handler(signal_handler):
    receivers.disconnect_all()
    receivers.connect_all()
    yield signal_handler
    receivers.disconnect_all()
    receivers.connect_all()


@pytest.mark.django_db(transaction=True)
def test_a_publish_against_a_trickling_server_returns_within_dump_timeout_per_sink(
    settings, http_server, database, signal_handler, store, fresh_engines, proxy, caplog
):
    key = CourseKey.from_string("course-v1:Slow+C1+R")
    store.add_course(make_course("Slow", "C1", 21, "v1"))
    settings.EVENT_SINKS = {"DSN": proxy.dsn(http_server, database), "DISPATCH": "on_commit",
                            "DUMP_TIMEOUT": DUMP_TIMEOUT, "SEND_RECEIVE_TIMEOUT": 5, "CONNECT_TIMEOUT": 2}
    proxy.inject(Fault("trickle", match=every, seconds=0.4, chunk=1, times=None))

    def a_publish():
        with transaction.atomic():
            publish(signal_handler, key)

    took, outcome = timed(a_publish)
    proxy.stop()
    assert outcome is None, outcome  # the host never sees an exception
    assert took < 2 * DUMP_TIMEOUT + SLACK, f"the publish returned after {took:.1f} s"
    print(f"\n[field faults] trickle: the publish returned after {took:.2f} s (DUMP_TIMEOUT {DUMP_TIMEOUT} s)")
    assert "took longer than DUMP_TIMEOUT" in caplog.text and "course_outline" in caplog.text, caplog.text
