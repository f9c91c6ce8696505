"""The dump model's invariants, against a real engine (embedded, then over HTTP)."""

from __future__ import annotations

from datetime import datetime

import pytest

from event_sinks import dump
from event_sinks.dumping import Dumper, retention
from event_sinks.errors import DumpError

from ..support import sample_sink


def current(engine, doc=None):
    sql = f"SELECT doc, position, word, is_long, seen_at FROM `{engine.database}`.test_words"
    params = {}
    if doc:
        sql += " WHERE doc = {doc:String}"
        params["doc"] = doc
    return engine.query(sql + " ORDER BY doc, position", params)


def all_dump_rows(engine, doc):
    return engine.query(
        f"SELECT count(), uniqExact(dump_id) FROM `{engine.database}`.test_words_dumps WHERE doc = {{d:String}}",
        {"d": doc},
    )[0]


def test_rows_round_trip_with_their_types(engine, words):
    sample_sink.SOURCE["alpha"] = ["zéro", "it's", 'say "hi"', "line\nbreak", "back\\slash", "长城", "🎓emoji!"]
    summary = dump("test_words", ["alpha"], connection=engine)
    assert summary.count("dumped") == 1 and summary.rows == 7
    rows = current(engine)
    assert [r[2] for r in rows] == sample_sink.SOURCE["alpha"]
    assert rows[0] == ("alpha", 0, "zéro", False, None)
    # DateTime64(6, 'UTC') keeps microseconds; the driver returns naive UTC datetimes.
    assert rows[1][4].replace(tzinfo=None) == datetime(2026, 1, 1, 12, 0, 1, 123456)
    assert rows[6][3] is True
    # Every row of one dump carries one dump id, one time and the source version (invariant 1).
    meta = engine.query(
        f"SELECT uniqExact(dump_id), uniqExact(dumped_at), any(source_version) FROM `{engine.database}`.test_words"
    )
    assert meta[0][:2] == (1, 1)
    assert meta[0][2] == words.version("alpha")


def test_crash_mid_stream_keeps_previous_dump_and_hides_the_partial_one(engine, words):
    sample_sink.SOURCE["doc"] = [f"w{i}" for i in range(25)]
    dump("test_words", ["doc"], connection=engine, batch_size=10)
    before = current(engine)
    assert len(before) == 25

    sample_sink.SOURCE["doc"] = [f"new{i}" for i in range(25)]
    sample_sink.FAIL_AFTER["doc"] = 17  # two batches of 10 would be written: the first one is
    with pytest.raises(DumpError, match="broke at word 17"):
        Dumper(words, engine, batch_size=10).dump_key("doc")
    assert current(engine) == before
    count, dumps = all_dump_rows(engine, "doc")
    assert (count, dumps) == (35, 2)  # the partial batch is stored, but invisible

    # The summary API reports the failure instead of raising, and the next run completes.
    summary = dump("test_words", ["doc"], connection=engine, batch_size=10)
    assert summary.count("failed") == 1 and "broke at word 17" in summary.failed[0].error
    del sample_sink.FAIL_AFTER["doc"]
    dump("test_words", ["doc"], connection=engine, batch_size=10)
    assert [r[2] for r in current(engine)] == sample_sink.SOURCE["doc"]


def test_retry_does_not_duplicate(engine, words):
    sample_sink.SOURCE["doc"] = ["a", "b", "c"]
    for _ in range(3):
        dump("test_words", ["doc"], connection=engine)
    assert [r[2] for r in current(engine)] == ["a", "b", "c"]


def test_newer_dump_replaces_content_and_tombstone_removes_key(engine, words):
    sample_sink.SOURCE.update(one=["a", "b", "c", "d"], two=["x", "y"])
    dump("test_words", connection=engine)  # keys() -> both
    sample_sink.SOURCE["one"] = ["a", "d"]  # b and c vanished
    dump("test_words", ["one"], connection=engine)
    assert [(r[0], r[2]) for r in current(engine)] == [("one", "a"), ("one", "d"), ("two", "x"), ("two", "y")]
    Dumper(words, engine).delete_key("two")
    assert [r[0] for r in current(engine)] == ["one", "one"]
    assert Dumper(words, engine).current_versions() == {"one": words.version("one")}


