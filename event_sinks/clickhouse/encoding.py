"""Column encoding for the driver: constants expanded, datetimes turned into the driver's ticks.

clickhouse-connect converts each datetime object on its own; here each *distinct* datetime of a
column is converted once, with the driver's own formula (so naive datetimes keep the driver's
meaning). This is the wire format's one home: the dumper and the ledger both encode through it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ..core.columns import Constant

_DATETIME64 = re.compile(r"^(?:Nullable\()?DateTime64\((\d+)")


def datetime64_scales(types: Sequence[str]) -> dict[int, int]:
    """Column index -> tick scale (10 ** precision) of the ``DateTime64`` columns among ``types``."""
    scales = {}
    for i, type_name in enumerate(types):
        match = _DATETIME64.match(type_name)
        if match:
            scales[i] = 10 ** int(match.group(1))
    return scales


def prepare_columns(columns: list, n: int, scales: dict[int, int]) -> list[Sequence[Any]]:
    """Columns ready for the driver: constants repeated ``n`` times, datetimes as ticks.

    clickhouse-connect writes ``DateTime64`` values given as ints (ticks) as they are, but converts
    each datetime object on its own; here each *distinct* datetime of a column is converted once, with
    the driver's own formula (so naive datetimes keep the driver's meaning), and the column mapped.
    """
    out: list[Sequence[Any]] = []
    for i, column in enumerate(columns):
        scale = scales.get(i)
        if isinstance(column, Constant):
            value = column.value
            if scale is not None and type(value) is datetime and _driver_uses_timestamp(value):
                value = _ticks(value, scale)
            out.append([value] * n)
        elif scale is not None:
            out.append(_tick_column(column, scale))
        else:
            out.append(column)
    return out


def _driver_uses_timestamp(value: datetime) -> bool:
    """Whether the driver would write ``value`` with ``value.timestamp()`` (unless told to use the server's zone)."""
    if value.tzinfo is not None and value.utcoffset() is not None:
        return True
    from clickhouse_connect import common

    return common.get_setting("naive_datetime_insert") != "server"


def _ticks(value: datetime, scale: int) -> int:
    """clickhouse-connect's ``DateTime64._datetime64_ticks`` for a plain datetime, outside server mode."""
    return ((math.floor(value.timestamp()) * 1_000_000 + value.microsecond) * scale) // 1_000_000


def _tick_column(column: Sequence[Any], scale: int) -> Sequence[Any]:
    """A column of datetimes (and None) as ticks; anything else is left to the driver."""
    ticks: dict[Any, Any] = {None: None}
    try:
        distinct = set(column)
    except TypeError:  # unhashable values: not datetimes
        return column
    for value in distinct:
        if value is None:
            continue
        if type(value) is not datetime or not _driver_uses_timestamp(value):
            return column  # ints already, strings, pandas timestamps...: the driver knows them
        ticks[value] = _ticks(value, scale)
    return list(map(ticks.__getitem__, column))


def micros(value: datetime) -> int:
    """Microseconds since the epoch of an aware datetime, exactly (naive means UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // _MICROSECOND


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = datetime.resolution
