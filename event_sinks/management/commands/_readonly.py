"""What ``sink_query`` lets through: one reading statement, decided by ClickHouse's own parser.

The statement is first formatted by the engine (``formatQuery``): that parses it, refuses more than
one statement, and gives a canonical text -- no comments, keywords in capitals, every literal quoted
and escaped on one line -- which is what is checked and then run (so what was checked is what runs).
Its ``EXPLAIN AST`` then tells the statement's kind, an ``INTO OUTFILE`` clause, and every table
function and function it calls. Refused, each by name:

* a statement that is not a SELECT (WITH, UNION ...), SHOW, DESCRIBE or EXPLAIN of one of those:
  KILL, INSERT, SYSTEM, SET, OPTIMIZE...;
* ``INTO OUTFILE`` (the embedded engine writes the file, even over its own metadata);
* table functions other than those the engine itself allows a read-only user (``numbers``,
  ``values``, ``view``, ``merge``...; ``system.table_functions.allow_readonly``) and the cluster ones:
  ``file``, ``url``, ``s3``, ``remote``, ``mysql``, ``python``... read or write outside the engine's
  tables, and ``url`` of an unanswering host held a query for minutes;
* the function ``file()``, which reads a file of the engine's host.

The statement then runs with ``readonly = 1`` (the engine refuses writes, setting changes and the
table functions it does not allow a read-only user) and ``max_execution_time``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ...clickhouse import diagnostics
from ...clickhouse.diagnostics import SYNTAX_ERROR
from ...errors import EngineError, EngineUnavailableError, EventSinksError

if TYPE_CHECKING:
    from ...clickhouse import Connection

#: Statement kinds let through, by the first word of the AST's root node.
READ_KINDS = ("SelectWithUnionQuery", "SelectIntersectExceptQuery", "SelectQuery", "Show", "SHOW", "Describe",
              "Explain")
#: The same kinds, by the keyword formatQuery writes first.
READ_WORDS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "EXPLAIN"})
NOT_A_READ = ("sink_query only reads: it runs one SELECT, WITH, SHOW, DESCRIBE or EXPLAIN statement; "
              "refused: a {} statement")
#: Table functions a read-only user may call, when the engine cannot say (before ``allow_readonly``).
READONLY_TABLE_FUNCTIONS = frozenset({
    "numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series", "generateseries", "values", "view", "merge",
    "null", "generaterandom", "primes",
})
#: Table functions the engine allows a read-only user that still reach other servers.
REMOTE_TABLE_FUNCTIONS = frozenset({"cluster", "clusterallreplicas"})
#: Functions (not table functions) that read outside the engine's tables.
OUTSIDE_FUNCTIONS = {"file": "it reads a file of the engine's host"}
#: Words of an EXPLAIN statement before the statement it explains (its kind and options aside).
EXPLAIN_WORDS = frozenset({"EXPLAIN", "AST", "SYNTAX", "QUERY", "TREE", "PLAN", "PIPELINE", "ESTIMATE", "CURRENT",
                           "TRANSACTION", "TABLE", "OVERRIDE"})


def query_settings(timeout: float) -> dict[str, object]:
    """The settings a checked statement (and each check) runs with: readonly last (servers apply them in order)."""
    return {"max_execution_time": timeout, "readonly": 1}


class RefusedQuery(EventSinksError):
    """A statement sink_query will not run; the message names what was refused."""


_NODE = re.compile(r"^(?P<indent> *)(?P<kind>\S+)(?: (?P<name>\S+))?")


def formatted(connection: Connection, sql: str, timeout: float) -> str:
    """The statement as the engine's parser formats it; RefusedQuery when it does not parse as one statement."""
    if not sql.strip():
        raise RefusedQuery("sink_query needs one statement, found an empty query")
    try:
        rows = connection.client.query("SELECT formatQuery({sql:String})", parameters={"sql": sql},
                                       settings=query_settings(timeout)).result_rows
    except Exception as exc:
        error = _engine_error(connection, exc)
        raise RefusedQuery(f"sink_query could not parse the query (it runs exactly one statement): {error}") from exc
    if not rows or not rows[0]:
        raise RefusedQuery("sink_query could not parse the query: ClickHouse gave no answer to formatQuery (something "
                           "between this host and the server, a proxy or a gateway, answers in its place)")
    return str(rows[0][0])


def _engine_error(connection: Connection, exc: Exception) -> EngineError:
    """The engine's error while checking: returned when it is about the query (a syntax error), else raised."""
    error = exc if isinstance(exc, EngineError) else connection.translate(exc, "parsing the query")
    if error.code != SYNTAX_ERROR:
        raise error from exc  # the engine unreachable, or failing: not the query's fault
    return error


