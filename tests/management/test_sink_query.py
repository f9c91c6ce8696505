"""``sink_query`` only reads: one SELECT/WITH/SHOW/DESCRIBE/EXPLAIN, no file written, no outside source, bounded.

On both engines (embedded, and the HTTP endpoint). Before, ``INTO OUTFILE ... TRUNCATE`` wrote over any
file the engine could reach (its own metadata included), ``INSERT INTO FUNCTION file(...)`` wrote
anywhere, ``url()`` of a silent host held the command for minutes and ``KILL QUERY`` crashed the table
printer.
"""

from __future__ import annotations

import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from event_sinks.courses.sources import set_course_source

DEMO = Path(__file__).resolve().parents[2] / "event_sinks" / "demo" / "course"
DEMO_KEY = "course-v1:EventSinks+Demo101+2026"


@pytest.fixture
def dumped(engine):
    call_command("dump_sink", "course_outline", DEMO_KEY, "--olx", str(DEMO), stdout=StringIO(), stderr=StringIO())
    yield engine
    set_course_source(None)


def query(*args: str) -> str:
    out = StringIO()
    call_command("sink_query", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def refused(*args: str) -> str:
    with pytest.raises(CommandError) as caught:
        query(*args)
    return str(caught.value)


@pytest.fixture
def victim(tmp_path):
    path = tmp_path / "precious.txt"
    path.write_text("keep me")
    return path


OUTFILE = "sink_query prints its result and writes no file: refused: INTO OUTFILE"


@pytest.mark.parametrize("sql", [
    "SELECT 'gone' INTO OUTFILE '{victim}' TRUNCATE",
    "select 'gone' /* a comment */ into outfile '{victim}' APPEND",
    "SELECT 1 UNION ALL SELECT 2 INTO OUTFILE '{victim}' AND STDOUT",
    "EXPLAIN SELECT 1 INTO OUTFILE '{victim}' TRUNCATE",
    "SHOW TABLES INTO OUTFILE '{victim}' TRUNCATE",
    "DESC course_outline INTO OUTFILE '{victim}' TRUNCATE",
    "WITH 1 AS x SELECT x\n-- a comment\nINTO OUTFILE '{victim}' TRUNCATE",
])
def test_into_outfile_is_refused_and_writes_nothing(dumped, victim, sql):
    assert refused(sql.format(victim=victim)) == OUTFILE
    assert victim.read_text() == "keep me"


def test_into_outfile_over_the_engines_own_metadata_is_refused(embedded, chdb_dir):
    metadata = next(chdb_dir.glob("metadata/*.sql"), None) or next(chdb_dir.rglob("*.sql"))
    before = metadata.read_bytes()
    assert refused(f"SELECT 'x' INTO OUTFILE '{metadata}' TRUNCATE") == OUTFILE
    assert metadata.read_bytes() == before
    assert "(1 row)" in query("SELECT 1")


@pytest.mark.parametrize(("sql", "name"), [
    ("INSERT INTO FUNCTION file('{victim}', 'CSV', 'a String') VALUES ('gone')", "INSERT"),
    ("KILL QUERY WHERE 1", "KILL"),
    ("DROP TABLE course_outline_dumps", "DROP"),
    ("SYSTEM FLUSH LOGS", "SYSTEM"),
    ("SET max_threads = 1", "SET"),
    ("OPTIMIZE TABLE course_outline_dumps", "OPTIMIZE"),
    ("TRUNCATE TABLE course_outline_dumps", "TRUNCATE"),
    ("USE system", "USE"),
    ("CREATE TABLE x (a Int8) ENGINE = Memory", "CREATE"),
])
def test_a_statement_that_is_not_a_read_is_refused_naming_it(dumped, victim, sql, name):
    assert refused(sql.format(victim=victim)) == (
        "sink_query only reads: it runs one SELECT, WITH, SHOW, DESCRIBE or EXPLAIN statement; "
        f"refused: a {name} statement")
    assert victim.read_text() == "keep me"
    assert "(1 row)" in query("SELECT count() FROM course_outline_dumps")


def test_explain_of_a_write_is_refused(dumped):
    assert refused("EXPLAIN PIPELINE INSERT INTO course_outline_dumps SELECT * FROM course_outline_dumps") == (
        "sink_query only reads: refused: EXPLAIN of a INSERT statement (EXPLAIN only of SELECT, SHOW or DESCRIBE)")


@pytest.mark.parametrize("sql", ["SELECT 1; SELECT 2", "SELECT 1; DROP TABLE course_outline_dumps", ""])
def test_exactly_one_statement(dumped, sql):
    message = refused(sql)
    assert message.startswith("sink_query could not parse the query (it runs exactly one statement): ") or (
        message == "sink_query needs one statement, found an empty query")
    assert "(1 row)" in query("SELECT count() FROM course_outline_dumps")


@pytest.mark.parametrize(("sql", "name"), [
    ("SELECT * FROM file('{victim}', 'LineAsString')", "file"),
    ("SELECT * FROM FILE('{victim}', 'LineAsString')", "FILE"),
    ("SELECT * FROM `file`('{victim}', 'LineAsString')", "file"),
    ("SELECT * FROM course_outline AS o JOIN file('{victim}', 'LineAsString') AS f ON 1", "file"),
    ("SELECT * FROM numbers(1) WHERE toString(number) IN (SELECT * FROM s3('http://127.0.0.1:1/x', 'CSV', 'a String'))",
     "s3"),
    ("SELECT * FROM view(SELECT * FROM url('http://127.0.0.1:1/', 'CSV', 'a String'))", "url"),
    ("DESCRIBE (SELECT * FROM file('{victim}', 'LineAsString'))", "file"),
    ("SELECT * FROM remote('127.0.0.1:1', system.one)", "remote"),
    ("SELECT * FROM cluster('default', system.one)", "cluster"),
    ("SELECT * FROM python(x)", "python"),
])
def test_table_functions_that_reach_outside_are_refused_naming_them(dumped, victim, sql, name):
    assert refused(sql.format(victim=victim)) == (
        f"sink_query reads only the engine's own tables: refused: the table function {name}() (it reads or writes "
        "outside them, or reaches other servers)")


def test_a_silent_host_is_refused_at_once(dumped):
    started = time.monotonic()
    assert "the table function url()" in refused("SELECT * FROM url('http://127.0.0.1:1/', 'CSV', 'a String')")
    assert time.monotonic() - started < 10


def test_the_file_function_is_refused(dumped, victim):
    assert refused(f"SELECT file('{victim}')") == (
        "sink_query reads only the engine's own tables: refused: the function file() (it reads a file of the "
        "engine's host)")


def test_a_format_clause_is_refused(dumped):
    assert refused("SELECT 1 FORMAT JSON") == "sink_query prints its result as a table: refused: a FORMAT clause"


def test_settings_cannot_be_changed(dumped):
    message = refused("SELECT 1 SETTINGS max_execution_time = 0")
    assert "max_execution_time" in message and "readonly" in message


def test_the_time_limit(dumped):
    message = refused("SELECT sleep(2)", "--timeout", "0.5")
    assert "Timeout exceeded" in message or "TIMEOUT_EXCEEDED" in message
    assert "expected a number of seconds more than 0, found 'nan'" in refused_usage("--timeout", "nan")


def refused_usage(*args: str) -> str:
    with pytest.raises(CommandError) as caught:
        call_command("sink_query", "SELECT 1", *args, stdout=StringIO(), stderr=StringIO())
    return str(caught.value)


@pytest.mark.parametrize(("sql", "seen"), [
    ("SELECT count() AS blocks FROM course_outline", "21"),
    ("select course_key from course_outline limit 1 -- trailing comment", DEMO_KEY),
    ("WITH 2 AS two SELECT two * number AS n FROM numbers(3) ORDER BY n", "4"),
    ("(SELECT 'parenthesized' AS p)", "parenthesized"),
    ("SELECT 1 AS a UNION ALL SELECT 2", "(2 rows)"),
    ("SHOW TABLES", "course_outline_dumps"),
    ("DESCRIBE course_outline", "display_name"),
    ("DESC TABLE course_blocks", "label"),
    ("EXPLAIN SELECT count() FROM course_outline", "explain"),
    ("EXPLAIN AST SELECT 1", "SelectWithUnionQuery"),
    ("SELECT * FROM values('a String', 'x', 'y')", "(2 rows)"),
    ("SELECT format('{} blocks', toString(count())) AS s FROM course_outline", "21 blocks"),
    ("SELECT 'INTO OUTFILE x' AS `file(x)`, 'KILL' AS kill", "INTO OUTFILE x"),
    ("SELECT 1 AS one;", "(1 row)"),
])
def test_reads_run_and_print(dumped, sql, seen):
    assert seen in query(sql)


def test_a_row_wider_than_its_header_prints():
    from event_sinks.management.commands._table import format_table

    assert format_table([], [["finished", "q1"]]) == "column1   column2\n--------  -------\nfinished  q1\n(1 row)"


def test_the_connection_still_writes_after_queries(dumped):
    # readonly = 1 travels with each statement; it must never stay on the process's shared session
    query("EXPLAIN SELECT count() FROM course_outline")
    query("SELECT count() FROM course_outline")
    refused("SELECT * FROM file('/etc/hostname', 'LineAsString')")
    out = StringIO()
    call_command("dump_sink", "course_outline", DEMO_KEY, "--force", "--olx", str(DEMO), stdout=out, stderr=StringIO())
    assert "1 dumped" in out.getvalue()
