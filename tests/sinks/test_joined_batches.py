"""Column batches of several keys joined into batches of ``batch_size`` rows (``event_sinks.core.columns.joined``)."""

from __future__ import annotations

import pytest

from event_sinks.core import ColumnBatch, Constant
from event_sinks.core.columns import joined


def part(key: str, org: str, start: int, n: int) -> ColumnBatch:
    labels = tuple(f"r{i}" for i in range(n))
    return ColumnBatch(n, [Constant(org), Constant(key), list(range(start, start + n)), labels])


def rows(batches) -> list[tuple]:
    return [row for batch in batches for row in batch.rows()]


def test_parts_are_joined_into_whole_batches_constants_kept_where_they_agree():
    parts = [part("k1", "Org", 0, 3), part("k2", "Org", 3, 4), part("k3", "Other", 7, 2)]
    out = list(joined(iter(parts), 4))
    assert [b.size for b in out] == [4, 4, 1]
    assert rows(out) == rows(parts)
    first, second, _ = out
    assert first.columns[0] == Constant("Org")  # one org in both parts: still one constant
    assert first.columns[1] == ["k1", "k1", "k1", "k2"]  # two keys: a list
    assert second.columns[0] == ["Org", "Org", "Org", "Other"] and second.columns[2] == [4, 5, 6, 7]


def test_a_whole_batch_passes_as_it_is_and_parts_are_asked_for_lazily():
    whole = part("k1", "Org", 0, 5)
    asked = []

    def parts():
        for batch in (whole, part("k2", "Org", 5, 2), part("k3", "Org", 7, 3)):
            asked.append(batch.size)
            yield batch

    out = joined(parts(), 5)
    assert next(out) is whole and asked == [5]  # no copy, and nothing of the next key read yet
    assert next(out).size == 5 and asked == [5, 2, 3]
    assert [b.size for b in out] == []
    with pytest.raises(ValueError):
        list(joined(iter([whole]), 0))


def test_parts_bigger_than_a_batch_are_split():
    out = list(joined(iter([part("k1", "Org", 0, 2), part("k2", "Org", 2, 11)]), 4))
    assert [b.size for b in out] == [4, 4, 4, 1]
    assert [r[2] for r in rows(out)] == list(range(13))
    assert list(joined(iter([]), 4)) == [] and list(joined(iter([ColumnBatch(0, [])]), 4)) == []
