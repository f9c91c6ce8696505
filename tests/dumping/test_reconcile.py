"""What ``dump_sink --reconcile`` is built on: the ledger's current keys, page by page, and the comparison."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

from event_sinks.core import visibility
from event_sinks.dumping import ledger
from event_sinks.dumping.backfills import current_keys_snapshot, unlisted_keys

from ..support import sample_sink

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _commit(engine, sink, keys, minutes, *, deleted=False):
    ledger.commit(engine, sink, keys, uuid.uuid4(), T0 + timedelta(minutes=minutes), {}, {}, deleted=deleted)


def test_current_keys_come_page_by_page_without_tombstones_or_other_sinks(engine, monkeypatch):
    engine.apply_schema(visibility.ledger_schema())
    _commit(engine, "s", ["", "b", "c", "d", "e", "f", "g"], 1)
    _commit(engine, "s", ["c", "f"], 2, deleted=True)  # tombstones: not current
    _commit(engine, "s", ["f"], 3)  # dumped again after its tombstone: current again
    _commit(engine, "other", ["a", "z"], 1)

    queries = []
    query = engine.query
    monkeypatch.setattr(engine, "query", lambda sql, params=None: queries.append(sql) or query(sql, params))
    keys = list(itertools.islice(ledger.current_keys(engine, "s", page=2), 20))  # a loop that never ends stops
    assert keys == ["", "b", "d", "e", "f", "g"]  # the empty key too, in key order
    assert len(queries) == 4  # 2 + 2 + 2 + an empty page
    assert list(ledger.current_keys(engine, "s", page=4)) == keys  # a last page that is not full ends it
    assert list(ledger.current_keys(engine, "none")) == []


def test_snapshot_is_empty_without_a_ledger(engine):
    assert ledger.exists(engine) is False
    assert current_keys_snapshot(engine, "s") == set()
    engine.apply_schema(visibility.ledger_schema())
    assert ledger.exists(engine) is True
    _commit(engine, "s", ["a", "b"], 1)
    assert current_keys_snapshot(engine, "s") == {"a", "b"}


def test_unlisted_keys_normalize_the_listing_and_keep_the_kept(words, monkeypatch):
    monkeypatch.setattr(sample_sink.WordsSink, "normalize_key", lambda self, key: key.strip().lower())
    current = {"a", "b", "c", "d", "e"}
    assert unlisted_keys(words, current, ["A ", "c"], keep=["D"]) == ["b", "e"]
    assert unlisted_keys(words, current, []) == ["a", "b", "c", "d", "e"]
    assert unlisted_keys(words, set(), ["a"]) == []


def test_a_listed_key_the_sink_cannot_normalize_protects_its_own_text(words):
    # WordsSink refuses keys that are not identifiers; such a key is still compared as it is.
    assert unlisted_keys(words, {"not a key!", "ok", "gone"}, ["not a key!", "ok"]) == ["gone"]