def check(connection: Connection, sql: str, timeout: float) -> str:
    """The formatted statement to run, or RefusedQuery naming what is refused."""
    text = formatted(connection, sql, timeout)
    first = text.split(None, 1)[0].upper()
    if first.isalpha() and first not in READ_WORDS:  # the formatter writes every statement's keyword first
        raise RefusedQuery(NOT_A_READ.format(first))
    if any(line.lstrip().startswith("INTO OUTFILE") for line in text.splitlines()):
        raise RefusedQuery("sink_query prints its result and writes no file: refused: INTO OUTFILE")
    if any(line.startswith("FORMAT ") for line in text.splitlines()):
        raise RefusedQuery("sink_query prints its result as a table: refused: a FORMAT clause")
    try:
        lines = explain(connection, f"EXPLAIN AST {text}", timeout, parse_only=True)
    except Exception as exc:
        error = _engine_error(connection, exc)
        raise RefusedQuery(f"sink_query could not check the query: {error}") from exc
    nodes = [(len(m["indent"]), m["kind"], m["name"] or "") for m in map(_NODE.match, lines) if m]
    if not nodes:
        raise RefusedQuery(f"sink_query could not check the query: the engine gave no syntax tree for {text!r}")
    _check_kind(connection, nodes, text)
    _check_calls(nodes, _readonly_table_functions(connection, timeout))
    return text


def explain(connection: Connection, statement: str, timeout: float, *, parse_only: bool = False) -> list[str]:
    """The lines an EXPLAIN statement returns.

    A FORMAT or SETTINGS clause after ``EXPLAIN ...`` binds to the statement explained. The embedded
    engine takes the output format apart from the text, so the driver's query path serves (its
    settings become a clause of the statement explained, which EXPLAIN does not run; ``parse_only``,
    for ``EXPLAIN AST``, sends none, as statements such as SYSTEM take no SETTINGS clause). A server
    answers such a request in its default format, TabSeparated, read here as text; there the settings
    travel with the request. (The driver's raw path on the embedded engine would apply them with SET
    on its shared session, where ``readonly = 1`` can never be undone.)
    """
    settings = query_settings(timeout)
    if connection.target.embedded:
        rows = connection.client.query(statement, settings=None if parse_only else settings).result_rows
        return [str(row[0]) for row in rows]
    raw = connection.client.raw_query(statement, settings=settings)
    return [_unescape(line) for line in raw.decode("utf-8", "replace").splitlines()]


_ESCAPES = {"b": "\b", "f": "\f", "r": "\r", "n": "\n", "t": "\t", "0": "\0", "'": "'", "\\": "\\"}


def _unescape(text: str) -> str:
    """A TabSeparated value as text (the engine escapes control characters, quotes and backslashes)."""
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), text)


def _is_read(kind: str) -> bool:
    return kind.startswith(READ_KINDS)


def _check_kind(connection: Connection, nodes: list[tuple[int, str, str]], text: str) -> None:
    first = text.split(None, 1)[0].upper()
    depth, kind, _ = nodes[0]
    if (depth or not _is_read(kind)) and first in READ_WORDS:
        # formatQuery wrote a reading keyword first, so the tree of a reading statement was expected:
        # the engine's two answers disagree, one was damaged on its way (nothing was run)
        raise EngineUnavailableError(
            f"ClickHouse at {connection.target.masked} formatted the query as a {first} statement, but its "
            f"syntax tree begins {diagnostics.short(kind)!r}: an answer was damaged between this host and the "
            "server (a proxy or a gateway); nothing was run")
    if depth or not _is_read(kind):
        raise RefusedQuery(NOT_A_READ.format(first))
    children = [n for n in nodes[1:] if n[0] == 1]
    if any(child_kind == "Literal" for _, child_kind, _ in children):  # the INTO OUTFILE file (and compression)
        raise RefusedQuery("sink_query prints its result and writes no file: refused: INTO OUTFILE")
    if kind == "Explain":
        explained = [k for _, k, _ in children if k not in ("Set", "Identifier", "Literal")]
        if explained and not _is_read(explained[0]):
            word = next((w for w in text.upper().split() if w not in EXPLAIN_WORDS and "=" not in w.rstrip(",")
                         and not w.endswith(",")), explained[0])
            raise RefusedQuery(f"sink_query only reads: refused: EXPLAIN of a {word} statement (EXPLAIN only of "
                               "SELECT, SHOW or DESCRIBE)")


def _check_calls(nodes: list[tuple[int, str, str]], allowed: frozenset[str]) -> None:
    for (depth, kind, _), (child_depth, child_kind, name) in zip(nodes, nodes[1:], strict=False):
        if child_kind != "Function":
            continue
        if kind == "TableExpression" and child_depth == depth + 1:
            if name.lower() not in allowed:
                raise RefusedQuery(f"sink_query reads only the engine's own tables: refused: the table function "
                                   f"{name}() (it reads or writes outside them, or reaches other servers)")
        elif name.lower() in OUTSIDE_FUNCTIONS:
            raise RefusedQuery(f"sink_query reads only the engine's own tables: refused: the function {name}() "
                               f"({OUTSIDE_FUNCTIONS[name.lower()]})")


def _readonly_table_functions(connection: Connection, timeout: float) -> frozenset[str]:
    """The table functions this engine allows a read-only user, less those that reach other servers."""
    try:
        rows: Iterable[tuple] = connection.client.query(
            "SELECT name FROM system.table_functions WHERE allow_readonly", settings=query_settings(timeout),
        ).result_rows
    except Exception:  # an older server without the column: the list known to be safe
        return READONLY_TABLE_FUNCTIONS
    return frozenset(str(name).lower() for (name,) in rows) - REMOTE_TABLE_FUNCTIONS
