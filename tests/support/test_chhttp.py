"""The chDB-backed ClickHouse HTTP test server, driven through real clickhouse-connect HTTP clients."""

import datetime
import gzip
import uuid

import clickhouse_connect
import lz4.frame
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from tests.support.chhttp import ClickHouseHTTPServer

COLUMNS = ["s", "lc", "n", "flag", "ts", "id", "tags"]
TABLE_DDL = """
CREATE TABLE {table} (
    s String, lc LowCardinality(String), n UInt32, flag Bool,
    ts Nullable(DateTime64(6, 'UTC')), id UUID, tags Array(String)
) ENGINE = MergeTree ORDER BY n
"""
TRICKY = "h\u00e9llo \u65e5\u672c 'single' \"double\" back\\slash\ttab\nnew\rline \x00nul \U0001f600"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ClickHouseHTTPServer(tmp_path_factory.mktemp("chhttp") / "data") as srv:
        yield srv


def client(srv, compress=True, **kwargs):
    kwargs.setdefault("username", srv.user)
    kwargs.setdefault("password", srv.password)
    kwargs.setdefault("database", srv.database)
    return clickhouse_connect.get_client(host=srv.host, port=srv.port, compress=compress, **kwargs)


def sample_rows():
    """Rows to insert, and what reading them back returns (naive UTC datetimes, the client default)."""
    utc = datetime.UTC
    stamps = [
        datetime.datetime(2024, 2, 29, 23, 59, 58, 123456, utc),
        None,
        datetime.datetime(1970, 1, 1, 0, 0, 1, tzinfo=utc),
    ]
    rows = [
        [TRICKY, "alpha", 1, True, stamps[0], uuid.uuid4(), ["a", "b'c", "\u00fc\n"]],
        ["", "", 2, False, stamps[1], uuid.uuid4(), []],
        ["plain", "alpha", 3, True, stamps[2], uuid.uuid4(), [TRICKY]],
    ]
    expected = [[*row[:4], row[4] and row[4].replace(tzinfo=None), *row[5:]] for row in rows]
    return rows, expected


@pytest.mark.parametrize("compress", [False, True], ids=["uncompressed", "default-compression"])
def test_round_trip_row_and_column_oriented(server, compress):
    database = f"chhttp_{'comp' if compress else 'plain'}"
    admin = client(server, compress, database=None)
    admin.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    db = client(server, compress, database=database)
    db.command(TABLE_DDL.format(table="rows_t"))
    db.command(TABLE_DDL.format(table="cols_t"))
    rows, expected = sample_rows()

    summary = db.insert("rows_t", rows, column_names=COLUMNS)
    assert summary.written_rows == 3
    db.insert(
        "cols_t", [list(col) for col in zip(*rows, strict=True)], column_names=COLUMNS, column_oriented=True
    )

    for table in ("rows_t", "cols_t"):
        result = db.query(f"SELECT {', '.join(COLUMNS)} FROM {table} ORDER BY n")
        assert [list(r) for r in result.result_rows] == expected
        assert result.column_names == tuple(COLUMNS)
    assert db.command("SELECT count() FROM rows_t") == 3
    assert db.command("EXISTS TABLE cols_t") == 1
    assert admin.query(f"SELECT count() FROM {database}.cols_t WHERE lc = 'alpha'").result_rows == [(2,)]


@pytest.mark.parametrize("compress", [False, True], ids=["uncompressed", "default-compression"])
def test_bound_parameters(server, compress):
    db = client(server, compress)
    result = db.query(
        "SELECT {x:String} AS x, {n:UInt32} + 1 AS n, {xs:Array(String)} AS xs",
        parameters={"x": TRICKY, "n": 41, "xs": ["a", "b'"]},
    )
    assert result.result_rows == [(TRICKY, 42, ["a", "b'"])]
    # Big enough that clickhouse-connect sends it as a multipart form instead of URL parameters.
    big = "x" * 20000 + TRICKY
    assert db.query("SELECT length({big:String})", parameters={"big": big}).result_rows == [
        (len(big.encode()),)
    ]


@pytest.mark.parametrize("compress", [False, True], ids=["uncompressed", "default-compression"])
def test_engine_error_is_a_database_error(server, compress):
    db = client(server, compress)
    with pytest.raises(DatabaseError) as info:
        db.query("SELECT * FROM no_such_table")
    assert "no_such_table" in str(info.value) and "UNKNOWN_TABLE" in str(info.value)
    assert info.value.code == 60
    with pytest.raises(DatabaseError, match="SYNTAX_ERROR"):
        db.command("SELEC 1")


def test_settings_are_applied_and_transport_params_ignored(server):
    db = client(server, settings={"max_threads": 3})
    assert db.command("SELECT getSetting('max_threads')") == 3
    assert db.command("SELECT getSetting('max_threads')", settings={"max_threads": 5}) == 5
    assert client(server).command("SELECT getSetting('max_threads')") != 3  # no leak between requests


def test_raw_and_command_inserts(server):
    db = client(server)
    db.command("CREATE TABLE raw_t (n UInt32, s String) ENGINE = MergeTree ORDER BY n")
    db.command("INSERT INTO raw_t FORMAT CSV", data='1,one\n2,"t,wo"\n')
    db.raw_insert("raw_t", ["n", "s"], "3\tthree\n", fmt="TabSeparated")
    db.raw_insert(
        "raw_t",
        ["n", "s"],
        lz4.frame.compress(b"4\tfour\n") + lz4.frame.compress(b"5\tfive\n"),
        fmt="TabSeparated",
        compression="lz4",
    )
    db.raw_insert("raw_t", None, gzip.compress(b"6\tsix\n"), fmt="TabSeparated", compression="gzip")
    assert db.query("SELECT n, s FROM raw_t ORDER BY n").result_rows == [
        (1, "one"),
        (2, "t,wo"),
        (3, "three"),
        (4, "four"),
        (5, "five"),
        (6, "six"),
    ]
    assert db.raw_query("SELECT n FROM raw_t ORDER BY n LIMIT 2 FORMAT JSONEachRow") == b'{"n":1}\n{"n":2}\n'


def test_wrong_password_is_rejected(server):
    with pytest.raises(DatabaseError, match="Authentication failed") as info:
        client(server, password="wrong")
    assert info.value.code == 516


def test_outage_and_restart_keep_the_data(tmp_path):
    with ClickHouseHTTPServer(tmp_path / "data", database="outage") as srv:
        port = srv.port
        db = clickhouse_connect.get_client(dsn=srv.dsn)
        assert db.database == "outage" and db.ping()
        db.command("CREATE TABLE t (n UInt32) ENGINE = MergeTree ORDER BY n")
        db.insert("t", [[1], [2]])

        srv.stop()
        assert not srv.running and not db.ping()
        with pytest.raises(OperationalError):
            db.query("SELECT count() FROM t")

        srv.restart()
        assert srv.port == port and srv.dsn.endswith(f":{port}/outage")
        assert db.query("SELECT count() FROM t").result_rows == [(2,)]

        db.insert("t", [[3]])
        srv.kill()  # a crash, no shutdown
        with pytest.raises(OperationalError):
            db.insert("t", [[4]])
        srv.start()
        assert db.query("SELECT n FROM t ORDER BY n").result_rows == [(1,), (2,), (3,)]
