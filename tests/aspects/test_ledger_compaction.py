"""Ledger compaction leaves the Aspects feed and its sync alone: the ledger's current dumps are unchanged."""

from __future__ import annotations

from event_sinks import dump, get_sink
from event_sinks.aspects import sync
from event_sinks.dumping import Dumper, retention

from .conftest import DEMO_KEY
from .contract import create_aspects_tables, current_blocks, our_blocks
from .test_feed import delete_quiz_and_rename_video


def test_a_compacted_ledger_leaves_aspects_as_it_was_and_sync_with_nothing_to_do(aspects, monkeypatch):
    connection, database = aspects.connection, aspects.database
    create_aspects_tables(connection, database, with_view=False)
    assert dump("course_outline", [DEMO_KEY]).count("dumped") == 1
    delete_quiz_and_rename_video(aspects.course)
    monkeypatch.setattr(retention, "LEDGER_GRACE_SECONDS", 0.0)
    mine = Dumper(get_sink("course_outline"), connection)
    mine.dump_key(DEMO_KEY)
    mine.retention.prune(wait=True)
    logged = connection.query(f"SELECT count() FROM `{connection.database}`.event_sinks_dump_log "
                              "WHERE sink = 'course_outline'")
    assert logged == [(1,)]  # the first dump's ledger row is gone
    assert current_blocks(connection, database) == our_blocks(connection)
    assert sync() == []
    # and a tombstone after the compaction still reaches Aspects
    dump("course_outline", [DEMO_KEY], delete=True)
    assert current_blocks(connection, database) == [] and sync() == []
