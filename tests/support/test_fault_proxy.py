"""The fault proxy, driven by a plain clickhouse-connect client: each action does what it says.

The ``reset`` case also records the driver behaviour the library has to live with: after a connection
reset that follows the server's execution of an insert, clickhouse-connect sends the insert again.
"""

from __future__ import annotations

import time

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import OperationalError

from .fault_proxy import Fault, FaultProxy, insert_into, statement


@pytest.fixture
def proxy(http_server):
    if not http_server.running:
        http_server.start()
    with FaultProxy(http_server.port) as proxy:
        yield proxy


@pytest.fixture
def client(http_server, proxy, database):
    admin = clickhouse_connect.get_client(host="127.0.0.1", port=http_server.port, username=http_server.user,
                                          password=http_server.password)
    admin.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    admin.command(f"CREATE TABLE {database}.t (n UInt32) ENGINE = MergeTree ORDER BY n")
    admin.close()
    client = clickhouse_connect.get_client(host="127.0.0.1", port=proxy.port, username=http_server.user,
                                           password=http_server.password, database=database, query_retries=0,
                                           send_receive_timeout=2, connect_timeout=2)
    yield client
    client.close()


def count(client) -> int:
    return client.command("SELECT count() FROM t")


def test_pass_relays_queries_and_inserts(client, proxy):
    client.insert("t", [[1], [2]], column_names=["n"])
    assert count(client) == 2
    assert proxy.actions("pass") and not proxy.actions("reset")


def test_reset_after_the_server_ran_an_insert_makes_the_driver_send_it_again(client, proxy):
    proxy.inject(Fault("reset", match=insert_into("t")))
    client.insert("t", [[1], [2], [3]], column_names=["n"])  # the driver replays it on a new connection
    assert len(proxy.actions("reset")) == 1
    assert count(client) == 6  # the batch landed twice


def test_ack_answers_without_the_server(client, proxy):
    proxy.inject(Fault("ack", match=insert_into("t")))
    client.insert("t", [[1]], column_names=["n"])
    assert count(client) == 0


def test_drop_swallows_the_answer_until_the_client_gives_up(client, proxy):
    proxy.inject(Fault("drop", match=statement(r"^SELECT 7")))
    with pytest.raises(OperationalError):
        client.query("SELECT 7")
    assert client.query("SELECT 8").result_rows == [(8,)]  # the next request gets through


def test_delay_and_trickle_slow_the_answer_down(client, proxy):
    proxy.inject(Fault("delay", match=statement(r"^SELECT 1\b"), seconds=0.3))
    started = time.monotonic()
    assert client.query("SELECT 1").result_rows == [(1,)]
    assert time.monotonic() - started >= 0.3
    proxy.inject(Fault("trickle", match=statement(r"^SELECT 2\b"), seconds=0.002, chunk=16))
    assert client.query("SELECT 2").result_rows == [(2,)]  # complete, however slowly
    assert proxy.actions("trickle")


def test_nth_and_times_choose_the_requests(client, proxy):
    proxy.inject(Fault("ack", match=insert_into("t"), nth=2, times=2))
    for n in range(5):
        client.insert("t", [[n]], column_names=["n"])
    assert sorted(r[0] for r in client.query("SELECT n FROM t").result_rows) == [0, 3, 4]


def test_as_a_forward_proxy_it_relays_to_the_server_the_url_names_with_the_same_faults(http_server, proxy, database):
    # The client names the server itself and goes through the proxy as HTTP_PROXY would have it.
    client = clickhouse_connect.get_client(host="127.0.0.1", port=http_server.port, username=http_server.user,
                                           password=http_server.password, query_retries=0, send_receive_timeout=2,
                                           connect_timeout=2, http_proxy=f"http://127.0.0.1:{proxy.port}")
    try:
        assert client.query("SELECT 41 + 1").result_rows == [(42,)]
        assert proxy.forwarded and proxy.actions("pass")  # it came as a forward proxy's request
        proxy.inject(Fault("ack", match=insert_into("f")))
        client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
        client.command(f"CREATE TABLE {database}.f (n UInt32) ENGINE = MergeTree ORDER BY n")
        client.insert(f"{database}.f", [[1]], column_names=["n"])
        assert client.command(f"SELECT count() FROM {database}.f") == 0  # acknowledged by the proxy alone
    finally:
        client.close()
