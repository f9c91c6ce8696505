"""A small run's prune waits in the process's pool: a publish sends no DELETE, a backfill still prunes.

Why: the two DELETEs of a publish's prune were a quarter of the engine time of a 1,000-block dump,
and readers read the current tables, so superseded ``*_dumps`` rows only take space until the pool
is due (event_sinks/dumping/retention.py).
"""

from __future__ import annotations

import pytest

from event_sinks import dump
from event_sinks.clickhouse import Connection
from event_sinks.dumping import Dumper, retention
from event_sinks.errors import EngineError

from ..support import sample_sink


@pytest.fixture
def doc(words, engine, monkeypatch):
    monkeypatch.setattr(retention, "_pools", {})
    sample_sink.SOURCE["doc"] = ["a", "b"]
    return engine


def dumps_of(engine: Connection, key: str) -> int:
    return engine.value(f"SELECT uniqExact(dump_id) FROM `{engine.database}`.test_words_dumps WHERE doc = {{d:String}}",
                        {"d": key})


def deletes(engine: Connection) -> int:
    return engine.value("SELECT count() FROM system.mutations WHERE database = {db:String}", {"db": engine.database})


def test_publish_sized_runs_send_no_delete(doc, words):
    for _ in range(3):
        assert dump("test_words", ["doc"], connection=doc).count("dumped") == 1
    assert deletes(doc) == 0 and dumps_of(doc, "doc") == 3
    assert retention.waiting(doc, "test_words") == ["doc"]


def test_the_pool_is_pruned_once_enough_keys_wait(doc, words, monkeypatch):
    monkeypatch.setattr(retention, "DEFER_KEYS", 2)
    dump("test_words", ["doc"], connection=doc)
    dump("test_words", ["doc"], connection=doc)
    sample_sink.SOURCE["other"] = ["x"]
    dump("test_words", ["other"], connection=doc)  # the second key: the pool is due, both are pruned
    assert Dumper(words, doc).retention.wait(timeout=120)
    assert dumps_of(doc, "doc") == 1 and dumps_of(doc, "other") == 1
    assert retention.waiting(doc, "test_words") == []


def test_the_pool_is_pruned_once_its_oldest_key_waited_long_enough(doc, words, monkeypatch):
    dump("test_words", ["doc"], connection=doc)
    monkeypatch.setattr(retention, "DEFER_SECONDS", 0.0)
    dump("test_words", ["doc"], connection=doc)
    assert Dumper(words, doc).retention.wait(timeout=120)
    assert dumps_of(doc, "doc") == 1


def test_a_failed_prune_waits_again(doc, words, monkeypatch):
    dump("test_words", ["doc"], connection=doc)
    monkeypatch.setattr(retention, "DEFER_SECONDS", 0.0)

    def refuse(self, sql, parameters=None, *, background=True):
        raise EngineError("ClickHouse at chdb:// refused DELETE: too many mutations")

    with monkeypatch.context() as patch:
        patch.setattr(Connection, "delete", refuse)
        assert dump("test_words", ["doc"], connection=doc).count("dumped") == 1  # housekeeping never fails a dump
    assert retention.waiting(doc, "test_words") == ["doc"]
    dump("test_words", ["doc"], connection=doc)
    assert Dumper(words, doc).retention.wait(timeout=120)
    assert dumps_of(doc, "doc") == 1
