"""Defects the hostile campaign (test_campaign.py) found in how the driver's failures reach a user.

Each was a strict xfail until fixed in event_sinks/clickhouse; each test states what a user must see
instead: a warning without a traceback, an error that names ClickHouse and what was asked, the
server's answer rather than a Python object's repr. The campaign's oracle checks the same again
across its generated HTTP faults.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from event_sinks import dump
from event_sinks.clickhouse import close_connections
from event_sinks.courses.sources import OlxSource, set_course_source
from event_sinks.errors import EngineUnavailableError, EventSinksError

from ..support.fault_proxy import Fault, every, statement
from ..support.hostile_proxy import HostileProxy, Mangle

DEMO = Path(__file__).resolve().parents[2] / "event_sinks" / "demo" / "course"


@pytest.fixture
def through_proxy(settings, http_server, database, monkeypatch):
    """The demo course as the source, and settings whose engine is the HTTP endpoint behind a HostileProxy."""
    monkeypatch.delenv("EVENT_SINKS_DSN", raising=False)
    if not http_server.running:
        http_server.start()
    direct = http_server.dsn.rsplit("/", 1)[0] + f"/{database}"
    set_course_source(OlxSource([DEMO]))
    settings.EVENT_SINKS = {"DSN": direct, "DISPATCH": "sync"}
    close_connections()
    assert dump("course_outline").count("dumped") == 1  # the schema, and a dump to keep
    with HostileProxy(http_server.port) as proxy:
        settings.EVENT_SINKS = {"DSN": proxy.dsn(http_server, database), "DISPATCH": "sync", "DUMP_TIMEOUT": 5,
                                "SEND_RECEIVE_TIMEOUT": 5}
        close_connections()
        yield proxy
    close_connections()
    set_course_source(None)


def failure_of(summary) -> str:
    assert summary.count("failed") == 1, summary
    return summary.failed[0].error


def test_an_unreadable_answer_logs_no_traceback(through_proxy, caplog):
    through_proxy.inject(Mangle(match=every, nth=5, how="body", times=None, seed=1))  # after the connect
    with caplog.at_level(logging.WARNING), pytest.raises(EventSinksError):  # a plain error, it is
        dump("course_outline")
    shown = [record for record in caplog.records if record.exc_info]
    assert not shown, [f"{r.name}: {r.getMessage()}" for r in shown]


def test_an_empty_answer_to_a_query_is_an_engine_error(through_proxy):
    through_proxy.inject(Fault("ack", match=every, nth=2, times=None))
    try:
        error = failure_of(dump("course_outline"))
    except EngineUnavailableError as exc:  # the schema's own queries may be the first to get no row
        error = str(exc)
    assert "IndexError" not in error and "ClickHouse" in error, error


def test_an_empty_answer_to_the_version_query_shows_no_object_repr(through_proxy):
    through_proxy.inject(Fault("ack", match=every, nth=1, times=None))
    with pytest.raises(EngineUnavailableError) as caught:
        dump("course_outline")
    assert " object at 0x" not in str(caught.value), str(caught.value)


def test_an_empty_answer_to_a_one_value_query_is_an_engine_error(through_proxy):
    # seed 12, http-016: `dump_sink --reconcile` ended in "IndexError: list index out of range" when a
    # gateway acknowledged the ledger's EXISTS TABLE without an answer
    from event_sinks.clickhouse import get_connection
    from event_sinks.dumping import ledger

    through_proxy.inject(Fault("ack", match=statement("EXISTS TABLE"), times=None))
    with pytest.raises(EngineUnavailableError) as caught:
        ledger.exists(get_connection())
    assert "EXISTS TABLE" in str(caught.value) and "no row" in str(caught.value), str(caught.value)


def test_sink_query_logs_no_driver_traceback(through_proxy, caplog):
    # seed 12, http-020: sink_query calls the driver itself, outside the library's requests
    fault = Mangle(match=statement(r"^SELECT count\(\)"), how="body", times=None, seed=1)
    through_proxy.inject(fault)
    with caplog.at_level(logging.WARNING), contextlib.suppress(CommandError):
        call_command("sink_query", "SELECT count() AS n FROM course_outline", stdout=io.StringIO())
    assert fault.hits, "the fault did not fire"
    shown = [record for record in caplog.records if record.exc_info]
    assert not shown, [f"{r.name}: {r.getMessage()}" for r in shown]


def test_an_error_from_the_engine_is_one_paragraph(through_proxy):
    # seed 13, http-026: a 404 whose body was a syntax tree, line by line, was shown as it came
    fault = Mangle(match=statement("EXPLAIN AST"), how="status", status="404 Not Found", times=None, seed=1)
    through_proxy.inject(fault)
    with pytest.raises(CommandError) as caught:
        call_command("sink_query", "SELECT count() AS n FROM course_outline", stdout=io.StringIO())
    assert fault.hits, "the fault did not fire"
    assert "\n" not in str(caught.value) and "404" in str(caught.value), str(caught.value)


def test_a_damaged_syntax_tree_is_no_refusal_of_the_query(through_proxy):
    # seed 16, http-016: random bytes for the answer to EXPLAIN AST made a SELECT "refused: a SELECT statement"
    fault = Mangle(match=statement("EXPLAIN AST"), how="body", times=None, seed=1)
    through_proxy.inject(fault)
    with pytest.raises(CommandError) as caught:
        call_command("sink_query", "SELECT count() AS n FROM course_outline", stdout=io.StringIO())
    assert fault.hits, "the fault did not fire"
    message = str(caught.value)
    assert "refused" not in message and "ClickHouse at" in message and "damaged" in message, message


@pytest.mark.parametrize("times, said", [(None, "no row"), (1, "counts 21 rows")], ids=["every-answer", "the-rows"])
def test_show_course_tells_a_lost_answer_from_a_course_never_dumped(through_proxy, times, said):
    # seed 21, http-008: a gateway acknowledging the SELECT made show_course say "dump it first"
    fault = Fault("ack", match=statement("course_blocks"), times=times)
    through_proxy.inject(fault)
    with pytest.raises(CommandError) as caught:
        call_command("show_course", "course-v1:EventSinks+Demo101+2026", stdout=io.StringIO())
    assert fault.hits, "the fault did not fire"
    message = str(caught.value)
    assert "dump it first" not in message and "ClickHouse at" in message and said in message, message
