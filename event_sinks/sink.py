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

Large sinks may also implement the optional fast path ``serialize_columns(key, batch_size)``: the
same rows as column batches (:class:`ColumnBatch`), built column by column, with the columns that hold
one value on every row (the key, the org) given once as a :class:`Constant`. The runner then writes
them without a tuple per row and without transposing rows into columns.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, ClassVar

import attrs

from . import ledger
from .errors import EventSinksError, SinkDefinitionError, UnsafeIdentifierError
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


class Constant:
    """A column of a :class:`ColumnBatch` that holds ``value`` on every row (given once, not per row)."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Constant) and other.value == self.value

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Constant({self.value!r})"


class ColumnBatch:
    """Up to a batch of rows, column-oriented: ``columns[i]`` holds field ``i`` of the row type for every
    row, as a sequence of ``size`` values (a list, a tuple) or a :class:`Constant`.

    Values are the ones rows would hold (str, int, bool, datetime, None); datetimes may also be given as
    ints, the ticks of their column type (microseconds since the epoch for ``DateTime64(6)``).
    """

    __slots__ = ("size", "columns")

    def __init__(self, size: int, columns: Sequence[Sequence[Any] | Constant]):
        self.size = size
        self.columns = columns

    def column(self, index: int) -> Sequence[Any]:
        """Column ``index`` as a sequence of ``size`` values (a constant repeated)."""
        column = self.columns[index]
        return [column.value] * self.size if isinstance(column, Constant) else column

    def rows(self) -> Iterator[tuple]:
        """The batch as row tuples in field order (for dry runs and readers of ``serialize()``)."""
        if not self.size:
            return iter(())
        return zip(*(self.column(i) for i in range(len(self.columns))), strict=True)

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return f"<ColumnBatch of {self.size} rows, {len(self.columns)} columns>"


def check_sink_name(cls: type) -> str:
    """Check that a sink class has a plain-identifier ``name``; returns its dotted path for messages."""
    where = f"{cls.__module__}.{cls.__qualname__}"
    name = getattr(cls, "name", None)
    if not name:
        raise SinkDefinitionError(f"{where}: a sink needs a class attribute `name` (a plain identifier)")
    try:
        identifier(name, "sink name")
    except UnsafeIdentifierError as exc:
        raise SinkDefinitionError(f"{where}: {exc}") from None
    return where


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
        where = check_sink_name(cls)
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

    @classmethod
    def available(cls) -> bool:
        """Whether the sink can work in this process (a model sink's model is installed here)."""
        return True

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

    def serialize_columns(self, key: str, batch_size: int) -> Iterable[ColumnBatch] | None:
        """Optional fast path: the rows of ``key`` as :class:`ColumnBatch` es of at most ``batch_size`` rows.

        Return None (the default) to have the runner use :meth:`serialize`. A sink implementing it
        must still yield the same rows from ``serialize()`` (dry runs and library users read that).
        Memory stays O(batch) when the batches are built one after the other (a generator).
        """
        return None

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

    def column_batches(self, keys: list[str], batch_size: int) -> Iterator[ColumnBatch]:
        """What the runner writes for ``keys``: column batches of at most ``batch_size`` rows.

        One key of a sink with :meth:`serialize_columns` takes that fast path; otherwise the rows of
        :meth:`serialize` (one key) or :meth:`serialize_many` (several) are gathered into batches and
        transposed, whether they are row instances or tuples.
        """
        if len(keys) == 1:
            fast = self.serialize_columns(keys[0], batch_size)
            if fast is not None:
                return iter(fast)
            return self.batch_rows(self.serialize(keys[0]), batch_size)
        return self.batch_rows(self.serialize_many(keys), batch_size)

    def batch_rows(self, rows: Iterable[Any], batch_size: int) -> Iterator[ColumnBatch]:
        """Rows (instances or tuples in field order) as column batches of at most ``batch_size`` rows."""
        rows = self.row_tuples(rows)
        width = len(self.field_names)
        while batch := list(itertools.islice(rows, batch_size)):
            try:
                columns = list(zip(*batch, strict=True))
            except ValueError:
                columns = None  # rows of different widths
            if columns is None or len(columns) != width:
                bad = next((row for row in batch if len(row) != width), batch[0])
                raise EventSinksError(
                    f"sink {self.name} yielded a row of {len(bad)} values; its row type has {width} fields"
                )
            yield ColumnBatch(len(batch), columns)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
