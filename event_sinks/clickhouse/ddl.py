"""DDL rendering: schema objects (:mod:`event_sinks.core.schema`) to ClickHouse statements.

The one place that writes ``CREATE`` statements, so identifier quoting, ``ON CLUSTER``, the switch to
``Replicated*`` engines, the deduplication window and the definition marker of views are the same for
every sink, built-in or third-party.
"""

from __future__ import annotations

import hashlib
import re

import attrs

from ..core.schema import FINAL_SETTINGS, Column, Schema, Table, View, identifier, quote
from ..errors import UnsafeIdentifierError

#: Inserts a non-replicated table remembers (their ``insert_deduplication_token``), so that an insert
#: sent again -- the driver replays an insert whose answer a reset connection lost -- is dropped
#: instead of landing twice. ``Replicated*`` tables deduplicate by default
#: (``replicated_deduplication_window``); 10,000 is that window's default too.
DEDUPLICATION_WINDOW = 10_000
DEDUPLICATION_SETTING = "non_replicated_deduplication_window"

#: The query setting that, off, lets a ``FINAL`` read keep to the granules a skip index selected.
#: On (the engine's default), the engine adds every granule sharing sorting-key values with them, in
#: case an older version of a kept row lies elsewhere: a course read through ``course_blocks`` then
#: read 4 granules for its 2 (Q3 of benchmarks/read_path.py: 8.5 -> 7.2 ms at 1,000 courses). Off is
#: exact for the current tables: a row's versions share its identity, which names its key, so the
#: key's ``minmax`` index keeps every granule holding any version of the key's rows
#: (:func:`event_sinks.core.visibility.current_table`). Views put
#: :data:`~event_sinks.core.schema.FINAL_SETTINGS` where it goes.
FINAL_SKIP_SETTING = "use_skip_indexes_if_final_exact_mode"


@attrs.frozen
class Renderer:
    """Renders schema objects for one database, optionally on a cluster."""

    database: str = attrs.field(validator=lambda _i, _a, v: identifier(v, "DATABASE setting"))
    cluster: str | None = attrs.field(
        default=None, validator=lambda _i, _a, v: v is None or identifier(v, "CLUSTER setting")
    )
    #: whether the engine has :data:`FINAL_SKIP_SETTING` (older servers refuse a view naming it)
    final_skip_setting: bool = True

    @property
    def on_cluster(self) -> str:
        return f" ON CLUSTER {quote(self.cluster)}" if self.cluster else ""

    def qualified(self, name: str) -> str:
        return f"{quote(self.database)}.{quote(name)}"

    def create_database(self) -> str:
        return f"CREATE DATABASE IF NOT EXISTS {quote(self.database)}{self.on_cluster}"

    def replicated(self, table: Table) -> bool:
        """Whether ``table`` gets a ``Replicated*`` engine (which deduplicates inserts by itself)."""
        return bool(self.cluster) or table.engine.startswith("Replicated")

    def engine(self, table: Table) -> str:
        """The engine clause: ``Replicated*`` on a cluster, with the table's own arguments only.

        No replica path or name: the server's ``default_replica_path`` / ``default_replica_name``
        apply, which is what ClickHouse recommends and what keeps DDL identical on every replica.
        """
        name = table.engine
        if self.cluster and not name.startswith("Replicated"):
            name = f"Replicated{name}"
        args = ", ".join(quote(a) for a in table.engine_args)
        return f"{name}({args})" if args else name

    def create_table(self, table: Table) -> str:
        columns = ",\n    ".join(
            [f"{quote(c.name)} {c.type}" + (f" COMMENT {_literal(c.comment)}" if c.comment else "")
             for c in table.columns]
            + [f"INDEX {quote(i.name)} {quote(i.column)} TYPE {i.type} GRANULARITY {int(i.granularity)}"
               for i in table.indexes]
        )
        order = ", ".join(quote(c) for c in table.order_by)
        comment = f"\nCOMMENT {_literal(table.comment)}" if table.comment else ""
        settings = "" if self.replicated(table) else f"\nSETTINGS {DEDUPLICATION_SETTING} = {DEDUPLICATION_WINDOW}"
        return (
            f"CREATE TABLE IF NOT EXISTS {self.qualified(table.name)}{self.on_cluster} (\n    {columns}\n)\n"
            f"ENGINE = {self.engine(table)}\nORDER BY ({order}){settings}{comment}"
        )

    def add_deduplication(self, table: Table) -> str:
        """The ALTER that gives a table made by an earlier version its deduplication window."""
        return (f"ALTER TABLE {self.qualified(table.name)}{self.on_cluster} "
                f"MODIFY SETTING {DEDUPLICATION_SETTING} = {DEDUPLICATION_WINDOW}")

    def add_column(self, table: Table, column: Column, *, after: str | None) -> str:
        """The ALTER that adds ``column`` to an existing ``table`` (after ``after``, else first)."""
        place = f" AFTER {quote(after)}" if after else " FIRST"
        return (f"ALTER TABLE {self.qualified(table.name)}{self.on_cluster} "
                f"ADD COLUMN IF NOT EXISTS {quote(column.name)} {column.type}{place}")

    def create_view(self, view: View) -> str:
        """The statement that (re)defines ``view``, its definition marker in its comment."""
        return f"{self._view_definition(view)}\nCOMMENT {_literal(self.view_comment(view))}"

    def view_comment(self, view: View) -> str:
        """``view``'s comment followed by a digest of its definition: an equal comment, an equal view.

        What lets :meth:`Connection.apply_schema` leave a view alone rather than rewrite the engine's
        metadata at every process start (a rewrite on a full disk can leave a damaged file behind).
        """
        digest = hashlib.sha256(self._view_definition(view).encode()).hexdigest()[:16]
        marker = f"(definition {digest})"
        return f"{view.comment} {marker}" if view.comment and _COMMENT_SAFE.match(view.comment) else marker

    def _view_definition(self, view: View) -> str:
        final = f"\nSETTINGS {FINAL_SKIP_SETTING} = 0" if self.final_skip_setting else ""
        select = view.select.replace("{db}", quote(self.database)).replace(FINAL_SETTINGS, final)
        return f"CREATE OR REPLACE VIEW {self.qualified(view.name)}{self.on_cluster} AS\n{select}"

    def statements(self, schema: Schema) -> list[str]:
        """All DDL for ``schema``: idempotent, so applying it twice is harmless."""
        return [self.create_table(t) for t in schema.tables] + [self.create_view(v) for v in schema.views]


_COMMENT_SAFE = re.compile(r"^[^'\\\x00-\x1f]*$")


def _literal(text: str) -> str:
    """A string literal for COMMENT clauses; comments come from code and are checked, not escaped."""
    if not _COMMENT_SAFE.match(text):
        raise UnsafeIdentifierError(f"comments may not contain quotes, backslashes or control characters: {text!r}")
    return f"'{text}'"
