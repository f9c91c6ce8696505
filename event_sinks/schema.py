"""Tables and views as data, rendered to ClickHouse DDL.

Sinks describe their storage declaratively (a ``Table`` with typed ``Column``s and ``View``s); this
module is the only place that turns those descriptions into SQL. Keeping the rendering here means
identifier validation, ``ON CLUSTER`` and the choice of Replicated engines happen once, for every
sink, built-in or third-party. Values never appear in DDL: the only text interpolated is identifiers
that passed :func:`identifier` and column types that passed :func:`column_type`.
"""

from __future__ import annotations

import re

import attrs

from .errors import UnsafeIdentifierError

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
# ClickHouse type expressions: names, parentheses, commas, spaces, digits and single-quoted
# timezone / enum literals made only of safe characters. No semicolons, backquotes or comments.
_TYPE = re.compile(r"^[A-Za-z0-9_(), ]+$|^[A-Za-z0-9_(), ]*('[A-Za-z0-9_/+\-=]*'[A-Za-z0-9_(), ]*)+$")


def identifier(name: str, what: str = "identifier") -> str:
    """Return ``name`` if it is a plain SQL identifier, else raise :class:`UnsafeIdentifierError`.

    Identifiers cannot be bound as query parameters, so they are the one thing rendered into SQL
    text; accepting only ``[A-Za-z_][A-Za-z0-9_]*`` closes that door completely.
    """
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise UnsafeIdentifierError(
            f"{what} must be a plain identifier (letters, digits, underscore; not starting with a digit; "
            f"at most 128 characters), found {name!r}"
        )
    return name


def column_type(type_: str) -> str:
    """Return ``type_`` if it looks like a ClickHouse type expression, else raise."""
    if not isinstance(type_, str) or not type_.strip() or not _TYPE.match(type_) or "--" in type_:
        raise UnsafeIdentifierError(f"column type must be a ClickHouse type expression, found {type_!r}")
    return type_


def _names(values) -> tuple[str, ...]:
    return tuple(values)


@attrs.frozen
class Column:
    """One typed column; ``type`` is a ClickHouse type such as ``LowCardinality(String)``."""

    name: str = attrs.field(validator=lambda _i, _a, v: identifier(v, "column name"))
    type: str = attrs.field(validator=lambda _i, _a, v: column_type(v))
    comment: str = ""


@attrs.frozen
class Table:
    """A MergeTree-family table: columns, sorting key and engine.

    ``engine`` is the non-replicated engine name; :class:`Renderer` switches it to its
    ``Replicated*`` counterpart when a cluster is configured.
    """

    name: str = attrs.field(validator=lambda _i, _a, v: identifier(v, "table name"))
    columns: tuple[Column, ...] = attrs.field(converter=tuple)
    order_by: tuple[str, ...] = attrs.field(converter=_names)
    engine: str = "MergeTree"
    comment: str = ""

    def __attrs_post_init__(self):
        known = {c.name for c in self.columns}
        if len(known) != len(self.columns):
            raise UnsafeIdentifierError(f"table {self.name}: duplicate column names")
        missing = [c for c in self.order_by if c not in known]
        if missing:
            raise UnsafeIdentifierError(f"table {self.name}: ORDER BY names unknown columns {missing}")
        identifier(self.engine, "table engine")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def column_types(self) -> tuple[str, ...]:
        return tuple(c.type for c in self.columns)


@attrs.frozen
class View:
    """A plain view. ``select`` is a template in which ``{db}`` is replaced by the quoted database.

    Templates come from sink code, never from user input; everything a template interpolates is
    an identifier that was validated when the template was built.
    """

    name: str = attrs.field(validator=lambda _i, _a, v: identifier(v, "view name"))
    select: str
    comment: str = ""


@attrs.frozen
class Schema:
    """Everything one sink needs in ClickHouse, in creation order: tables first, then views."""

    tables: tuple[Table, ...] = attrs.field(converter=tuple, factory=tuple)
    views: tuple[View, ...] = attrs.field(converter=tuple, factory=tuple)

    def __add__(self, other: Schema) -> Schema:
        return Schema(self.tables + other.tables, self.views + other.views)


def quote(name: str) -> str:
    """Backquote an identifier that has already been validated."""
    return f"`{identifier(name)}`"


@attrs.frozen
class Renderer:
    """Renders schema objects for one database, optionally on a cluster."""

    database: str = attrs.field(validator=lambda _i, _a, v: identifier(v, "DATABASE setting"))
    cluster: str | None = attrs.field(
        default=None, validator=lambda _i, _a, v: v is None or identifier(v, "CLUSTER setting")
    )

    @property
    def on_cluster(self) -> str:
        return f" ON CLUSTER {quote(self.cluster)}" if self.cluster else ""

    def qualified(self, name: str) -> str:
        return f"{quote(self.database)}.{quote(name)}"

    def create_database(self) -> str:
        return f"CREATE DATABASE IF NOT EXISTS {quote(self.database)}{self.on_cluster}"

    def engine(self, table: Table) -> str:
        if self.cluster and not table.engine.startswith("Replicated"):
            # No arguments: the server's default_replica_path / default_replica_name apply, which is
            # what ClickHouse recommends and what keeps DDL identical on every replica.
            return f"Replicated{table.engine}"
        return table.engine

    def create_table(self, table: Table) -> str:
        columns = ",\n    ".join(
            f"{quote(c.name)} {c.type}" + (f" COMMENT {_literal(c.comment)}" if c.comment else "")
            for c in table.columns
        )
        order = ", ".join(quote(c) for c in table.order_by)
        comment = f"\nCOMMENT {_literal(table.comment)}" if table.comment else ""
        return (
            f"CREATE TABLE IF NOT EXISTS {self.qualified(table.name)}{self.on_cluster} (\n    {columns}\n)\n"
            f"ENGINE = {self.engine(table)}\nORDER BY ({order}){comment}"
        )

    def create_view(self, view: View) -> str:
        select = view.select.replace("{db}", quote(self.database))
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
