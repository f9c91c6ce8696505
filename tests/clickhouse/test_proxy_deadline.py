"""DUMP_TIMEOUT holds through an HTTP proxy named by the environment (``HTTP_PROXY``), as without one.

Before, a proxy in the environment made the connection fall back to the driver's own proxy manager,
whose sockets knew nothing of the dump's deadline: a slow or trickling answer relayed by the proxy
held a dump as long as the server cared to take (each ``recv`` had its own timeout). Here the fault
proxy (``tests/support/fault_proxy.py``) acts as the forward proxy; the DSN names the server itself.
"""

from __future__ import annotations

import base64

import pytest

from event_sinks.clickhouse import Connection
from event_sinks.conf import get_settings
from event_sinks.dumping import Dumper, dump
from event_sinks.errors import ConfigurationError

from ..dumping.test_field_faults import DUMP_TIMEOUT, SLACK, current_state, timed
from ..support import sample_sink
from ..support.fault_proxy import Fault, FaultProxy

WORDS = "test_words"
PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY")


@pytest.fixture
def proxy(http_server):
    if not http_server.running:
        http_server.start()
    with FaultProxy(http_server.port) as proxy:
        yield proxy


@pytest.fixture
def no_proxy_env(monkeypatch):
    """No proxy in the environment but what the test sets."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def server_dsn(http_server, database) -> str:
    return http_server.dsn.rsplit("/", 1)[0] + f"/{database}"


def connected_through(proxy_url: str, environment, dsn: str, **extra) -> Connection:
    """A connection to ``dsn`` made while HTTP_PROXY is ``proxy_url``, with the schema checked.

    The environment is read when the connection connects; it is restored afterwards, so other
    connections of the test (the reader) go to the server directly.
    """
    environment.setenv("HTTP_PROXY", proxy_url)
    try:
        engine = Connection(get_settings({"DSN": dsn, **extra}))
        Dumper(sample_sink.WordsSink(), engine).ensure_schema()  # connected: what is left is the dump
    finally:
        environment.delenv("HTTP_PROXY")
    return engine


@pytest.mark.parametrize("fault", [
    Fault("delay", seconds=0.9, times=None),  # every answer 0.9 s late: under SEND_RECEIVE_TIMEOUT each time
    Fault("trickle", seconds=0.4, chunk=1, times=None),  # every answer one byte at a time
], ids=["slow-answers", "trickle"])
def test_a_slow_server_behind_an_environment_proxy_holds_a_dump_no_longer_than_dump_timeout(
    http_server, database, words, proxy, no_proxy_env, fault
):
    dsn = server_dsn(http_server, database)
    reader = Connection(get_settings({"DSN": dsn}))  # no proxy: sees what the server holds
    sample_sink.SOURCE["doc"] = [f"v1-{i}" for i in range(30)]
    first = dump(WORDS, ["doc"], connection=reader, batch_size=10).results[0]
    engine = connected_through(f"http://127.0.0.1:{proxy.port}", no_proxy_env, dsn, DUMP_TIMEOUT=DUMP_TIMEOUT,
                               SEND_RECEIVE_TIMEOUT=5, CONNECT_TIMEOUT=2)
    assert proxy.forwarded, "the engine did not go through the proxy"
    sample_sink.SOURCE["doc"] = [f"v2-{i}" for i in range(30)]
    proxy.inject(fault)
    took, summary = timed(lambda: dump(WORDS, ["doc"], connection=engine, batch_size=10))
    proxy.stop()
    assert not isinstance(summary, BaseException), summary
    assert proxy.actions(fault.action), "the fault never fired"
    assert summary.count("failed") == 1
    assert "DUMP_TIMEOUT" in summary.failed[0].error, summary.failed[0].error
    assert took < DUMP_TIMEOUT + SLACK, f"the dump gave up after {took:.1f} s"
    assert current_state(reader, WORDS, "doc")["doc"][0] == first.dump_id  # the previous dump, still shown
    engine.close()
    reader.close()


def test_dumps_go_through_an_environment_proxy_with_its_credentials(http_server, database, words, proxy,
                                                                      no_proxy_env):
    dsn = server_dsn(http_server, database)
    engine = connected_through(f"http://px%40user:px-pw@127.0.0.1:{proxy.port}", no_proxy_env, dsn,
                               DUMP_TIMEOUT=DUMP_TIMEOUT)
    sample_sink.SOURCE["doc"] = ["a", "b", "c"]
    result = dump(WORDS, ["doc"], connection=engine).results[0]
    assert result.status == "dumped", result.error
    assert proxy.forwarded and set(proxy.forwarded) == {"Basic " + base64.b64encode(b"px@user:px-pw").decode()}
    engine.close()


def test_a_proxy_variable_that_names_no_http_proxy_is_refused_by_name(http_server, database, no_proxy_env):
    no_proxy_env.setenv("HTTP_PROXY", "socks5://someone:proxy-secret@127.0.0.1:1080")
    engine = Connection(get_settings({"DSN": server_dsn(http_server, database)}))
    with pytest.raises(ConfigurationError) as caught:
        engine.query("SELECT 1")
    message = str(caught.value)
    assert message.startswith("HTTP_PROXY (the environment variable) is 'socks5://someone:***@127.0.0.1:1080'"), \
        message
    assert "proxy-secret" not in message and "NO_PROXY" in message, message
