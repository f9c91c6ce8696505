"""``sink_query --timeout`` bounds the command's whole wait for the engine, a slow or trickling server's too.

It was sent to the server as ``max_execution_time`` only, so a server (or a proxy) that trickled its answer
held the command as long as it kept sending: 15 s for ``--timeout 2`` in the hostile campaign
(tests/campaign), and with no end for a slower trickle. Now the command waits at most ``--timeout`` and a
grace (2 s and a tenth) for the engine to report its own timeout.
"""

from __future__ import annotations

import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from event_sinks.clickhouse import close_connections

from ..support.fault_proxy import Fault, FaultProxy, statement


@pytest.fixture
def proxy(http_server):
    if not http_server.running:
        http_server.start()
    with FaultProxy(http_server.port) as proxy:
        yield proxy
    close_connections()


def through(settings, proxy, http_server, database):
    settings.EVENT_SINKS = {"DSN": proxy.dsn(http_server, database), "DISPATCH": "sync", "SEND_RECEIVE_TIMEOUT": 5}
    close_connections()


@pytest.mark.parametrize("fault", [
    Fault("trickle", match=statement(r"AS answer"), seconds=0.05),
    Fault("delay", match=statement(r"formatQuery"), seconds=8),
], ids=["trickled-answer", "slow-check"])
def test_a_slow_server_holds_sink_query_no_longer_than_its_timeout(settings, http_server, database, proxy, fault):
    through(settings, proxy, http_server, database)
    proxy.inject(fault)
    started = time.monotonic()
    with pytest.raises(CommandError) as caught:
        call_command("sink_query", "SELECT 'a longer answer than a few bytes' AS answer", "--timeout", "1.5",
                     stdout=StringIO())
    elapsed = time.monotonic() - started
    assert len(proxy.actions(fault.action)) == 1
    assert elapsed < 5, f"{elapsed:.1f} s"  # --timeout, and the grace for the engine's own answer: 3.65 s
    assert str(caught.value).startswith("sink_query: no complete answer within --timeout 1.5 s from http://tester:***@")


def test_a_prompt_answer_is_printed(settings, http_server, database, proxy):
    through(settings, proxy, http_server, database)
    out = StringIO()
    call_command("sink_query", "SELECT 42 AS answer", "--timeout", "5", stdout=out)
    assert "42" in out.getvalue()
