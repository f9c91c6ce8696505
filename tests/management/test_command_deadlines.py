"""A slow or trickling server holds no command longer than DUMP_TIMEOUT per step.

A dump's requests draw on one DUMP_TIMEOUT; the commands' own requests around the dumps did not: the
run's bookkeeping of ``dump_sink`` (schema checks, ``event_sinks_runs``, the ledger snapshot of
``--reconcile``), ``sink_schema --apply`` and ``show_course`` waited as long as a server kept trickling
its answers -- 283 s for one ``dump_sink`` whose run records came a byte per 0.2 s, ending with exit
status 0 (found by the hostile campaign, tests/campaign).
"""

from __future__ import annotations

import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from event_sinks.clickhouse import close_connections

from ..support.fault_proxy import Fault, FaultProxy, every, statement

DEMO = Path(__file__).resolve().parents[2] / "event_sinks" / "demo" / "course"
DEMO_KEY = "course-v1:EventSinks+Demo101+2026"
OLX = ["--olx", str(DEMO)]


@pytest.fixture
def proxy(settings, http_server, database, monkeypatch):
    monkeypatch.delenv("EVENT_SINKS_DSN", raising=False)
    if not http_server.running:
        http_server.start()
    with FaultProxy(http_server.port) as proxy:
        settings.EVENT_SINKS = {"DSN": proxy.dsn(http_server, database), "DISPATCH": "sync", "DUMP_TIMEOUT": 1.5,
                                "SEND_RECEIVE_TIMEOUT": 1.5}
        close_connections()
        call_command("dump_sink", "course_outline", "--all", *OLX, stdout=StringIO(), stderr=StringIO())
        close_connections()
        yield proxy
    close_connections()


@pytest.mark.parametrize(("command", "args", "match"), [
    ("dump_sink", ["course_outline", "--all", "--force", *OLX], statement("event_sinks_runs")),
    ("dump_sink", ["course_outline", "--all", "--reconcile", *OLX], statement("event_sinks_current_dumps")),
    ("sink_schema", ["--apply", "course_outline"], every),
    ("show_course", [DEMO_KEY], every),
], ids=["dump_sink-run-records", "dump_sink-reconcile-snapshot", "sink_schema-apply", "show_course"])
def test_a_trickling_server_holds_a_command_no_longer_than_dump_timeout(proxy, command, args, match):
    proxy.inject(Fault("trickle", match=match, seconds=0.2, times=None))
    started = time.monotonic()
    with pytest.raises(CommandError) as caught:
        call_command(command, *args, stdout=StringIO(), stderr=StringIO())
    elapsed = time.monotonic() - started
    assert proxy.actions("trickle"), "the fault never fired"
    assert elapsed < 10, f"{elapsed:.1f} s"  # the answers trickled would take minutes
    assert "took longer than DUMP_TIMEOUT (1.5 s" in str(caught.value), str(caught.value)
