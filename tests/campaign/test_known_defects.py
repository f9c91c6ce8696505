"""Defects the hostile campaign (test_campaign.py) found in code owned elsewhere, each a strict xfail.

Each test states what a user must see and fails while the defect is there; once it is fixed the test
passes, which a strict xfail reports as a failure: then drop the mark here and the defect's entry in
test_campaign.KNOWN (which keeps the campaign's matching cases out of its count meanwhile).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from event_sinks import dump
from event_sinks.clickhouse import close_connections
from event_sinks.courses.sources import OlxSource, set_course_source
from event_sinks.errors import EngineUnavailableError, EventSinksError

from ..support.fault_proxy import Fault, every
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


@pytest.mark.xfail(strict=True, reason=(
    "driver-tracebacks (event_sinks/clickhouse): clickhouse-connect logs a WARNING with the full traceback "
    "('unexpected failure to read next chunk', 'Unexpected Http Driver Exception') for an answer it cannot "
    "read, before the library reports the same failure as an EngineError; with the event-sinks command line "
    "or a host's console logging the user sees a Python traceback"))
def test_an_unreadable_answer_logs_no_traceback(through_proxy, caplog):
    through_proxy.inject(Mangle(match=every, nth=5, how="body", times=None, seed=1))  # after the connect
    with caplog.at_level(logging.WARNING), pytest.raises(EventSinksError):  # a plain error, it is
        dump("course_outline")
    shown = [record for record in caplog.records if record.exc_info]
    assert not shown, [f"{r.name}: {r.getMessage()}" for r in shown]


@pytest.mark.xfail(strict=True, reason=(
    "empty-answer-index-error (event_sinks/clickhouse/connection.py _read_server_clock): an empty answer to "
    "SELECT now64() (a gateway acknowledging without the server) fails the dump with "
    "'IndexError: list index out of range', which names neither ClickHouse nor what was asked"))
def test_an_empty_answer_to_a_query_is_an_engine_error(through_proxy):
    through_proxy.inject(Fault("ack", match=every, nth=2, times=None))
    error = failure_of(dump("course_outline"))
    assert "IndexError" not in error and "ClickHouse" in error, error


@pytest.mark.xfail(strict=True, reason=(
    "driver-object-repr (event_sinks/clickhouse, connect): an empty answer to the driver's version query reads "
    "'Unexpected response to server version query: <clickhouse_connect.driver.summary.QuerySummary object at "
    "0x...>': the driver's object, not what the server answered"))
def test_an_empty_answer_to_the_version_query_shows_no_object_repr(through_proxy):
    through_proxy.inject(Fault("ack", match=every, nth=1, times=None))
    with pytest.raises(EngineUnavailableError) as caught:
        dump("course_outline")
    assert " object at 0x" not in str(caught.value), str(caught.value)
