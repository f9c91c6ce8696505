"""The columnar fast path: sinks that give column batches, datetimes as ticks, memory O(batch)."""

from __future__ import annotations

import gc
import weakref
from datetime import UTC, datetime, timedelta, timezone

import attrs
import pytest

from event_sinks import Sink, column, dump
from event_sinks.clickhouse.encoding import datetime64_scales, prepare_columns
from event_sinks.core import ColumnBatch, Constant
from event_sinks.dumping import Dumper
from event_sinks.errors import DumpError
from event_sinks.registry import registry

T0 = datetime(2026, 3, 1, 8, 30, 15, 250_001, tzinfo=UTC)


@attrs.define
class EventRow:
    stream: str = column("LowCardinality(String)")
    seq: int = column("UInt32")
    label: str | None = column("Nullable(String)")
    at: datetime | None = column("Nullable(DateTime64(6, 'UTC'))")
    done: bool = column("Bool")


def source_rows(key: str, n: int) -> list[tuple]:
    zone = timezone(timedelta(hours=5, minutes=30))
    return [
        (key, i, None if i % 4 == 0 else f"label {i} — é", None if i % 3 == 0 else
         (T0 + timedelta(seconds=i % 5)).astimezone(zone if i % 2 else UTC), i % 2 == 0)
        for i in range(n)
    ]


class RowsSink(Sink):
    """Rows as tuples: the plain path."""

    name = "test_rows"
    row_type = EventRow
    key_field = "stream"
    count = 25

    def serialize(self, key):
        return iter(source_rows(key, self.count))


class ColumnsSink(RowsSink):
    """The same rows, also as column batches: the fast path."""

    name = "test_columns"

    def serialize_columns(self, key, batch_size):
        rows = source_rows(key, self.count)
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            seqs, labels, ats, dones = ([r[i] for r in chunk] for i in range(1, 5))
            yield ColumnBatch(len(chunk), [Constant(key), seqs, labels, ats, dones])


@pytest.fixture
def sinks():
    for cls in (RowsSink, ColumnsSink):
        registry.register(cls, "tests")
    yield
    for name in ("test_rows", "test_columns"):
        registry.unregister(name)


def view(engine, name):
    return engine.query(f"SELECT stream, seq, label, at, done FROM `{engine.database}`.{name} ORDER BY seq")


def test_column_batches_write_the_same_rows_as_tuples(engine, sinks):
    for name in ("test_rows", "test_columns"):
        summary = dump(name, ["s1"], connection=engine, batch_size=7, raise_errors=True)
        assert summary.rows == 25
    assert view(engine, "test_columns") == view(engine, "test_rows")
    rows = view(engine, "test_columns")
    assert rows[1][3].replace(tzinfo=None) == (T0 + timedelta(seconds=1)).replace(tzinfo=None)  # microseconds kept
    assert rows[0][2] is None and rows[0][3] is None


def test_a_constant_key_column_must_hold_the_key(engine, sinks, monkeypatch):
    def wrong(self, key, batch_size):
        yield ColumnBatch(1, [Constant("other"), [1], ["x"], [None], [True]])

    monkeypatch.setattr(ColumnsSink, "serialize_columns", wrong)
    Dumper(registry.get("test_columns"), engine).ensure_schema()
    with pytest.raises(DumpError, match="yielded a row of key 'other' for 's1'"):
        Dumper(registry.get("test_columns"), engine).dump_key("s1")


def test_rows_of_the_wrong_width_are_reported(sinks):
    sink = registry.get("test_rows")
    with pytest.raises(Exception, match="yielded a row of 2 values; its row type has 5 fields"):
        list(sink.batch_rows([("a", 1)], 10))


def test_datetimes_become_the_ticks_the_driver_would_write():
    from clickhouse_connect.datatypes.registry import get_from_name

    types = ["Nullable(DateTime64(6, 'UTC'))", "DateTime64(3)", "String"]
    scales = datetime64_scales(types)
    assert scales == {0: 10**6, 1: 10**3}
    naive = datetime(1969, 12, 31, 23, 59, 59, 999_999)
    values = [T0, None, T0.astimezone(timezone(timedelta(hours=-7))), naive, T0 + timedelta(microseconds=1)]
    out = prepare_columns([values, Constant(T0), Constant("v")], len(values), scales)
    driver = get_from_name(types[0])
    assert out[0] == [None if v is None else driver._datetime64_ticks(v) for v in values]
    assert out[1] == [get_from_name(types[1])._datetime64_ticks(T0)] * len(values)
    assert out[2] == ["v"] * len(values)
    # Columns that are not datetimes (ints already, strings) are left to the driver.
    assert prepare_columns([[1, 2]], 2, {0: 10**6})[0] == [1, 2]
    assert prepare_columns([["2026-01-01"]], 1, {0: 10**6})[0] == ["2026-01-01"]


def test_inserts_do_not_outlive_themselves(engine, sinks, monkeypatch):
    """Each insert's data is freed when the insert returns, not at the next full garbage collection."""
    client = engine.client
    contexts = []
    original = type(client).create_insert_context

    def tracked(self, *args, **kwargs):
        context = original(self, *args, **kwargs)
        contexts.append(weakref.ref(context))
        return context

    monkeypatch.setattr(type(client), "create_insert_context", tracked)
    gc.disable()
    try:
        dump("test_columns", ["s1"], connection=engine, batch_size=5, raise_errors=True)
        assert len(contexts) >= 6 and all(ref() is None for ref in contexts)
    finally:
        gc.enable()
