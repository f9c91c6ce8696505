"""A run that dumped many keys leaves the current table merged; a publish-sized run does not merge.

Why (docs/decisions/0007-current-tables.rst, *Measured*): readers read the current table ``FINAL``;
after a backfill every part spans every key and the engine's background merges may stop with
several versions per row, so each read merged them all (a count at 5,000 courses: 497 ms, 3 ms once
merged). The merge is housekeeping: it never fails the run.
"""

from __future__ import annotations

import logging

import pytest

from event_sinks import dump
from event_sinks.clickhouse import Connection
from event_sinks.dumping import dumper as dumper_module
from event_sinks.dumping.current import CurrentTable
from event_sinks.errors import EngineError

from ..support import sample_sink

DOCS = 6


@pytest.fixture
def documents(words, embedded, monkeypatch):
    monkeypatch.setattr(dumper_module, "MERGE_AFTER_KEYS", DOCS)
    for i in range(DOCS):
        sample_sink.SOURCE[f"doc{i}"] = [f"word{j}" for j in range(20)]
    return Connection(embedded)


def active_parts(engine: Connection, table: str) -> int:
    return engine.value("SELECT count() FROM system.parts WHERE database = {db:String} AND table = {t:String} "
                        "AND active", {"db": engine.database, "t": table})


def view_rows(engine: Connection) -> list[tuple]:
    return engine.query(f"SELECT doc, position, word FROM `{engine.database}`.test_words ORDER BY doc, position")


def test_a_backfill_leaves_one_current_part_and_the_same_rows(documents):
    assert dump("test_words").count("dumped") == DOCS
    sample_sink.SOURCE["doc0"] = ["changed"]  # a second pass: new versions, and rows that vanish
    assert dump("test_words").count("dumped") == DOCS
    assert active_parts(documents, "test_words_current") == 1
    rows = view_rows(documents)
    assert [r for r in rows if r[0] == "doc0"] == [("doc0", 0, "changed")]
    assert len(rows) == 1 + (DOCS - 1) * 20


def test_a_run_of_fewer_keys_does_not_merge(documents, monkeypatch):
    merges = []
    monkeypatch.setattr(CurrentTable, "merge", lambda self: merges.append(self.sink.name))
    dump("test_words", ["doc1", "doc2"])
    assert merges == []
    dump("test_words")
    assert merges == ["test_words"]


def test_a_failed_merge_fails_no_dump(documents, monkeypatch, caplog):
    def refuse(self):
        raise EngineError("ClickHouse at chdb:// refused OPTIMIZE TABLE: not enough space")

    monkeypatch.setattr(CurrentTable, "merge", refuse)
    with caplog.at_level(logging.WARNING):
        summary = dump("test_words")
    assert summary.count("dumped") == DOCS and not summary.count("failed")
    assert any("merging test_words_current after 6 dumps failed" in r.getMessage() for r in caplog.records)
    assert len(view_rows(documents)) == DOCS * 20
