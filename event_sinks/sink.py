"""The Sink contract: one declaration gives the rows *and* the ClickHouse schema.

A sink is a named stream of rows kept in sync with a source, dumped one *key* at a time (a course
key for the course sinks). Subclasses declare:

- ``name``: unique, a plain identifier; it names the table and the view;
- ``row_type``: an attrs class whose fields carry ClickHouse column types (see :func:`column`);
- ``key_field``: the row field that holds the key the sink is dumped by;
- ``order_by``: extra sorting-key columns after the key;
- ``triggers``: the signals that make a key dirty (see :mod:`event_sinks.triggers`);

and implement the hooks ``keys()``, ``serialize(key)`` and optionally ``version(key)``,
``normalize_key(key)``, ``schema()`` and ``dispatch(keys)``. Mistakes in the declaration raise
:class:`SinkDefinitionError` when the class is created, not at the first publish in production.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, ClassVar

import attrs

from . import ledger
from .errors import SinkDefinitionError, UnsafeIdentifierError
from .schema import Column, Schema, Table, View, column_type, identifier

#: attrs metadata key under which a field stores its ClickHouse type.
COLUMN_TYPE = "clickhouse_type"


def column(clickhouse_type: str, **kwargs: Any) -> Any:
    """Declare an attrs field together with its ClickHouse column type.

    >>> @attrs.define
    ... class Row:
    ...     course_key: str = column("LowCardinality(String)")
    """
    metadata = dict(kwargs.pop("metadata", {}) or {})
    metadata[COLUMN_TYPE] = column_type(clickhouse_type)
    return attrs.field(metadata=metadata, **kwargs)


def row_columns(row_type: type) -> tuple[Column, ...]:
    """The typed columns of an attrs row class, in field order."""
    if not attrs.has(row_type):
        raise SinkDefinitionError(f"row_type must be an attrs class, found {row_type!r}")
    columns = []
    for field in attrs.fields(row_type):
        type_ = field.metadata.get(COLUMN_TYPE)
        if type_ is None:
            raise SinkDefinitionError(
                f"row_type {row_type.__qualname__}: field {field.name!r} has no ClickHouse type; "
                f"declare it with event_sinks.column('<ClickHouse type>')"
            )
        columns.append(Column(field.name, type_))
    return tuple(columns)


class Sink:
    """Base class of every sink. Subclass it, declare the class attributes, implement the hooks.

    Pass ``abstract=True`` in the class statement (``class Base(Sink, abstract=True)``) for
    intermediate base classes that should not be validated.
    """

    name: ClassVar[str]
    row_type: ClassVar[type]
    key_field: ClassVar[str]
    order_by: ClassVar[tuple[str, ...]] = ()
    triggers: ClassVar[tuple[Any, ...]] = ()
    #: keys dumped together as one dump (one ledger insert): 1 for big keys (a course), hundreds or
    #: thousands for sinks with one small row per key (a model's objects).
    keys_per_dump: ClassVar[int] = 1
    #: personal data: disabled unless the settings enable the sink explicitly.
    pii: ClassVar[bool] = False
    description: ClassVar[str] = ""

    # Filled in by __init_subclass__.
    columns: ClassVar[tuple[Column, ...]]
    field_names: ClassVar[tuple[str, ...]]

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if abstract:
            return
        where = f"{cls.__module__}.{cls.__qualname__}"
        name = cls.__dict__.get("name", getattr(cls, "name", None))
        if not name:
            raise SinkDefinitionError(f"{where}: a sink needs a class attribute `name` (a plain identifier)")
        try:
            identifier(name, "sink name")
        except UnsafeIdentifierError as exc:
            raise SinkDefinitionError(f"{where}: {exc}") from None
        row_type = getattr(cls, "row_type", None)
        if row_type is None:
            raise SinkDefinitionError(f"{where}: a sink needs `row_type`, an attrs class of typed columns")
        cls.columns = row_columns(row_type)
        cls.field_names = tuple(c.name for c in cls.columns)
        reserved = {c.name for c in ledger.DUMP_COLUMNS} & set(cls.field_names)
        if reserved:
            raise SinkDefinitionError(f"{where}: row fields {sorted(reserved)} are reserved for the dump runner")
        key_field = getattr(cls, "key_field", None)
        if key_field not in cls.field_names:
            raise SinkDefinitionError(
                f"{where}: `key_field` must name a field of {row_type.__qualname__} "
                f"(one of {list(cls.field_names)}), found {key_field!r}"
            )
        unknown = [c for c in cls.order_by if c not in cls.field_names]
        if unknown:
            raise SinkDefinitionError(f"{where}: `order_by` names unknown fields {unknown}")
        if not cls.description:
            cls.description = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""

    # -- naming ----------------------------------------------------------------------------------

    @property
    def table_name(self) -> str:
        """The table that holds every dump's rows (readers use the view instead)."""
        return f"{self.name}_dumps"

    @property
    def view_name(self) -> str:
        """The view readers query: the rows of the latest complete dump of each key."""
        return self.name

    # -- hooks -------------------------------------------------------------------------------------

    def keys(self) -> Iterable[str]:
        """Every key a backfill should dump. Override for sinks that can enumerate their source."""
        return ()

    def keys_since(self, since: datetime) -> Iterable[str] | None:
        """Keys whose source changed at or after ``since``; None when the sink cannot tell.

        Backs ``dump_sink --since``; sinks that return None make that option an error.
        """
        return None

    def serialize(self, key: str) -> Iterable[Any]:
        """Yield the rows of ``key``: ``row_type`` instances or plain tuples in field order.

        Stream (a generator), do not build lists: the runner batches, so memory stays O(batch).
        Tuples are the fast path for large sources.
        """
        raise NotImplementedError(f"sink {self.name} does not implement serialize()")

    def serialize_many(self, keys: list[str]) -> Iterable[Any]:
        """Rows of several keys, for sinks with ``keys_per_dump`` > 1. Override to read them in one query."""
        for key in keys:
            yield from self.serialize(key)

    def version(self, key: str) -> str | None:
        """The source version of ``key``, or None when unknown (then the key is never skipped)."""
        return None

    def normalize_key(self, key: str) -> str:
        """Validate ``key`` and return its canonical text; raise InvalidKeyError if malformed."""
        return key

    def table(self) -> Table:
        """The table of all dumps: the row columns plus the dump columns."""
        return Table(
            self.table_name,
            self.columns + ledger.DUMP_COLUMNS,
            order_by=(self.key_field, "dumped_at", "dump_id", *self.order_by),
            comment=f"rows of every dump of sink {self.name}; query the view {self.view_name}",
        )

    def views(self) -> tuple[View, ...]:
        """Extra views for readers. The current-rows view is always added by :meth:`schema`."""
        return ()

    def schema(self) -> Schema:
        """Tables and views this sink needs; derived from ``row_type`` by default."""
        table = self.table()
        current = ledger.current_rows_view(self.view_name, table, self.key_field, self.name)
        return Schema((table,), (current, *self.views()))

    def dispatch(self, keys: Iterable[str]) -> None:
        """Schedule dumps of ``keys`` with the configured strategy (EVENT_SINKS["DISPATCH"])."""
        from .dispatch import dispatch

        dispatch(self, keys)

    # -- helpers for the runner --------------------------------------------------------------------

    def row_tuples(self, rows: Iterable[Any]) -> Iterator[tuple]:
        """Rows as tuples in field order, whatever ``serialize`` yielded."""
        getter = operator.attrgetter(*self.field_names)
        if len(self.field_names) == 1:
            single = getter

            def getter(row):
                return (single(row),)

        for row in rows:
            yield row if isinstance(row, tuple) else getter(row)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
