"""Ledger compaction: retention deletes the ledger rows of dumps that can never be current again.

Every reader of the ledger answers the same before and after: the current-dumps view, the versions and
keys of current dumps, what ``--resume`` skips, what a newer dump outranks, a current table's fill, and
the views. A dump whose own ledger row a newer dump's compaction deleted before its read-back commits.
"""

from __future__ import annotations

import pytest

from event_sinks import dump
from event_sinks.clickhouse import Connection
from event_sinks.core import visibility
from event_sinks.dumping import Dumper, backfills, ledger, retention

from ..support import sample_sink

SINK = "test_words"


def logged(connection, key):
    """The dump ids the ledger holds for ``key``, oldest first."""
    return [row[0] for row in connection.query(
        f"SELECT dump_id FROM `{connection.database}`.event_sinks_dump_log "  # noqa: S608 - a test's own database
        "WHERE sink = {s:String} AND key = {k:String} ORDER BY dumped_at", {"s": SINK, "k": key})]


def readers(connection, since):
    """What every reader of the ledger answers (and what readers of the view see)."""
    db = f"`{connection.database}`"
    return {
        "current dumps": connection.query(f"SELECT * FROM {db}.event_sinks_current_dumps ORDER BY sink, key"),
        "versions": ledger.current_versions(connection, SINK),
        "keys": list(ledger.current_keys(connection, SINK, page=1)),
        "resume": backfills.dumps_since(connection, SINK, since),
        "outranked": ledger.superseded(connection, SINK, ["one", "two", "gone"], since),
        "view": connection.query(f"SELECT doc, position, word FROM {db}.test_words ORDER BY doc, position"),
    }


@pytest.fixture
def connection(embedded, words):
    connection = Connection(embedded)
    Dumper(words, connection).ensure_schema()
    return connection


def test_superseded_ledger_rows_are_deleted_and_every_reader_answers_the_same(connection, words, monkeypatch):
    sample_sink.SOURCE.update(one=["a", "b"], two=["x"], gone=["z"])
    since = connection.server_time()
    for n in range(3):  # within the grace: every run's ledger rows stay
        sample_sink.SOURCE["one"] = ["a", "b", f"v{n}"]
        dump(SINK, connection=connection)
    Dumper(words, connection).delete_key("gone")
    assert Dumper(words, connection).retention.wait(120)
    assert [len(logged(connection, k)) for k in ("one", "two", "gone")] == [3, 3, 4]

    mine = Dumper(words, connection)
    sample_sink.SOURCE["one"] = ["a", "c"]
    last = {key: mine.dump_key(key).dump_id for key in ("one", "two")}
    before = readers(connection, since)
    monkeypatch.setattr(retention, "LEDGER_GRACE_SECONDS", 0.0)
    mine.retention.prune(wait=True)
    assert logged(connection, "one") == [last["one"]] and logged(connection, "two") == [last["two"]]
    assert len(logged(connection, "gone")) == 4  # no dump of it completed here: left alone
    assert readers(connection, since) == before
    assert before["keys"] == ["one", "two"] and before["view"][0] == ("one", 0, "a")

    # A current table added beside an earlier version's dumps is filled from the compacted ledger.
    connection.command(f"DROP TABLE `{connection.database}`.test_words_current SYNC")
    fresh = Connection(connection.settings)
    fresh.apply_schema(visibility.ledger_schema() + words.schema())
    assert readers(fresh, since) == before


def test_the_grace_keeps_a_recent_history(connection, words):
    sample_sink.SOURCE.update(doc=["a"])
    for _ in range(3):
        dump(SINK, ["doc"], connection=connection)
    assert Dumper(words, connection).retention.wait(120)
    assert len(logged(connection, "doc")) == 3  # the *_dumps rows are pruned; the ledger keeps an hour


def test_a_dump_that_started_later_keeps_its_ledger_row(connection, words, monkeypatch):
    monkeypatch.setattr(retention, "LEDGER_GRACE_SECONDS", 0.0)
    sample_sink.SOURCE["doc"] = ["a"]
    mine = Dumper(words, connection)
    mine.dump_key("doc")
    sample_sink.SOURCE["doc"] = ["b"]
    later = Dumper(words, connection).dump_key("doc")  # by another process, after mine began: current
    mine.retention.prune(wait=True)
    assert len(logged(connection, "doc")) == 2 and ledger.current_keys(connection, SINK)
    Dumper(words, connection).retention.prune(["doc"], wait=True)  # completed nothing: prunes nothing
    assert logged(connection, "doc")[-1] == later.dump_id
    assert ledger.current_versions(connection, SINK) == {"doc": words.version("doc")}


def test_a_dump_whose_ledger_row_a_newer_dump_compacted_still_commits(connection, words, monkeypatch):
    """Between a dump's ledger insert and its read-back, a newer dump of the key completes and compacts."""
    monkeypatch.setattr(retention, "LEDGER_GRACE_SECONDS", -60.0)  # even a row just written
    sample_sink.SOURCE["doc"] = ["old"]
    commit, raced = ledger.commit, []

    def commit_then_race(*args, **kwargs):
        commit(*args, **kwargs)
        if not raced:
            raced.append(True)
            sample_sink.SOURCE["doc"] = ["new"]
            other = Dumper(words, connection)
            raced.append(other.dump_key("doc"))
            other.retention.prune(wait=True)

    monkeypatch.setattr(ledger, "commit", commit_then_race)
    result = Dumper(words, connection).dump_key("doc")
    newer = raced[1]
    assert result.status == "dumped" and logged(connection, "doc") == [newer.dump_id]
    assert connection.query(f"SELECT word FROM `{connection.database}`.test_words") == [("new",)]
    assert ledger.current_versions(connection, SINK) == {"doc": words.version("doc")}
