"""Typed row columns: ``column()`` for attrs fields, and the column batches sinks may yield.

A sink's row type is an attrs class whose fields carry ClickHouse types; :func:`row_columns` reads
them back as the table's columns. :class:`ColumnBatch` is the optional fast path: rows given column
by column, with a column that holds one value on every row given once as a :class:`Constant`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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
