"""Typed row columns: ``column()`` for attrs fields, and the column batches sinks may yield.

A sink's row type is an attrs class whose fields carry ClickHouse types; :func:`row_columns` reads
them back as the table's columns. :class:`ColumnBatch` is the optional fast path: rows given column
by column, with a column that holds one value on every row given once as a :class:`Constant`.
:func:`joined` puts the batches of several keys together into batches of a given size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import attrs

from ..errors import SinkDefinitionError
from .schema import Column, column_type

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


def joined(batches: Iterable[ColumnBatch], batch_size: int) -> Iterator[ColumnBatch]:
    """``batches`` (of several keys, in turn) as batches of ``batch_size`` rows, the last one smaller.

    A dump of many small keys (50 courses of 1,000 blocks) then sends a few inserts of ``batch_size``
    rows, not one per key. A batch that is a whole batch already passes as it is; the others are put
    together column by column: a column that is the same :class:`Constant` in every part stays that
    constant, any other becomes one list (a constant repeated in it, the lists extended: copies made
    in C, no loop per row in Python). A part that does not fit is split, its tail starting the next
    batch. Memory: the rows of one batch and the part being split, whatever the number of keys; each
    part is asked for only once the batch before has been handed on.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, found {batch_size}")
    parts: list[ColumnBatch] = []
    held = 0
    for batch in batches:
        while batch.size:
            if not parts and batch.size == batch_size:
                yield batch  # a whole batch: no copy
                break
            room = batch_size - held
            if batch.size > room:
                head, batch = _sliced(batch, 0, room), _sliced(batch, room, batch.size)
                parts.append(head)
                held += head.size
            else:
                parts.append(batch)
                held += batch.size
                batch = ColumnBatch(0, ())
            if held == batch_size:
                whole = _concatenated(parts, held)
                parts, held = [], 0
                yield whole
                del whole  # let it go before the next part is built
        del batch  # and this one, before the next is built
    if parts:
        yield _concatenated(parts, held)


def _sliced(batch: ColumnBatch, start: int, stop: int) -> ColumnBatch:
    """Rows ``start:stop`` of ``batch`` (constants stay constants)."""
    return ColumnBatch(stop - start, [column if isinstance(column, Constant) else column[start:stop]
                                      for column in batch.columns])


def _concatenated(parts: list[ColumnBatch], size: int) -> ColumnBatch:
    """``parts`` one after the other, as one batch of ``size`` rows."""
    if len(parts) == 1:
        return parts[0]
    widths = {len(part.columns) for part in parts}
    if len(widths) != 1:
        raise SinkDefinitionError(f"column batches of {sorted(widths)} columns cannot be joined: one width per sink")
    columns: list[Sequence[Any] | Constant] = []
    for index in range(len(parts[0].columns)):
        first = parts[0].columns[index]
        if isinstance(first, Constant) and all(part.columns[index] == first for part in parts):
            columns.append(first)
            continue
        values: list[Any] = []
        for part in parts:
            column = part.columns[index]
            if isinstance(column, Constant):
                values += [column.value] * part.size
            else:
                values += column
        columns.append(values)
    return ColumnBatch(size, columns)
