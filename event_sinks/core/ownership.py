"""What a schema may replace: only the library's own objects, never a table or view it did not create.

``CREATE OR REPLACE VIEW`` replaces whatever holds the name, a table included: pointed at a database that
also holds Aspects' ``course_blocks`` *table*, the ``course_outline`` sink's ``course_blocks`` view would
replace that table and its rows. Before any DDL, the objects a schema names are looked up in
``system.tables`` (:data:`OBJECTS_QUERY`) and judged here (:func:`judge`):

- a **view** of the schema may replace an existing ``View`` that is ours: its comment is the declared
  comment, or it reads objects of the schema (the views of every version so far read the library's
  ``*_dumps`` tables, its ledger, or its other views, qualified with this database);
- a **table** of the schema is created ``IF NOT EXISTS`` and may later gain columns: an existing object
  of that name must be a MergeTree-family table with the declared comment (every table this library has
  made carries one);
- anything else is refused with a :class:`~event_sinks.errors.ConfigurationError` naming the object,
  its engine and why.

Pure judgement on rows, no connection: the engine layer runs the query (see :func:`refuse_foreign`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..errors import ConfigurationError
from .schema import Schema, identifier

#: The objects of one database among some names: (name, engine, comment, create_table_query).
OBJECTS_QUERY = (
    "SELECT name, engine, comment, create_table_query FROM system.tables "
    "WHERE database = {db:String} AND name IN {names:Array(String)}"
)

#: The comment of every table a sink declares by default (:meth:`event_sinks.core.sink.Sink.table`).
SINK_TABLE_COMMENT = "rows of every dump of sink "

_QUALIFIED = re.compile(r"`?([A-Za-z_][A-Za-z0-9_]*)`?\s*\.\s*`?([A-Za-z_][A-Za-z0-9_]*)`?")


def names(schema: Schema) -> list[str]:
    """Every object name the schema creates (tables, then views)."""
    return [t.name for t in schema.tables] + [v.name for v in schema.views]


def reads(create_query: str, database: str) -> set[str]:
    """Objects of ``database`` named (qualified) in a CREATE statement, backquoted or not."""
    return {name for db, name in _QUALIFIED.findall(create_query or "") if db == database}


def judge(rows: Iterable[Sequence[Any]], schema: Schema, database: str) -> list[str]:
    """Why each existing object among ``rows`` may not be (re)created by ``schema``; empty when all may be."""
    identifier(database, "database")
    tables = {t.name: t for t in schema.tables}
    views = {v.name: v for v in schema.views}
    ours = set(tables) | set(views)
    problems = []
    for name, engine, comment, create_query in rows:
        where = f"{database}.{name}"
        if name in views:
            view = views[name]
            if engine != "View":
                problems.append(
                    f"{where} is a {engine} table, not a view this library created; its view "
                    f"{name!r} would replace it (CREATE OR REPLACE VIEW)")
            elif not (comment and view.comment and comment.startswith(view.comment)) and not (
                    reads(create_query, database) & (ours - {name})):
                problems.append(
                    f"{where} is a view this library did not create (it reads none of the library's "
                    f"objects and has no comment of ours); its view {name!r} would replace it")
        elif name in tables:
            table = tables[name]
            if not engine.endswith("MergeTree"):
                problems.append(f"{where} is a {engine}, not a table of this library; its table {name!r} "
                                "cannot be created there")
            elif comment != table.comment and not (comment or "").startswith(SINK_TABLE_COMMENT):
                problems.append(
                    f"{where} is a {engine} table this library did not create (comment {comment!r}); its "
                    f"table {name!r} would be taken for it and given columns")
    return problems


def refuse_foreign(query: Callable[[str, dict[str, Any]], list[tuple]], database: str, schema: Schema) -> None:
    """Raise :class:`ConfigurationError` when ``schema`` would replace or alter an object it did not create.

    ``query`` runs a SELECT with parameters (``Connection.query``). Called before any DDL of ``schema``.
    """
    wanted = names(schema)
    if not wanted:
        return
    rows = query(OBJECTS_QUERY, {"db": database, "names": wanted})
    problems = judge(rows, schema, database)
    if problems:
        raise ConfigurationError(
            "refusing to apply the schema: " + "; ".join(problems) + ". EVENT_SINKS['DATABASE'] names a database "
            "holding objects the library did not create (Aspects' event_sink database holds tables named "
            "course_blocks and course_overviews): give the library a database of its own (default 'event_sinks')"
        )
