"""Tables and views as data: what a sink declares about its storage, validated, with no SQL yet.

Sinks describe their storage declaratively (a ``Table`` with typed ``Column``s and ``View``s);
:mod:`event_sinks.clickhouse.ddl` is the only place that turns those descriptions into SQL, so
``ON CLUSTER`` and the choice of Replicated engines happen once, for every sink. Values never appear
in DDL: the only text interpolated is identifiers that passed :func:`identifier` and column types
that passed :func:`column_type`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import attrs

from ..errors import UnsafeIdentifierError

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


def _names(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _columns(values: Iterable[Column]) -> tuple[Column, ...]:
    return tuple(values)


def _tables(values: Iterable[Table]) -> tuple[Table, ...]:
    return tuple(values)


def _views(values: Iterable[View]) -> tuple[View, ...]:
    return tuple(values)


def _indexes(values: Iterable[Index]) -> tuple[Index, ...]:
    return tuple(values)


@attrs.frozen
class Column:
    """One typed column; ``type`` is a ClickHouse type such as ``LowCardinality(String)``."""

    name: str = attrs.field(validator=lambda _i, _a, v: identifier(v, "column name"))
    type: str = attrs.field(validator=lambda _i, _a, v: column_type(v))
    comment: str = ""


@attrs.frozen
class Index:
    """A data-skipping index over one column (``minmax``, ``set(100)``, ...): granules a filter can skip."""

    name: str = attrs.field(validator=lambda _i, _a, v: identifier(v, "index name"))
    column: str = attrs.field(validator=lambda _i, _a, v: identifier(v, "index column"))
    type: str = attrs.field(default="minmax", validator=lambda _i, _a, v: column_type(v))
    granularity: int = 1


@attrs.frozen
class Table:
    """A MergeTree-family table: columns, sorting key, engine and its arguments, skipping indexes.

    ``engine`` is the non-replicated engine name; :class:`Renderer` switches it to its
    ``Replicated*`` counterpart when a cluster is configured. ``engine_args`` are column names
    (a ``ReplacingMergeTree``'s version and is-deleted columns).
    """

    name: str = attrs.field(validator=lambda _i, _a, v: identifier(v, "table name"))
    columns: tuple[Column, ...] = attrs.field(converter=_columns)
    order_by: tuple[str, ...] = attrs.field(converter=_names)
    engine: str = "MergeTree"
    comment: str = ""
    engine_args: tuple[str, ...] = attrs.field(converter=_names, default=())
    indexes: tuple[Index, ...] = attrs.field(converter=_indexes, default=())
    #: a SELECT template (``{db}``: the database) of the rows a new table starts with, when it is
    #: added to a database an earlier version wrote (a table derived from another one)
    fill: str = ""

    def __attrs_post_init__(self) -> None:
        known = {c.name for c in self.columns}
        if len(known) != len(self.columns):
            raise UnsafeIdentifierError(f"table {self.name}: duplicate column names")
        for what, names in (("ORDER BY", self.order_by), ("engine arguments", self.engine_args),
                            ("indexes", tuple(i.column for i in self.indexes))):
            missing = [c for c in names if c not in known]
            if missing:
                raise UnsafeIdentifierError(f"table {self.name}: {what} names unknown columns {missing}")
        identifier(self.engine, "table engine")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def column_types(self) -> tuple[str, ...]:
        return tuple(c.type for c in self.columns)


#: Ends a view's read of a current table ``FINAL``: the renderer puts the settings of such a read there
#: (:data:`event_sinks.clickhouse.ddl.FINAL_SKIP_SETTING`).
FINAL_SETTINGS = "{final_settings}"


@attrs.frozen
class View:
    """A plain view. ``select`` is a template in which ``{db}`` is replaced by the quoted database
    (and :data:`FINAL_SETTINGS`, ending a read of a current table ``FINAL``, by the settings of such a read).

    Templates come from sink code, never from user input; everything a template interpolates is
    an identifier that was validated when the template was built.
    """

    name: str = attrs.field(validator=lambda _i, _a, v: identifier(v, "view name"))
    select: str
    comment: str = ""


@attrs.frozen
class Schema:
    """Everything one sink needs in ClickHouse, in creation order: tables first, then views."""

    tables: tuple[Table, ...] = attrs.field(converter=_tables, factory=tuple)
    views: tuple[View, ...] = attrs.field(converter=_views, factory=tuple)

    def __add__(self, other: Schema) -> Schema:
        return Schema(self.tables + other.tables, self.views + other.views)


def quote(name: str) -> str:
    """Backquote an identifier that has already been validated."""
    return f"`{identifier(name)}`"