def test_retention_removes_superseded_dumps(engine, words, monkeypatch):
    monkeypatch.setattr(retention, "DEFER_KEYS", 1)  # every run's prune is due (test_deferred_retention.py)
    sample_sink.SOURCE["doc"] = ["a", "b"]
    for _ in range(4):
        dump("test_words", ["doc"], connection=engine)
    # Each run deletes the dumps its own dump of the key superseded; the engine applies the DELETE
    # in the background, so wait for it before counting (a bound, generous: a loaded host took > 30 s).
    assert Dumper(words, engine).retention.wait(timeout=120)
    assert all_dump_rows(engine, "doc") == (2, 1)
    # A crashed dump's rows stay (invisible) until the next complete dump of the key removes them.
    sample_sink.FAIL_AFTER["doc"] = 1
    with pytest.raises(DumpError):
        Dumper(words, engine, batch_size=1).dump_key("doc")
    assert all_dump_rows(engine, "doc") == (3, 2)
    del sample_sink.FAIL_AFTER["doc"]
    sample_sink.SOURCE["doc"] = ["c", "d", "e"]
    dump("test_words", ["doc"], connection=engine)
    assert Dumper(words, engine).retention.wait(timeout=120)
    assert all_dump_rows(engine, "doc") == (3, 1)
    assert [r[2] for r in current(engine)] == ["c", "d", "e"]


def test_retention_never_touches_a_dump_that_started_later(engine, words):
    """Pruning is bounded by this run's own dump: a dump that started after it (elsewhere) stays."""
    sample_sink.SOURCE["doc"] = ["a"]
    mine = Dumper(words, engine)
    mine.ensure_schema()
    mine.dump_key("doc")
    sample_sink.SOURCE["doc"] = ["b"]
    Dumper(words, engine).dump_key("doc")  # a later dump by another process: now the current one
    mine.retention.prune(["doc"], wait=True)
    assert all_dump_rows(engine, "doc") == (2, 2)
    assert [r[2] for r in current(engine)] == ["b"]
    # a dumper that completed no dump of the key prunes nothing
    Dumper(words, engine).retention.prune(["doc"], wait=True)
    assert all_dump_rows(engine, "doc") == (2, 2)


def test_skip_unchanged_uses_source_version(engine, words):
    sample_sink.SOURCE.update(one=["a"], two=["b"])
    first = dump("test_words", connection=engine, skip_unchanged=True)
    assert first.count("dumped") == 2
    sample_sink.SOURCE["two"] = ["b", "c"]
    second = dump("test_words", connection=engine, skip_unchanged=True)
    assert [(r.key, r.status) for r in second.results] == [("one", "skipped"), ("two", "dumped")]


def test_a_bad_key_fails_alone(engine, words):
    sample_sink.SOURCE["good"] = ["a"]
    summary = dump("test_words", ["not a key!", "good"], connection=engine)
    assert [r.status for r in summary.results] == ["failed", "dumped"]
    assert "must be an identifier" in summary.results[0].error
    assert "1 dumped" in str(summary) and "1 failed" in str(summary)


def test_many_keys_per_dump_commit_together(engine, words, monkeypatch):
    monkeypatch.setattr(type(words), "keys_per_dump", 3)
    sample_sink.SOURCE.update({f"d{i}": [f"w{i}"] * (i + 1) for i in range(5)})
    summary = dump("test_words", connection=engine)
    assert [(r.key, r.rows) for r in summary.results] == [(f"d{i}", i + 1) for i in range(5)]
    assert len({r.dump_id for r in summary.results}) == 2  # d0-d2 and d3-d4
    assert len(current(engine)) == 15
    # A key failing inside a group fails alone: the group is dumped again key by key; the broken
    # key's previous dump stays visible.
    sample_sink.SOURCE.update({f"d{i}": ["new"] for i in range(5)})
    sample_sink.FAIL_AFTER["d1"] = 0
    summary = dump("test_words", connection=engine)
    assert [r.status for r in summary.results] == ["dumped", "failed", "dumped", "dumped", "dumped"]
    assert "source of d1 broke" in summary.results[1].error
    assert [r[2] for r in current(engine, "d0")] == ["new"]
    assert [r[2] for r in current(engine, "d1")] == ["w1", "w1"]
    assert [r[2] for r in current(engine, "d4")] == ["new"]
